//! The projections: how each record of a document becomes rows of the query tables the screens
//! read, one module per kind of document (`directory`, `register`, `visits`, `reports`) and the
//! households' clocks their visits move (`clocks`).
//!
//! Called in the same SQLite transaction as the change that caused it, with only the records the
//! change touched (known directly for local writes, read from Automerge's patches for merges).
//! A full rebuild runs the very same functions over every record, which is why the tables after
//! any sequence of edits and merges equal a rebuild (tested in `tests/store_index.rs`).
//!
//! A record that cannot be read (a peer wrote something malformed) is treated as absent: it gets
//! no row and a warning that names only the document, collection and key.

mod clocks;
mod directory;
mod register;
mod reports;
mod visits;

use std::collections::BTreeSet;

use rusqlite::{params, Transaction};

pub(crate) use clocks::{clocks_of_rows, merge_earlier, refresh_due, Earlier};
use clocks::{keep_earlier_visits, refresh_all_due};
pub(crate) use directory::load_rules;
use visits::visit_rows_of;

use crate::directory::VisitRules;
use crate::document::{Collection, Doc, DocId, Touched};
use crate::error::{Db, Error, Result};
use crate::photo::PhotoMeta;

pub(crate) struct Indexer<'t> {
    tx: &'t Transaction<'t>,
    rules: &'t VisitRules,
    due: BTreeSet<String>,
    report_status: bool,
    rules_changed: bool,
    /// Users, units or categories changed: every report's derived state may have.
    roster_changed: bool,
    /// Units changed: the grid each visit row names may have (a phone can take a month's visits
    /// before the directory that places its micro-grid).
    units_changed: bool,
}

impl<'t> Indexer<'t> {
    pub fn new(tx: &'t Transaction<'t>, rules: &'t VisitRules) -> Self {
        Indexer {
            tx,
            rules,
            due: BTreeSet::new(),
            report_status: false,
            rules_changed: false,
            roster_changed: false,
            units_changed: false,
        }
    }

    /// Re-reads one touched record (or a whole collection) from the document into the tables.
    pub fn project(&mut self, doc: &Doc, t: &Touched) -> Result<()> {
        let Some(key) = &t.key else {
            self.clear_collection(&doc.id, t.collection)?;
            for key in doc.keys(t.collection).unwrap_or_default() {
                self.project(doc, &Touched { collection: t.collection, key: Some(key) })?;
            }
            return Ok(());
        };
        let key = key.as_str();
        self.tx
            .prepare_cached("DELETE FROM rejected_records WHERE doc_id = ?1 AND collection = ?2 AND record_id = ?3")
            .db()?
            .execute(params![doc.id.to_string(), t.collection.as_str(), key])
            .db()?;
        match (&doc.id, t.collection) {
            (DocId::Directory, collection) => self.directory_record(doc, collection, key),
            (DocId::Register(_) | DocId::Grid(_), collection @ (Collection::Households | Collection::Residents)) => {
                self.register_record(doc, collection, key)
            }
            (DocId::Visits(..) | DocId::Grid(_), Collection::Visits) => self.visit_record(doc, key),
            (DocId::Report(_), Collection::Header | Collection::Events) => {
                self.report_status = true;
                Ok(())
            }
            _ => Ok(()), // a collection this version does not know: nothing to show
        }
    }

