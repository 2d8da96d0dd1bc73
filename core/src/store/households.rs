//! Writing the household register: households and the residents who live in them.

use super::{year_of, Store};
use crate::directory::UnitKind;
use crate::document::DocId;
use crate::error::Result;
use rusqlite::OptionalExtension;

use crate::error::Error;
use crate::household::{Household, HouseholdUpdate, NewHousehold, NewResident, Resident, ResidentUpdate, RiskLevel};
use crate::ids::{HouseholdId, ResidentId, UnitId};

impl Store {
    /// Registers a household in a grid (optionally in one of its micro-grids).
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
        };
        h.validate()?;
        self.write(
            &DocId::Grid(grid.clone()),
            |d| d.put_map("households", h.id.as_str(), &h),
            |ix, _| ix.household(&h),
        )?;
        Ok(h)
    }

    /// Changes some fields of a household; fields left `None` are untouched, so an edit made on
    /// another phone to other fields merges with this one.
    pub fn update_household(&mut self, id: &HouseholdId, update: HouseholdUpdate) -> Result<Household> {
        let grid = self.household_grid(id)?;
        if let Some(Some(m)) = &update.micro_grid {
            self.require_micro_grid_of(m, &grid)?;
        }
        let doc_id = DocId::Grid(grid);
        let mut h = self.load_household(&doc_id, id)?;
        h.apply(update);
        h.validate()?;
        self.write(&doc_id, |d| d.put_map("households", h.id.as_str(), &h), |ix, _| ix.household(&h))?;
        Ok(h)
    }

    /// Deletes a household by tombstone: its history stays in the document.
    pub fn delete_household(&mut self, id: &HouseholdId) -> Result<()> {
        let doc_id = DocId::Grid(self.household_grid(id)?);
        let mut h = self.load_household(&doc_id, id)?;
        h.deleted = true;
        self.write(&doc_id, |d| d.put_map("households", h.id.as_str(), &h), |ix, _| ix.household(&h))
    }

    pub fn add_resident(&mut self, new: NewResident) -> Result<Resident> {
        let grid = self.household_grid(&new.household)?;
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
        self.write_resident(DocId::Grid(grid), r)
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
        let grid: Option<String> = self
            .conn
            .query_row("SELECT grid_id FROM residents WHERE id = ?1 AND deleted = 0", [id.as_str()], |r| r.get(0))
            .optional()?;
        let doc_id = DocId::Grid(UnitId::parse(&grid.ok_or_else(|| Error::not_found("resident", id))?)?);
        let r = self.doc(&doc_id)?.get_map::<Resident>("residents", id.as_str())?;
        Ok((doc_id, r.ok_or_else(|| Error::not_found("resident", id))?))
    }

    fn write_resident(&mut self, doc_id: DocId, r: Resident) -> Result<Resident> {
        let DocId::Grid(grid) = &doc_id else { unreachable!("residents live in grid documents") };
        let g = grid.as_str().to_owned();
        self.write(&doc_id, |d| d.put_map("residents", r.id.as_str(), &r), |ix, _| ix.resident(&g, &r))?;
        Ok(r)
    }
}
