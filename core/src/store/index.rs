//! The derived query tables: how each record of a document becomes rows the screens read.
//!
//! Called in the same SQLite transaction as the change that caused it, with only the records the
//! change touched (known directly for local writes, read from Automerge's patches for merges).
//! A full rebuild runs the very same functions over every record, which is why the tables after
//! any sequence of edits and merges equal a rebuild (tested in `tests/store_index.rs`).
//!
//! A record that cannot be read (a peer wrote something malformed) is treated as absent: it gets
//! no row and a warning that names only the document, collection and key.

use std::collections::BTreeSet;

use rusqlite::{params, OptionalExtension, Transaction};

use crate::directory::{Category, Device, Unit, User, VisitRules};
use crate::document::Collection;
use crate::document::{Doc, DocId, Touched, HEADER_KEY};
use crate::error::{Error, Result};
use crate::household::{CareTag, Household, Resident, RiskLevel};
use crate::photo::PhotoMeta;
use crate::report::{Report, ReportEvent};
use crate::visit::{Visit, VisitKind};

/// The condition under which a row from the document `excluded.doc_id` replaces the row of the
/// same record from `<table>.doc_id`: always from the same document; a register's over an old grid
/// document's, tombstone or not; otherwise a live record over a tombstone, and never an old grid
/// document's over a newer document's.
macro_rules! takes_over {
    ($table:literal) => {
        concat!(
            $table,
            ".doc_id = excluded.doc_id OR (excluded.doc_id NOT LIKE 'grid/%' AND ",
            $table,
            ".doc_id LIKE 'grid/%') OR (excluded.deleted = 0 AND (excluded.doc_id NOT LIKE 'grid/%' OR ",
            $table,
            ".doc_id LIKE 'grid/%'))"
        )
    };
}

/// `takes_over!` for visits, whose rows name their document by register unit and month (`period`
/// NULL: an old grid document, the grid being the row's `grid_id`).
const VISIT_TAKES_OVER: &str = "(visits.unit_id = excluded.unit_id AND visits.grid_id = excluded.grid_id
     AND visits.period IS excluded.period)
     OR (excluded.period IS NOT NULL AND visits.period IS NULL)
     OR (excluded.deleted = 0 AND (excluded.period IS NOT NULL OR visits.period IS NULL))";

/// The rows of the visits table that come from `doc`: a SQL condition on parameters ?2 and ?3.
fn visit_rows_of(doc: &DocId) -> (&'static str, [String; 2]) {
    match doc {
        DocId::Visits(unit, period) => ("unit_id = ?2 AND period = ?3", [unit.to_string(), period.to_string()]),
        DocId::Grid(grid) => ("grid_id = ?2 AND period IS NULL AND ?3 = ''", [grid.to_string(), String::new()]),
        _ => ("0 AND ?2 = ?3", [String::new(), String::new()]),
    }
}

