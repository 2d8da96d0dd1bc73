//! The store's side of the device's identity (`crate::identity`, PROTOCOL.md §8): its key, made
//! once and kept in the `device` row; the deployment keys it pinned at enrolment; and its
//! certificate, kept only once it verifies against them and names this device.

use rusqlite::{params, Connection, OptionalExtension};

use super::Store;
use crate::error::{Db, Error, RefusalCode, Result};
use crate::identity::{Certificate, DeploymentKey, DeviceKey};
use crate::HOUR_MS;

/// A certificate older than this is renewed at the end of the next successful server sync
/// (a day: certificates are valid for 14 days by default, so a phone that syncs at all keeps
/// one, and a sync costs one request more only once a day).
pub const RENEW_AFTER_MS: i64 = 24 * HOUR_MS;

/// Makes the device's key if the store has none yet (a new store, or one from before keys).
pub(super) fn ensure_device_key(conn: &Connection) -> Result<()> {
    let key: Option<Vec<u8>> = conn.query_row("SELECT signing_key FROM device WHERE id = 1", [], |r| r.get(0)).db()?;
    if key.is_none() {
        let key = DeviceKey::generate()?;
        conn.execute("UPDATE device SET signing_key = ?1 WHERE id = 1 AND signing_key IS NULL", [key.to_stored()])
            .db()?;
    }
    Ok(())
}

impl Store {
    fn device_key(&self) -> Result<DeviceKey> {
        let bytes: Vec<u8> = self
            .conn
            .prepare_cached("SELECT signing_key FROM device WHERE id = 1")
            .db()?
            .query_row([], |r| r.get(0))
            .db()?;
        DeviceKey::from_stored(&bytes)
    }

    /// This device's public key, 64 hexadecimal digits. The private key never leaves the store.
    pub fn device_public_key(&self) -> Result<String> {
        Ok(self.device_key()?.public_hex())
    }

    /// The proof, for `POST /v1/devices`, that this device holds its key: a signature bound to
    /// the enrolment code as it is sent and to this store's actor id.
    pub fn enrolment_proof(&self, code: &str) -> Result<String> {
        Ok(self.device_key()?.enrolment_proof(code, &self.actor_id()))
    }

    /// The proof, for `POST /v1/certificate`, that this device holds its key, bound to its
    /// actor id (the request's token says which device asks).
    pub fn binding_proof(&self) -> Result<String> {
        Ok(self.device_key()?.binding_proof(&self.actor_id()))
    }

    /// The deployment keys this store trusts: pinned at enrolment.
    pub fn deployment_keys(&self) -> Result<Vec<DeploymentKey>> {
        self.device_json("deployment_keys").map(Option::unwrap_or_default)
    }

    /// The certificate the server issued for this device, once one verified.
    pub fn certificate(&self) -> Result<Option<Certificate>> {
        self.device_json("certificate")
    }

    /// Whether the next successful server sync should renew the certificate: there is none, it
    /// is over [`RENEW_AFTER_MS`] old, or it has expired, by this device's clock (a clock behind
    /// renews late; the certificate's 14 days leave room for that).
    pub fn certificate_due(&self) -> Result<bool> {
        let now = self.now();
        Ok(self.certificate()?.is_none_or(|c| now >= c.issued_at + RENEW_AFTER_MS || now >= c.expires_at))
    }

    /// Keeps a certificate the server issued (at enrolment or renewal). It must be signed by a
    /// pinned deployment key and name this device's key and actor id, and the user of the
    /// certificate it replaces. Its validity is not checked against this device's clock, which
    /// may be wrong (the server sets the times; others check them). A store with no pinned keys yet (a new enrolment, or a
    /// store enrolled before devices had keys) pins `keys`, which came with the certificate over
    /// the server's authenticated connection; a store already pinned never takes keys from an
    /// answer, so a server of another deployment is refused. Nothing is kept unless all holds.
    pub fn keep_certificate(&mut self, cert: &Certificate, keys: &[DeploymentKey]) -> Result<()> {
        let pinned = self.deployment_keys()?;
        let trusted = if pinned.is_empty() { keys.to_vec() } else { pinned };
        cert.verify_issuer(&trusted)?;
        if cert.device_key != self.device_public_key()? || cert.actor != self.actor_id() {
            return Err(refused("is for another device"));
        }
        if self.certificate()?.is_some_and(|old| old.user != cert.user) {
            return Err(refused("names another user than this device's"));
        }
        self.conn
            .execute(
                "UPDATE device SET certificate = ?1, deployment_keys = ?2 WHERE id = 1",
                params![json(cert), json(&trusted)],
            )
            .db()?;
        Ok(())
    }

    fn device_json<T: serde::de::DeserializeOwned>(&self, column: &str) -> Result<Option<T>> {
        let text: Option<String> = self
            .conn
            .prepare_cached(&format!("SELECT {column} FROM device WHERE id = 1"))
            .db()?
            .query_row([], |r| r.get(0))
            .optional()
            .db()?
            .flatten();
        text.map(|t| {
            serde_json::from_str(&t)
                .map_err(|e| Error::CorruptDocument { doc: "device".into(), reason: format!("{column}: {e}") })
        })
        .transpose()
    }
}

fn refused(why: &str) -> Error {
    Error::refused(RefusalCode::BadCertificate, format!("the device certificate {why}"))
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("a certificate and keys are plain JSON")
}
