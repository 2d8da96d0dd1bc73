//! The JSON bodies of the HTTP API (PROTOCOL.md §3), defined once: the server reads the requests
//! and writes the answers with these types, and the phone's and the operator's clients write
//! and read them with the same ones, so neither side can drift from the other. (The sync body
//! itself is binary: `wire`.) The end-to-end tests keep writing literal JSON, so that a renamed
//! field here fails them.

use serde::{Deserialize, Serialize};

use crate::error::{Error, RefusalCode};
use crate::identity::{Certificate, DeploymentKey, Revocation};

/// `POST /v1/devices`: a device enrols with a one-time code.
#[derive(Clone, Serialize, Deserialize)]
pub struct DeviceRequest {
    pub code: String,
    /// The device's Automerge actor id, 32 hexadecimal digits.
    pub actor: String,
    /// A label for the operator's list ("Li Na's phone"); optional, cut to 100 characters.
    #[serde(default)]
    pub name: String,
    /// The device's Ed25519 public key, 64 hexadecimal digits (PROTOCOL.md §8).
    #[serde(default)]
    pub public_key: String,
    /// The device's signature proving it holds that key, bound to `code` and `actor`
    /// (`Store::enrolment_proof`), 128 hexadecimal digits.
    #[serde(default)]
    pub proof: String,
}

/// The answer to `POST /v1/devices`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub device_id: String,
    pub user_id: String,
    /// The bearer token of every later request; the app keeps it in the platform's keystore.
    pub token: String,
    /// The device's certificate, signed by a deployment key (none from a server older than keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<Certificate>,
    /// The deployment's public keys; the device pins them.
    #[serde(default)]
    pub deployment_keys: Vec<DeploymentKey>,
}

/// `POST /v1/certificate` (with the device's token): a fresh certificate for the device's key.
/// A device that enrolled before devices had keys binds its key with this call.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CertificateRequest {
    /// The device's Ed25519 public key, 64 hexadecimal digits.
    pub public_key: String,
    /// `Store::binding_proof` for the device's id, 128 hexadecimal digits.
    pub proof: String,
}

/// The answer to `POST /v1/certificate`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateAnswer {
    pub certificate: Certificate,
    pub deployment_keys: Vec<DeploymentKey>,
}

// Without the secrets: a registration may be logged, its token never; an enrolment code (a
// device token for whoever uses it first) neither.
impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("device_id", &self.device_id)
            .field("user_id", &self.user_id)
            .field("certificate", &self.certificate.as_ref().map(|c| &c.id))
            .finish()
    }
}

impl std::fmt::Debug for DeviceRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceRequest").field("actor", &self.actor).field("name", &self.name).finish()
    }
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolment").field("expires_at", &self.expires_at).finish()
    }
}

/// `POST /v1/admin/enrolments`: a one-time code for a device of `user_id`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EnrolmentRequest {
    pub user_id: String,
    /// How long the code can be used; at most [`MAX_ENROLMENT_HOURS`].
    #[serde(default = "default_valid_hours")]
    pub valid_hours: u32,
}

/// The hours an enrolment code is valid when the request does not say.
pub const DEFAULT_ENROLMENT_HOURS: u32 = 72;
/// The longest an enrolment code is valid (30 days), whatever the request says.
pub const MAX_ENROLMENT_HOURS: u32 = 24 * 30;

fn default_valid_hours() -> u32 {
    DEFAULT_ENROLMENT_HOURS
}

/// The answer to `POST /v1/admin/enrolments`.
#[derive(Clone, Serialize, Deserialize)]
pub struct Enrolment {
    pub code: String,
    /// Milliseconds since the epoch.
    pub expires_at: i64,
}

/// `POST /v1/admin/users/{id}/unit`: the office moves a worker to another unit. Their phones let
/// go of what they may no longer read at their next sync (PROTOCOL.md §4, *Moved workers*).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MoveRequest {
    pub unit: String,
}

/// The answer to `POST /v1/admin/documents?doc=<id>`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Imported {
    /// Automerge changes the server did not have.
    pub new_changes: usize,
}

/// Every error answer, on every route: a documented code (PROTOCOL.md §6) and a message a
/// worker can read, never personal data.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
    /// With `revoked`: the deployment's signed word that this device is revoked (PROTOCOL.md §8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation: Option<Revocation>,
}

impl ErrorBody {
    /// An error answer with `status` and `body` as the core's error: [`Error::Refused`] with the
    /// body's code and message, or with `http_<status>` when the body is not an error body (a
    /// proxy's page, a cut connection).
    pub fn refusal(status: u16, body: &[u8]) -> Error {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(ErrorBody { error, revocation: Some(r), .. }) if error == RefusalCode::Revoked.as_str() => {
                Error::Revoked(Box::new(r))
            }
            Ok(b) => Error::refused(RefusalCode::parse(&b.error), b.message),
            Err(_) => {
                Error::refused(RefusalCode::Other(format!("http_{status}")), format!("the server answered {status}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_logged_neither_as_tokens_nor_as_codes() {
        let deployment = crate::identity::DeploymentSigner::generate().unwrap();
        let user = crate::UserId::parse("U1").unwrap();
        let certificate = deployment.issue(&deployment.public(0).public_key, "00ff", &user, 0, 1).unwrap();
        let r = Registration {
            device_id: "D1".into(),
            user_id: "U1".into(),
            token: "secret-token-42".into(),
            certificate: Some(certificate),
            deployment_keys: vec![deployment.public(0)],
        };
        let shown = format!("{r:?}");
        assert!(shown.contains("D1") && !shown.contains("secret-token-42"), "{shown}");
        let d = DeviceRequest {
            code: "code-7781".into(),
            actor: "00ff".into(),
            name: "Li Na's phone".into(),
            public_key: String::new(),
            proof: String::new(),
        };
        let shown = format!("{d:?}");
        assert!(shown.contains("00ff") && !shown.contains("code-7781"), "{shown}");
        let e = Enrolment { code: "code-7781".into(), expires_at: 5 };
        let shown = format!("{e:?}");
        assert!(shown.contains('5') && !shown.contains("code-7781"), "{shown}");
    }

    /// What the server takes when the request leaves out what may be left out.
    #[test]
    fn left_out_fields_take_their_documented_defaults() {
        let e: EnrolmentRequest = serde_json::from_str(r#"{"user_id": "U1"}"#).unwrap();
        assert_eq!(e.valid_hours, DEFAULT_ENROLMENT_HOURS);
        let d: DeviceRequest = serde_json::from_str(r#"{"code": "c", "actor": "a"}"#).unwrap();
        assert_eq!((d.name.as_str(), d.public_key.as_str(), d.proof.as_str()), ("", "", ""));
    }

    #[test]
    fn an_error_answer_becomes_a_refusal_with_its_code() {
        let body = br#"{"error": "forbidden_document", "message": "not yours"}"#;
        match ErrorBody::refusal(403, body) {
            Error::Refused { code, message } => {
                assert_eq!((code, message.as_str()), (RefusalCode::ForbiddenDocument, "not yours"))
            }
            e => panic!("{e:?}"),
        }
        match ErrorBody::refusal(502, b"<html>Bad Gateway</html>") {
            Error::Refused { code, .. } => assert_eq!(code, RefusalCode::Other("http_502".into())),
            e => panic!("{e:?}"),
        }
    }
}
