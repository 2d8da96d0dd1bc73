//! The server's error answers: a documented code, its HTTP status, and the JSON body
//! `{"error": code, "message": text}` (docs/OPERATIONS.md, "Errors"), on every route and for
//! every failure, also for requests no handler took (unknown paths, wrong methods).
//!
//! One place decides how each internal error is answered and logged. Messages are for the
//! worker's app: they name fields and limits, never a value a client sent (it could be a
//! resident's data) and never Rust debug text. A storage failure speaks of the server's
//! database; core's own wording is about the phone's.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use doorstep_core::sync::api::ErrorBody;
use doorstep_core::Error as CoreError;

use crate::AuthError;

/// Every error code the server answers with, each with one HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    Unauthorized,
    Revoked,
    BadCode,
    ActorTaken,
    ForbiddenDocument,
    UnsignedChange,
    BadSignature,
    ForgedAuthor,
    RootChanged,
    DeletedRecord,
    ReplacedRecord,
    ImmutableRecord,
    BadRecord,
    Refused,
    TooLarge,
    BadMessage,
    BadProof,
    BadCertificate,
    BadDocument,
    BadRequest,
    UnsupportedMediaType,
    NotFound,
    MethodNotAllowed,
    UnknownUser,
    Busy,
    Timeout,
    Unhealthy,
    Internal,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Unauthorized => "unauthorized",
            Code::Revoked => "revoked",
            Code::BadCode => "bad_code",
            Code::ActorTaken => "actor_taken",
            Code::ForbiddenDocument => "forbidden_document",
            Code::UnsignedChange => "unsigned_change",
            Code::BadSignature => "bad_signature",
            Code::ForgedAuthor => "forged_author",
            Code::RootChanged => "root_changed",
            Code::DeletedRecord => "deleted_record",
            Code::ReplacedRecord => "replaced_record",
            Code::ImmutableRecord => "immutable_record",
            Code::BadRecord => "bad_record",
            Code::Refused => "refused",
            Code::TooLarge => "too_large",
            Code::BadMessage => "bad_message",
            Code::BadProof => "bad_proof",
            Code::BadCertificate => "bad_certificate",
            Code::BadDocument => "bad_document",
            Code::BadRequest => "bad_request",
            Code::UnsupportedMediaType => "unsupported_media_type",
            Code::NotFound => "not_found",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::UnknownUser => "unknown_user",
            Code::Busy => "busy",
            Code::Timeout => "timeout",
            Code::Unhealthy => "unhealthy",
            Code::Internal => "internal",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Code::BadMessage | Code::BadDocument | Code::BadRequest | Code::BadRecord | Code::BadProof => {
                StatusCode::BAD_REQUEST
            }
            Code::Unauthorized | Code::Revoked => StatusCode::UNAUTHORIZED,
            Code::BadCode
            | Code::ForbiddenDocument
            | Code::UnsignedChange
            | Code::BadSignature
            | Code::ForgedAuthor
            | Code::RootChanged
            | Code::DeletedRecord
            | Code::ReplacedRecord
            | Code::ImmutableRecord
            | Code::BadCertificate
            | Code::Refused => StatusCode::FORBIDDEN,
            Code::NotFound | Code::UnknownUser => StatusCode::NOT_FOUND,
            Code::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Code::Timeout => StatusCode::REQUEST_TIMEOUT,
            Code::ActorTaken => StatusCode::CONFLICT,
            Code::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::Busy => StatusCode::TOO_MANY_REQUESTS,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Code::Unhealthy => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// Seconds a `busy` client is asked to wait before it tries again (`Retry-After`).
const RETRY_AFTER_SECS: &str = "1";

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    /// With [`Code::Revoked`]: the signed revocation the phone checks before it erases itself.
    pub revocation: Option<Box<doorstep_core::identity::Revocation>>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(ErrorBody {
            error: self.code.as_str().to_string(),
            message: self.message,
            revocation: self.revocation.map(|r| *r),
        });
        let mut response = (self.code.status(), body).into_response();
        if self.code == Code::Busy {
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static(RETRY_AFTER_SECS));
        }
        response
    }
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into(), revocation: None }
    }

    pub fn unauthorized() -> Self {
        ApiError::new(Code::Unauthorized, "a valid device token is required")
    }

    /// A failure of the server itself: logged with its detail, answered without it.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        ApiError::new(Code::Internal, "the server failed; try again later")
    }

    /// The server's database failed (full disk, read-only file, locked by another writer).
    pub fn storage(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "the server's database failed");
        ApiError::new(Code::Internal, "the server's database failed; try again later")
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Protocol(m) => ApiError::new(Code::BadMessage, m),
            CoreError::Refused { code, message } => {
                use doorstep_core::RefusalCode as R;
                let code = match code {
                    R::UnsignedChange => Code::UnsignedChange,
                    R::BadSignature => Code::BadSignature,
                    R::ForbiddenDocument => Code::ForbiddenDocument,
                    R::ForgedAuthor => Code::ForgedAuthor,
                    R::RootChanged => Code::RootChanged,
                    R::DeletedRecord => Code::DeletedRecord,
                    R::ReplacedRecord => Code::ReplacedRecord,
                    R::ImmutableRecord => Code::ImmutableRecord,
                    R::BadRecord => Code::BadRecord,
                    R::TooLarge => Code::TooLarge,
                    R::ActorTaken => Code::ActorTaken,
                    R::Unauthorized => Code::Unauthorized,
                    R::BadMessage => Code::BadMessage,
                    R::BadProof => Code::BadProof,
                    R::BadCertificate => Code::BadCertificate,
                    R::Revoked => Code::Revoked,
                    // A month's refusal travels in `rejected` (200), never as an HTTP error; a
                    // peer's own codes never reach the server.
                    R::PeriodClosed | R::RevokedAuthor | R::UnknownPeer | R::Refused | R::Other(_) => Code::Refused,
                };
                ApiError::new(code, message)
            }
            e @ (CoreError::CorruptDocument { .. }
            | CoreError::WrongDocument { .. }
            | CoreError::InvalidInput { .. }) => ApiError::new(Code::BadDocument, e.to_string()),
            CoreError::Storage { detail, .. } => ApiError::storage(detail),
            e => ApiError::internal(e),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::BadCode => ApiError::new(Code::BadCode, e.to_string()),
            AuthError::ActorTaken => ApiError::new(Code::ActorTaken, e.to_string()),
            AuthError::Storage(e) => ApiError::storage(e),
        }
    }
}

/// The answer to a path no route has.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(Code::NotFound, "no such path; see docs/PROTOCOL.md §3")
}

/// The answer to a known path asked with a method it does not take.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(Code::MethodNotAllowed, "this path does not take that method; see docs/PROTOCOL.md §3")
}

/// A JSON body that could not be read as the call's request, described by where, not by what.
pub(crate) fn bad_json(e: &serde_json::Error) -> ApiError {
    let what = match e.classify() {
        serde_json::error::Category::Data => "is JSON, but not the fields this call takes",
        _ => "is not valid JSON",
    };
    ApiError::new(
        Code::BadRequest,
        format!("the body {what} (line {}, column {}); see docs/PROTOCOL.md §3", e.line(), e.column()),
    )
}
