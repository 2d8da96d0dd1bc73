//! Who a device is, proven rather than claimed (docs/PROTOCOL.md §8).
//!
//! Each store makes an Ed25519 key pair when it is first opened ([`DeviceKey`]); the private half
//! stays in the store's `device` row and no call hands it out. At enrolment the device proves it
//! holds the key ([`DeviceKey::enrolment_proof`]) and the server answers with a [`Certificate`]
//! signed by the deployment's key: this public key, this actor id, this user, for a limited time.
//! The device pins the deployment's public keys ([`DeploymentKey`]) it was given at enrolment and
//! checks every certificate against them offline ([`Certificate::verify`]).
//!
//! What is signed is a fixed byte layout ([`Certificate::signed_bytes`]), not the JSON a
//! certificate travels in, so no JSON encoder's choices can make a valid signature fail or a
//! changed field pass. Every signed message starts with its own context string, so a signature
//! made for one purpose is never accepted for another.
//!
//! Ed25519 is ed25519-dalek's (the RustCrypto project's, audited, constant-time, and already
//! built on the `sha2` this crate uses): signatures are 64 bytes and verify at tens of thousands
//! per second per core, which the signed changes of the trust work will need.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::TryRngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::UnixMillis;
use crate::error::{Error, RefusalCode, Result};
use crate::ids::UserId;
use crate::voucher::Voucher;

/// The longest validity a certificate may claim: a server issues at most 365 days
/// (`certificate_days`); a retired or leaked deployment key cannot vouch for a certificate that
/// lasts years past its retirement.
pub const MAX_CERTIFICATE_LIFETIME_MS: i64 = 400 * crate::DAY_MS;

const CERTIFICATE_CONTEXT: &[u8] = b"doorstep certificate v1\0";
const ENROLMENT_CONTEXT: &[u8] = b"doorstep enrolment v1\0";
const BINDING_CONTEXT: &[u8] = b"doorstep key binding v1\0";
const REVOCATION_CONTEXT: &[u8] = b"doorstep revocation v1\0";
const SESSION_KEY_CONTEXT: &[u8] = b"doorstep peer session key v1\0";

/// A device's private key. Not `Debug`, not `Serialize`, not `Clone`: it leaves the store only
/// as the store's own row.
pub(crate) struct DeviceKey(SigningKey);

impl DeviceKey {
    /// A new key from the operating system's random source.
    pub(crate) fn generate() -> Result<DeviceKey> {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut seed)
            .map_err(|e| Error::File(format!("the system's random source failed: {e}")))?;
        Ok(DeviceKey(SigningKey::from_bytes(&seed)))
    }

    /// The key kept in the store's `device` row (32 bytes).
    pub(crate) fn from_stored(bytes: &[u8]) -> Result<DeviceKey> {
        let seed: [u8; 32] = bytes.try_into().map_err(|_| Error::CorruptDocument {
            doc: "device".into(),
            reason: "the device key is not 32 bytes".into(),
        })?;
        Ok(DeviceKey(SigningKey::from_bytes(&seed)))
    }

    pub(crate) fn to_stored(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public key, as certificates and requests carry it: 64 hexadecimal digits.
    pub(crate) fn public_hex(&self) -> String {
        hex::encode(self.0.verifying_key().as_bytes())
    }

    /// Proof that the device enrolling with `code` as `actor` holds this key: its signature over
    /// the context, the SHA-256 of the code as sent, the actor id and the public key. Bound to
    /// the code, so it cannot be reused for another enrolment.
    pub(crate) fn enrolment_proof(&self, code: &str, actor: &str) -> String {
        hex::encode(self.0.sign(&enrolment_message(code, actor, &self.0.verifying_key())).to_bytes())
    }

    /// Proof that the device writing as `actor` holds this key, for `POST /v1/certificate`
    /// (whose token says which device asks).
    pub(crate) fn binding_proof(&self, actor: &str) -> String {
        hex::encode(self.0.sign(&binding_message(actor, &self.0.verifying_key())).to_bytes())
    }

    /// Proof that the phone holding this key speaks in a phone-to-phone session whose Noise
    /// static key is `session_key` (`crate::sync::channel`): its signature over the context and
    /// that key. The static key is made for the one session, so the proof is good for no other.
    pub(crate) fn session_key_proof(&self, session_key: &[u8]) -> [u8; 64] {
        self.0.sign(&session_key_message(session_key)).to_bytes()
    }

    /// This device's voucher (`crate::voucher`) for its change `latest` of `doc`, written as
    /// `actor`: it covers that change and every earlier one of the device.
    pub(crate) fn vouch(&self, doc: &crate::document::DocId, actor: &str, latest: &automerge::Change) -> Voucher {
        let heads = vec![latest.hash()];
        let seq = latest.seq();
        let signature = self.0.sign(&Voucher::signed_bytes(doc, actor, seq, &heads)).to_bytes().to_vec();
        Voucher { by: actor.to_string(), seq, heads, signature }
    }
}

