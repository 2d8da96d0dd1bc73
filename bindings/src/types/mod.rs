//! The records and enums the apps see, and their conversions to and from the core's types.
//!
//! Why a mirror instead of exporting the core's types: the app's view is plainer. Ids are
//! strings, times are Unix milliseconds (`Long` / `Int64`), a resident's personal fields are
//! plain strings on the phone that owns them, and sets are lists. The core's types keep their
//! invariants (parsed ids, validated points, redacted `Debug`); a conversion from the app's
//! values parses them and fails with [`DoorstepError::InvalidInput`].
//!
//! Here: the mirrored closed vocabularies and the id parsers every area uses. The records, one
//! file per area: `places` (points, photos), `directory` (units, users, categories),
//! `household` (households, residents), `visit`, `report`, `welfare` (and search), `sync`.

use std::collections::HashMap;

use doorstep_core as core;
use doorstep_core::OverdueReport as CoreOverdue;
use doorstep_core::{CategoryId, EventId, HouseholdId, Personal, ReportId, ResidentId, UnitId, UserId, VisitId};

use crate::error::DoorstepError;

mod directory;
mod household;
mod places;
mod report;
mod sync;
mod visit;
mod welfare;

pub use directory::*;
pub use household::*;
pub use places::*;
pub use report::*;
pub use sync::*;
pub use visit::*;
pub use welfare::*;

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