/// Whether a household record sits in the document its units say it belongs in.
fn belongs_in(doc: &DocId, h: &Household) -> bool {
    match doc {
        DocId::Register(unit) => h.register() == unit,
        DocId::Grid(grid) => &h.grid == grid,
        _ => false,
    }
}

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
            .prepare_cached("DELETE FROM rejected_records WHERE doc_id = ?1 AND collection = ?2 AND record_id = ?3")?
            .execute(params![doc.id.to_string(), t.collection.as_str(), key])?;
        if matches!(
            (&doc.id, t.collection),
            (DocId::Directory, Collection::Units | Collection::Users | Collection::Categories)
        ) {
            self.roster_changed = true;
        }
        self.units_changed |= matches!((&doc.id, t.collection), (DocId::Directory, Collection::Units));
        match (&doc.id, t.collection) {
            (DocId::Directory, Collection::Units) => {
                match readable(self.tx, doc, t.collection, key, doc.get_map::<Unit>(Collection::Units, key))? {
                    Some(u) if u.id.as_str() == key => self.unit(&u),
                    _ => self.delete("units", key),
                }
            }
            (DocId::Directory, Collection::Users) => {
                match readable(self.tx, doc, t.collection, key, doc.get_map::<User>(Collection::Users, key))? {
                    Some(u) if u.id.as_str() == key => self.user(&u),
                    _ => self.delete("users", key),
                }
            }
            (DocId::Directory, Collection::Devices) => {
                match readable(self.tx, doc, t.collection, key, doc.get_map::<Device>(Collection::Devices, key))? {
                    Some(d) if d.id == key => self.device(&d),
                    _ => self.delete("devices", key),
                }
            }
            (DocId::Directory, Collection::Categories) => {
                match readable(self.tx, doc, t.collection, key, doc.get_map::<Category>(Collection::Categories, key))? {
                    Some(c) if c.id.as_str() == key => self.category(&c),
                    _ => self.delete("categories", key),
                }
            }
            (DocId::Directory, Collection::VisitRules) => {
                self.rules_changed = true;
                match doc.get_int(Collection::VisitRules, key) {
                    Some(h) if h > 0 => {
                        self.tx.execute(
                            "INSERT OR REPLACE INTO visit_rules (rule, hours) VALUES (?1, ?2)",
                            params![key, h],
                        )?;
                        Ok(())
                    }
                    _ => {
                        self.tx.execute("DELETE FROM visit_rules WHERE rule = ?1", [key])?;
                        Ok(())
                    }
                }
            }
            (DocId::Register(_) | DocId::Grid(_), Collection::Households) => {
                match readable(self.tx, doc, t.collection, key, doc.get_map::<Household>(Collection::Households, key))?
                {
                    Some(h) if h.id.as_str() == key && belongs_in(&doc.id, &h) => self.household(&doc.id, &h),
                    _ => self.delete_household(&doc.id, key),
                }
            }
            (DocId::Register(_) | DocId::Grid(_), Collection::Residents) => {
                match readable(self.tx, doc, t.collection, key, doc.get_map::<Resident>(Collection::Residents, key))? {
                    Some(r) if r.id.as_str() == key => {
                        match doc.get_map::<Household>(Collection::Households, r.household.as_str()).ok().flatten() {
                            Some(h) => self.resident(&doc.id, h.grid.as_str(), &r),
                            None => self.delete_from_doc("residents", &doc.id, key),
                        }
                    }
                    _ => self.delete_from_doc("residents", &doc.id, key),
                }
            }
            (DocId::Visits(..) | DocId::Grid(_), Collection::Visits) => {
                let old_household: Option<String> = self
                    .tx
                    .query_row("SELECT household_id FROM visits WHERE id = ?1", [key], |r| r.get(0))
                    .optional()?;
                self.due.extend(old_household);
                let visit = readable(self.tx, doc, t.collection, key, doc.get_value::<Visit>(Collection::Visits, key))?;
                // A visit counts for the register its document belongs to: a period document's
                // unit, or (old layout) the register of its household in the same grid document.
                let unit = match (&doc.id, &visit) {
                    (DocId::Visits(unit, _), _) => Some(unit.clone()),
                    (_, Some(v)) => doc
                        .get_map::<Household>(Collection::Households, v.household.as_str())
                        .ok()
                        .flatten()
                        .map(|h| h.register().clone()),
                    _ => None,
                };
                match (visit, unit) {
                    (Some(v), Some(unit)) if v.id.as_str() == key => self.visit(&doc.id, unit.as_str(), &v, false),
                    _ => {
                        self.delete_from_doc("visits", &doc.id, key)?;
                        self.tx.execute(
                            "DELETE FROM photos WHERE owner_id = ?1 AND doc_id = ?2",
                            params![key, doc.id.to_string()],
                        )?;
                        Ok(())
                    }
                }
            }
            (DocId::Report(_), Collection::Header) | (DocId::Report(_), Collection::Events) => {
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
            super::workflow::derive_all_reports(self.tx)?;
        }
        if self.units_changed {
            self.tx.execute(
                "UPDATE visits SET grid_id = COALESCE((SELECT parent_id FROM units WHERE id = visits.unit_id
                                                       AND kind = 'micro_grid'), visits.unit_id)
                 WHERE period IS NOT NULL AND grid_id IS NOT COALESCE((SELECT parent_id FROM units
                     WHERE id = visits.unit_id AND kind = 'micro_grid'), visits.unit_id)",
                [],
            )?;
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
        self.tx.execute(
            "DELETE FROM rejected_records WHERE doc_id = ?1 AND collection = ?2",
            params![doc.to_string(), collection.as_str()],
        )?;
        let doc_key = doc.to_string();
        match (doc, collection) {
            (
                DocId::Directory,
                Collection::Units
                | Collection::Users
                | Collection::Devices
                | Collection::Categories
                | Collection::VisitRules,
            ) => {
                self.tx.execute(&format!("DELETE FROM {collection}"), [])?;
                self.rules_changed |= collection == Collection::VisitRules;
                self.units_changed |= collection == Collection::Units;
            }
            (DocId::Register(_) | DocId::Grid(_), Collection::Households) => {
                let mut stmt = self.tx.prepare("SELECT id FROM households WHERE doc_id = ?1")?;
                let ids =
                    stmt.query_map([&doc_key], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
                for id in ids {
                    self.delete_household(doc, &id)?;
                }
            }
            (DocId::Register(_) | DocId::Grid(_), Collection::Residents) => {
                self.tx.execute("DELETE FROM residents WHERE doc_id = ?1", [&doc_key])?;
            }
            (DocId::Visits(..) | DocId::Grid(_), Collection::Visits) => self.clear_visits(doc)?,
            (DocId::Report(_), _) => self.report_status = true,
            _ => {}
        }
        Ok(())
    }

    /// Removes the visit rows (and their photos' rows) that come from `doc`; their households'
    /// clocks are recomputed in `finish`.
    fn clear_visits(&mut self, doc: &DocId) -> Result<()> {
        let doc_key = doc.to_string();
        self.tx.execute("DELETE FROM photos WHERE doc_id = ?1 AND owner_kind = 'visit'", [&doc_key])?;
        let (rows, [a, b]) = visit_rows_of(doc);
        let mut stmt =
            self.tx.prepare(&format!("SELECT DISTINCT household_id FROM visits WHERE ?1 = ?1 AND {rows}"))?;
        let ids = stmt
            .query_map(params![&doc_key, a, b], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        self.due.extend(ids);
        self.tx.execute(&format!("DELETE FROM visits WHERE ?1 = ?1 AND {rows}"), params![&doc_key, a, b])?;
        Ok(())
    }

    /// Takes every row `doc` gave the query tables out of them, for a document that leaves the
    /// store (`Store::release_outside_window`). A visits document first leaves what its visits
    /// say about each household's clocks in `earlier_visits`, which no rebuild clears.
    pub fn forget(mut self, doc: &DocId) -> Result<()> {
        self.tx.execute("DELETE FROM rejected_records WHERE doc_id = ?1", [doc.to_string()])?;
        match doc {
            DocId::Visits(_, period) => {
                let (rows, [a, b]) = visit_rows_of(doc);
                keep_earlier_visits(self.tx, rows, &a, &b, period.closes_at())?;
                self.clear_visits(doc)?;
            }
            DocId::Report(id) => {
                self.tx.execute("DELETE FROM report_events WHERE report_id = ?1", [id.as_str()])?;
                self.tx.execute("DELETE FROM photos WHERE doc_id = ?1", [doc.to_string()])?;
                self.remove_report_row(id.as_str())?;
            }
            DocId::Grid(_) => {
                // Converted: the registers and months hold its records. The months before the
                // window came to the server's feed with the conversion, so the phone asked for
                // its registers' earlier clocks again when it was offered them.
                for collection in doc.collections() {
                    self.clear_collection(doc, *collection)?;
                }
            }
            _ => return Err(Error::invalid("document", format!("{doc} is never let go of"))),
        }
        for id in &self.due {
            refresh_due(self.tx, id, self.rules.follow_up_ms())?;
        }
        Ok(())
    }

    /// Removes a report's row, its search entry and its refused events.
    fn remove_report_row(&mut self, rid: &str) -> Result<()> {
        let rowid: Option<i64> =
            self.tx.query_row("SELECT rowid FROM reports WHERE id = ?1", [rid], |r| r.get(0)).optional()?;
        if let Some(rowid) = rowid {
            self.tx.execute("DELETE FROM report_search WHERE rowid = ?1", [rowid])?;
        }
        self.tx.execute("DELETE FROM reports WHERE id = ?1", [rid])?;
        self.tx.execute("DELETE FROM report_rejections WHERE report_id = ?1", [rid])?;
        Ok(())
    }

    fn delete(&mut self, table: &'static str, id: &str) -> Result<()> {
        self.tx.execute(&format!("DELETE FROM {table} WHERE id = ?1"), [id])?;
        Ok(())
    }

    /// Deletes a record's row if it came from `doc` (a household moved away keeps the row its new
    /// register gave it).
    fn delete_from_doc(&mut self, table: &'static str, doc: &DocId, id: &str) -> Result<()> {
        if table == "visits" {
            let (rows, [a, b]) = visit_rows_of(doc);
            self.tx
                .prepare_cached(&format!("DELETE FROM visits WHERE id = ?1 AND {rows}"))?
                .execute(params![id, a, b])?;
        } else {
            self.tx
                .prepare_cached(&format!("DELETE FROM {table} WHERE id = ?1 AND doc_id = ?2"))?
                .execute(params![id, doc.to_string()])?;
        }
        Ok(())
    }

    pub fn unit(&mut self, u: &Unit) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO units (id, kind, parent_id, name, deleted) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                u.id.as_str(),
                u.kind.as_str(),
                u.parent.as_ref().map(|p| p.as_str()),
                u.name,
                u.deleted
            ])?;
        Ok(())
    }

    pub fn user(&mut self, u: &User) -> Result<()> {
        self.tx.prepare_cached(
            "INSERT OR REPLACE INTO users (id, name, role, unit_id, department, deleted) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![u.id.as_str(), u.name.expose(), u.role.as_str(), u.unit.as_str(), u.department, u.deleted])?;
        Ok(())
    }

    pub fn device(&mut self, d: &Device) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO devices (id, user_id, actor, deleted, revoked_at, server)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![d.id, d.user.as_str(), d.actor, d.deleted, d.revoked_at, d.server])?;
        Ok(())
    }

    pub fn category(&mut self, c: &Category) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO categories (id, name, triage_hours, feedback_hours, resolve_hours, deleted,
                                                  class_resolve_hours, duplicate_radius_m, duplicate_window_hours)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                c.id.as_str(),
                c.name,
                c.triage_hours,
                c.feedback_hours,
                c.resolve_hours,
                c.deleted,
                serde_json::to_string(&c.resolve_hours_by_class).map_err(|e| Error::storage(e.to_string()))?,
                c.duplicate_radius_m,
                c.duplicate_window_hours
            ])?;
        Ok(())
    }

    /// Writes a household's row from the record `doc` holds. Where two documents hold the same
    /// household (one it moved away from, one it moved to; an old grid document and the register
    /// converted from it) the row shows, whatever order they come in: the live copy over a
    /// tombstone of another document, and a register over an old grid document.
    pub fn household(&mut self, doc: &DocId, h: &Household) -> Result<()> {
        let (lat, lon) = h.location.map(|p| (p.lat, p.lon)).unzip();
        let written = self
            .tx
            .prepare_cached(concat!(
                "INSERT INTO households (id, grid_id, micro_grid_id, building, unit, room, lat, lon, care_tags, risk,
                                         notes, created_at, deleted, visit_interval_ms, next_due_at, bell_interval_ms,
                                         doc_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?12, ?15, ?16)
                 ON CONFLICT(id) DO UPDATE SET grid_id = ?2, micro_grid_id = ?3, building = ?4, unit = ?5, room = ?6,
                     lat = ?7, lon = ?8, care_tags = ?9, risk = ?10, notes = ?11, created_at = ?12, deleted = ?13,
                     visit_interval_ms = ?14, bell_interval_ms = ?15, doc_id = ?16
                 WHERE ",
                takes_over!("households")
            ))?
            .execute(params![
                h.id.as_str(),
                h.grid.as_str(),
                h.micro_grid.as_ref().map(|m| m.as_str()),
                h.address.building,
                h.address.unit,
                h.address.room,
                lat,
                lon,
                CareTag::mask(&h.care_tags),
                h.risk.as_str(),
                h.notes,
                h.created_at,
                h.deleted,
                self.rules.interval_ms(&h.care_tags, h.risk),
                self.rules.bell_interval_ms(&h.care_tags),
                doc.to_string(),
            ])?;
        if written == 0 {
            return Ok(()); // another document's copy shows
        }
        let rowid: i64 =
            self.tx.query_row("SELECT rowid FROM households WHERE id = ?1", [h.id.as_str()], |r| r.get(0))?;
        self.tx.prepare_cached("DELETE FROM household_search WHERE rowid = ?1")?.execute([rowid])?;
        if !h.deleted {
            self.tx
                .prepare_cached("INSERT INTO household_search (rowid, body) VALUES (?1, ?2)")?
                .execute(params![rowid, h.address.label()])?;
        }
        self.due.insert(h.id.as_str().to_owned());
        Ok(())
    }

    fn delete_household(&mut self, doc: &DocId, id: &str) -> Result<()> {
        let rowid: Option<i64> = self
            .tx
            .query_row(
                "SELECT rowid FROM households WHERE id = ?1 AND doc_id = ?2",
                params![id, doc.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(rowid) = rowid {
            self.tx.execute("DELETE FROM household_search WHERE rowid = ?1", [rowid])?;
            self.tx.execute("DELETE FROM households WHERE rowid = ?1", [rowid])?;
        }
        Ok(())
    }

    /// Writes a resident's row from the record `doc` holds (which copy shows: as for households).
    pub fn resident(&mut self, doc: &DocId, grid: &str, r: &Resident) -> Result<()> {
        self.tx
            .prepare_cached(concat!(
                "INSERT INTO residents (id, household_id, grid_id, name, phone, id_number, birth_year, relation, deleted,
                                        doc_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT(id) DO UPDATE SET household_id = ?2, grid_id = ?3, name = ?4, phone = ?5, id_number = ?6,
                     birth_year = ?7, relation = ?8, deleted = ?9, doc_id = ?10
                 WHERE ",
                takes_over!("residents")
            ))?
            .execute(params![
                r.id.as_str(),
                r.household.as_str(),
                grid,
                r.name.expose(),
                r.phone.expose(),
                r.id_number.expose(),
                r.birth_year,
                r.relation.as_str(),
                r.deleted,
                doc.to_string(),
            ])?;
        Ok(())
    }

    /// `fresh`: a visit just made on this phone, so it has no rows to replace yet.
    /// `unit`: the register the visit's document belongs to (its grid is looked up in the
    /// directory, which every store holds before any register).
    pub fn visit(&mut self, doc: &DocId, unit: &str, v: &Visit, fresh: bool) -> Result<()> {
        let (lat, lon) = v.location.map(|p| (p.lat, p.lon)).unzip();
        self.tx
            .prepare_cached(&format!(
                "INSERT INTO visits (id, household_id, grid_id, worker_id, at, lat, lon, kind, outcome, notes,
                                     follow_up, photo_count, deleted, period, unit_id)
                 VALUES (?1, ?2, COALESCE((SELECT parent_id FROM units WHERE id = ?3 AND kind = 'micro_grid'), ?3),
                         ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?3)
                 ON CONFLICT(id) DO UPDATE SET household_id = ?2, grid_id = excluded.grid_id, worker_id = ?4, at = ?5,
                     lat = ?6, lon = ?7, kind = ?8, outcome = ?9, notes = ?10, follow_up = ?11, photo_count = ?12,
                     deleted = ?13, period = ?14, unit_id = ?3
                 WHERE {VISIT_TAKES_OVER}"
            ))?
            .execute(params![
                v.id.as_str(),
                v.household.as_str(),
                unit,
                v.worker.as_str(),
                v.at,
                lat,
                lon,
                v.kind.as_str(),
                v.outcome.as_str(),
                v.notes,
                v.follow_up,
                v.photos.len() as i64,
                v.deleted,
                match doc {
                    DocId::Visits(_, period) => Some(period.to_string()),
                    _ => None,
                },
            ])?;
        if !fresh || !v.photos.is_empty() {
            self.photos(doc, "visit", v.id.as_str(), &v.photos)?;
        }
        if !fresh {
            self.due.insert(v.household.as_str().to_owned());
        } else if !v.deleted {
            // A new visit can only move the household's clocks forward: no need to look at the
            // other visits. One statement per kind of visit.
            match v.kind {
                VisitKind::BellCheckNoAnswer => {
                    // The first unanswered bell since the last contact starts the follow-up clock.
                    self.tx
                        .prepare_cached(
                            "UPDATE households SET unanswered_bell_at = MIN(COALESCE(unanswered_bell_at, ?2), ?2),
                                 follow_up_due_at = MIN(COALESCE(unanswered_bell_at, ?2), ?2) + ?3
                             WHERE id = ?1 AND (last_contact_at IS NULL OR last_contact_at < ?2)",
                        )?
                        .execute(params![v.household.as_str(), v.at, self.rules.follow_up_ms()])?;
                }
                kind => {
                    let sql = if kind == VisitKind::BellCheckAnswered {
                        "UPDATE households SET last_contact_at = MAX(COALESCE(last_contact_at, ?2), ?2),
                             next_bell_due_at = MAX(COALESCE(last_contact_at, ?2), ?2) + bell_interval_ms
                         WHERE id = ?1 RETURNING unanswered_bell_at"
                    } else {
                        "UPDATE households SET last_visit_at = MAX(COALESCE(last_visit_at, ?2), ?2),
                             next_due_at = MAX(COALESCE(last_visit_at, ?2), ?2) + visit_interval_ms,
                             last_contact_at = MAX(COALESCE(last_contact_at, ?2), ?2),
                             next_bell_due_at = MAX(COALESCE(last_contact_at, ?2), ?2) + bell_interval_ms
                         WHERE id = ?1 RETURNING unanswered_bell_at"
                    };
                    let unanswered: Option<Option<i64>> = self
                        .tx
                        .prepare_cached(sql)?
                        .query_row(params![v.household.as_str(), v.at], |r| r.get(0))
                        .optional()?;
                    // A contact after an unanswered bell ends its follow-up; which unanswered bell
                    // (if any) comes after this contact needs the other visits: recompute.
                    if unanswered.flatten().is_some_and(|u| u <= v.at) {
                        self.due.insert(v.household.as_str().to_owned());
                    }
                }
            }
        }
        Ok(())
    }

    fn photos(&mut self, doc: &DocId, owner_kind: &str, owner: &str, photos: &[PhotoMeta]) -> Result<()> {
        self.tx.prepare_cached("DELETE FROM photos WHERE owner_id = ?1")?.execute([owner])?;
        for p in photos {
            let (lat, lon) = p.location.map(|l| (l.lat, l.lon)).unzip();
            self.tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO photos (owner_id, sha256, doc_id, owner_kind, byte_size, mime, width, height,
                                                    taken_at, lat, lon)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )?
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
                ])?;
        }
        Ok(())
    }

    /// Re-derives a report's row, its events and its status from its document.
    fn report(&mut self, doc: &Doc) -> Result<()> {
        let DocId::Report(report_id) = &doc.id else {
            return Ok(());
        };
        let rid = report_id.as_str();
        self.tx.execute("DELETE FROM report_events WHERE report_id = ?1", [rid])?;
        self.tx.execute("DELETE FROM photos WHERE doc_id = ?1", [doc.id.to_string()])?;
        let mut events = Vec::new();
        for key in doc.keys(Collection::Events)? {
            if let Some(e) = readable(
                self.tx,
                doc,
                Collection::Events,
                &key,
                doc.get_value::<ReportEvent>(Collection::Events, &key),
            )? {
                if e.id.as_str() == key {
                    events.push(e);
                }
            }
        }
        for e in &events {
            self.tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO report_events (id, report_id, at, author_id, kind, note, target, score, photo_count,
                                                        classification, risk)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )?
                .execute(params![
                    e.id.as_str(),
                    rid,
                    e.at,
                    e.author.as_str(),
                    e.kind.as_str(),
                    e.note,
                    e.target,
                    e.score,
                    e.photos.len() as i64,
                    e.classification.map(|c| c.as_str()),
                    e.risk.map(|r| r.as_str())
                ])?;
            self.photos(&doc.id, "report_event", e.id.as_str(), &e.photos)?;
        }
        let header = readable(
            self.tx,
            doc,
            Collection::Header,
            HEADER_KEY,
            doc.get_value::<Report>(Collection::Header, HEADER_KEY),
        )?;
        let Some(r) = header.filter(|r| &r.id == report_id) else {
            return self.remove_report_row(rid);
        };
        let old_rowid: Option<i64> =
            self.tx.query_row("SELECT rowid FROM reports WHERE id = ?1", [rid], |r| r.get(0)).optional()?;
        if let Some(rowid) = old_rowid {
            self.tx.execute("DELETE FROM report_search WHERE rowid = ?1", [rowid])?;
        }
        let updated_at = events.iter().map(|e| e.at).max().unwrap_or(r.created_at).max(r.created_at);
        let (lat, lon) = r.location.map(|p| (p.lat, p.lon)).unzip();
        // The derived columns are filled in by `derive_report` below.
        self.tx
            .prepare_cached(
                "INSERT INTO reports (id, grid_id, reporter_id, category_id, description, address, lat, lon, created_at,
                                      status, updated_at, event_count, level, reopen_count, rejected_count,
                                      triage_due_at, feedback_due_at, resolve_due_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'open', ?10, ?11, 'grid', 0, 0, ?9, ?9, ?9)
                 ON CONFLICT(id) DO UPDATE SET grid_id = ?2, reporter_id = ?3, category_id = ?4, description = ?5,
                     address = ?6, lat = ?7, lon = ?8, created_at = ?9, updated_at = ?10, event_count = ?11",
            )?
            .execute(params![
                rid,
                r.grid.as_ref().map(|g| g.as_str()),
                r.reporter.as_str(),
                r.category.as_str(),
                r.description,
                r.address,
                lat,
                lon,
                r.created_at,
                updated_at,
                events.len() as i64
            ])?;
        super::workflow::derive_report(self.tx, rid)?;
        self.photos(&doc.id, "report", rid, &r.photos)?;
        let rowid: i64 = self.tx.query_row("SELECT rowid FROM reports WHERE id = ?1", [rid], |r| r.get(0))?;
        let body = format!("{} {}", r.description, r.address.as_deref().unwrap_or(""));
        self.tx.execute("INSERT INTO report_search (rowid, body) VALUES (?1, ?2)", params![rowid, body.trim()])?;
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
            )?
            .execute(params![doc.id.to_string(), collection.as_str(), key, "it does not parse as a record of its collection"])?;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

