//! Households and their residents, kept in the register document of their micro-grid (or of
//! their grid, for a household in none of its micro-grids).
//!
//! Residents' names, phone and ID numbers are [`Personal`]: they are shown on the worker's screen
//! and nowhere else, never in logs or error messages.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::clock::UnixMillis;
use crate::error::{Error, Result};
use crate::geo::GeoPoint;
use crate::ids::{HouseholdId, ResidentId, UnitId};
use crate::personal::Personal;
use crate::text::{check_len, check_required, NAME_MAX, NOTES_MAX};

field_enum! {
    /// Why a household gets special attention.
    pub enum CareTag {
        ElderlyAlone = "elderly_alone",
        Disabled = "disabled",
        SeriouslyIll = "seriously_ill",
        HardshipFamily = "hardship_family",
        KeyCare = "key_care",
    }
}

impl CareTag {
    /// Bit in the `care_tags` column of the households table.
    pub(crate) fn bit(self) -> i64 {
        1 << (self as i64)
    }
    pub(crate) fn mask(tags: &BTreeSet<CareTag>) -> i64 {
        tags.iter().fold(0, |m, t| m | t.bit())
    }
    pub(crate) fn from_mask(mask: i64) -> BTreeSet<CareTag> {
        CareTag::ALL.iter().copied().filter(|t| mask & t.bit() != 0).collect()
    }
}

field_enum! {
    /// Risk colour (红橙黄蓝灰), red the most urgent.
    pub enum RiskLevel {
        Red = "red",
        Orange = "orange",
        Yellow = "yellow",
        Blue = "blue",
        Grey = "grey",
    }
}

/// Where a household lives: building, unit (entrance) and room.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Address {
    pub building: String,
    pub unit: String,
    pub room: String,
}

impl Address {
    pub fn label(&self) -> String {
        format!("Building {}, Unit {}, Room {}", self.building, self.unit, self.room)
    }
    fn validate(&self) -> Result<()> {
        check_required("building", &self.building, NAME_MAX)?;
        check_len("unit", &self.unit, NAME_MAX)?;
        check_len("room", &self.room, NAME_MAX)
    }
}

/// A household of the register, as its register document holds it. `grid` and `micro_grid`
/// decide which register holds it and so who may see it: they never change in a document; a
/// household moved to another micro-grid is written into that register and left in its old one
/// as a tombstone naming where it went (`moved_to`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Household {
    pub id: HouseholdId,
    pub grid: UnitId,
    pub micro_grid: Option<UnitId>,
    pub address: Address,
    pub location: Option<GeoPoint>,
    #[serde(with = "tag_flags")]
    pub care_tags: BTreeSet<CareTag>,
    pub risk: RiskLevel,
    pub notes: String,
    pub created_at: UnixMillis,
    #[serde(default)]
    pub deleted: bool,
    /// Set on the tombstone a move leaves behind: the register the household went to. Written
    /// as `null` when none, so that a household moved back loses it (`put_map` deletes a `null`
    /// field and leaves an absent one).
    #[serde(default)]
    pub moved_to: Option<UnitId>,
}

#[derive(Clone, Debug, Default)]
pub struct NewHousehold {
    pub micro_grid: Option<UnitId>,
    pub address: Address,
    pub location: Option<GeoPoint>,
    pub care_tags: BTreeSet<CareTag>,
    pub risk: Option<RiskLevel>,
    pub notes: String,
}

/// A change to a household; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct HouseholdUpdate {
    pub micro_grid: Option<Option<UnitId>>,
    pub address: Option<Address>,
    pub location: Option<Option<GeoPoint>>,
    pub care_tags: Option<BTreeSet<CareTag>>,
    pub risk: Option<RiskLevel>,
    pub notes: Option<String>,
}

impl Household {
    /// The unit whose register document holds this household: its micro-grid, else its grid.
    pub fn register(&self) -> &UnitId {
        self.micro_grid.as_ref().unwrap_or(&self.grid)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        self.address.validate()?;
        if let Some(p) = &self.location {
            p.validate("household location")?;
        }
        check_len("household notes", &self.notes, NOTES_MAX)
    }

