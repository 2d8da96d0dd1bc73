//! Test and bench hooks, behind the feature `hooks`: what the test suites (through
//! `doorstep-testkit`) and `doorstep bench` reach below the facade for. Building a store file of
//! an older schema, the derived tables' names, the baselines' DDL and SQL, the wire's heads digest.
//! The app's library never has them: `doorstep-ffi` does not enable the feature (the `doorstep`
//! command does, for its benches). The store's own hooks are methods of `Store` behind the same
//! feature (`queued_changes_for_tests`, `limit_pages_for_tests`).

use crate::error::Result;
use crate::store::schema;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = schema::CURRENT;

/// The derived tables, in the order a rebuild clears them.
pub const DERIVED_TABLES: &[&str] = schema::DERIVED_TABLES;

/// DDL of the visits and households tables exactly as the store creates them (the plain-SQLite
/// baselines of `doorstep bench store`).
pub const VISITS_DDL: &str = schema::VISITS_DDL;
pub const HOUSEHOLDS_DDL: &str = schema::HOUSEHOLDS_DDL;

/// The overdue reports' query exactly as the store runs it (the plain-SQLite baseline of
/// `doorstep bench workflow`).
pub const OVERDUE_SQL: &str = crate::store::OVERDUE_SQL;

/// The newest schema version whose upgrade rebuilds the derived tables (the crash test kills an
/// upgrade from it).
pub fn newest_rebuilding_upgrade() -> i64 {
    schema::newest_rebuilding_upgrade()
}

/// Brings the SQLite file on `conn` to schema version `target` without rebuilding anything:
/// the upgrade tests build every older version with it.
pub fn migrate_to(conn: &mut rusqlite::Connection, target: i64) -> Result<()> {
    schema::migrate_to(conn, target)
}

/// The digest of `heads` as a `heads` entry of the wire carries it (PROTOCOL.md §2).
pub fn heads_digest(heads: &[automerge::ChangeHash]) -> Vec<u8> {
    crate::sync::wire::heads_digest(heads)
}

/// The genesis change of `doc` (PROTOCOL.md §1) as saved bytes: what another client starts a
/// document from (`doorstep bench upgrade` writes an old-layout grid document on it).
pub fn genesis(doc: &crate::DocId) -> Vec<u8> {
    crate::document::genesis(doc).save()
}

/// A fresh device key's public half and its enrolment proof for `code` and an `actor` of the
/// test's choosing: what a client that is not a `Store` (another implementation, an attacker
/// claiming someone's actor id) sends to `POST /v1/devices`. The key is thrown away.
pub fn enrolment_proof_for(code: &str, actor: &str) -> Result<(String, String)> {
    let key = crate::identity::DeviceKey::generate()?;
    Ok((key.public_hex(), key.enrolment_proof(code, actor)))
}