pub(crate) fn load_rules(tx: &rusqlite::Connection) -> Result<VisitRules> {
    let mut stmt = tx.prepare("SELECT rule, hours FROM visit_rules")?;
    let entries = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    Ok(VisitRules::from_entries(entries.collect::<rusqlite::Result<Vec<_>>>()?))
}

/// Re-reads the visit rules and recomputes every household's interval and due date.
fn refresh_all_due(tx: &Transaction<'_>) -> Result<VisitRules> {
    let rules = load_rules(tx)?;
    let mut stmt = tx.prepare("SELECT id, care_tags, risk FROM households")?;
    let all = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (id, mask, risk) in all {
        let risk = RiskLevel::parse(&risk).unwrap_or(RiskLevel::Grey);
        let tags = CareTag::from_mask(mask);
        tx.prepare_cached("UPDATE households SET visit_interval_ms = ?2, bell_interval_ms = ?3 WHERE id = ?1")?
            .execute(params![id, rules.interval_ms(&tags, risk), rules.bell_interval_ms(&tags)])?;
        refresh_due(tx, &id, rules.follow_up_ms())?;
    }
    Ok(rules)
}

/// Recomputes a household's clocks from all its visits: the home-visit clock from its last home
/// visit (bell checks do not count), the bell-check clock from its last contact (anything but an
/// unanswered bell), and the follow-up from the first unanswered bell since that contact.
/// Never visited: due from the day it was registered. Visits whose documents left the phone
/// count through `earlier_visits`.
pub(crate) fn refresh_due(tx: &rusqlite::Connection, id: &str, follow_up_ms: i64) -> Result<()> {
    let earlier = earlier_visits(tx, id)?;
    // Along the (household_id, at) index. The kinds are literals, not parameters: a bound value
    // there makes SQLite re-plan the statement on every call (measured: a tenth of `record_visit`).
    let last_visit: Option<i64> = tx
        .prepare_cached(
            "SELECT at FROM visits WHERE household_id = ?1 AND deleted = 0
             AND kind NOT IN ('bell_check_no_answer', 'bell_check_answered') ORDER BY at DESC LIMIT 1",
        )?
        .query_row([id], |r| r.get(0))
        .optional()?
        .max(earlier.last_visit);
    let last_contact: Option<i64> = tx
        .prepare_cached(
            "SELECT at FROM visits WHERE household_id = ?1 AND deleted = 0 AND kind != 'bell_check_no_answer'
             ORDER BY at DESC LIMIT 1",
        )?
        .query_row([id], |r| r.get(0))
        .optional()?
        .max(earlier.last_contact);
    let unanswered: Option<i64> = tx
        .prepare_cached(
            "SELECT MIN(at) FROM visits WHERE household_id = ?1 AND deleted = 0 AND kind = 'bell_check_no_answer'
             AND at > ?2",
        )?
        .query_row(params![id, last_contact.unwrap_or(i64::MIN)], |r| r.get(0))?;
    let unanswered = earliest(unanswered, earlier.unanswered_bell.filter(|u| last_contact.is_none_or(|c| *u > c)));
    tx.prepare_cached(
        "UPDATE households SET last_visit_at = ?2, next_due_at = COALESCE(?2 + visit_interval_ms, created_at),
             last_contact_at = ?3, next_bell_due_at = COALESCE(?3, created_at) + bell_interval_ms,
             unanswered_bell_at = ?4, follow_up_due_at = ?4 + ?5
         WHERE id = ?1",
    )?
    .execute(params![id, last_visit, last_contact, unanswered, follow_up_ms])?;
    Ok(())
}

