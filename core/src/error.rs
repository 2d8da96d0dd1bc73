//! The one public error type of the core, with messages a worker's app can show as they are.
//!
//! Messages name fields and ids, never values: a resident's name, phone or ID number must not
//! reach an error message (and from there a log or a crash report).

/// What went wrong, in terms the app (and the worker) can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value given by the caller or found in a record breaks a rule; nothing was written.
    #[error("{field} is not valid: {reason}")]
    InvalidInput { field: &'static str, reason: String },

    /// The record the call refers to does not exist on this phone (yet).
    #[error("no {what} with id {id} on this phone")]
    NotFound { what: &'static str, id: String },

    /// Bytes that should hold a document could not be read; nothing was changed.
    #[error("document {doc} could not be read: {reason}")]
    CorruptDocument { doc: String, reason: String },

    /// Bytes hold a valid document, but not the one they were offered as.
    #[error("document {doc} does not match what was received: {reason}")]
    WrongDocument { doc: String, reason: String },

    /// The local database failed; the last write was not kept, nothing stored before was lost.
    /// `kind` says what the app can tell the worker (free space, try again, the file is damaged).
    #[error("{}: {detail}", kind.message())]
    Storage { kind: StorageKind, detail: String },

    /// A file the app pointed at (a photo) could not be read or copied.
    #[error("a file could not be read or written: {0}")]
    File(String),

    /// The other side of a sync sent bytes that are not a valid message (damaged, cut short, too
    /// large, or from an incompatible version). The session ended; nothing half-done was kept.
    #[error("the sync message could not be read: {0}")]
    Protocol(String),

    /// The other side of a sync (the server, or a phone) refused this phone's message. `code` is
    /// the machine-readable reason from `docs/PROTOCOL.md` (e.g. `unauthorized`, `foreign_actor`,
    /// `forbidden_document`, `too_large`); nothing of the refused message was stored.
    #[error("the sync was refused ({code}): {message}")]
    Refused { code: RefusalCode, message: String },

    /// The server could not be reached, or stopped answering, even after retrying.
    #[error("the server could not be reached: {0}")]
    Network(String),

    /// The deployment's admin revoked this phone (lost or stolen), and the server proved it with
    /// the deployment's key: the phone's data was erased (PROTOCOL.md §8, *Revocation*).
    #[error("this phone was revoked by the deployment's admin; its data on the phone is erased")]
    Revoked(Box<crate::identity::Revocation>),

    /// This phone is not registered to a user in the directory yet: enrol it and sync with the
    /// server before syncing with another phone or asking for history.
    #[error("this phone is not registered to a user in the directory yet; sync with the server first")]
    NotEnrolled,

    /// The database was written by a newer version of the app.
    #[error(
        "the local database is from a newer app version (schema {found}, this app knows up to {known}); update the app"
    )]
    SchemaTooNew { found: i64, known: i64 },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which way the local database failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageKind {
    /// The phone's storage is full: free some space and try again.
    Full,
    /// Another connection holds the database for longer than the store waits (5 s): try again.
    Busy,
    /// The database file is damaged or is not a Doorstep store.
    Corrupt,
    /// Anything else (a row the store cannot read, a store already open elsewhere, ...).
    Other,
}

impl StorageKind {
    fn message(self) -> &'static str {
        match self {
            StorageKind::Full => "the phone's storage is full; free some space and try again (nothing stored was lost)",
            StorageKind::Busy => "the phone's local database is busy; try again in a moment",
            StorageKind::Corrupt => "the phone's local database is damaged",
            StorageKind::Other => "the phone's local database failed",
        }
    }
}

