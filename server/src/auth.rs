//! Devices and their tokens, and the enrolment codes an admin hands out.
//!
//! These tables live in the server's SQLite file beside the store's (their own connection, their
//! own `server_schema` version). Tokens and codes are stored only as SHA-256 digests, so a copy
//! of the database does not let anyone sign in. Which *user* a device belongs to is also written
//! into the directory document (`Store::enrol_device`), so every phone learns it.

use std::path::Path;

use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

/// A device the server knows, as authenticated from its token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    pub id: String,
    pub user: String,
    /// The Automerge actor id (hex) the device writes with.
    pub actor: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the enrolment code is unknown, used or expired")]
    BadCode,
    #[error("this actor id is already registered to another device")]
    ActorTaken,
    #[error("the server's database failed: {0}")]
    Storage(#[from] rusqlite::Error),
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS server_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS server_devices (
    id TEXT PRIMARY KEY, user_id TEXT NOT NULL, actor TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
    token_sha256 BLOB NOT NULL UNIQUE, created_at INTEGER NOT NULL, revoked_at INTEGER
);
CREATE TABLE IF NOT EXISTS enrolments (
    code_sha256 BLOB PRIMARY KEY, user_id TEXT NOT NULL, expires_at INTEGER NOT NULL, used_at INTEGER
);
"#;

pub struct Auth {
    conn: Connection,
}

impl Auth {
    pub fn open(path: &Path) -> Result<Auth, AuthError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "busy_timeout", 5_000)?;
        conn.execute_batch(SCHEMA)?;
        Ok(Auth { conn })
    }

    /// A one-time code with which a device of `user` can register until `expires_at`.
    pub fn issue_code(&self, user: &str, expires_at: i64) -> Result<String, AuthError> {
        let code = random_code();
        self.conn.execute(
            "INSERT INTO enrolments (code_sha256, user_id, expires_at) VALUES (?1, ?2, ?3)",
            params![digest(&normalise(&code)), user, expires_at],
        )?;
        Ok(code)
    }

    /// Registers a device with an enrolment code; returns it and its bearer token (shown once).
    pub fn register(&mut self, code: &str, actor: &str, name: &str, now: i64) -> Result<(Device, String), AuthError> {
        let tx = self.conn.transaction()?;
        let user: Option<String> = tx
            .query_row(
                "SELECT user_id FROM enrolments WHERE code_sha256 = ?1 AND used_at IS NULL AND expires_at > ?2",
                params![digest(&normalise(code)), now],
                |r| r.get(0),
            )
            .optional()?;
        let user = user.ok_or(AuthError::BadCode)?;
        let taken: bool =
            tx.query_row("SELECT EXISTS(SELECT 1 FROM server_devices WHERE actor = ?1)", [actor], |r| r.get(0))?;
        if taken {
            return Err(AuthError::ActorTaken);
        }
        let device = Device { id: ulid::Ulid::new().to_string(), user, actor: actor.to_string() };
        let token = random_hex(32);
        tx.execute(
            "INSERT INTO server_devices (id, user_id, actor, name, token_sha256, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![device.id, device.user, device.actor, name, digest(&token), now],
        )?;
        tx.execute(
            "UPDATE enrolments SET used_at = ?2 WHERE code_sha256 = ?1",
            params![digest(&normalise(code)), now],
        )?;
        tx.commit()?;
        Ok((device, token))
    }

    /// The device a bearer token belongs to, unless revoked.
    pub fn device_of_token(&self, token: &str) -> Result<Option<Device>, AuthError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT id, user_id, actor FROM server_devices WHERE token_sha256 = ?1 AND revoked_at IS NULL",
            )?
            .query_row([digest(token)], |r| Ok(Device { id: r.get(0)?, user: r.get(1)?, actor: r.get(2)? }))
            .optional()?)
    }

    /// Stops a device's token from working (a lost phone). Returns whether it existed.
    pub fn revoke(&self, device: &str, now: i64) -> Result<bool, AuthError> {
        Ok(self.conn.execute(
            "UPDATE server_devices SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![device, now],
        )? == 1)
    }

    pub fn check(&self) -> Result<(), AuthError> {
        self.conn.query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }
}

fn digest(s: &str) -> Vec<u8> {
    Sha256::digest(s.as_bytes()).to_vec()
}

/// Codes are read aloud and typed on phones: upper case, no dashes, no confusable letters.
fn normalise(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect()
}

fn random_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTVWXYZ23456789";
    let mut bytes = [0u8; 12];
    rand::rng().fill_bytes(&mut bytes);
    let chars: Vec<char> = bytes.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect();
    chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-")
}

fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_registers_one_device_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut auth = Auth::open(&dir.path().join("s.sqlite")).unwrap();
        let code = auth.issue_code("U1", 1_000).unwrap();
        assert!(matches!(auth.register(&code, "aa", "phone", 1_000), Err(AuthError::BadCode)), "expired");
        let code = auth.issue_code("U1", 2_000).unwrap();
        let (device, token) = auth.register(&code.to_lowercase(), "aa", "phone", 1_000).unwrap();
        assert_eq!(device.user, "U1");
        assert!(matches!(auth.register(&code, "bb", "phone", 1_000), Err(AuthError::BadCode)), "used");
        assert_eq!(auth.device_of_token(&token).unwrap(), Some(device.clone()));
        assert_eq!(auth.device_of_token("not-a-token").unwrap(), None);
        let code = auth.issue_code("U2", 2_000).unwrap();
        assert!(matches!(auth.register(&code, "aa", "phone", 1_000), Err(AuthError::ActorTaken)));
        assert!(auth.revoke(&device.id, 1_500).unwrap());
        assert_eq!(auth.device_of_token(&token).unwrap(), None);
    }
}
