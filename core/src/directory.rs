//! The `directory` document: the hierarchy (district → street → community → grid → micro-grid),
//! users and their roles, devices, report categories with their deadlines, and the rules that
//! say how often a household must be visited.
//!
//! Admins write it; every phone reads the parts it needs. It never holds residents' data.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::workflow::Classification;

use crate::document::Tombstone;
use crate::error::{Error, Result};
use crate::household::{CareTag, RiskLevel};
use crate::ids::{CategoryId, UnitId, UserId};
use crate::personal::Personal;
use crate::text::{check_required, NAME_MAX, SHORT_MAX};

field_enum! {
    /// A level of the hierarchy.
    pub enum UnitKind {
        District = "district",
        Street = "street",
        /// A community (社区) in town or an administrative village (行政村).
        Community = "community",
        Grid = "grid",
        /// About ten households looked after by a micro-grid volunteer.
        MicroGrid = "micro_grid",
    }
}

impl UnitKind {
    /// The kind a unit of this kind must hang under (`None` for a district).
    pub fn parent_kind(self) -> Option<UnitKind> {
        match self {
            UnitKind::District => None,
            UnitKind::Street => Some(UnitKind::District),
            UnitKind::Community => Some(UnitKind::Street),
            UnitKind::Grid => Some(UnitKind::Community),
            UnitKind::MicroGrid => Some(UnitKind::Grid),
        }
    }
}

/// A node of the hierarchy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Unit {
    pub id: UnitId,
    pub kind: UnitKind,
    pub parent: Option<UnitId>,
    pub name: String,
    #[serde(default)]
    pub deleted: bool,
}

#[derive(Clone, Debug)]
pub struct NewUnit {
    pub kind: UnitKind,
    pub parent: Option<UnitId>,
    pub name: String,
}

impl NewUnit {
    pub(crate) fn validate(&self) -> Result<()> {
        check_required("unit name", &self.name, NAME_MAX)?;
        match (self.kind.parent_kind(), &self.parent) {
            (None, Some(_)) => Err(Error::invalid("parent unit", "a district has no parent")),
            (Some(_), None) => Err(Error::invalid("parent unit", "is required below district level")),
            _ => Ok(()),
        }
    }
}

field_enum! {
    /// What a user does; decides what they may see and do.
    pub enum Role {
        /// Full-time or part-time grid worker (专职/兼职网格员).
        GridWorker = "grid_worker",
        /// Looks after a micro-grid of about ten households (微网格员).
        MicroGridVolunteer = "micro_grid_volunteer",
        /// Courier, delivery rider or sanitation worker who reports what they see (流动网格员).
        FlowingReporter = "flowing_reporter",
        /// Handles reports dispatched to a department.
        DepartmentHandler = "department_handler",
        /// Grid head or supervisor at any level above the grid.
        Supervisor = "supervisor",
        Admin = "admin",
    }
}

/// A person who signs in to Doorstep. Their name is kept as personal data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub name: Personal,
    pub role: Role,
    /// The unit they work in (their grid, their community, their district…).
    pub unit: UnitId,
    /// For department handlers: the department's name.
    pub department: Option<String>,
    #[serde(default)]
    pub deleted: bool,
}

#[derive(Clone, Debug)]
pub struct NewUser {
    pub name: Personal,
    pub role: Role,
    pub unit: UnitId,
    pub department: Option<String>,
}

impl NewUser {
    pub(crate) fn validate(&self) -> Result<()> {
        check_required("user name", self.name.expose(), NAME_MAX)?;
        if let Some(d) = &self.department {
            check_required("department", d, SHORT_MAX)?;
        }
        Ok(())
    }
}

/// A phone or tablet of a user, with the Automerge actor id it writes with (hex).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Device {
    pub id: String,
    pub user: UserId,
    pub actor: String,
    #[serde(default)]
    pub deleted: bool,
    /// When an admin revoked the device (a lost phone): its token no longer works and phones
    /// refuse it as a peer. What it wrote before stays its user's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<crate::clock::UnixMillis>,
    /// The sync server's own device (it records the conversion of old grid documents, as a
    /// device of an admin): no other device may enrol with its actor id.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub server: bool,
    /// The device's Ed25519 public key (64 hexadecimal digits), as it proved at enrolment: every
    /// replica checks the device's signed changes with it (docs/PROTOCOL.md §10). Devices that
    /// enrolled before keys get it when they bind theirs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