/// What visits outside the store's documents (months that left a phone's window, or that it
/// never took) say about one household's clocks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Earlier {
    pub last_visit: Option<i64>,
    pub last_contact: Option<i64>,
    /// The first unanswered bell after `last_contact`.
    pub unanswered_bell: Option<i64>,
}

fn earlier_visits(tx: &rusqlite::Connection, household: &str) -> Result<Earlier> {
    Ok(tx
        .prepare_cached(
            "SELECT last_visit_at, last_contact_at, unanswered_bell_at FROM earlier_visits WHERE household_id = ?1",
        )?
        .query_row([household], |r| {
            Ok(Earlier { last_visit: r.get(0)?, last_contact: r.get(1)?, unanswered_bell: r.get(2)? })
        })
        .optional()?
        .unwrap_or_default())
}

fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Folds `found` into a household's `earlier_visits` row: the later visit and contact, and the
/// first unanswered bell of either after that contact. (Exact when months are folded in in
/// order, as a window moving forward folds them; otherwise an unanswered bell before a later
/// contact of the other side can be missed, never one after it.)
pub(crate) fn merge_earlier(tx: &rusqlite::Connection, household: &str, found: &Earlier) -> Result<()> {
    let before = earlier_visits(tx, household)?;
    let last_contact = found.last_contact.max(before.last_contact);
    let after_contact = |u: Option<i64>| u.filter(|u| last_contact.is_none_or(|c| *u > c));
    tx.prepare_cached(
        "INSERT OR REPLACE INTO earlier_visits (household_id, last_visit_at, last_contact_at, unanswered_bell_at)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        household,
        found.last_visit.max(before.last_visit),
        last_contact,
        earliest(after_contact(found.unanswered_bell), after_contact(before.unanswered_bell))
    ])?;
    Ok(())
}