fn session_key_message(session_key: &[u8]) -> Vec<u8> {
    let mut m = SESSION_KEY_CONTEXT.to_vec();
    field(&mut m, session_key);
    m
}

/// The signature a [`DeviceKey::enrolment_proof`] makes; checked by the server.
pub fn verify_enrolment_proof(code: &str, actor: &str, public_key: &str, proof: &str) -> Result<()> {
    let key = parse_public_key(public_key)?;
    verify(&key, &enrolment_message(code, actor, &key), proof, "the enrolment proof", RefusalCode::BadProof)
}

/// The signature a [`DeviceKey::binding_proof`] makes; checked by the server.
pub fn verify_binding_proof(actor: &str, public_key: &str, proof: &str) -> Result<()> {
    let key = parse_public_key(public_key)?;
    verify(&key, &binding_message(actor, &key), proof, "the key binding proof", RefusalCode::BadProof)
}

fn enrolment_message(code: &str, actor: &str, key: &VerifyingKey) -> Vec<u8> {
    let mut m = ENROLMENT_CONTEXT.to_vec();
    m.extend_from_slice(&Sha256::digest(code.as_bytes()));
    field(&mut m, actor.as_bytes());
    m.extend_from_slice(key.as_bytes());
    m
}

fn binding_message(actor: &str, key: &VerifyingKey) -> Vec<u8> {
    let mut m = BINDING_CONTEXT.to_vec();
    field(&mut m, actor.as_bytes());
    m.extend_from_slice(key.as_bytes());
    m
}

/// A deployment's public key as devices pin it: its id, the key, and when certificates it signs
/// are valid. A key is trusted for certificates issued from `valid_from` until `valid_until`
/// (none: until the deployment says otherwise), so a rotated-out key stops vouching for new
/// certificates without making the old ones fail at once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentKey {
    /// The first 16 hexadecimal digits of the public key's SHA-256.
    pub id: String,
    /// 64 hexadecimal digits.
    pub public_key: String,
    pub valid_from: UnixMillis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<UnixMillis>,
}

impl DeploymentKey {
    pub(crate) fn verifying_key(&self) -> Result<VerifyingKey> {
        parse_public_key(&self.public_key)
    }
}

/// A device certificate: the deployment vouches that `device_key` is the key of the device
/// writing as `actor` for `user`, from `issued_at` until `expires_at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// Unique per certificate (a ULID), so one can be named in a revocation list.
    pub id: String,
    /// The device's public key, 64 hexadecimal digits.
    pub device_key: String,
    /// The device's Automerge actor id, 32 hexadecimal digits.
    pub actor: String,
    pub user: UserId,
    pub issued_at: UnixMillis,
    pub expires_at: UnixMillis,
    /// The [`DeploymentKey::id`] of the key that signed it.
    pub issuer: String,
    /// 128 hexadecimal digits: the issuer's Ed25519 signature over [`Certificate::signed_bytes`].
    pub signature: String,
}