macro_rules! refusal_codes {
    ($($(#[$doc:meta])* $name:ident = $code:literal,)*) => {
        /// Why a message was refused (`docs/PROTOCOL.md` §6): the one list the core, the server,
        /// the client and the bindings use. A code this version does not know (from a newer peer
        /// or server, or an HTTP status the client met) is kept as `Other`.
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum RefusalCode {
            $($(#[$doc])* $name,)*
            Other(String),
        }

        impl RefusalCode {
            pub fn as_str(&self) -> &str {
                match self {
                    $(RefusalCode::$name => $code,)*
                    RefusalCode::Other(code) => code,
                }
            }

            /// The code a peer, the server or an HTTP answer gave.
            pub fn parse(code: &str) -> RefusalCode {
                match code {
                    $($code => RefusalCode::$name,)*
                    other => RefusalCode::Other(other.to_string()),
                }
            }
        }
    };
}

refusal_codes! {
    /// The device's token is unknown or revoked.
    Unauthorized = "unauthorized",
    /// The actor id belongs to another device, another user's, a revoked one, or the server.
    ActorTaken = "actor_taken",
    /// A document the user may not read or write (that document alone).
    ForbiddenDocument = "forbidden_document",
    /// A change no valid signature of its own device covers (docs/PROTOCOL.md §10).
    UnsignedChange = "unsigned_change",
    /// A signature over changes that does not verify: forged or altered.
    BadSignature = "bad_signature",
    /// A change of a revoked device that the server did not hold before (that document alone).
    RevokedAuthor = "revoked_author",
    /// A record names an author who is not the user of the writing device.
    ForgedAuthor = "forged_author",
    RootChanged = "root_changed",
    DeletedRecord = "deleted_record",
    ReplacedRecord = "replaced_record",
    ImmutableRecord = "immutable_record",
    BadRecord = "bad_record",
    /// A change written into a month after it closed (that document alone).
    PeriodClosed = "period_closed",
    /// A change, record or document over its limit (that document alone).
    TooLarge = "too_large",
    /// The other phone is not registered to the user it claims.
    UnknownPeer = "unknown_peer",
    /// A message that could not be read.
    BadMessage = "bad_message",
    /// A device certificate that does not verify against the pinned deployment keys: unknown or
    /// retired issuer, altered, not yet valid or expired.
    BadCertificate = "bad_certificate",
    /// A device's proof that it holds its key does not verify, or the key is not an Ed25519 key.
    BadProof = "bad_proof",
    /// The device was revoked by the deployment's admin.
    Revoked = "revoked",
    /// Any other refusal.
    Refused = "refused",
}

impl RefusalCode {
    /// Whether a refusal with this code concerns one document only ([`Error::refuses_document_only`]).
    pub fn refuses_document_only(&self) -> bool {
        matches!(
            self,
            RefusalCode::ForbiddenDocument
                | RefusalCode::TooLarge
                | RefusalCode::PeriodClosed
                | RefusalCode::RevokedAuthor
        )
    }
}

impl std::fmt::Display for RefusalCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for RefusalCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for RefusalCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Error {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidInput { field, reason: reason.into() }
    }

    pub(crate) fn protocol(reason: impl Into<String>) -> Self {
        Error::Protocol(reason.into())
    }

    pub fn refused(code: RefusalCode, message: impl Into<String>) -> Self {
        Error::Refused { code, message: message.into() }
    }

    /// Whether this refusal concerns one document only, so that the rest of its message is
    /// still taken in: an honest device meets these when the world changed under it (its user
    /// may no longer write a document; a document filled up by merging), never by misbehaving.
    /// Every other refusal refuses the whole message (`docs/PROTOCOL.md` §2).
    pub(crate) fn refuses_document_only(&self) -> bool {
        matches!(self, Error::Refused { code, .. } if code.refuses_document_only())
    }

    /// A failure of the local database other than full, busy or damaged.
    pub(crate) fn storage(detail: impl Into<String>) -> Self {
        Error::Storage { kind: StorageKind::Other, detail: detail.into() }
    }

    pub(crate) fn not_found(what: &'static str, id: impl std::fmt::Display) -> Self {
        Error::NotFound { what, id: id.to_string() }
    }
}

/// SQLite's errors as the store's, for `?`: `conn.execute(…).db()?`. Crate-private, and not a
/// `From` impl, so that rusqlite is no part of the core's public API (a server on another
/// database, or a new rusqlite, changes nothing for the app).
pub(crate) trait Db<T> {
    fn db(self) -> Result<T>;
}

impl<T> Db<T> for rusqlite::Result<T> {
    fn db(self) -> Result<T> {
        self.map_err(Error::from_sqlite)
    }
}

impl Error {
    /// The storage error for one of SQLite's, its kind told apart by SQLite's code.
    fn from_sqlite(e: rusqlite::Error) -> Self {
        // SQLite's messages name tables and constraints, never bound values.
        use rusqlite::ErrorCode as C;
        let kind = match e.sqlite_error_code() {
            Some(C::DiskFull) => StorageKind::Full,
            Some(C::DatabaseBusy | C::DatabaseLocked) => StorageKind::Busy,
            Some(C::DatabaseCorrupt | C::NotADatabase) => StorageKind::Corrupt,
            _ => StorageKind::Other,
        };
        Error::Storage { kind, detail: e.to_string() }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        // Only the kind: paths may carry folder names the app chose.
        Error::File(e.kind().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code of `docs/PROTOCOL.md` §6 the core uses reads back as itself; an unknown one is
    /// kept as it came; only the three per-document codes refuse a document alone.
    #[test]
    fn refusal_codes_read_back_as_themselves() {
        let known = [
            "unauthorized",
            "actor_taken",
            "forbidden_document",
            "unsigned_change",
            "bad_signature",
            "revoked_author",
            "forged_author",
            "root_changed",
            "deleted_record",
            "replaced_record",
            "immutable_record",
            "bad_record",
            "period_closed",
            "too_large",
            "unknown_peer",
            "bad_message",
            "refused",
        ];
        for code in known {
            let parsed = RefusalCode::parse(code);
            assert!(!matches!(parsed, RefusalCode::Other(_)), "{code}");
            assert_eq!(parsed.as_str(), code);
        }
        assert_eq!(RefusalCode::parse("http_429"), RefusalCode::Other("http_429".into()));
        let alone: Vec<_> = known.iter().filter(|c| RefusalCode::parse(c).refuses_document_only()).collect();
        assert_eq!(alone, [&"forbidden_document", &"revoked_author", &"period_closed", &"too_large"]);
    }
}
