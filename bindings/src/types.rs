//! The records and enums the apps see, and their conversions to and from the core's types.
//!
//! Why a mirror instead of exporting the core's types: the app's view is plainer. Ids are
//! strings, times are Unix milliseconds (`Long` / `Int64`), a resident's personal fields are
//! plain strings on the phone that owns them, and sets are lists. The core's types keep their
//! invariants (parsed ids, validated points, redacted `Debug`); a conversion from the app's
//! values parses them and fails with [`DoorstepError::InvalidInput`].

use std::collections::HashMap;

use doorstep_core as core;
use doorstep_core::store::{query, OverdueReport as CoreOverdue};
use doorstep_core::{CategoryId, EventId, HouseholdId, Personal, ReportId, ResidentId, UnitId, UserId, VisitId};

use crate::error::DoorstepError;

pub(crate) type Result<T, E = DoorstepError> = std::result::Result<T, E>;

/// One enum of the app's API mirroring one of the core's closed vocabularies, variant for
/// variant (the compiler checks that none is missing either way).
macro_rules! mirror_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, uniffi::Enum)]
        pub enum $name { $($variant),+ }

        impl From<$name> for core::$name {
            fn from(v: $name) -> Self {
                match v { $($name::$variant => core::$name::$variant),+ }
            }
        }

        impl From<core::$name> for $name {
            fn from(v: core::$name) -> Self {
                match v { $(core::$name::$variant => $name::$variant),+ }
            }
        }
    };
}

mirror_enum!(
    /// Level of the grid hierarchy.
    UnitKind { District, Street, Community, Grid, MicroGrid }
);
mirror_enum!(Role { GridWorker, MicroGridVolunteer, FlowingReporter, DepartmentHandler, Supervisor, Admin });
mirror_enum!(
    /// Why a household needs closer care; drives visit and bell-check intervals.
    CareTag { ElderlyAlone, Disabled, SeriouslyIll, HardshipFamily, KeyCare }
);
mirror_enum!(RiskLevel { Red, Orange, Yellow, Blue, Grey });
mirror_enum!(Relation { Head, Spouse, Child, Parent, Grandchild, Sibling, Tenant, Other });
mirror_enum!(
    /// What kind of call a visit was. `BellCheckNoAnswer` does not count as contact: it starts
    /// the follow-up clock.
    VisitKind { Routine, WelfareCheck, BellCheckAnswered, BellCheckNoAnswer, DisputeMediation, HazardInspection }
);
mirror_enum!(VisitOutcome { AllWell, ProblemFound, NobodyHome, ResolvedOnSite, Referred });
mirror_enum!(ReportStatus { Open, Triaged, Dispatched, InProgress, Resolved, Closed, Duplicate });
mirror_enum!(
    /// One step of a report's closed loop (who may take which is in docs/DATA-MODEL.md).
    ReportEventKind {
        Submitted,
        Triaged,
        Dispatched,
        Accepted,
        ProgressNote,
        Escalated,
        Resolved,
        FeedbackSent,
        Confirmed,
        Disputed,
        Closed,
        Reopened,
        MergedAsDuplicate,
        Comment,
    }
);
mirror_enum!(Classification { Simple, General, Complex, HistoricalLegacy, MajorDifficult });
mirror_enum!(
    /// A report deadline.
    Step { Triage, Feedback, Resolution }
);

// ---- ids ---------------------------------------------------------------------------------

pub(crate) fn unit_id(s: &str) -> Result<UnitId> {
    Ok(UnitId::parse(s)?)
}
pub(crate) fn user_id(s: &str) -> Result<UserId> {
    Ok(UserId::parse(s)?)
}
pub(crate) fn household_id(s: &str) -> Result<HouseholdId> {
    Ok(HouseholdId::parse(s)?)
}
pub(crate) fn resident_id(s: &str) -> Result<ResidentId> {
    Ok(ResidentId::parse(s)?)
}
pub(crate) fn visit_id(s: &str) -> Result<VisitId> {
    Ok(VisitId::parse(s)?)
}
pub(crate) fn report_id(s: &str) -> Result<ReportId> {
    Ok(ReportId::parse(s)?)
}
fn opt_unit(s: Option<String>) -> Result<Option<UnitId>> {
    s.as_deref().map(unit_id).transpose()
}
fn opt_str<T: std::fmt::Display>(v: Option<T>) -> Option<String> {
    v.map(|v| v.to_string())
}

// ---- places and photos ---------------------------------------------------------------------