impl Certificate {
    /// What the issuer signs: the context, then each field in order, strings with a four-byte
    /// length, times as eight bytes, big-endian.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut m = CERTIFICATE_CONTEXT.to_vec();
        for text in [&self.id, &self.device_key, &self.actor, self.user.as_str()] {
            field(&mut m, text.as_bytes());
        }
        m.extend_from_slice(&self.issued_at.to_be_bytes());
        m.extend_from_slice(&self.expires_at.to_be_bytes());
        field(&mut m, self.issuer.as_bytes());
        m
    }

    /// Whether a deployment key in `trusted` signed this certificate, while that key was valid,
    /// and the certificate has not expired `at`. Refused with `bad_certificate` and the reason.
    /// A certificate issued after `at` is not refused: `issued_at` is the server's clock, a
    /// phone's may be behind it (by hours, or days when set by hand), and the deployment's
    /// signature already says the certificate is its own.
    pub fn verify(&self, trusted: &[DeploymentKey], at: UnixMillis) -> Result<()> {
        self.verify_issuer(trusted)?;
        let refused = |why: &str| bad_certificate("the device certificate", why);
        if self.expires_at.saturating_sub(self.issued_at) > MAX_CERTIFICATE_LIFETIME_MS {
            return Err(refused("is valid for longer than any deployment issues"));
        }
        if at >= self.expires_at {
            return Err(refused("has expired"));
        }
        Ok(())
    }

    /// Whether the key this certificate vouches for made `proof`, a
    /// [`DeviceKey::session_key_proof`] of `session_key`: the other phone of a session holds the
    /// certified key, and is not replaying a certificate it recorded.
    pub fn verify_session_key(&self, session_key: &[u8], proof: &[u8; 64]) -> Result<()> {
        let refused = || {
            bad_certificate("the device certificate", "is not the other phone's own (its key did not sign the session)")
        };
        let key = parse_public_key(&self.device_key).map_err(|_| refused())?;
        key.verify_strict(&session_key_message(session_key), &Signature::from_bytes(proof)).map_err(|_| refused())
    }

    /// Whether a deployment key in `trusted` signed this certificate while that key was valid,
    /// whatever the time is now: how a device checks its own certificate, since its clock may
    /// be wrong and a wrong clock must not stop it from enrolling. Others check the time.
    pub fn verify_issuer(&self, trusted: &[DeploymentKey]) -> Result<()> {
        let refused = |why: &str| bad_certificate("the device certificate", why);
        let issuer =
            trusted.iter().find(|k| k.id == self.issuer).ok_or_else(|| refused("is signed by an unknown key"))?;
        if self.issued_at < issuer.valid_from || issuer.valid_until.is_some_and(|until| self.issued_at >= until) {
            return Err(refused("was issued while its deployment key was not valid"));
        }
        let key = parse_public_key(&issuer.public_key)?;
        verify(&key, &self.signed_bytes(), &self.signature, "the device certificate", RefusalCode::BadCertificate)
    }
}

/// The deployment's word that the device writing as `actor` is revoked (PROTOCOL.md §8): the
/// server answers a revoked device's requests with it, and the phone erases its data only when
/// this verifies against its pinned keys, so a forged answer (a captive portal, a proxy) cannot
/// make a phone throw away a worker's unsent visits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// The revoked device's actor id, 32 hexadecimal digits.
    pub actor: String,
    pub revoked_at: UnixMillis,
    /// The [`DeploymentKey::id`] of the key that signed it.
    pub issuer: String,
    /// 128 hexadecimal digits: the issuer's signature over [`Revocation::signed_bytes`].
    pub signature: String,
}

impl Revocation {
    /// What the issuer signs: the context, text actor, time revoked_at, text issuer.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut m = REVOCATION_CONTEXT.to_vec();
        field(&mut m, self.actor.as_bytes());
        m.extend_from_slice(&self.revoked_at.to_be_bytes());
        field(&mut m, self.issuer.as_bytes());
        m
    }

    /// Whether a key in `trusted` signed this revocation of the device writing as `actor`.
    pub fn verify(&self, trusted: &[DeploymentKey], actor: &str) -> Result<()> {
        let refused = |why: &str| bad_certificate("the revocation", why);
        if self.actor != actor {
            return Err(refused("is for another device"));
        }
        let issuer =
            trusted.iter().find(|k| k.id == self.issuer).ok_or_else(|| refused("is signed by an unknown key"))?;
        let key = parse_public_key(&issuer.public_key)?;
        verify(&key, &self.signed_bytes(), &self.signature, "the revocation", RefusalCode::BadCertificate)
    }
}