    /// Finishes the derived state that depends on several records: visit due dates and report
    /// status. Returns the new visit rules when the directory changed them.
    pub fn finish(mut self, doc: &Doc) -> Result<Option<VisitRules>> {
        if self.report_status {
            self.report(doc)?;
        }
        if self.roster_changed {
            crate::store::workflow::derive_all_reports(self.tx)?;
        }
        if self.units_changed {
            self.tx
                .execute(
                    "UPDATE visits SET grid_id = COALESCE((SELECT parent_id FROM units WHERE id = visits.unit_id
                                                       AND kind = 'micro_grid'), visits.unit_id)
                 WHERE period IS NOT NULL AND grid_id IS NOT COALESCE((SELECT parent_id FROM units
                     WHERE id = visits.unit_id AND kind = 'micro_grid'), visits.unit_id)",
                    [],
                )
                .db()?;
        }
        if self.rules_changed {
            return refresh_all_due(self.tx).map(Some);
        }
        for id in &self.due {
            refresh_due(self.tx, id, self.rules.follow_up_ms())?;
        }
        Ok(None)
    }

    /// Removes the rows one collection of `doc` gave the query tables.
    fn clear_collection(&mut self, doc: &DocId, collection: Collection) -> Result<()> {
        self.tx
            .execute(
                "DELETE FROM rejected_records WHERE doc_id = ?1 AND collection = ?2",
                params![doc.to_string(), collection.as_str()],
            )
            .db()?;
        match (doc, collection) {
            (DocId::Directory, collection) => self.clear_directory(collection),
            (DocId::Register(_) | DocId::Grid(_), Collection::Households | Collection::Residents) => {
                self.clear_register(doc, collection)
            }
            (DocId::Visits(..) | DocId::Grid(_), Collection::Visits) => self.clear_visits(doc),
            (DocId::Report(_), _) => {
                self.report_status = true;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Takes every row `doc` gave the query tables out of them, for a document that leaves the
    /// store (`Store::release_outside_window`, `Store::release_unreadable_but`). A visits document first leaves what its visits
    /// say about each household's clocks in `earlier_visits`, which no rebuild clears.
    pub fn forget(mut self, doc: &DocId) -> Result<()> {
        self.tx.execute("DELETE FROM rejected_records WHERE doc_id = ?1", [doc.to_string()]).db()?;
        match doc {
            DocId::Visits(_, period) => {
                let (rows, [a, b]) = visit_rows_of(doc);
                keep_earlier_visits(self.tx, rows, &a, &b, period.closes_at())?;
                self.clear_visits(doc)?;
            }
            DocId::Report(id) => {
                self.tx.execute("DELETE FROM report_events WHERE report_id = ?1", [id.as_str()]).db()?;
                self.tx.execute("DELETE FROM photos WHERE doc_id = ?1", [doc.to_string()]).db()?;
                self.remove_report_row(id.as_str())?;
            }
            // A grid document: converted, the registers and months hold its records (the months
            // before the window came to the server's feed with the conversion, so the phone asked
            // for its registers' earlier clocks again when it was offered them). A register: its
            // user may no longer read it (moved to another unit).
            DocId::Grid(_) | DocId::Register(_) => {
                for collection in doc.collections() {
                    self.clear_collection(doc, *collection)?;
                }
            }
            DocId::Directory => return Err(Error::invalid("document", format!("{doc} is never let go of"))),
        }
        for id in &self.due {
            refresh_due(self.tx, id, self.rules.follow_up_ms())?;
        }
        Ok(())
    }

    fn photos(&mut self, doc: &DocId, owner_kind: &str, owner: &str, photos: &[PhotoMeta]) -> Result<()> {
        self.tx.prepare_cached("DELETE FROM photos WHERE owner_id = ?1").db()?.execute([owner]).db()?;
        for p in photos {
            let (lat, lon) = p.location.map(|l| (l.lat, l.lon)).unzip();
            self.tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO photos (owner_id, sha256, doc_id, owner_kind, byte_size, mime, width, height,
                                                    taken_at, lat, lon)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                ).db()?
                .execute(params![
                    owner,
                    p.sha256,
                    doc.to_string(),
                    owner_kind,
                    p.byte_size as i64,
                    p.mime,
                    p.width,
                    p.height,
                    p.taken_at,
                    lat,
                    lon
                ]).db()?;
        }
        Ok(())
    }
}

/// A record that does not decode is left out of the tables, listed in `rejected_records` (what
/// [`super::Store::rejected_records`] shows) and logged without its content; a storage failure
/// is still an error.
fn readable<T>(
    tx: &Transaction<'_>,
    doc: &Doc,
    collection: Collection,
    key: &str,
    r: Result<Option<T>>,
) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(v),
        Err(Error::CorruptDocument { .. }) => {
            tracing::warn!(doc = %doc.id, %collection, key, "record left out of the query tables: not readable");
            tx.prepare_cached(
                "INSERT OR REPLACE INTO rejected_records (doc_id, collection, record_id, reason) VALUES (?1, ?2, ?3, ?4)",
            ).db()?
            .execute(params![doc.id.to_string(), collection.as_str(), key, "it does not parse as a record of its collection"]).db()?;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}
