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
//! command) need: the domain's types and `Store` with the types of its answers, re-exported
//! here from private modules; the sync engine, its wire format, HTTP client and bodies (`sync`,
//! public because a client of the protocol builds its messages from them); and the report
//! workflow's pure derivation (`workflow`). Test and bench hooks only with the feature `hooks`.
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
pub mod identity;
mod ids;
mod period;
mod personal;
mod photo;
mod report;
mod store;
pub mod sync;
mod text;
mod visit;
pub mod voucher;
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
    assessment_csv,
    query::{
        HouseholdFilter, HouseholdSummary, RejectedRecord, ReportFilter, ReportSummary, SearchHit, TableDump,
        VisitSummary,
    },
    Area, Assessment, Converted, DocumentRefusal, Durability, MergeOutcome, OpenOptions, OverdueReport, RecordRef,
    Released, Scope, Skipped, Store, StoredDocument, SyncStatus, Welfare, MAX_CHANGE_BYTES, MAX_DOCUMENT_BYTES,
    MAX_RECORD_BYTES,
};
pub use visit::{NewVisit, Visit, VisitKind, VisitOutcome};
pub use window::Window;
pub use workflow::{Classification, Derived, Step};