/// The deployment's signing key, on the server: it issues certificates.
pub struct DeploymentSigner(SigningKey);

impl std::fmt::Debug for DeploymentSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("DeploymentSigner").field(&self.id()).finish()
    }
}

impl DeploymentSigner {
    /// A new deployment key from the operating system's random source.
    pub fn generate() -> Result<DeploymentSigner> {
        DeviceKey::generate().map(|k| DeploymentSigner(k.0))
    }

    /// The key from its 32-byte seed, as the server's key file keeps it (64 hexadecimal digits).
    pub fn from_hex(seed: &str) -> Result<DeploymentSigner> {
        let bytes = hex::decode(seed.trim()).ok().filter(|b| b.len() == 32).ok_or_else(|| Error::InvalidInput {
            field: "deployment_key",
            reason: "a deployment key is 64 hexadecimal digits".into(),
        })?;
        DeviceKey::from_stored(&bytes).map(|k| DeploymentSigner(k.0))
    }

    /// The seed, for the key file. Whoever reads it can vouch for any device.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }

    pub fn id(&self) -> String {
        key_id(&self.0.verifying_key())
    }

    /// This key as devices pin it, trusted from `valid_from`.
    pub fn public(&self, valid_from: UnixMillis) -> DeploymentKey {
        DeploymentKey {
            id: self.id(),
            public_key: hex::encode(self.0.verifying_key().as_bytes()),
            valid_from,
            valid_until: None,
        }
    }

    /// A certificate for the device with `device_key` writing as `actor` for `user`.
    pub fn issue(
        &self,
        device_key: &str,
        actor: &str,
        user: &UserId,
        issued_at: UnixMillis,
        expires_at: UnixMillis,
    ) -> Result<Certificate> {
        parse_public_key(device_key)?;
        let mut cert = Certificate {
            id: ulid::Ulid::new().to_string(),
            device_key: device_key.to_ascii_lowercase(),
            actor: actor.to_ascii_lowercase(),
            user: user.clone(),
            issued_at,
            expires_at,
            issuer: self.id(),
            signature: String::new(),
        };
        cert.signature = hex::encode(self.0.sign(&cert.signed_bytes()).to_bytes());
        Ok(cert)
    }
}

impl DeploymentSigner {
    /// The deployment's voucher (`crate::voucher`) for the server's `heads` of `doc`, at `at`:
    /// it covers every change the server holds there, whoever wrote it.
    pub fn vouch(&self, doc: &crate::document::DocId, heads: &[automerge::ChangeHash], at: UnixMillis) -> Voucher {
        let by = Voucher::deployment_signer(&self.id());
        let seq = u64::try_from(at).unwrap_or(0);
        let signature = self.0.sign(&Voucher::signed_bytes(doc, &by, seq, heads)).to_bytes().to_vec();
        Voucher { by, seq, heads: heads.to_vec(), signature }
    }

    /// The deployment's word that the device writing as `actor` was revoked at `revoked_at`.
    pub fn revoke(&self, actor: &str, revoked_at: UnixMillis) -> Revocation {
        let mut r =
            Revocation { actor: actor.to_ascii_lowercase(), revoked_at, issuer: self.id(), signature: String::new() };
        r.signature = hex::encode(self.0.sign(&r.signed_bytes()).to_bytes());
        r
    }
}

/// A `bad_certificate` refusal: `what` (a certificate, a revocation) and why it is refused.
pub(crate) fn bad_certificate(what: &str, why: &str) -> Error {
    Error::refused(RefusalCode::BadCertificate, format!("{what} {why}"))
}

fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// The key of a public key in 64 hexadecimal digits.
pub(crate) fn verifying_key(text: &str) -> Result<VerifyingKey> {
    parse_public_key(text)
}

/// An Ed25519 public key as devices and the directory write it: 64 lowercase hexadecimal digits.
pub(crate) fn public_key_hex(text: &str) -> Result<String> {
    parse_public_key(&text.to_ascii_lowercase()).map(|k| hex::encode(k.as_bytes()))
}