/// A WGS-84 position.
#[derive(Clone, Copy, Debug, PartialEq, uniffi::Record)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

impl GeoPoint {
    pub(crate) fn to_core(self) -> Result<core::GeoPoint> {
        Ok(core::GeoPoint::new(self.lat, self.lon)?)
    }
}

impl From<core::GeoPoint> for GeoPoint {
    fn from(p: core::GeoPoint) -> Self {
        GeoPoint { lat: p.lat, lon: p.lon }
    }
}

pub(crate) fn opt_point(p: Option<GeoPoint>) -> Result<Option<core::GeoPoint>> {
    p.map(GeoPoint::to_core).transpose()
}

/// A photo the app took, by the path of its file: the core hashes it and keeps a copy in the
/// store's photo folder. Photo bytes never cross the FFI.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct PhotoFile {
    pub path: String,
    /// `image/jpeg`, `image/png`, `image/webp` or `image/heic`.
    pub mime: String,
    pub width: u32,
    pub height: u32,
    #[uniffi(default = None)]
    pub taken_at: Option<i64>,
    #[uniffi(default = None)]
    pub location: Option<GeoPoint>,
}

/// A photo attached to a visit, report or report event.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Photo {
    /// SHA-256 of the file (its name in the photo folder).
    pub sha256: String,
    pub byte_size: u64,
    pub mime: String,
    pub width: u32,
    pub height: u32,
    pub taken_at: Option<i64>,
    pub location: Option<GeoPoint>,
}

impl From<core::PhotoMeta> for Photo {
    fn from(p: core::PhotoMeta) -> Self {
        Photo {
            sha256: p.sha256,
            byte_size: p.byte_size,
            mime: p.mime,
            width: p.width,
            height: p.height,
            taken_at: p.taken_at,
            location: p.location.map(Into::into),
        }
    }
}

// ---- the hierarchy and its people ------------------------------------------------------------

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

// ---- households and residents ----------------------------------------------------------------

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

impl From<query::HouseholdSummary> for Household {
    fn from(h: query::HouseholdSummary) -> Self {
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
    pub(crate) fn into_core(self) -> Result<query::HouseholdFilter> {
        Ok(query::HouseholdFilter {
            grid: opt_unit(self.grid)?,
            micro_grid: opt_unit(self.micro_grid)?,
            care_tag: self.care_tag.map(Into::into),
            risk: self.risk.map(Into::into),
            due_by: self.due_by,
            limit: self.limit,
        })
    }
}

// ---- visits --------------------------------------------------------------------------------

/// What a worker enters to record a visit.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct NewVisit {
    pub household: String,
    pub worker: String,
    /// When it happened; `None`: now.
    #[uniffi(default = None)]
    pub at: Option<i64>,
    #[uniffi(default = None)]
    pub location: Option<GeoPoint>,
    pub kind: VisitKind,
    pub outcome: VisitOutcome,
    #[uniffi(default = "")]
    pub notes: String,
    #[uniffi(default = false)]
    pub follow_up: bool,
    #[uniffi(default = [])]
    pub photos: Vec<PhotoFile>,
}

impl NewVisit {
    /// The core's visit, once its photos were imported.
    pub(crate) fn into_core(self, photos: Vec<core::PhotoMeta>) -> Result<core::NewVisit> {
        Ok(core::NewVisit {
            household: household_id(&self.household)?,
            worker: user_id(&self.worker)?,
            at: self.at,
            location: opt_point(self.location)?,
            kind: self.kind.into(),
            outcome: self.outcome.into(),
            notes: self.notes,
            follow_up: self.follow_up,
            photos,
        })
    }
}

/// A recorded visit.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Visit {
    pub id: String,
    pub household: String,
    pub worker: String,
    pub at: i64,
    pub location: Option<GeoPoint>,
    pub kind: VisitKind,
    pub outcome: VisitOutcome,
    pub notes: String,
    pub follow_up: bool,
    pub photo_count: u32,
}

impl From<query::VisitSummary> for Visit {
    fn from(v: query::VisitSummary) -> Self {
        Visit {
            id: v.id.as_str().into(),
            household: v.household.as_str().into(),
            worker: v.worker.as_str().into(),
            at: v.at,
            location: v.location.map(Into::into),
            kind: v.kind.into(),
            outcome: v.outcome.into(),
            notes: v.notes,
            follow_up: v.follow_up,
            photo_count: v.photo_count,
        }
    }
}

// ---- reports -------------------------------------------------------------------------------

