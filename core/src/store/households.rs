//! Writing the household register: households and the residents who live in them.

use super::{year_of, Store};
use crate::directory::UnitKind;
use crate::document::DocId;
use crate::error::Result;
use crate::household::{Household, HouseholdUpdate, NewHousehold, NewResident, Resident, RiskLevel};
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
        let g = grid.as_str().to_owned();
        self.write(&DocId::Grid(grid), |d| d.put_map("residents", r.id.as_str(), &r), |ix, _| ix.resident(&g, &r))?;
        Ok(r)
    }
}
