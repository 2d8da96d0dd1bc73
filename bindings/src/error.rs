//! The two error enums the apps see: [`DoorstepError`] for the store's calls and [`SyncError`]
//! for syncing. Each variant is a kind of failure an app handles differently; its message is the
//! core's, written to be shown to a worker as it is, and never holds a resident's name, phone
//! or ID number (the core's messages name fields and ids, never values).
//!
//! They are "flat" uniffi errors: Kotlin gets `DoorstepException.InvalidInput(message)` and so
//! on, a sealed class whose `message` is the readable text (a non-flat error's Kotlin message
//! would be its fields' debug form).

use doorstep_core::{Error, StorageKind};

/// A store call failed; nothing was written.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum DoorstepError {
    /// A value the app passed breaks a rule (empty address, latitude 91, score 6, an event the
    /// report's workflow does not allow now). Show the message; let the worker correct it.
    #[error("{0}")]
    InvalidInput(String),
    /// The record does not exist on this phone (yet): it may arrive with the next sync.
    #[error("{0}")]
    NotFound(String),
    /// Bytes offered as a document could not be read, or are another document.
    #[error("{0}")]
    CorruptData(String),
    /// The phone's database failed; the last write was not kept, nothing stored before was lost.
    #[error("{0}")]
    Storage(String),
    /// The phone's storage is full: ask the worker to free some space, then try again.
    #[error("{0}")]
    StorageFull(String),
    /// Another connection (a background job of the app) held the database too long: try again.
    #[error("{0}")]
    Busy(String),
    /// A photo file the app pointed at could not be read or copied.
    #[error("{0}")]
    File(String),
    /// The database was written by a newer app version: the app must be updated.
    #[error("{0}")]
    SchemaTooNew(String),
    /// A bug in the core (a caught panic). The call did nothing; the store was reopened from
    /// disk and is usable.
    #[error("{0}")]
    Internal(String),
}

/// A sync (with the server or another phone) or a device enrolment failed. What the sync had
/// already taken in is kept; nothing half-done is.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum SyncError {
    /// This phone's device is not in the directory yet: enrol it and sync with the server first.
    #[error("{0}")]
    NotEnrolled(String),
    /// A sync with the server is already running on this store (or this session's previous
    /// message is still being handled): wait for it.
    #[error("{0}")]
    AlreadySyncing(String),
    /// The app passed an unusable argument (a malformed server address, a month not written
    /// `YYYY-MM`, a span the wrong way round) or named a record this phone does not hold.
    #[error("{0}")]
    InvalidInput(String),
    /// The server does not accept this device's token (never issued, or revoked): enrol again.
    #[error("{0}")]
    Unauthorized(String),
    /// The deployment's admin revoked this phone and the server proved it: the store's data is
    /// erased and it is a new device (PROTOCOL.md §8), which may enrol again with a new code.
    #[error("{0}")]
    Revoked(String),
    /// The other side refused the message (a document this user may not change, another
    /// device's changes, too large, ...). Retrying the same sync will not help.
    #[error("{0}")]
    Refused(String),
    /// The other side sent bytes that are not a valid sync message.
    #[error("{0}")]
    Protocol(String),
    /// The server could not be reached after retrying: try again later.
    #[error("{0}")]
    Network(String),
    /// The phone's own database failed during the sync.
    #[error("{0}")]
    Storage(String),
    /// A bug in the core (a caught panic); the store was reopened from disk.
    #[error("{0}")]
    Internal(String),
}

impl From<Error> for DoorstepError {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        match e {
            Error::InvalidInput { .. } => DoorstepError::InvalidInput(message),
            Error::NotFound { .. } => DoorstepError::NotFound(message),
            Error::CorruptDocument { .. } | Error::WrongDocument { .. } | Error::Protocol(_) => {
                DoorstepError::CorruptData(message)
            }
            Error::Storage { kind: StorageKind::Full, .. } => DoorstepError::StorageFull(message),
            Error::Storage { kind: StorageKind::Busy, .. } => DoorstepError::Busy(message),
            Error::Storage { kind: StorageKind::Corrupt, .. } => DoorstepError::CorruptData(message),
            Error::Storage { kind: StorageKind::Other, .. } => DoorstepError::Storage(message),
            Error::File(_) => DoorstepError::File(message),
            Error::SchemaTooNew { .. } => DoorstepError::SchemaTooNew(message),
            // Store calls make no network requests; should one of these arise, it is still a
            // readable refusal rather than a crash.
            Error::Refused { .. } | Error::Network(_) | Error::NotEnrolled | Error::Revoked(_) => {
                DoorstepError::InvalidInput(message)
            }
        }
    }
}

impl From<Error> for SyncError {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        match e {
            Error::InvalidInput { .. } | Error::NotFound { .. } => SyncError::InvalidInput(message),
            Error::NotEnrolled => SyncError::NotEnrolled(message),
            Error::Revoked(_) => SyncError::Revoked(message),
            Error::Refused { code: doorstep_core::RefusalCode::Unauthorized, .. } => SyncError::Unauthorized(message),
            Error::Refused { .. } => SyncError::Refused(message),
            Error::Protocol(_) | Error::CorruptDocument { .. } | Error::WrongDocument { .. } => {
                SyncError::Protocol(message)
            }
            Error::Network(_) => SyncError::Network(message),
            Error::Storage { .. } | Error::File(_) | Error::SchemaTooNew { .. } => SyncError::Storage(message),
        }
    }
}

impl From<DoorstepError> for SyncError {
    fn from(e: DoorstepError) -> Self {
        match e {
            DoorstepError::InvalidInput(m) | DoorstepError::NotFound(m) => SyncError::InvalidInput(m),
            DoorstepError::CorruptData(m) => SyncError::Protocol(m),
            DoorstepError::Storage(m)
            | DoorstepError::StorageFull(m)
            | DoorstepError::Busy(m)
            | DoorstepError::File(m)
            | DoorstepError::SchemaTooNew(m) => SyncError::Storage(m),
            DoorstepError::Internal(m) => SyncError::Internal(m),
        }
    }
}

/// The message of a caught panic. Panics come from the core's own code (an index, an
/// `expect`), whose texts hold no personal data.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown cause".to_string());
    format!("internal error in the Doorstep core ({what}); nothing was written and the store was reopened")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_core_error_lands_in_the_variant_an_app_acts_on() {
        let unauthorized = SyncError::from(Error::refused(doorstep_core::RefusalCode::Unauthorized, "no valid token"));
        assert!(matches!(unauthorized, SyncError::Unauthorized(m) if m.contains("unauthorized")));
        let forbidden = SyncError::from(Error::refused(doorstep_core::RefusalCode::ForbiddenDocument, "grid/G2"));
        assert!(matches!(forbidden, SyncError::Refused(_)));
        let invalid = DoorstepError::from(Error::InvalidInput { field: "lat", reason: "must be -90..90".into() });
        assert!(matches!(invalid, DoorstepError::InvalidInput(m) if m == "lat is not valid: must be -90..90"));
        assert!(matches!(SyncError::from(DoorstepError::Internal("x".into())), SyncError::Internal(_)));
        assert!(
            matches!(SyncError::from(Error::NotEnrolled), SyncError::NotEnrolled(m) if m.contains("sync with the server"))
        );
        let address = Error::InvalidInput { field: "server address", reason: "relative URL without a base".into() };
        assert!(matches!(SyncError::from(address), SyncError::InvalidInput(_)));
    }
}