/// A kind of citizen report, with the clocks that run on it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Category {
    pub id: CategoryId,
    pub name: String,
    pub triage_hours: u32,
    pub feedback_hours: u32,
    pub resolve_hours: u32,
    /// Resolution deadlines for some classifications, instead of `resolve_hours`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resolve_hours_by_class: BTreeMap<Classification, u32>,
    /// Reports of this category within this distance and time window of each other are offered
    /// as possible duplicates.
    #[serde(default = "default_duplicate_radius")]
    pub duplicate_radius_m: u32,
    #[serde(default = "default_duplicate_window")]
    pub duplicate_window_hours: u32,
    #[serde(default)]
    pub deleted: bool,
}

fn default_duplicate_radius() -> u32 {
    100
}

fn default_duplicate_window() -> u32 {
    72
}

#[derive(Clone, Debug)]
pub struct NewCategory {
    pub id: CategoryId,
    pub name: String,
    pub triage_hours: u32,
    pub feedback_hours: u32,
    pub resolve_hours: u32,
    pub resolve_hours_by_class: BTreeMap<Classification, u32>,
    pub duplicate_radius_m: u32,
    pub duplicate_window_hours: u32,
}

impl NewCategory {
    /// The categories grid offices start with; 1 day to triage, 3 to give feedback, 7 to resolve
    /// (whatever the classification); reports within 100 m and 3 days of each other may be
    /// duplicates.
    pub fn defaults() -> Vec<NewCategory> {
        [
            ("city-management", "City management"),
            ("road-traffic", "Road traffic"),
            ("community-services", "Community services"),
            ("market-management", "Market management"),
            ("environment", "Environment"),
            ("safety-hazard", "Safety hazard"),
            ("neighbour-dispute", "Neighbour dispute"),
            ("other", "Other"),
        ]
        .into_iter()
        .map(|(id, name)| NewCategory {
            id: CategoryId::parse(id).expect("valid id"),
            name: name.into(),
            triage_hours: 24,
            feedback_hours: 72,
            resolve_hours: 168,
            resolve_hours_by_class: BTreeMap::new(),
            duplicate_radius_m: default_duplicate_radius(),
            duplicate_window_hours: default_duplicate_window(),
        })
        .collect()
    }

    pub(crate) fn validate(&self) -> Result<()> {
        check_required("category name", &self.name, NAME_MAX)?;
        for (field, h) in [
            ("triage deadline", self.triage_hours),
            ("feedback deadline", self.feedback_hours),
            ("resolution deadline", self.resolve_hours),
        ] {
            if h == 0 || h > 24 * 365 {
                return Err(Error::invalid(field, "must be between 1 hour and 1 year"));
            }
        }
        if self.resolve_hours_by_class.values().any(|h| *h == 0 || *h > 24 * 365) {
            return Err(Error::invalid("resolution deadline", "must be between 1 hour and 1 year"));
        }
        if self.duplicate_radius_m > 10_000 || self.duplicate_window_hours > 24 * 365 {
            return Err(Error::invalid("duplicate window", "at most 10 km and 1 year"));
        }
        Ok(())
    }
}

/// The welfare-visit schedules, configurable per deployment in the directory:
/// * a **home visit** at least every `interval_hours` — the shortest among the default, each of
///   the household's care tags and its risk level;
/// * for households with a care tag in `bell_check_hours`, a quick **bell check** at that
///   interval as well (any contact counts);
/// * after a bell check nobody answered, a **follow-up** due within `follow_up_hours`.
#[derive(Clone, Debug, PartialEq)]
pub struct VisitRules {
    pub default_hours: u32,
    pub care_tag_hours: BTreeMap<CareTag, u32>,
    pub risk_hours: BTreeMap<RiskLevel, u32>,
    pub bell_check_hours: BTreeMap<CareTag, u32>,
    pub follow_up_hours: u32,
}

impl Default for VisitRules {
    fn default() -> Self {
        VisitRules {
            default_hours: 30 * 24,
            care_tag_hours: [
                (CareTag::ElderlyAlone, 7 * 24),
                (CareTag::SeriouslyIll, 7 * 24),
                (CareTag::Disabled, 14 * 24),
                (CareTag::HardshipFamily, 14 * 24),
                (CareTag::KeyCare, 7 * 24),
            ]
            .into(),
            risk_hours: [
                (RiskLevel::Red, 24),
                (RiskLevel::Orange, 3 * 24),
                (RiskLevel::Yellow, 7 * 24),
                (RiskLevel::Blue, 14 * 24),
                (RiskLevel::Grey, 30 * 24),
            ]
            .into(),
            bell_check_hours: [(CareTag::ElderlyAlone, 24), (CareTag::SeriouslyIll, 24)].into(),
            follow_up_hours: 4,
        }
    }
}

impl VisitRules {
    pub fn interval_hours(&self, care_tags: &std::collections::BTreeSet<CareTag>, risk: RiskLevel) -> u32 {
        let mut h = self.default_hours;
        for t in care_tags {
            if let Some(x) = self.care_tag_hours.get(t) {
                h = h.min(*x);
            }
        }
        if let Some(x) = self.risk_hours.get(&risk) {
            h = h.min(*x);
        }
        h.max(1)
    }

