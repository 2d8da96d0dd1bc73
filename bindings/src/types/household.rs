//! Households, residents and the register's filter.

use super::*;

#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Address {
    pub building: String,
    pub unit: String,
    pub room: String,
}

impl From<Address> for core::Address {
    fn from(a: Address) -> Self {
        core::Address { building: a.building, unit: a.unit, room: a.room }
    }
}

impl From<core::Address> for Address {
    fn from(a: core::Address) -> Self {
        Address { building: a.building, unit: a.unit, room: a.room }
    }
}

/// A household as the register's screens show it, with its visit clocks.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Household {
    pub id: String,
    pub grid: String,
    pub micro_grid: Option<String>,
    pub address: Address,
    pub location: Option<GeoPoint>,
    pub care_tags: Vec<CareTag>,
    pub risk: RiskLevel,
    pub notes: String,
    /// Last visit of any kind.
    pub last_visit_at: Option<i64>,
    /// When the next home visit is due.
    pub next_due_at: i64,
    /// Last time the household was seen (an unanswered bell check does not count).
    pub last_contact_at: Option<i64>,
    /// When the next bell check is due, for households whose care tags call for one.
    pub next_bell_due_at: Option<i64>,
    /// Set after an unanswered bell check: the follow-up visit is due by then.
    pub follow_up_due_at: Option<i64>,
}

impl From<core::HouseholdSummary> for Household {
    fn from(h: core::HouseholdSummary) -> Self {
        Household {
            id: h.id.as_str().into(),
            grid: h.grid.as_str().into(),
            micro_grid: opt_str(h.micro_grid),
            address: h.address.into(),
            location: h.location.map(Into::into),
            care_tags: h.care_tags.into_iter().map(Into::into).collect(),
            risk: h.risk.into(),
            notes: h.notes,
            last_visit_at: h.last_visit_at,
            next_due_at: h.next_due_at,
            last_contact_at: h.last_contact_at,
            next_bell_due_at: h.next_bell_due_at,
            follow_up_due_at: h.follow_up_due_at,
        }
    }
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct NewHousehold {
    pub grid: String,
    #[uniffi(default = None)]
    pub micro_grid: Option<String>,
    pub address: Address,
    #[uniffi(default = None)]
    pub location: Option<GeoPoint>,
    #[uniffi(default = [])]
    pub care_tags: Vec<CareTag>,
    /// `None`: the default (blue).
    #[uniffi(default = None)]
    pub risk: Option<RiskLevel>,
    #[uniffi(default = "")]
    pub notes: String,
}

impl NewHousehold {
    pub(crate) fn into_core(self) -> Result<(UnitId, core::NewHousehold)> {
        Ok((
            unit_id(&self.grid)?,
            core::NewHousehold {
                micro_grid: opt_unit(self.micro_grid)?,
                address: self.address.into(),
                location: opt_point(self.location)?,
                care_tags: self.care_tags.into_iter().map(Into::into).collect(),
                risk: self.risk.map(Into::into),
                notes: self.notes,
            },
        ))
    }
}

/// Changes to a household: each field given replaces the stored one, the others stay.
#[derive(Clone, Debug, Default, PartialEq, uniffi::Record)]
pub struct HouseholdUpdate {
    #[uniffi(default = None)]
    pub micro_grid: Option<String>,
    #[uniffi(default = None)]
    pub address: Option<Address>,
    #[uniffi(default = None)]
    pub location: Option<GeoPoint>,
    #[uniffi(default = None)]
    pub care_tags: Option<Vec<CareTag>>,
    #[uniffi(default = None)]
    pub risk: Option<RiskLevel>,
    #[uniffi(default = None)]
    pub notes: Option<String>,
}

impl HouseholdUpdate {
    pub(crate) fn into_core(self) -> Result<core::HouseholdUpdate> {
        Ok(core::HouseholdUpdate {
            micro_grid: opt_unit(self.micro_grid)?.map(Some),
            address: self.address.map(Into::into),
            location: opt_point(self.location)?.map(Some),
            care_tags: self.care_tags.map(|t| t.into_iter().map(Into::into).collect()),
            risk: self.risk.map(Into::into),
            notes: self.notes,
        })
    }
}

/// A resident. Name, phone and ID number are personal data: show them, never log them.
#[derive(Clone, PartialEq, uniffi::Record)]
pub struct Resident {
    pub id: String,
    pub household: String,
    pub name: String,
    pub phone: String,
    pub id_number: String,
    pub birth_year: Option<u16>,
    pub relation: Relation,
}

impl std::fmt::Debug for Resident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resident").field("id", &self.id).field("household", &self.household).finish_non_exhaustive()
    }
}

impl From<core::Resident> for Resident {
    fn from(r: core::Resident) -> Self {
        Resident {
            id: r.id.as_str().into(),
            household: r.household.as_str().into(),
            name: r.name.expose().into(),
            phone: r.phone.expose().into(),
            id_number: r.id_number.expose().into(),
            birth_year: r.birth_year,
            relation: r.relation.into(),
        }
    }
}

#[derive(Clone, PartialEq, uniffi::Record)]
pub struct NewResident {
    pub household: String,
    pub name: String,
    #[uniffi(default = "")]
    pub phone: String,
    #[uniffi(default = "")]
    pub id_number: String,
    #[uniffi(default = None)]
    pub birth_year: Option<u16>,
    pub relation: Relation,
}

impl std::fmt::Debug for NewResident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewResident").field("household", &self.household).finish_non_exhaustive()
    }
}

impl NewResident {
    pub(crate) fn into_core(self) -> Result<core::NewResident> {
        Ok(core::NewResident {
            household: household_id(&self.household)?,
            name: Personal::new(self.name),
            phone: Personal::new(self.phone),
            id_number: Personal::new(self.id_number),
            birth_year: self.birth_year,
            relation: self.relation.into(),
        })
    }
}

/// Which households a list shows; every field given narrows it.
#[derive(Clone, Debug, Default, PartialEq, uniffi::Record)]
pub struct HouseholdFilter {
    #[uniffi(default = None)]
    pub grid: Option<String>,
    #[uniffi(default = None)]
    pub micro_grid: Option<String>,
    #[uniffi(default = None)]
    pub care_tag: Option<CareTag>,
    #[uniffi(default = None)]
    pub risk: Option<RiskLevel>,
    /// Only households whose visit is due by then, most overdue first.
    #[uniffi(default = None)]
    pub due_by: Option<i64>,
    /// 0: no limit.
    #[uniffi(default = 0)]
    pub limit: u32,
}

impl HouseholdFilter {
    pub(crate) fn into_core(self) -> Result<core::HouseholdFilter> {
        Ok(core::HouseholdFilter {
            grid: opt_unit(self.grid)?,
            micro_grid: opt_unit(self.micro_grid)?,
            care_tag: self.care_tag.map(Into::into),
            risk: self.risk.map(Into::into),
            due_by: self.due_by,
            limit: self.limit,
        })
    }
}
