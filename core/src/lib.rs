//! Doorstep's shared core: the grid worker's domain (households, visits, reports), kept in
//! Automerge documents and persisted in a local SQLite store whose query tables the app's screens
//! read.
//!
//! Why it exists: every phone writes locally first and merges later, so the domain lives in CRDT
//! documents, partitioned by who may see them (`directory`, `register/<micro-grid>`,
//! `visits/<micro-grid>/<month>`, `report/<id>`), while the
//! screens read plain SQLite tables derived from those documents.
//!
//! The public API is what the facade's callers (the bindings, the server, the `doorstep`
//! command) need: the domain's types re-exported here from private modules, `Store` with the
//! types of its answers (`store`), the sync engine and its HTTP client and bodies (`sync`), and
//! the report workflow's pure derivation (`workflow`); test and bench hooks only with the
//! feature `hooks`.
//!
//! What it must never do: open radios or listen on sockets (it only connects out to the sync server), expose raw Automerge types in its public API,
//! or write a resident's name, phone or ID number into a log line or an error message.

#[macro_use]
mod enums;

mod chunks;
mod clock;
mod directory;
mod document;
mod error;
mod geo;
#[cfg(feature = "hooks")]
pub mod hooks;
mod household;
mod ids;
mod period;
mod personal;
mod photo;
mod report;
pub mod store;
pub mod sync;
mod text;
mod visit;
mod window;
pub mod workflow;

pub use clock::{Clock, FixedClock, SystemClock, UnixMillis, DAY_MS, HOUR_MS};
pub use directory::{Category, NewCategory, NewUnit, NewUser, Role, Unit, UnitKind, User, VisitRules};
pub use document::{Collection, DocId};
pub use error::{Error, RefusalCode, Result, StorageKind};
pub use geo::GeoPoint;
pub use household::{
    Address, CareTag, Household, HouseholdUpdate, NewHousehold, NewResident, Relation, Resident, ResidentUpdate,
    RiskLevel,
};
pub use ids::{ActorHex, CategoryId, EventId, HouseholdId, ReportId, ResidentId, UnitId, UserId, VisitId};
pub use period::Period;
pub use personal::Personal;
pub use photo::PhotoMeta;
pub use report::{NewReport, NewReportEvent, Report, ReportEvent, ReportEventKind, ReportStatus};
pub use store::{
    query::{HouseholdFilter, HouseholdSummary, RejectedRecord, ReportFilter, ReportSummary, SearchHit, VisitSummary},
    Converted, DocumentRefusal, Durability, MergeOutcome, OpenOptions, RecordRef, Store, SyncStatus,
};
pub use visit::{NewVisit, Visit, VisitKind, VisitOutcome};
pub use window::Window;
pub use workflow::{Classification, Derived, Step};
