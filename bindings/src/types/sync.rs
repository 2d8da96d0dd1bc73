//! Sync: progress, status, the window, enrolment, peers, changes and rejected records.

use super::*;

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
    /// Documents that left the phone when the session ended: outside its window (older visits
    /// come back with `fetchVisits`), or no longer readable by its user after a move to another
    /// unit. The server holds every change of them.
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

impl From<core::sync::api::Registration> for Registration {
    fn from(r: core::sync::api::Registration) -> Self {
        Registration { device_id: r.device_id, user_id: r.user_id, token: r.token }
    }
}

/// The certificate the deployment issued for this device (PROTOCOL.md §8). A sync renews it once
/// it is a day old; the app may warn a worker whose phone has not synced before `expires_at`.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct DeviceCertificate {
    pub id: String,
    pub user_id: String,
    /// Milliseconds since the epoch, as the server's clock set them.
    pub issued_at: i64,
    pub expires_at: i64,
}

impl From<core::identity::Certificate> for DeviceCertificate {
    fn from(c: core::identity::Certificate) -> Self {
        DeviceCertificate {
            id: c.id,
            user_id: c.user.as_str().to_string(),
            issued_at: c.issued_at,
            expires_at: c.expires_at,
        }
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
