//! The store's side of the device's identity (`crate::identity`, PROTOCOL.md §8): its key, made
//! once and kept in the `device` row; the deployment keys it pinned at enrolment; and its
//! certificate, kept only once it verifies against them and names this device.

use rusqlite::{params, Connection, OptionalExtension};

use super::Store;
use crate::error::{Db, Error, Result};
use crate::identity::{Certificate, DeploymentKey, DeviceKey, Revocation};
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
    pub(super) fn device_key(&self) -> Result<DeviceKey> {
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

    /// This device's proof that it speaks in the phone-to-phone session with Noise static key
    /// `session_key` (`crate::sync::channel`).
    pub(crate) fn session_key_proof(&self, session_key: &[u8]) -> Result<[u8; 64]> {
        Ok(self.device_key()?.session_key_proof(session_key))
    }

    /// The deployment keys this store trusts: pinned at enrolment.
    pub fn deployment_keys(&self) -> Result<Vec<DeploymentKey>> {
        self.device_json("deployment_keys").map(Option::unwrap_or_default)
    }

    /// The certificate the server issued for this device, once one verified.
    pub fn certificate(&self) -> Result<Option<Certificate>> {
        self.device_json("certificate")
    }

    /// Whether the next successful server sync should renew the certificate: there is none, or
    /// it was kept [`RENEW_AFTER_MS`] ago or more by this device's clock, or that clock went back
    /// since. Measured from when this device kept it, never against the server's clock.
    pub fn certificate_due(&self) -> Result<bool> {
        let kept_at: Option<i64> = self
            .conn
            .prepare_cached("SELECT certificate_kept_at FROM device WHERE id = 1 AND certificate IS NOT NULL")
            .db()?
            .query_row([], |r| r.get(0))
            .optional()
            .db()?
            .flatten();
        // Half a short certificate's validity, so that it is renewed before it runs out.
        let after =
            self.certificate()?.map_or(RENEW_AFTER_MS, |c| RENEW_AFTER_MS.min((c.expires_at - c.issued_at) / 2));
        let now = self.now();
        Ok(kept_at.is_none_or(|kept| now < kept || now >= kept + after))
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
        if let Some(old) = self.certificate()? {
            if old.user != cert.user {
                return Err(refused("names another user than this device's"));
            }
            if cert.issued_at < old.issued_at {
                return Err(refused("was issued before the one this device holds (an old answer, replayed?)"));
            }
        }
        self.conn
            .execute(
                "UPDATE device SET certificate = ?1, deployment_keys = ?2, certificate_kept_at = ?3 WHERE id = 1",
                params![json(cert), json(&trusted), self.now()],
            )
            .db()?;
        Ok(())
    }

    /// Erases this phone's data when `revocation`, the server's answer to a revoked device,
    /// verifies against the pinned deployment keys for this device; refused otherwise, and then
    /// nothing is erased (a forged answer never costs a worker unsent visits).
    pub fn erase_revoked(&mut self, revocation: &Revocation) -> Result<()> {
        revocation.verify(&self.deployment_keys()?, &self.actor_id())?;
        self.erase()
    }

    /// Erases every document, change, query-table row and sync state, and the photo folder, and
    /// makes the device new: a new actor id and key, no certificate, nothing pinned, so it can
    /// enrol again with a new code (and an old revocation, naming the old actor, no longer
    /// applies to it). The photos go first; the rows in one transaction with `secure_delete` on
    /// (deleted content is overwritten in its pages), the full-text indexes rebuilt (their
    /// segments would keep the terms); then the file is rebuilt (`VACUUM`) and the WAL emptied.
    /// Best effort beyond that: the file system and the flash below may keep old blocks.
    pub fn erase(&mut self) -> Result<()> {
        match std::fs::remove_dir_all(&self.photo_dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::File(format!("the photo folder could not be erased: {e}")))
            }
            _ => {}
        }
        self.conn.pragma_update(None, "secure_delete", true).db()?;
        let tables: Vec<String> = self
            .conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
            .db()?
            .query_map([], |r| r.get(0))
            .db()?
            .collect::<rusqlite::Result<_>>()
            .db()?;
        // Full-text tables are emptied through themselves, not their shadow tables.
        let virtual_tables = super::schema::full_text_tables(&self.conn)?;
        let actor = automerge::ActorId::random();
        let key = DeviceKey::generate()?;
        let tx = self.conn.transaction().db()?;
        for name in &tables {
            let shadow = virtual_tables.iter().any(|v| name.starts_with(&format!("{v}_")));
            if name != "device" && !shadow {
                tx.execute(&format!("DELETE FROM \"{name}\""), []).db()?;
            }
        }
        super::schema::rebuild_full_text(&tx, &virtual_tables)?;
        tx.execute(
            "UPDATE device SET actor = ?1, signing_key = ?2, certificate = NULL, deployment_keys = NULL,
                 certificate_kept_at = NULL WHERE id = 1",
            params![actor.to_bytes(), key.to_stored()],
        )
        .db()?;
        tx.commit().db()?;
        self.actor = actor;
        self.forget_in_memory()?;
        self.conn.execute_batch("VACUUM;").db()?;
        self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).db()?;
        Ok(())
    }

    /// What the store holds in memory of the documents, after they were erased.
    fn forget_in_memory(&mut self) -> Result<()> {
        self.docs.clear();
        self.rules = super::projection::load_rules(&self.conn)?;
        self.own_author.replace(None);
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
    crate::identity::bad_certificate("the device certificate", why)
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("a certificate and keys are plain JSON")
}
