//! Writing the household register: households and the residents who live in them.

use super::{year_of, Store};
use crate::directory::UnitKind;
use crate::document::Collection;
use crate::document::DocId;
use crate::error::{Db, Result};
use rusqlite::OptionalExtension;

use crate::error::Error;
use crate::household::{Household, HouseholdUpdate, NewHousehold, NewResident, Resident, ResidentUpdate, RiskLevel};
use crate::ids::{HouseholdId, ResidentId, UnitId};
use crate::store::query::lookup;

impl Store {
    /// Registers a household in a grid (optionally in one of its micro-grids): a new record in
    /// that micro-grid's register (or the grid's, for a household in none).
    pub fn add_household(&mut self, grid: &UnitId, new: NewHousehold) -> Result<Household> {
        self.require_unit(grid, UnitKind::Grid, "grid")?;
        if let Some(m) = &new.micro_grid {
            self.require_micro_grid_of(m, grid)?;
        }
        let h = Household {
            id: HouseholdId::generate(),
            grid: grid.clone(),
            micro_grid: new.micro_grid,
            address: new.address,
            location: new.location,
            care_tags: new.care_tags,
            risk: new.risk.unwrap_or(RiskLevel::Grey),
            notes: new.notes,
            created_at: self.now(),
            deleted: false,
            moved_to: None,
        };
        h.validate()?;
        self.write_household(&h)?;
        Ok(h)
    }

    /// Changes some fields of a household; fields left `None` are untouched, so an edit made on
    /// another phone to other fields merges with this one. A new micro-grid moves the household
    /// (and its residents) to that micro-grid's register, leaving a tombstone in the old one.
    pub fn update_household(&mut self, id: &HouseholdId, update: HouseholdUpdate) -> Result<Household> {
        let doc_id = self.household_register(id)?;
        let mut h = self.load_household(&doc_id, id)?;
        let old = h.clone();
        if let Some(Some(m)) = &update.micro_grid {
            self.require_micro_grid_of(m, &h.grid)?;
        }
        h.apply(update);
        h.validate()?;
        if h.register() == old.register() {
            self.write_household(&h)?;
        } else {
            self.move_household(old, &h)?;
        }
        Ok(h)
    }

    /// Deletes a household by tombstone: its history stays in the document.
    pub fn delete_household(&mut self, id: &HouseholdId) -> Result<()> {
        let doc_id = self.household_register(id)?;
        let mut h = self.load_household(&doc_id, id)?;
        h.deleted = true;
        self.write_household(&h)
    }

    /// Writes the household and its residents into the register of its new micro-grid first,
    /// then the tombstones into the old one: a crash between the two leaves it in both (the live
    /// copy is what every table shows), never in neither.
    pub(super) fn move_household(&mut self, mut old: Household, moved: &Household) -> Result<()> {
        let from = DocId::Register(old.register().clone());
        let to = DocId::Register(moved.register().clone());
        // Every other replica would refuse a change to a register this phone's user may not
        // write: a volunteer moving a household out of her micro-grid would leave only the
        // tombstone behind. (A phone not registered yet, the office's, moves anything.)
        if let Some(user) = self.device_user()? {
            if !self.may_write(&user, &from)? || !self.may_write(&user, &to)? {
                return Err(Error::invalid(
                    "micro-grid",
                    "moving a household takes someone who looks after both micro-grids (the grid's worker)",
                ));
            }
        }
        let residents: Vec<Resident> = {
            let doc = self.doc(&from)?;
            let mut all = Vec::new();
            for key in doc.keys(Collection::Residents)? {
                if let Some(r) = doc.get_map::<Resident>(Collection::Residents, &key)? {
                    if r.household == old.id && !r.deleted {
                        all.push(r);
                    }
                }
            }
            all
        };
        self.write(
            &to,
            |d| {
                d.put_map(Collection::Households, moved.id.as_str(), moved)?;
                residents.iter().try_for_each(|r| d.put_map(Collection::Residents, r.id.as_str(), r))
            },
            |ix, d| {
                ix.household(&d.id, moved)?;
                residents.iter().try_for_each(|r| ix.resident(&d.id, moved.grid.as_str(), r))
            },
        )?;
        old.deleted = true;
        old.moved_to = Some(moved.register().clone());
        self.write(
            &from,
            |d| {
                d.put_map(Collection::Households, old.id.as_str(), &old)?;
                residents.iter().try_for_each(|r| {
                    d.put_map(Collection::Residents, r.id.as_str(), &Resident { deleted: true, ..r.clone() })
                })
            },
            |ix, d| {
                ix.household(&d.id, &old)?;
                residents
                    .iter()
                    .try_for_each(|r| ix.resident(&d.id, old.grid.as_str(), &Resident { deleted: true, ..r.clone() }))
            },
        )
    }

