//! The SQLite schema and its versioned migrations.
//!
//! Two kinds of tables: the **source of truth** (`device`, `documents`, `changes`, the sync
//! bookkeeping `document_heads`, `peers`, `peer_docs`, `refused_documents`,
//! `earlier_visits` and `earlier_registers`, what documents outside a phone's window said, and
//! the server's `grid_conversions` and `grid_conversion_skips`), which
//! migrations must carry forward row by row, and the **derived query tables** the screens read,
//! which can always be rebuilt from the documents. A migration that changes derived tables asks
//! for a rebuild instead of converting rows.
//!
//! `MIGRATIONS[i]` takes a database from `user_version` i to i + 1; a new database runs them all.
//! Never edit a migration that has shipped: add the next one.

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::error::{Db, Error, Result};

/// The visits table, shared with the plain-SQLite baseline of `doorstep bench store`.
macro_rules! visits_ddl {
    () => {
        r#"
CREATE TABLE visits (
    id TEXT PRIMARY KEY, household_id TEXT NOT NULL, grid_id TEXT NOT NULL,
    worker_id TEXT NOT NULL, at INTEGER NOT NULL, lat REAL, lon REAL, kind TEXT NOT NULL,
    outcome TEXT NOT NULL, notes TEXT NOT NULL, follow_up INTEGER NOT NULL,
    photo_count INTEGER NOT NULL, deleted INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX visits_household ON visits(household_id, at);
"#
    };
}

/// The households table, shared with the plain-SQLite baseline of `doorstep bench store`.
macro_rules! households_ddl {
    () => {
        r#"
CREATE TABLE households (
    id TEXT PRIMARY KEY, grid_id TEXT NOT NULL, micro_grid_id TEXT,
    building TEXT NOT NULL, unit TEXT NOT NULL, room TEXT NOT NULL, lat REAL, lon REAL,
    care_tags INTEGER NOT NULL, risk TEXT NOT NULL, notes TEXT NOT NULL,
    created_at INTEGER NOT NULL, deleted INTEGER NOT NULL,
    visit_interval_ms INTEGER NOT NULL, last_visit_at INTEGER, next_due_at INTEGER NOT NULL
);
CREATE INDEX households_grid ON households(grid_id);
CREATE INDEX households_micro_grid ON households(micro_grid_id);
CREATE INDEX households_due ON households(next_due_at);
"#
    };
}

/// DDL of the visits table exactly as the store creates it (for baselines).
#[cfg_attr(not(feature = "hooks"), allow(dead_code))]
pub(crate) const VISITS_DDL: &str = visits_ddl!();
/// DDL of the households table exactly as the store creates it (for baselines).
#[cfg_attr(not(feature = "hooks"), allow(dead_code))]
pub(crate) const HOUSEHOLDS_DDL: &str = households_ddl!();

pub(crate) struct Migration {
    pub sql: &'static str,
    /// Whether the derived tables must be rebuilt from the documents afterwards.
    pub rebuild: bool,
}

pub(crate) const MIGRATIONS: &[Migration] = &[
    // 0 → 1: documents as snapshot + change rows; the first query tables.
    Migration {
        sql: concat!(
            r#"
CREATE TABLE device (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    actor BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE documents (
    doc_id TEXT PRIMARY KEY,
    snapshot BLOB NOT NULL,
    compacted_at INTEGER NOT NULL
);
CREATE TABLE changes (
    doc_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (doc_id, seq)
) WITHOUT ROWID;

CREATE TABLE units (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, parent_id TEXT, name TEXT NOT NULL,
    deleted INTEGER NOT NULL
);
CREATE INDEX units_parent ON units(parent_id);
CREATE TABLE users (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, unit_id TEXT NOT NULL,
    department TEXT, deleted INTEGER NOT NULL
);
CREATE TABLE devices (
    id TEXT PRIMARY KEY, user_id TEXT NOT NULL, actor TEXT NOT NULL, deleted INTEGER NOT NULL
);
CREATE TABLE categories (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, triage_hours INTEGER NOT NULL,
    feedback_hours INTEGER NOT NULL, resolve_hours INTEGER NOT NULL, deleted INTEGER NOT NULL
);
CREATE TABLE visit_rules (rule TEXT PRIMARY KEY, hours INTEGER NOT NULL);

"#,
            households_ddl!(),
            r#"
CREATE TABLE residents (
    id TEXT PRIMARY KEY, household_id TEXT NOT NULL, grid_id TEXT NOT NULL,
    name TEXT NOT NULL, phone TEXT NOT NULL, id_number TEXT NOT NULL,
    birth_year INTEGER, relation TEXT NOT NULL, deleted INTEGER NOT NULL
);
CREATE INDEX residents_household ON residents(household_id);
"#,
            visits_ddl!(),
            r#"
CREATE TABLE photos (
    owner_id TEXT NOT NULL, sha256 TEXT NOT NULL, doc_id TEXT NOT NULL, owner_kind TEXT NOT NULL,
    byte_size INTEGER NOT NULL, mime TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
    taken_at INTEGER, lat REAL, lon REAL,
    PRIMARY KEY (owner_id, sha256)
) WITHOUT ROWID;
CREATE TABLE reports (
    id TEXT PRIMARY KEY, grid_id TEXT, reporter_id TEXT NOT NULL, category_id TEXT NOT NULL,
    description TEXT NOT NULL, address TEXT, lat REAL, lon REAL, created_at INTEGER NOT NULL,
    status TEXT NOT NULL, updated_at INTEGER NOT NULL, event_count INTEGER NOT NULL
);
CREATE INDEX reports_status ON reports(status, grid_id, created_at);
CREATE INDEX reports_grid ON reports(grid_id, created_at);
CREATE INDEX reports_category ON reports(category_id, created_at);
CREATE INDEX reports_place ON reports(lat, lon);
CREATE TABLE report_events (
    id TEXT PRIMARY KEY, report_id TEXT NOT NULL, at INTEGER NOT NULL, author_id TEXT NOT NULL,
    kind TEXT NOT NULL, note TEXT NOT NULL, target TEXT, score INTEGER, photo_count INTEGER NOT NULL
);
CREATE INDEX report_events_report ON report_events(report_id, at);
"#
        ),
        rebuild: false,
    },
    // 1 → 2: full-text search over household addresses and report text. Trigram tokens work for
    // Chinese (no spaces between words) as well as for Latin text.
    Migration {
        sql: r#"
CREATE VIRTUAL TABLE household_search USING fts5(body, tokenize = 'trigram');
CREATE VIRTUAL TABLE report_search USING fts5(body, tokenize = 'trigram');
"#,
        rebuild: true,
    },
    // 2 → 3: sync. Each document's current heads and its place in the local change feed (so a
    // sync finds what differs without loading documents), in a table of their own so that
    // updating them never rewrites a snapshot; and what each peer is known to hold. The rebuild
    // fills in the heads of documents stored before.
    Migration {
        sql: r#"
CREATE TABLE document_heads (
    doc_id TEXT PRIMARY KEY, heads BLOB NOT NULL, feed_seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX document_heads_feed ON document_heads(feed_seq);
CREATE TABLE peers (
    peer_id TEXT PRIMARY KEY, cursor INTEGER NOT NULL DEFAULT 0, last_sync_at INTEGER,
    last_error TEXT
);
CREATE TABLE peer_docs (
    peer_id TEXT NOT NULL, doc_id TEXT NOT NULL, heads BLOB NOT NULL,
    PRIMARY KEY (peer_id, doc_id)
) WITHOUT ROWID;
"#,
        rebuild: true,
    },
    // 3 → 4: the report workflow and the welfare schedules. A report's row carries what the
    // fold derives from its log (assignee, escalation level, the next deadline, …), events carry
    // triage fields, events the fold refused are listed with their reason; categories carry
    // deadlines per classification and duplicate windows; households carry their bell-check
    // clock and the follow-up an unanswered bell calls for.
    Migration {
        sql: r#"
DROP TABLE reports;
CREATE TABLE reports (
    id TEXT PRIMARY KEY, grid_id TEXT, reporter_id TEXT NOT NULL, category_id TEXT NOT NULL,
    description TEXT NOT NULL, address TEXT, lat REAL, lon REAL, created_at INTEGER NOT NULL,
    status TEXT NOT NULL, updated_at INTEGER NOT NULL, event_count INTEGER NOT NULL,
    classification TEXT, risk TEXT, assignee TEXT, accepted_by TEXT, level TEXT NOT NULL,
    next_due_step TEXT, next_due_at INTEGER, triage_due_at INTEGER NOT NULL, feedback_due_at INTEGER NOT NULL,
    resolve_due_at INTEGER NOT NULL, triaged_at INTEGER, first_feedback_at INTEGER,
    resolved_at INTEGER, closed_at INTEGER, satisfaction INTEGER, reopen_count INTEGER NOT NULL,
    duplicate_of TEXT, rejected_count INTEGER NOT NULL
);
CREATE INDEX reports_status ON reports(status, grid_id, created_at);
CREATE INDEX reports_grid ON reports(grid_id, created_at);
CREATE INDEX reports_category ON reports(category_id, created_at);
CREATE INDEX reports_place ON reports(lat, lon);
CREATE INDEX reports_due ON reports(grid_id, next_due_at) WHERE next_due_at IS NOT NULL;
ALTER TABLE households ADD COLUMN bell_interval_ms INTEGER;
ALTER TABLE households ADD COLUMN last_contact_at INTEGER;
ALTER TABLE households ADD COLUMN next_bell_due_at INTEGER;
ALTER TABLE households ADD COLUMN unanswered_bell_at INTEGER;
ALTER TABLE households ADD COLUMN follow_up_due_at INTEGER;
CREATE INDEX households_bell_due ON households(next_bell_due_at) WHERE next_bell_due_at IS NOT NULL;
CREATE INDEX households_follow_up ON households(follow_up_due_at) WHERE follow_up_due_at IS NOT NULL;
ALTER TABLE categories ADD COLUMN class_resolve_hours TEXT NOT NULL DEFAULT '{}';
ALTER TABLE categories ADD COLUMN duplicate_radius_m INTEGER NOT NULL DEFAULT 100;
ALTER TABLE categories ADD COLUMN duplicate_window_hours INTEGER NOT NULL DEFAULT 72;
ALTER TABLE report_events ADD COLUMN classification TEXT;
ALTER TABLE report_events ADD COLUMN risk TEXT;
CREATE TABLE report_rejections (
    event_id TEXT PRIMARY KEY, report_id TEXT NOT NULL, reason TEXT NOT NULL
);
CREATE INDEX report_rejections_report ON report_rejections(report_id);
"#,
        rebuild: true,
    },
    // 4 → 5: revoked devices; records in stored documents that could not be read.
    Migration {
        sql: r#"
ALTER TABLE devices ADD COLUMN revoked_at INTEGER;
CREATE TABLE rejected_records (
    doc_id TEXT NOT NULL, collection TEXT NOT NULL, record_id TEXT NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY (doc_id, collection, record_id)
) WITHOUT ROWID;
"#,
        rebuild: true,
    },
    // 5 → 6: documents a peer refused while it took the rest of the message.
    Migration {
        sql: r#"
CREATE TABLE refused_documents (
    peer_id TEXT NOT NULL, doc_id TEXT NOT NULL, code TEXT NOT NULL, message TEXT NOT NULL,
    PRIMARY KEY (peer_id, doc_id)
) WITHOUT ROWID;
"#,
        rebuild: false,
    },
    // 6 → 7: registers per micro-grid and visits per month (DATA-MODEL.md): each household and
    // resident row names the document it comes from; each visit row its document's register unit
    // and month (`period` NULL: an old grid document), a few bytes instead of a document id.
    Migration {
        sql: r#"
ALTER TABLE households ADD COLUMN doc_id TEXT NOT NULL DEFAULT '';
ALTER TABLE residents ADD COLUMN doc_id TEXT NOT NULL DEFAULT '';
ALTER TABLE visits ADD COLUMN unit_id TEXT NOT NULL DEFAULT '';
ALTER TABLE visits ADD COLUMN period TEXT;
CREATE INDEX households_doc ON households(doc_id);
CREATE INDEX residents_doc ON residents(doc_id);
"#,
        rebuild: true,
    },
    // 7 → 8: a phone's rolling window (`window.rs`). What visits documents that left the phone
    // (or that it never took) said about each household's clocks: kept, since no document
    // remains to rebuild it from; and up to which month the server told it, per register.
    Migration {
        sql: r#"
CREATE TABLE earlier_visits (
    household_id TEXT PRIMARY KEY, last_visit_at INTEGER, last_contact_at INTEGER, unanswered_bell_at INTEGER
) WITHOUT ROWID;
CREATE TABLE earlier_registers (unit_id TEXT PRIMARY KEY, before TEXT NOT NULL) WITHOUT ROWID;
"#,
        rebuild: false,
    },
    // 8 → 9: the server's conversion of old grid documents (`conversion.rs`): whether this store
    // converts, each grid document's heads at its last conversion and the records it could not
    // copy, and which device of the directory is the server's.
    Migration {
        sql: r#"
ALTER TABLE device ADD COLUMN converts_grids INTEGER NOT NULL DEFAULT 0;
CREATE TABLE grid_conversions (grid_id TEXT PRIMARY KEY, heads BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE grid_conversion_skips (
    grid_id TEXT NOT NULL, collection TEXT NOT NULL, key TEXT NOT NULL, reason TEXT NOT NULL,
    since BLOB NOT NULL, PRIMARY KEY (grid_id, collection, key)
) WITHOUT ROWID;
ALTER TABLE devices ADD COLUMN server INTEGER NOT NULL DEFAULT 0;
"#,
        rebuild: true,
    },
    // 9 → 10: the device's identity (`identity.rs`, PROTOCOL.md §8): its Ed25519 key (made at the
    // next open), the certificate the server issued for it, and the deployment keys it pinned at
    // enrolment (JSON). Columns of the one `device` row, not tables: the first screen's open
    // reads no more schema for them.
    Migration {
        sql: r#"
ALTER TABLE device ADD COLUMN signing_key BLOB;
ALTER TABLE device ADD COLUMN certificate TEXT;
ALTER TABLE device ADD COLUMN deployment_keys TEXT;
ALTER TABLE device ADD COLUMN certificate_kept_at INTEGER;
"#,
        rebuild: false,
    },
    // 10 → 11: signed changes (`voucher.rs`, PROTOCOL.md §10): each device's public key as the
    // directory names it (a derived table's column, so the upgrade rebuilds), and the signatures
    // kept with each document (the latest of each signer), which go with its changes to other
    // replicas.
    Migration {
        sql: r#"
ALTER TABLE devices ADD COLUMN public_key TEXT;
CREATE TABLE vouchers (
    doc_id TEXT NOT NULL, signer TEXT NOT NULL, seq INTEGER NOT NULL, heads BLOB NOT NULL,
    signature BLOB NOT NULL, PRIMARY KEY (doc_id, signer)
) WITHOUT ROWID;
"#,
        rebuild: true,
    },
];

/// The schema version this build writes.
pub(crate) const CURRENT: i64 = MIGRATIONS.len() as i64;

/// The newest schema version whose upgrade rebuilds the derived tables (the crash test kills
/// an upgrade from it).
#[cfg_attr(not(feature = "hooks"), allow(dead_code))]
pub(crate) fn newest_rebuilding_upgrade() -> i64 {
    MIGRATIONS.iter().rposition(|m| m.rebuild).expect("a migration rebuilds") as i64
}

/// The derived tables, in the order a rebuild clears them.
pub(crate) const DERIVED_TABLES: &[&str] = &[
    "units",
    "users",
    "devices",
    "categories",
    "visit_rules",
    "households",
    "residents",
    "visits",
    "photos",
    "reports",
    "report_events",
    "report_rejections",
    "household_search",
    "report_search",
    "rejected_records",
];

/// Brings the database to [`CURRENT`] in one transaction; when a migration changed derived
/// tables, `rebuild` derives them again from the documents inside that same transaction. A kill
/// at any point leaves either the old schema with its tables or the new one rebuilt: never the
/// new schema with tables that were not rebuilt.
pub(crate) fn migrate(conn: &mut Connection, rebuild: impl FnOnce(&Transaction<'_>) -> Result<()>) -> Result<()> {
    run(conn, CURRENT, Some(rebuild))
}

/// Brings the database to schema version `target` without rebuilding anything (tests build
/// every older version with it).
#[cfg_attr(not(feature = "hooks"), allow(dead_code))]
pub(crate) fn migrate_to(conn: &mut Connection, target: i64) -> Result<()> {
    run(conn, target, None::<fn(&Transaction<'_>) -> Result<()>>)
}

fn run(conn: &mut Connection, target: i64, rebuild: Option<impl FnOnce(&Transaction<'_>) -> Result<()>>) -> Result<()> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).db()?;
    if found > CURRENT {
        return Err(Error::SchemaTooNew { found, known: CURRENT });
    }
    if found >= target {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).db()?;
    let mut needs_rebuild = false;
    for m in MIGRATIONS.iter().take(target as usize).skip(found as usize) {
        tx.execute_batch(m.sql).db()?;
        needs_rebuild |= m.rebuild && found > 0;
    }
    tx.pragma_update(None, "user_version", target).db()?;
    if let (true, Some(rebuild)) = (needs_rebuild, rebuild) {
        rebuild(&tx)?;
    }
    tx.commit().db()?;
    Ok(())
}

/// The store's full-text tables, by name.
pub(super) fn full_text_tables(conn: &Connection) -> Result<Vec<String>> {
    conn.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL%'")
        .db()?
        .query_map([], |r| r.get(0))
        .db()?
        .collect::<rusqlite::Result<_>>()
        .db()
}

/// Rebuilds full-text `tables` from their content: the segments of deleted rows would keep their
/// terms (residents' names) until merged.
pub(super) fn rebuild_full_text(conn: &Connection, tables: &[String]) -> Result<()> {
    for name in tables {
        conn.execute(&format!("INSERT INTO \"{name}\" (\"{name}\") VALUES ('rebuild')"), []).db()?;
    }
    Ok(())
}
