//! The hierarchy, its people and the report categories.

use super::*;

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct OrgUnit {
    pub id: String,
    pub kind: UnitKind,
    pub parent: Option<String>,
    pub name: String,
}

impl From<core::Unit> for OrgUnit {
    fn from(u: core::Unit) -> Self {
        OrgUnit { id: u.id.as_str().into(), kind: u.kind.into(), parent: opt_str(u.parent), name: u.name }
    }
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct NewOrgUnit {
    pub kind: UnitKind,
    pub parent: Option<String>,
    pub name: String,
}

impl NewOrgUnit {
    pub(crate) fn into_core(self) -> Result<core::NewUnit> {
        Ok(core::NewUnit { kind: self.kind.into(), parent: opt_unit(self.parent)?, name: self.name })
    }
}

/// A worker, volunteer, reporter, handler, supervisor or admin.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct User {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// The unit the user works for (a grid for a worker, a street for a supervisor).
    pub unit: String,
    pub department: Option<String>,
}

impl From<core::User> for User {
    fn from(u: core::User) -> Self {
        User {
            id: u.id.as_str().into(),
            name: u.name.expose().into(),
            role: u.role.into(),
            unit: u.unit.as_str().into(),
            department: u.department,
        }
    }
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct NewUser {
    pub name: String,
    pub role: Role,
    pub unit: String,
    #[uniffi(default = None)]
    pub department: Option<String>,
}

impl NewUser {
    pub(crate) fn into_core(self) -> Result<core::NewUser> {
        Ok(core::NewUser {
            name: Personal::new(self.name),
            role: self.role.into(),
            unit: unit_id(&self.unit)?,
            department: self.department,
        })
    }
}

/// A kind of report and the clocks that run on it (hours from filing, or from triage for
/// resolution).
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Category {
    /// `safety-hazard`, `environment`, ...: what a report's `category` names.
    pub id: String,
    pub name: String,
    pub triage_hours: u32,
    pub feedback_hours: u32,
    pub resolve_hours: u32,
    /// Resolution hours for a classification, where they differ from `resolve_hours`.
    pub resolve_hours_by_class: HashMap<Classification, u32>,
    /// Reports of the category this close in space and time are offered as duplicates.
    #[uniffi(default = 100)]
    pub duplicate_radius_m: u32,
    #[uniffi(default = 72)]
    pub duplicate_window_hours: u32,
}

impl From<core::Category> for Category {
    fn from(c: core::Category) -> Self {
        let core::Category {
            id,
            name,
            triage_hours,
            feedback_hours,
            resolve_hours,
            resolve_hours_by_class,
            duplicate_radius_m,
            duplicate_window_hours,
            deleted: _,
        } = c;
        core::NewCategory {
            id,
            name,
            triage_hours,
            feedback_hours,
            resolve_hours,
            resolve_hours_by_class,
            duplicate_radius_m,
            duplicate_window_hours,
        }
        .into()
    }
}

impl From<core::NewCategory> for Category {
    fn from(c: core::NewCategory) -> Self {
        Category {
            id: c.id.as_str().into(),
            name: c.name,
            triage_hours: c.triage_hours,
            feedback_hours: c.feedback_hours,
            resolve_hours: c.resolve_hours,
            resolve_hours_by_class: c.resolve_hours_by_class.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            duplicate_radius_m: c.duplicate_radius_m,
            duplicate_window_hours: c.duplicate_window_hours,
        }
    }
}

impl Category {
    pub(crate) fn into_core(self) -> Result<core::NewCategory> {
        Ok(core::NewCategory {
            id: CategoryId::parse(&self.id)?,
            name: self.name,
            triage_hours: self.triage_hours,
            feedback_hours: self.feedback_hours,
            resolve_hours: self.resolve_hours,
            resolve_hours_by_class: self.resolve_hours_by_class.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            duplicate_radius_m: self.duplicate_radius_m,
            duplicate_window_hours: self.duplicate_window_hours,
        })
    }
}

/// The categories a new office starts with: 1 day to triage, 3 to give feedback, 7 to resolve.
#[uniffi::export]
pub fn default_categories() -> Vec<Category> {
    core::NewCategory::defaults().into_iter().map(Category::from).collect()
}