/// A snap-and-report issue, as filed.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct NewReport {
    pub reporter: String,
    /// A category id of the directory (`fire_safety`, `environment`, ...).
    pub category: String,
    pub description: String,
    #[uniffi(default = None)]
    pub location: Option<GeoPoint>,
    #[uniffi(default = None)]
    pub address: Option<String>,
    /// The grid it is in, when known.
    #[uniffi(default = None)]
    pub grid: Option<String>,
    #[uniffi(default = [])]
    pub photos: Vec<PhotoFile>,
}

impl NewReport {
    pub(crate) fn into_core(self, photos: Vec<core::PhotoMeta>) -> Result<core::NewReport> {
        Ok(core::NewReport {
            reporter: user_id(&self.reporter)?,
            category: CategoryId::parse(&self.category)?,
            description: self.description,
            location: opt_point(self.location)?,
            address: self.address,
            grid: opt_unit(self.grid)?,
            photos,
        })
    }
}

/// One step taken on a report: triage, dispatch, accept, resolve, feedback, close, ...
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct NewReportEvent {
    pub report: String,
    pub author: String,
    pub kind: ReportEventKind,
    #[uniffi(default = "")]
    pub note: String,
    /// Dispatch: the department; escalate: the unit; merged as duplicate: the other report.
    #[uniffi(default = None)]
    pub target: Option<String>,
    /// Confirmation: the reporter's satisfaction, 1 to 5.
    #[uniffi(default = None)]
    pub score: Option<u8>,
    #[uniffi(default = [])]
    pub photos: Vec<PhotoFile>,
    /// Triage: how hard the case is (sets the resolution deadline).
    #[uniffi(default = None)]
    pub classification: Option<Classification>,
    /// Triage: the risk colour.
    #[uniffi(default = None)]
    pub risk: Option<RiskLevel>,
}

impl NewReportEvent {
    pub(crate) fn into_core(self, photos: Vec<core::PhotoMeta>) -> Result<core::NewReportEvent> {
        Ok(core::NewReportEvent {
            report: report_id(&self.report)?,
            author: user_id(&self.author)?,
            kind: self.kind.into(),
            note: self.note,
            target: self.target,
            score: self.score,
            photos,
            classification: self.classification.map(Into::into),
            risk: self.risk.map(Into::into),
        })
    }
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct ReportEvent {
    pub id: String,
    pub at: i64,
    pub author: String,
    pub kind: ReportEventKind,
    pub note: String,
    pub target: Option<String>,
    pub score: Option<u8>,
    pub photos: Vec<Photo>,
    pub classification: Option<Classification>,
    pub risk: Option<RiskLevel>,
}

impl From<core::ReportEvent> for ReportEvent {
    fn from(e: core::ReportEvent) -> Self {
        ReportEvent {
            id: e.id.as_str().into(),
            at: e.at,
            author: e.author.as_str().into(),
            kind: e.kind.into(),
            note: e.note,
            target: e.target,
            score: e.score,
            photos: e.photos.into_iter().map(Into::into).collect(),
            classification: e.classification.map(Into::into),
            risk: e.risk.map(Into::into),
        }
    }
}

/// A report in a list.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct ReportSummary {
    pub id: String,
    pub grid: Option<String>,
    pub reporter: String,
    pub category: String,
    pub description: String,
    pub address: Option<String>,
    pub location: Option<GeoPoint>,
    pub created_at: i64,
    pub status: ReportStatus,
    pub updated_at: i64,
    pub event_count: u32,
}

impl From<query::ReportSummary> for ReportSummary {
    fn from(r: query::ReportSummary) -> Self {
        ReportSummary {
            id: r.id.as_str().into(),
            grid: opt_str(r.grid),
            reporter: r.reporter.as_str().into(),
            category: r.category.as_str().into(),
            description: r.description,
            address: r.address,
            location: r.location.map(Into::into),
            created_at: r.created_at,
            status: r.status.into(),
            updated_at: r.updated_at,
            event_count: r.event_count,
        }
    }
}

/// Which reports a list shows; every field given narrows it.
#[derive(Clone, Debug, Default, PartialEq, uniffi::Record)]
pub struct ReportFilter {
    #[uniffi(default = None)]
    pub status: Option<ReportStatus>,
    #[uniffi(default = None)]
    pub grid: Option<String>,
    #[uniffi(default = None)]
    pub category: Option<String>,
    /// With `radius_m`: only reports within that distance.
    #[uniffi(default = None)]
    pub near: Option<GeoPoint>,
    #[uniffi(default = None)]
    pub radius_m: Option<f64>,
    /// 0: no limit.
    #[uniffi(default = 0)]
    pub limit: u32,
}