    /// [`VisitRules::interval_hours`] in milliseconds, as due dates are computed.
    pub fn interval_ms(&self, care_tags: &std::collections::BTreeSet<CareTag>, risk: RiskLevel) -> i64 {
        self.interval_hours(care_tags, risk) as i64 * crate::clock::HOUR_MS
    }

    /// How often a household with these care tags needs a bell check (`None`: no bell schedule).
    pub fn bell_interval_ms(&self, care_tags: &std::collections::BTreeSet<CareTag>) -> Option<i64> {
        care_tags
            .iter()
            .filter_map(|t| self.bell_check_hours.get(t))
            .min()
            .map(|h| i64::from(*h) * crate::clock::HOUR_MS)
    }

    pub fn follow_up_ms(&self) -> i64 {
        i64::from(self.follow_up_hours.max(1)) * crate::clock::HOUR_MS
    }

    /// The rules as the directory stores them: `default`, `tag:<care tag>`, `risk:<level>`,
    /// `bell:<care tag>`, `follow_up`.
    pub(crate) fn to_entries(&self) -> Vec<(String, u32)> {
        let mut v = vec![("default".to_string(), self.default_hours), ("follow_up".to_string(), self.follow_up_hours)];
        v.extend(self.care_tag_hours.iter().map(|(t, h)| (format!("tag:{}", t.as_str()), *h)));
        v.extend(self.risk_hours.iter().map(|(r, h)| (format!("risk:{}", r.as_str()), *h)));
        v.extend(self.bell_check_hours.iter().map(|(t, h)| (format!("bell:{}", t.as_str()), *h)));
        v
    }

    /// Rules from stored entries; entries a newer version added and this one does not know are ignored.
    pub(crate) fn from_entries(entries: impl IntoIterator<Item = (String, i64)>) -> VisitRules {
        let mut rules = VisitRules {
            default_hours: 30 * 24,
            care_tag_hours: BTreeMap::new(),
            risk_hours: BTreeMap::new(),
            bell_check_hours: BTreeMap::new(),
            follow_up_hours: VisitRules::default().follow_up_hours,
        };
        let mut any = false;
        for (k, h) in entries {
            let Ok(h) = u32::try_from(h) else { continue };
            any = true;
            if k == "default" {
                rules.default_hours = h;
            } else if k == "follow_up" {
                rules.follow_up_hours = h;
            } else if let Some(t) = k.strip_prefix("bell:").and_then(CareTag::parse) {
                rules.bell_check_hours.insert(t, h);
            } else if let Some(t) = k.strip_prefix("tag:").and_then(CareTag::parse) {
                rules.care_tag_hours.insert(t, h);
            } else if let Some(r) = k.strip_prefix("risk:").and_then(RiskLevel::parse) {
                rules.risk_hours.insert(r, h);
            }
        }
        if any {
            rules
        } else {
            VisitRules::default()
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        for (_, h) in self.to_entries() {
            if h == 0 || h > 24 * 366 {
                return Err(Error::invalid("visit interval", "must be between 1 hour and 1 year"));
            }
        }
        Ok(())
    }
}

impl Tombstone for Unit {
    fn is_deleted(&self) -> bool {
        self.deleted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn the_shortest_interval_among_tags_and_risk_applies() {
        let r = VisitRules::default();
        assert_eq!(r.interval_hours(&BTreeSet::new(), RiskLevel::Grey), 30 * 24);
        assert_eq!(r.interval_hours(&BTreeSet::from([CareTag::ElderlyAlone]), RiskLevel::Grey), 7 * 24);
        assert_eq!(r.interval_hours(&BTreeSet::from([CareTag::ElderlyAlone]), RiskLevel::Red), 24);
    }

    #[test]
    fn rules_survive_the_trip_through_the_directory() {
        let mut r = VisitRules::default();
        r.care_tag_hours.insert(CareTag::Disabled, 48);
        let entries = r.to_entries().into_iter().map(|(k, h)| (k, h as i64));
        assert_eq!(VisitRules::from_entries(entries), r);
        let with_unknown = VisitRules::from_entries([("tag:future_tag".to_string(), 5), ("default".to_string(), 100)]);
        assert_eq!(with_unknown.default_hours, 100);
    }

    #[test]
    fn units_hang_under_the_level_above() {
        let bad = NewUnit { kind: UnitKind::Grid, parent: None, name: "Grid 1".into() };
        assert!(bad.validate().is_err());
        let bad = NewUnit { kind: UnitKind::District, parent: Some(UnitId::parse("x").unwrap()), name: "D".into() };
        assert!(bad.validate().is_err());
    }
}
