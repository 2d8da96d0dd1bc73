//! The register's projection: households and residents become rows, from a micro-grid's
//! register document (or, until it is converted, an old grid document). A household moved from
//! one register to another is in both documents for a while (a tombstone in the one it left):
//! `takes_over!` decides which copy its row shows, whatever order the documents come in.

use rusqlite::{params, OptionalExtension};

use super::{readable, Indexer};
use crate::document::{Collection, Doc, DocId};
use crate::error::{Db, Result};
use crate::household::{CareTag, Household, Resident};

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

/// Whether a household record sits in the document its units say it belongs in.
fn belongs_in(doc: &DocId, h: &Household) -> bool {
    match doc {
        DocId::Register(unit) => h.register() == unit,
        DocId::Grid(grid) => &h.grid == grid,
        _ => false,
    }
}

impl Indexer<'_> {
    /// Re-reads one household or resident of a register (or an old grid document).
    pub(super) fn register_record(&mut self, doc: &Doc, collection: Collection, key: &str) -> Result<()> {
        match collection {
            Collection::Households => {
                match readable(self.tx, doc, collection, key, doc.get_map::<Household>(Collection::Households, key))? {
                    Some(h) if h.id.as_str() == key && belongs_in(&doc.id, &h) => self.household(&doc.id, &h),
                    _ => self.delete_household(&doc.id, key),
                }
            }
            Collection::Residents => {
                match readable(self.tx, doc, collection, key, doc.get_map::<Resident>(Collection::Residents, key))? {
                    Some(r) if r.id.as_str() == key => {
                        match doc.get_map::<Household>(Collection::Households, r.household.as_str()).ok().flatten() {
                            Some(h) => self.resident(&doc.id, h.grid.as_str(), &r),
                            None => self.delete_resident(&doc.id, key),
                        }
                    }
                    _ => self.delete_resident(&doc.id, key),
                }
            }
            _ => Ok(()),
        }
    }

    /// Removes the rows one collection of a register gave the query tables.
    pub(super) fn clear_register(&mut self, doc: &DocId, collection: Collection) -> Result<()> {
        let doc_key = doc.to_string();
        match collection {
            Collection::Households => {
                let mut stmt = self.tx.prepare("SELECT id FROM households WHERE doc_id = ?1").db()?;
                let ids = stmt
                    .query_map([&doc_key], |r| r.get::<_, String>(0))
                    .db()?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .db()?;
                for id in ids {
                    self.delete_household(doc, &id)?;
                }
            }
            Collection::Residents => {
                self.tx.execute("DELETE FROM residents WHERE doc_id = ?1", [&doc_key]).db()?;
            }
            _ => {}
        }
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
            ))
            .db()?
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
            ])
            .db()?;
        if written == 0 {
            return Ok(()); // another document's copy shows
        }
        let rowid: i64 =
            self.tx.query_row("SELECT rowid FROM households WHERE id = ?1", [h.id.as_str()], |r| r.get(0)).db()?;
        self.tx.prepare_cached("DELETE FROM household_search WHERE rowid = ?1").db()?.execute([rowid]).db()?;
        if !h.deleted {
            self.tx
                .prepare_cached("INSERT INTO household_search (rowid, body) VALUES (?1, ?2)")
                .db()?
                .execute(params![rowid, h.address.label()])
                .db()?;
        }
        self.due.insert(h.id.as_str().to_owned());
        Ok(())
    }

    /// Deletes a resident's row if it came from `doc` (one whose household moved away keeps the
    /// row its new register gave it).
    fn delete_resident(&mut self, doc: &DocId, id: &str) -> Result<()> {
        self.tx
            .prepare_cached("DELETE FROM residents WHERE id = ?1 AND doc_id = ?2")
            .db()?
            .execute(params![id, doc.to_string()])
            .db()?;
        Ok(())
    }

    /// Deletes a household's row and search entry if they came from `doc`.
    fn delete_household(&mut self, doc: &DocId, id: &str) -> Result<()> {
        let rowid: Option<i64> = self
            .tx
            .query_row(
                "SELECT rowid FROM households WHERE id = ?1 AND doc_id = ?2",
                params![id, doc.to_string()],
                |r| r.get(0),
            )
            .optional()
            .db()?;
        if let Some(rowid) = rowid {
            self.tx.execute("DELETE FROM household_search WHERE rowid = ?1", [rowid]).db()?;
            self.tx.execute("DELETE FROM households WHERE rowid = ?1", [rowid]).db()?;
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
            )).db()?
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
            ]).db()?;
        Ok(())
    }
}