impl ReportFilter {
    pub(crate) fn into_core(self) -> Result<query::ReportFilter> {
        let near = match (self.near, self.radius_m) {
            (Some(p), Some(r)) => Some((p.to_core()?, r)),
            (None, None) => None,
            _ => return Err(DoorstepError::InvalidInput("near and radius_m are given together or not at all".into())),
        };
        Ok(query::ReportFilter {
            status: self.status.map(Into::into),
            grid: opt_unit(self.grid)?,
            category: self.category.as_deref().map(CategoryId::parse).transpose()?,
            near,
            limit: self.limit,
        })
    }
}

/// An event the workflow did not apply, and why (it stays in the log).
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct RejectedEvent {
    pub event: String,
    pub reason: String,
}

/// Where a report stands, derived from its whole log.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct ReportState {
    pub status: ReportStatus,
    pub classification: Option<Classification>,
    pub risk: Option<RiskLevel>,
    /// The department it was dispatched to.
    pub assignee: Option<String>,
    pub accepted_by: Option<String>,
    /// The level that owns it now (grid, then community, street, district as it escalates).
    pub level: UnitKind,
    pub triage_due: i64,
    pub feedback_due: i64,
    pub resolve_due: i64,
    /// The next deadline still open, if any.
    pub next_due_step: Option<Step>,
    pub next_due_at: Option<i64>,
    pub triaged_at: Option<i64>,
    pub first_feedback_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub closed_at: Option<i64>,
    pub satisfaction: Option<u8>,
    pub reopen_count: u32,
    pub duplicate_of: Option<String>,
    pub rejected: Vec<RejectedEvent>,
}

impl From<core::Derived> for ReportState {
    fn from(d: core::Derived) -> Self {
        let next = d.next_due();
        ReportState {
            status: d.status.into(),
            classification: d.classification.map(Into::into),
            risk: d.risk.map(Into::into),
            assignee: d.assignee,
            accepted_by: opt_str(d.accepted_by),
            level: d.level.into(),
            triage_due: d.triage_due,
            feedback_due: d.feedback_due,
            resolve_due: d.resolve_due,
            next_due_step: next.map(|(s, _)| s.into()),
            next_due_at: next.map(|(_, at)| at),
            triaged_at: d.triaged_at,
            first_feedback_at: d.first_feedback_at,
            resolved_at: d.resolved_at,
            closed_at: d.closed_at,
            satisfaction: d.satisfaction,
            reopen_count: d.reopen_count,
            duplicate_of: d.duplicate_of,
            rejected: d
                .rejected
                .into_iter()
                .map(|r| RejectedEvent { event: r.event.as_str().into(), reason: r.reason })
                .collect(),
        }
    }
}

/// A report with its whole log and derived state: the report's detail screen.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct ReportDetail {
    pub id: String,
    pub reporter: String,
    pub category: String,
    pub description: String,
    pub location: Option<GeoPoint>,
    pub address: Option<String>,
    pub grid: Option<String>,
    pub photos: Vec<Photo>,
    pub created_at: i64,
    pub events: Vec<ReportEvent>,
    pub state: ReportState,
}

impl ReportDetail {
    pub(crate) fn new(r: core::Report, events: Vec<core::ReportEvent>, state: core::Derived) -> Self {
        ReportDetail {
            id: r.id.as_str().into(),
            reporter: r.reporter.as_str().into(),
            category: r.category.as_str().into(),
            description: r.description,
            location: r.location.map(Into::into),
            address: r.address,
            grid: opt_str(r.grid),
            photos: r.photos.into_iter().map(Into::into).collect(),
            created_at: r.created_at,
            events: events.into_iter().map(Into::into).collect(),
            state: state.into(),
        }
    }
}

/// A report past a deadline, for the supervisor's view.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct OverdueReport {
    pub id: String,
    pub grid: Option<String>,
    pub category: String,
    pub description: String,
    pub status: ReportStatus,
    /// The earliest deadline missed, when it was, and how long ago.
    pub step: Step,
    pub due_at: i64,
    pub overdue_ms: i64,
    pub level: UnitKind,
    pub assignee: Option<String>,
}

