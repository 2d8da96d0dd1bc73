//! Recording visits and the photos taken on them.

use std::path::{Path, PathBuf};

use rusqlite::OptionalExtension;

use super::Store;
use crate::clock::UnixMillis;
use crate::document::Collection;
use crate::document::DocId;
use crate::error::{Db, Error, Result};
use crate::ids::{HouseholdId, UnitId, VisitId};
use crate::period::Period;
use crate::photo::{hash_file, PhotoMeta};
use crate::store::query::lookup;
use crate::visit::{NewVisit, Visit};

impl Store {
    /// Records a visit: one change to the visits document of the household's register for the
    /// visit's month (the current month once that one closed), durable when this returns.
    pub fn record_visit(&mut self, new: NewVisit) -> Result<Visit> {
        let unit = self.household_unit(&new.household)?;
        self.require_author(&new.worker)?;
        let now = self.now();
        let v = Visit {
            id: VisitId::generate(),
            household: new.household,
            worker: new.worker,
            at: new.at.unwrap_or(now),
            location: new.location,
            kind: new.kind,
            outcome: new.outcome,
            notes: new.notes,
            follow_up: new.follow_up,
            photos: new.photos,
            deleted: false,
        };
        v.validate()?;
        let doc_id = DocId::Visits(unit.clone(), Period::for_visit(v.at, now));
        self.write(
            &doc_id,
            |d| d.put_value(Collection::Visits, v.id.as_str(), &v),
            |ix, d| ix.visit(&d.id, unit.as_str(), &v, true),
        )?;
        Ok(v)
    }

    /// Deletes a visit recorded by mistake: a tombstone replaces it, its history stays. A visit
    /// whose month's document has closed stays as it is.
    pub fn delete_visit(&mut self, id: &VisitId) -> Result<()> {
        let doc = self.visit_document(id.as_str())?;
        let unit = doc.unit().expect("a visit's document belongs to a unit").to_string();
        let doc_id = match doc {
            DocId::Visits(_, period) if !period.is_open(self.now()) => {
                return Err(Error::invalid("visit", format!("{doc} is closed; its visits are kept as they are")))
            }
            id @ DocId::Visits(..) => id,
            _ => {
                return Err(Error::invalid(
                    "visit",
                    "it is still kept in the old grid layout; sync with the server once before changing it",
                ))
            }
        };
        let mut v = self
            .doc(&doc_id)?
            .get_value::<Visit>(Collection::Visits, id.as_str())?
            .ok_or_else(|| Error::not_found("visit", id))?;
        v.deleted = true;
        self.write(
            &doc_id,
            |d| d.put_value(Collection::Visits, v.id.as_str(), &v),
            |ix, d| ix.visit(&d.id, &unit, &v, false),
        )
    }

    /// The document a visit's row comes from (its register unit and month; an old grid document
    /// when the month is not set).
    pub(super) fn visit_document(&self, id: &str) -> Result<DocId> {
        let row: Option<(String, String, Option<String>)> = self
            .conn
            .prepare_cached("SELECT unit_id, grid_id, period FROM visits WHERE id = ?1")
            .db()?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()
            .db()?;
        match row.ok_or_else(|| Error::not_found("visit", id))? {
            (unit, _, Some(period)) => Ok(DocId::Visits(UnitId::parse(&unit)?, Period::parse(&period)?)),
            (_, grid, None) => Ok(DocId::Grid(UnitId::parse(&grid)?)),
        }
    }

    /// The unit whose register holds a household: its micro-grid, else its grid.
    fn household_unit(&self, id: &HouseholdId) -> Result<UnitId> {
        self.register_unit(id, false)?.ok_or_else(|| Error::not_found("household", id))
    }

    /// The unit whose register holds a household this store knows (`None`: it knows none),
    /// deleted ones too when `deleted_too`.
    pub(crate) fn register_unit(&self, id: &HouseholdId, deleted_too: bool) -> Result<Option<UnitId>> {
        let unit: Option<String> = lookup(
            &self.conn,
            "SELECT COALESCE(micro_grid_id, grid_id) FROM households WHERE id = ?1 AND (deleted = 0 OR ?2)",
            rusqlite::params![id.as_str(), deleted_too],
        )?;
        unit.map(|u| UnitId::parse(&u)).transpose()
    }

    /// Hashes a photo file and keeps a copy under its SHA-256 in the photo folder; the returned
    /// metadata goes into a visit or a report. Photo bytes never enter a document.
    pub fn import_photo(
        &mut self,
        path: &Path,
        mime: &str,
        width: u32,
        height: u32,
        taken_at: Option<UnixMillis>,
        location: Option<crate::GeoPoint>,
    ) -> Result<PhotoMeta> {
        let (sha256, byte_size) = hash_file(path)?;
        let meta = PhotoMeta { sha256, byte_size, mime: mime.to_owned(), width, height, taken_at, location };
        meta.validate()?;
        std::fs::create_dir_all(&self.photo_dir)?;
        let target = self.photo_dir.join(&meta.sha256);
        if !target.exists() {
            let tmp = self.photo_dir.join(format!("{}.part", meta.sha256));
            std::fs::copy(path, &tmp)?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &target)?;
        }
        Ok(meta)
    }

    /// Where the file of a photo is kept, if this phone has it.
    pub fn photo_path(&self, sha256: &str) -> Option<PathBuf> {
        let p = self.photo_dir.join(sha256);
        (sha256.len() == 64 && p.exists()).then_some(p)
    }
}