    fn write_household(&mut self, h: &Household) -> Result<()> {
        let doc_id = DocId::Register(h.register().clone());
        self.write(&doc_id, |d| d.put_map(Collection::Households, h.id.as_str(), h), |ix, d| ix.household(&d.id, h))
    }

    pub fn add_resident(&mut self, new: NewResident) -> Result<Resident> {
        let doc_id = self.household_register(&new.household)?;
        let r = Resident {
            id: ResidentId::generate(),
            household: new.household,
            name: new.name,
            phone: new.phone,
            id_number: new.id_number,
            birth_year: new.birth_year,
            relation: new.relation,
            deleted: false,
        };
        r.validate(year_of(self.now()))?;
        self.write_resident(doc_id, r)
    }

    /// Corrects a resident's entry (a new phone number, a corrected birth year…).
    pub fn update_resident(&mut self, id: &ResidentId, update: ResidentUpdate) -> Result<Resident> {
        let (doc_id, mut r) = self.load_resident(id)?;
        r.apply(update);
        r.validate(year_of(self.now()))?;
        self.write_resident(doc_id, r)
    }

    /// Removes a resident who moved out or passed away, by tombstone: the register's history stays.
    pub fn delete_resident(&mut self, id: &ResidentId) -> Result<()> {
        let (doc_id, mut r) = self.load_resident(id)?;
        r.deleted = true;
        self.write_resident(doc_id, r).map(|_| ())
    }

    fn load_resident(&mut self, id: &ResidentId) -> Result<(DocId, Resident)> {
        let doc: Option<String> = self
            .conn
            .query_row("SELECT doc_id FROM residents WHERE id = ?1 AND deleted = 0", [id.as_str()], |r| r.get(0))
            .optional()
            .db()?;
        let doc_id = writable_register(&doc.ok_or_else(|| Error::not_found("resident", id))?)?;
        let r = self.doc(&doc_id)?.get_map::<Resident>(Collection::Residents, id.as_str())?;
        Ok((doc_id, r.ok_or_else(|| Error::not_found("resident", id))?))
    }

    pub(super) fn write_resident(&mut self, doc_id: DocId, r: Resident) -> Result<Resident> {
        let grid: String = self
            .conn
            .query_row("SELECT grid_id FROM households WHERE id = ?1", [r.household.as_str()], |row| row.get(0))
            .optional()
            .db()?
            .ok_or_else(|| Error::not_found("household", &r.household))?;
        self.write(
            &doc_id,
            |d| d.put_map(Collection::Residents, r.id.as_str(), &r),
            |ix, d| ix.resident(&d.id, &grid, &r),
        )?;
        Ok(r)
    }

    /// The register document a household is kept in, to be written to.
    pub(super) fn household_register(&self, id: &HouseholdId) -> Result<DocId> {
        let doc: Option<String> =
            lookup(&self.conn, "SELECT doc_id FROM households WHERE id = ?1 AND deleted = 0", [id.as_str()])?;
        writable_register(&doc.ok_or_else(|| Error::not_found("household", id))?)
    }
}

/// The register named by a query-table row. A row that still comes from a grid document of the
/// old layout (a phone upgraded before the server converted its grid) is read-only until the
/// converted register arrives with the next sync: writing the record anew here would collide with
/// the server's conversion of it.
fn writable_register(doc: &str) -> Result<DocId> {
    match DocId::parse(doc)? {
        id @ DocId::Register(_) => Ok(id),
        _ => Err(Error::invalid(
            "household",
            "it is still kept in the old grid layout; sync with the server once before changing it",
        )),
    }
}