impl From<CoreOverdue> for OverdueReport {
    fn from(o: CoreOverdue) -> Self {
        OverdueReport {
            id: o.id.as_str().into(),
            grid: opt_str(o.grid),
            category: o.category,
            description: o.description,
            status: o.status.into(),
            step: o.step.into(),
            due_at: o.due_at,
            overdue_ms: o.overdue_ms,
            level: o.level.into(),
            assignee: o.assignee,
        }
    }
}

// ---- welfare and search --------------------------------------------------------------------

/// Whose households a welfare screen covers.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum Area {
    Grid {
        id: String,
    },
    MicroGrid {
        id: String,
    },
    /// A volunteer's micro-grid, or every grid a worker's or supervisor's unit covers.
    Worker {
        id: String,
    },
}

impl Area {
    pub(crate) fn to_core(&self) -> Result<core::store::Area> {
        Ok(match self {
            Area::Grid { id } => core::store::Area::Grid(unit_id(id)?),
            Area::MicroGrid { id } => core::store::Area::MicroGrid(unit_id(id)?),
            Area::Worker { id } => core::store::Area::Worker(user_id(id)?),
        })
    }
}

/// A worker's welfare screen, each list most urgent first.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Welfare {
    pub visits_overdue: Vec<Household>,
    pub visits_due_today: Vec<Household>,
    pub never_visited: Vec<Household>,
    pub bell_checks_due: Vec<Household>,
    pub follow_ups: Vec<Household>,
}

impl From<core::store::Welfare> for Welfare {
    fn from(w: core::store::Welfare) -> Self {
        let list = |v: Vec<query::HouseholdSummary>| v.into_iter().map(Household::from).collect();
        Welfare {
            visits_overdue: list(w.visits_overdue),
            visits_due_today: list(w.visits_due_today),
            never_visited: list(w.never_visited),
            bell_checks_due: list(w.bell_checks_due),
            follow_ups: list(w.follow_ups),
        }
    }
}

/// A household or report whose text matched a search.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum SearchHit {
    Household { id: String, address: String },
    Report { id: String, description: String },
}

impl From<query::SearchHit> for SearchHit {
    fn from(h: query::SearchHit) -> Self {
        match h {
            query::SearchHit::Household { id, address } => SearchHit::Household { id: id.as_str().into(), address },
            query::SearchHit::Report { id, description } => SearchHit::Report { id: id.as_str().into(), description },
        }
    }
}

// ---- sync ----------------------------------------------------------------------------------

/// A record whose arrival at the server the app asks about ("sent" ticks).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum RecordRef {
    Household { id: String },
    Visit { id: String },
    Report { id: String },
    ReportEvent { report: String, event: String },
}

impl RecordRef {
    pub(crate) fn to_core(&self) -> Result<core::RecordRef> {
        Ok(match self {
            RecordRef::Household { id } => core::RecordRef::Household(household_id(id)?),
            RecordRef::Visit { id } => core::RecordRef::Visit(visit_id(id)?),
            RecordRef::Report { id } => core::RecordRef::Report(report_id(id)?),
            RecordRef::ReportEvent { report, event } => {
                core::RecordRef::ReportEvent(report_id(report)?, EventId::parse(event)?)
            }
        })
    }
}

/// What a phone keeps (`Doorstep.setWindow`): the visits of the current month and the
/// `months - 1` before it, and reports closed within `closedReportDays`; everything older leaves
/// the phone once the server holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Record)]
pub struct StoreWindow {
    pub months: u32,
    pub closed_report_days: u32,
}

impl From<doorstep_core::Window> for StoreWindow {
    fn from(w: doorstep_core::Window) -> Self {
        StoreWindow { months: w.months, closed_report_days: w.closed_report_days }
    }
}

impl StoreWindow {
    pub(crate) fn into_core(self) -> Result<doorstep_core::Window> {
        if self.months == 0 || self.months > doorstep_core::Window::MAX_MONTHS {
            return Err(DoorstepError::InvalidInput("window months: must be 1 to 1,200".into()));
        }
        if self.closed_report_days > 3_650 {
            return Err(DoorstepError::InvalidInput("window closed report days: must be at most 3,650".into()));
        }
        Ok(doorstep_core::Window { months: self.months, closed_report_days: self.closed_report_days })
    }
}

/// How far a sync session has come.
#[derive(Clone, Debug, Default, PartialEq, Eq, uniffi::Record)]
pub struct SyncProgress {
    /// Messages sent so far.
    pub round: u32,
    /// Documents exchanged in part or whole.
    pub documents: u64,
    /// Documents known to need syncing that the session has not started yet.
    pub documents_waiting: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub done: bool,
    /// Documents of this phone the other side refused in this session; it went on with the others.
    pub refused: Vec<DocumentRefusal>,
    /// Documents outside the phone's window that left it when the session ended (the server
    /// holds them; older visits come back with `fetchVisits`).
    pub documents_released: u64,
}

