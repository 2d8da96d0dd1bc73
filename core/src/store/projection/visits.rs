//! The visits' projection: each visit becomes a row (and its photos rows), from a month's
//! visits document of one register (or, until it is converted, an old grid document), and moves
//! its household's clocks (`clocks.rs`). A visit just made on this phone moves them forward with
//! one statement; anything else that touches a household's visits recomputes its clocks once,
//! in [`Indexer::finish`].

use rusqlite::{params, OptionalExtension};

use super::Indexer;
use crate::document::{Collection, Doc, DocId};
use crate::error::{Db, Result};
use crate::household::Household;
use crate::store::query::lookup;
use crate::visit::{Visit, VisitKind};

/// `register.rs`'s `takes_over!` for visits, whose rows name their document by register unit and
/// month (`period` NULL: an old grid document, the grid being the row's `grid_id`).
const VISIT_TAKES_OVER: &str = "(visits.unit_id = excluded.unit_id AND visits.grid_id = excluded.grid_id
     AND visits.period IS excluded.period)
     OR (excluded.period IS NOT NULL AND visits.period IS NULL)
     OR (excluded.deleted = 0 AND (excluded.period IS NOT NULL OR visits.period IS NULL))";

/// The rows of the visits table that come from `doc`: a SQL condition on parameters ?2 and ?3.
pub(super) fn visit_rows_of(doc: &DocId) -> (&'static str, [String; 2]) {
    match doc {
        DocId::Visits(unit, period) => ("unit_id = ?2 AND period = ?3", [unit.to_string(), period.to_string()]),
        DocId::Grid(grid) => ("grid_id = ?2 AND period IS NULL AND ?3 = ''", [grid.to_string(), String::new()]),
        _ => ("0 AND ?2 = ?3", [String::new(), String::new()]),
    }
}

impl Indexer<'_> {
    /// Re-reads one visit.
    pub(super) fn visit_record(&mut self, doc: &Doc, key: &str) -> Result<()> {
        let old_household: Option<String> =
            self.tx.query_row("SELECT household_id FROM visits WHERE id = ?1", [key], |r| r.get(0)).optional().db()?;
        self.due.extend(old_household);
        let visit =
            super::readable(self.tx, doc, Collection::Visits, key, doc.get_value::<Visit>(Collection::Visits, key))?;
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
            _ => self.delete_visit(&doc.id, key),
        }
    }

    /// Removes the visit rows (and their photos' rows) that come from `doc`; their households'
    /// clocks are recomputed in `finish`.
    pub(super) fn clear_visits(&mut self, doc: &DocId) -> Result<()> {
        let doc_key = doc.to_string();
        self.tx.execute("DELETE FROM photos WHERE doc_id = ?1 AND owner_kind = 'visit'", [&doc_key]).db()?;
        let (rows, [a, b]) = visit_rows_of(doc);
        let mut stmt =
            self.tx.prepare(&format!("SELECT DISTINCT household_id FROM visits WHERE ?1 = ?1 AND {rows}")).db()?;
        let ids = stmt
            .query_map(params![&doc_key, a, b], |r| r.get::<_, String>(0))
            .db()?
            .collect::<rusqlite::Result<Vec<_>>>()
            .db()?;
        self.due.extend(ids);
        self.tx.execute(&format!("DELETE FROM visits WHERE ?1 = ?1 AND {rows}"), params![&doc_key, a, b]).db()?;
        Ok(())
    }

    /// Deletes a visit's row if it came from `doc`, and its photos' rows.
    fn delete_visit(&mut self, doc: &DocId, id: &str) -> Result<()> {
        let (rows, [a, b]) = visit_rows_of(doc);
        self.tx
            .prepare_cached(&format!("DELETE FROM visits WHERE id = ?1 AND {rows}"))
            .db()?
            .execute(params![id, a, b])
            .db()?;
        self.tx.execute("DELETE FROM photos WHERE owner_id = ?1 AND doc_id = ?2", params![id, doc.to_string()]).db()?;
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
            ))
            .db()?
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
            ])
            .db()?;
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
                        )
                        .db()?
                        .execute(params![v.household.as_str(), v.at, self.rules.follow_up_ms()])
                        .db()?;
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
                    let unanswered: Option<Option<i64>> = lookup(self.tx, sql, params![v.household.as_str(), v.at])?;
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
}