/// Each household's clocks from the visit rows matching `rows` (a condition on ?2 and ?3, with
/// ?1 free) dated no later than `latest` (a visit dated after its month could close is not one an
/// honest phone wrote into it), the first unanswered bell counted after the later of the rows'
/// last contact and `earlier_visits`'.
pub(crate) fn clocks_of_rows(
    tx: &rusqlite::Connection,
    rows: &str,
    a: &str,
    b: &str,
    latest: i64,
) -> Result<Vec<(String, Earlier)>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT household_id,
                MAX(CASE WHEN kind NOT IN ('bell_check_no_answer', 'bell_check_answered') THEN at END),
                MAX(CASE WHEN kind != 'bell_check_no_answer' THEN at END)
         FROM visits WHERE deleted = 0 AND at <= ?4 AND ?1 = ?1 AND {rows} GROUP BY household_id"
    ))?;
    let found = stmt
        .query_map(params!["", a, b, latest], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<Vec<(String, Option<i64>, Option<i64>)>>>()?;
    let mut first_unanswered = tx.prepare_cached(&format!(
        "SELECT MIN(at) FROM visits WHERE household_id = ?1 AND deleted = 0
         AND kind = 'bell_check_no_answer' AND at <= ?4 AND at > ?5 AND {rows}"
    ))?;
    let mut out = Vec::with_capacity(found.len());
    for (household, last_visit, last_contact) in found {
        let since = last_contact.max(earlier_visits(tx, &household)?.last_contact);
        let unanswered: Option<i64> =
            first_unanswered.query_row(params![household, a, b, latest, since.unwrap_or(i64::MIN)], |r| r.get(0))?;
        out.push((household, Earlier { last_visit, last_contact, unanswered_bell: unanswered }));
    }
    Ok(out)
}

/// Folds the visit rows matching `rows` into `earlier_visits` before those rows are removed.
fn keep_earlier_visits(tx: &Transaction<'_>, rows: &str, a: &str, b: &str, latest: i64) -> Result<()> {
    for (household, found) in clocks_of_rows(tx, rows, a, b, latest)? {
        merge_earlier(tx, &household, &found)?;
    }
    Ok(())
}