fn parse_public_key(text: &str) -> Result<VerifyingKey> {
    let bad = || Error::refused(RefusalCode::BadProof, "a public key is 64 hexadecimal digits of an Ed25519 key");
    let bytes: [u8; 32] = hex::decode(text).ok().and_then(|b| b.try_into().ok()).ok_or_else(bad)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| bad())
}

fn verify(key: &VerifyingKey, message: &[u8], signature: &str, what: &str, code: RefusalCode) -> Result<()> {
    let bytes: [u8; 64] = hex::decode(signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| Error::refused(code.clone(), format!("{what}'s signature is not 128 hexadecimal digits")))?;
    key.verify_strict(message, &Signature::from_bytes(&bytes))
        .map_err(|_| Error::refused(code, format!("{what}'s signature does not verify")))
}

/// A length-prefixed field (four bytes, big-endian): no two different field lists make the same
/// bytes. The texts signed are short; a request body's limit keeps every one far below 4 GiB.
fn field(m: &mut Vec<u8>, bytes: &[u8]) {
    m.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    m.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUED: UnixMillis = 1_795_392_000_000;
    const DAY: UnixMillis = crate::clock::DAY_MS;

    fn user() -> UserId {
        UserId::parse("U-li-na").unwrap()
    }

    fn issued() -> (DeploymentSigner, DeviceKey, Certificate) {
        let (deployment, device) = (DeploymentSigner::generate().unwrap(), DeviceKey::generate().unwrap());
        let cert = deployment
            .issue(&device.public_hex(), "0123456789abcdef0123456789abcdef", &user(), ISSUED, ISSUED + 14 * DAY)
            .unwrap();
        (deployment, device, cert)
    }

    fn refusal(r: Result<()>) -> (RefusalCode, String) {
        match r {
            Err(Error::Refused { code, message }) => (code, message),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_certificate_verifies_against_the_key_that_signed_it_while_it_is_valid() {
        let (deployment, _, cert) = issued();
        let trusted = [deployment.public(ISSUED - DAY)];
        cert.verify(&trusted, ISSUED + DAY).unwrap();
        let (code, message) = refusal(cert.verify(&trusted, ISSUED + 14 * DAY));
        assert_eq!((code, message.as_str()), (RefusalCode::BadCertificate, "the device certificate has expired"));
        // A phone whose clock is behind the server's still takes a fresh certificate.
        cert.verify(&trusted, ISSUED - 2 * DAY).unwrap();
    }

    #[test]
    fn every_field_of_a_certificate_is_covered_by_its_signature() {
        let (deployment, _, cert) = issued();
        let other_device = DeviceKey::generate().unwrap();
        let trusted = [deployment.public(0)];
        let altered: Vec<Certificate> = vec![
            Certificate { id: ulid::Ulid::new().to_string(), ..cert.clone() },
            Certificate { device_key: other_device.public_hex(), ..cert.clone() },
            Certificate { actor: "fedcba9876543210fedcba9876543210".into(), ..cert.clone() },
            Certificate { user: UserId::parse("U-zhang-wei").unwrap(), ..cert.clone() },
            Certificate { issued_at: cert.issued_at + 1, ..cert.clone() },
            Certificate { expires_at: cert.expires_at + 365 * DAY, ..cert.clone() },
        ];
        for a in altered {
            assert_ne!(a, cert);
            let (code, message) = refusal(a.verify(&trusted, ISSUED + DAY));
            assert_eq!(code, RefusalCode::BadCertificate, "{a:?}");
            assert!(message.contains("does not verify"), "{message}");
        }
        // A signature by another deployment under this one's id.
        let forger = DeploymentSigner::generate().unwrap();
        let forged =
            Certificate { signature: hex::encode(forger.0.sign(&cert.signed_bytes()).to_bytes()), ..cert.clone() };
        assert!(refusal(forged.verify(&trusted, ISSUED + DAY)).1.contains("does not verify"));
        // Signed by a key the device does not trust.
        let elsewhere = forger.issue(&cert.device_key, &cert.actor, &cert.user, ISSUED, ISSUED + DAY).unwrap();
        assert!(refusal(elsewhere.verify(&trusted, ISSUED + 1)).1.contains("unknown key"));
        // A garbled signature is a refusal, not a panic.
        let garbled = Certificate { signature: "zz".into(), ..cert };
        assert!(refusal(garbled.verify(&trusted, ISSUED + DAY)).1.contains("hexadecimal"));
    }

    #[test]
    fn a_deployment_key_vouches_only_for_certificates_issued_while_it_was_valid() {
        let (deployment, _, cert) = issued();
        let retired = DeploymentKey { valid_until: Some(ISSUED), ..deployment.public(0) };
        assert!(refusal(cert.verify(&[retired], ISSUED + DAY)).1.contains("was issued while"));
        let later = deployment.public(ISSUED + 1);
        assert!(refusal(cert.verify(&[later], ISSUED + DAY)).1.contains("was issued while"));
        cert.verify(&[DeploymentKey { valid_until: Some(ISSUED + 1), ..deployment.public(ISSUED) }], ISSUED + DAY)
            .unwrap();
    }

    #[test]
    fn an_enrolment_proof_is_bound_to_its_code_actor_and_key() {
        let device = DeviceKey::generate().unwrap();
        let actor = "0123456789abcdef0123456789abcdef";
        let proof = device.enrolment_proof("K7Q2-M9XD", actor);
        verify_enrolment_proof("K7Q2-M9XD", actor, &device.public_hex(), &proof).unwrap();
        let other = DeviceKey::generate().unwrap();
        for (code, actor, key) in [
            ("K7Q2-M9XE", actor, device.public_hex()),
            ("K7Q2-M9XD", "fedcba9876543210fedcba9876543210", device.public_hex()),
            ("K7Q2-M9XD", actor, other.public_hex()),
        ] {
            let (code, _) = refusal(verify_enrolment_proof(code, actor, &key, &proof));
            assert_eq!(code, RefusalCode::BadProof);
        }
        // A binding proof is not an enrolment proof, nor the other way round.
        let binding = device.binding_proof(actor);
        assert!(verify_enrolment_proof("K7Q2-M9XD", actor, &device.public_hex(), &binding).is_err());
        verify_binding_proof(actor, &device.public_hex(), &binding).unwrap();
        assert!(verify_binding_proof(actor, &device.public_hex(), &proof).is_err());
        assert!(verify_binding_proof("fedcba9876543210fedcba9876543210", &device.public_hex(), &binding).is_err());
        assert_eq!(refusal(verify_enrolment_proof("c", actor, "not hex", &proof)).0, RefusalCode::BadProof);
    }

    #[test]
    fn a_revocation_verifies_only_for_its_device_and_deployment() {
        let deployment = DeploymentSigner::generate().unwrap();
        let actor = "0123456789abcdef0123456789abcdef";
        let revocation = deployment.revoke(actor, ISSUED);
        let trusted = [deployment.public(0)];
        revocation.verify(&trusted, actor).unwrap();
        assert!(refusal(revocation.verify(&trusted, "fedcba9876543210fedcba9876543210")).1.contains("another device"));
        let moved = Revocation { revoked_at: ISSUED + 1, ..revocation.clone() };
        assert!(refusal(moved.verify(&trusted, actor)).1.contains("does not verify"));
        let forged = DeploymentSigner::generate().unwrap().revoke(actor, ISSUED);
        assert!(refusal(forged.verify(&trusted, actor)).1.contains("unknown key"));
        let disguised = Revocation { issuer: deployment.id(), ..forged };
        assert!(refusal(disguised.verify(&trusted, actor)).1.contains("does not verify"));
    }

    #[test]
    fn a_deployment_key_survives_its_key_file() {
        let deployment = DeploymentSigner::generate().unwrap();
        let again = DeploymentSigner::from_hex(&format!("{}\n", deployment.to_hex())).unwrap();
        assert_eq!(again.id(), deployment.id());
        assert!(DeploymentSigner::from_hex("abcd").is_err());
        assert!(!format!("{deployment:?}").contains(&deployment.to_hex()));
    }
}