    pub(crate) fn apply(&mut self, u: HouseholdUpdate) {
        set(&mut self.micro_grid, u.micro_grid);
        set(&mut self.address, u.address);
        set(&mut self.location, u.location);
        set(&mut self.care_tags, u.care_tags);
        set(&mut self.risk, u.risk);
        set(&mut self.notes, u.notes);
    }
}

field_enum! {
    /// How a resident relates to the head of the household.
    pub enum Relation {
        Head = "head",
        Spouse = "spouse",
        Child = "child",
        Parent = "parent",
        Grandchild = "grandchild",
        Sibling = "sibling",
        Tenant = "tenant",
        Other = "other",
    }
}

/// A person living in a household. Name, phone and ID number are personal data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Resident {
    pub id: ResidentId,
    pub household: HouseholdId,
    pub name: Personal,
    pub phone: Personal,
    pub id_number: Personal,
    pub birth_year: Option<u16>,
    pub relation: Relation,
    #[serde(default)]
    pub deleted: bool,
}

#[derive(Clone, Debug)]
pub struct NewResident {
    pub household: HouseholdId,
    pub name: Personal,
    pub phone: Personal,
    pub id_number: Personal,
    pub birth_year: Option<u16>,
    pub relation: Relation,
}

/// A change to a resident's entry; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct ResidentUpdate {
    pub name: Option<Personal>,
    pub phone: Option<Personal>,
    pub id_number: Option<Personal>,
    pub birth_year: Option<Option<u16>>,
    pub relation: Option<Relation>,
}

impl Resident {
    pub(crate) fn apply(&mut self, u: ResidentUpdate) {
        set(&mut self.name, u.name);
        set(&mut self.phone, u.phone);
        set(&mut self.id_number, u.id_number);
        set(&mut self.birth_year, u.birth_year);
        set(&mut self.relation, u.relation);
    }

    /// Checks format only; messages never repeat the values.
    pub(crate) fn validate(&self, this_year: i32) -> Result<()> {
        check_required("resident name", self.name.expose(), NAME_MAX)?;
        let phone = self.phone.expose();
        if !phone.is_empty() && (phone.len() > 20 || !phone.chars().all(|c| c.is_ascii_digit() || "+- ".contains(c))) {
            return Err(Error::invalid("resident phone", "must be up to 20 digits, '+', '-' or spaces"));
        }
        let idn = self.id_number.expose();
        if !idn.is_empty() && (idn.len() > 18 || !idn.chars().all(|c| c.is_ascii_alphanumeric())) {
            return Err(Error::invalid("resident ID number", "must be up to 18 letters or digits"));
        }
        if let Some(y) = self.birth_year {
            if !(1900..=this_year).contains(&(y as i32)) {
                return Err(Error::invalid("birth year", format!("must be between 1900 and {this_year}")));
            }
        }
        Ok(())
    }
}

/// Care tags are stored as a map of flags (`{"elderly_alone": true, "disabled": false, …}`) so that
/// one worker adding a tag and another removing a different one offline both keep their change.
mod tag_flags {
    use super::*;

    pub fn serialize<S: Serializer>(tags: &BTreeSet<CareTag>, s: S) -> Result<S::Ok, S::Error> {
        let flags: BTreeMap<&str, bool> = CareTag::ALL.iter().map(|t| (t.as_str(), tags.contains(t))).collect();
        flags.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeSet<CareTag>, D::Error> {
        let flags = BTreeMap::<String, bool>::deserialize(d)?;
        Ok(flags.into_iter().filter(|(_, on)| *on).filter_map(|(k, _)| CareTag::parse(&k)).collect())
    }
}

/// An update's field: `None` leaves the record's value, `Some` replaces it.
fn set<T>(field: &mut T, update: Option<T>) {
    if let Some(value) = update {
        *field = value;
    }
}