impl From<core::sync::Progress> for SyncProgress {
    fn from(p: core::sync::Progress) -> Self {
        SyncProgress {
            round: p.round,
            documents: p.documents as u64,
            documents_waiting: p.documents_waiting as u64,
            bytes_sent: p.bytes_sent,
            bytes_received: p.bytes_received,
            done: p.done,
            refused: p.refused.into_iter().map(Into::into).collect(),
            documents_released: p.documents_released as u64,
        }
    }
}

/// One document the other side of a sync refused to take from this phone, while it took the
/// rest. Its changes stay on this phone, pending, and go again with later syncs.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct DocumentRefusal {
    /// The document's id (`directory`, `register/<unit id>`, `visits/<unit id>/<YYYY-MM>`, `report/<report id>`).
    pub document: String,
    /// `forbidden_document`: this phone's user may no longer change it (moved to another unit);
    /// `too_large`: it reached a size limit. See `docs/PROTOCOL.md` §6.
    pub code: String,
    /// A text the app can show.
    pub message: String,
}

impl From<core::DocumentRefusal> for DocumentRefusal {
    fn from(r: core::DocumentRefusal) -> Self {
        DocumentRefusal { document: r.doc.to_string(), code: r.code, message: r.message }
    }
}

/// What the sync badge shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, uniffi::Record)]
pub struct SyncStatus {
    /// Changes written on this phone that the server has not acknowledged yet.
    pub pending_changes: u64,
    pub pending_documents: u64,
    /// When a sync with the server last completed.
    pub last_sync_at: Option<i64>,
    /// Why the last sync with the server failed (cleared by the next success).
    pub last_error: Option<String>,
    /// A sync with the server is running now; `progress` says how far it is.
    pub syncing: bool,
    pub progress: Option<SyncProgress>,
    /// Documents the server refused while it took the rest (listed until a sync takes them).
    pub refused_documents: Vec<DocumentRefusal>,
}

impl From<core::SyncStatus> for SyncStatus {
    fn from(s: core::SyncStatus) -> Self {
        SyncStatus {
            pending_changes: s.pending_changes as u64,
            pending_documents: s.pending_documents as u64,
            last_sync_at: s.last_sync_at,
            last_error: s.last_error,
            syncing: false,
            progress: None,
            refused_documents: s.refused_documents.into_iter().map(Into::into).collect(),
        }
    }
}

/// The device's credentials after enrolment. Keep `token` in the platform keystore.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct Registration {
    pub device_id: String,
    pub user_id: String,
    pub token: String,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration").field("device_id", &self.device_id).field("user_id", &self.user_id).finish()
    }
}

impl From<core::sync::http::Registration> for Registration {
    fn from(r: core::sync::http::Registration) -> Self {
        Registration { device_id: r.device_id, user_id: r.user_id, token: r.token }
    }
}

/// What a phone sends back to the phone that started a sync with it.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct PeerReply {
    /// The bytes to send back (an answer, or a refusal the other phone will report).
    pub message: Vec<u8>,
    /// Why this phone refused the message, if it did (the same text travels in `message`).
    pub refused: Option<String>,
}

/// Where a change notification's changes came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ChangeOrigin {
    /// A write on this phone.
    Local,
    /// A sync (with the server or a phone) or an imported document.
    Sync,
}

/// Documents whose content changed: a screen showing one of them should re-query. Ids are
/// `directory`, `register/<unit id>`, `visits/<unit id>/<YYYY-MM>` and `report/<report id>`.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Change {
    pub origin: ChangeOrigin,
    pub documents: Vec<String>,
}

/// A record in one of this phone's documents that no screen shows because it could not be
/// read (written by another replica before every change was checked, or by a newer app).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct RejectedRecord {
    /// `directory`, `register/<id>`, `visits/<id>/<YYYY-MM>` or `report/<id>`.
    pub doc: String,
    pub collection: String,
    pub record_id: String,
    pub reason: String,
}

impl From<core::RejectedRecord> for RejectedRecord {
    fn from(r: core::RejectedRecord) -> Self {
        RejectedRecord { doc: r.doc.to_string(), collection: r.collection, record_id: r.record_id, reason: r.reason }
    }
}
