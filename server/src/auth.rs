//! Devices and their tokens, and the enrolment codes an admin hands out.
//!
//! These tables live in the server's SQLite file beside the store's (their own connection, their
//! own `server_schema` version). Tokens and codes are stored only as SHA-256 digests, so a copy
//! of the database does not let anyone sign in. Which *user* a device belongs to is also written
//! into the directory document (`Store::enrol_device`), so every phone learns it.
//!
//! That directory write is another connection's transaction, so registering takes three steps
//! and must never leave a working token for a device the directory does not know, nor a used
//! code without a working device: [`Auth::begin_registration`] holds the code and the actor id
//! (nothing is used up, no token exists), the caller writes the directory, then
//! [`Auth::finish_registration`] uses the code and creates the device and its token in one
//! transaction. On a failure in between the caller lets go of the hold
//! ([`Auth::abandon_registration`]); after a crash the hold lapses by itself
//! ([`HOLD_MS`]), and the code works again.
//!
//! Every write transaction here is `IMMEDIATE`: the store's connection writes the same file, and
//! a transaction that read first and then tried to write would fail with "database is locked"
//! instead of waiting for it.

use std::path::Path;

use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use sha2::{Digest, Sha256};

/// A device the server knows, as authenticated from its token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    pub id: String,
    pub user: String,
    /// The Automerge actor id (hex) the device writes with.
    pub actor: String,
    /// The device's Ed25519 public key (hex), proven at enrolment; `None` for a device that
    /// enrolled before devices had keys, until it binds one (`POST /v1/certificate`).
    pub public_key: Option<String>,
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
    token_sha256 BLOB NOT NULL UNIQUE, created_at INTEGER NOT NULL, revoked_at INTEGER, public_key TEXT
);
CREATE TABLE IF NOT EXISTS enrolments (
    code_sha256 BLOB PRIMARY KEY, user_id TEXT NOT NULL, expires_at INTEGER NOT NULL, used_at INTEGER
);
CREATE TABLE IF NOT EXISTS enrolment_holds (
    code_sha256 BLOB PRIMARY KEY, actor TEXT NOT NULL UNIQUE, hold_id TEXT NOT NULL UNIQUE, held_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS server_health (id INTEGER PRIMARY KEY CHECK (id = 1), checked_at INTEGER NOT NULL);
"#;

/// How long a registration holds its code and actor id before the hold lapses (it only outlives
/// its request when the server crashed between the steps).
pub const HOLD_MS: i64 = 120_000;

/// A registration under way: its code and actor id are held for it.
#[derive(Clone, Debug)]
pub struct Hold {
    id: String,
    code_sha256: Vec<u8>,
    /// The user the code was issued for.
    pub user: String,
    pub actor: String,
}

pub struct Auth {
    conn: Connection,
}

impl Auth {
    pub fn open(path: &Path) -> Result<Auth, AuthError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "busy_timeout", 5_000)?;
        let mut conn = conn;
        // One transaction holding the write lock: processes opening one old database at once
        // add the column once.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(SCHEMA)?;
        // Devices' keys came after the table: a database from before gets the column once.
        let has_key: bool = tx.query_row(
            "SELECT count(*) FROM pragma_table_info('server_devices') WHERE name = 'public_key'",
            [],
            |r| r.get(0),
        )?;
        if !has_key {
            tx.execute("ALTER TABLE server_devices ADD COLUMN public_key TEXT", [])?;
        }
        tx.commit()?;
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

    /// First step of registering a device: checks the code and holds it, and the actor id, for
    /// this registration. Nothing is used up and no token exists yet.
    pub fn begin_registration(&mut self, code: &str, actor: &str, now: i64) -> Result<Hold, AuthError> {
        let code_sha256 = digest(&normalise(code));
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM enrolment_holds WHERE held_at <= ?1", [now - HOLD_MS])?;
        let user: Option<String> = tx
            .query_row(
                "SELECT user_id FROM enrolments WHERE code_sha256 = ?1 AND used_at IS NULL AND expires_at > ?2
                 AND NOT EXISTS (SELECT 1 FROM enrolment_holds WHERE code_sha256 = ?1)",
                params![code_sha256, now],
                |r| r.get(0),
            )
            .optional()?;
        let user = user.ok_or(AuthError::BadCode)?;
        let taken: bool = tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM server_devices WHERE actor = ?1)
                 OR EXISTS(SELECT 1 FROM enrolment_holds WHERE actor = ?1)",
            [actor],
            |r| r.get(0),
        )?;
        if taken {
            return Err(AuthError::ActorTaken);
        }
        let id = ulid::Ulid::new().to_string();
        tx.execute(
            "INSERT INTO enrolment_holds (code_sha256, actor, hold_id, held_at) VALUES (?1, ?2, ?3, ?4)",
            params![code_sha256, actor, id, now],
        )?;
        tx.commit()?;
        Ok(Hold { id, code_sha256, user, actor: actor.to_string() })
    }

    /// Last step, once the directory knows the device: uses the code and creates the device and
    /// its bearer token (shown once), in one transaction. Fails with `BadCode` if the hold
    /// lapsed and another registration took the code meanwhile.
    pub fn finish_registration(
        &mut self,
        hold: &Hold,
        name: &str,
        public_key: &str,
        now: i64,
    ) -> Result<(Device, String), AuthError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let held = tx.execute("DELETE FROM enrolment_holds WHERE hold_id = ?1", [&hold.id])?;
        let used = tx.execute(
            "UPDATE enrolments SET used_at = ?2 WHERE code_sha256 = ?1 AND used_at IS NULL",
            params![hold.code_sha256, now],
        )?;
        if held != 1 || used != 1 {
            return Err(AuthError::BadCode);
        }
        let device = Device {
            id: ulid::Ulid::new().to_string(),
            user: hold.user.clone(),
            actor: hold.actor.clone(),
            public_key: Some(public_key.to_string()),
        };
        let token = random_hex(32);
        tx.execute(
            "INSERT INTO server_devices (id, user_id, actor, name, token_sha256, created_at, public_key)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![device.id, device.user, device.actor, name, digest(&token), now, public_key],
        )?;
        tx.commit()?;
        Ok((device, token))
    }

    /// Lets go of a registration that failed between its steps: the code works again.
    pub fn abandon_registration(&mut self, hold: &Hold) -> Result<(), AuthError> {
        self.conn.execute("DELETE FROM enrolment_holds WHERE hold_id = ?1", [&hold.id])?;
        Ok(())
    }

    /// The device a bearer token belongs to, unless revoked.
    pub fn device_of_token(&self, token: &str) -> Result<Option<Device>, AuthError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT id, user_id, actor, public_key FROM server_devices WHERE token_sha256 = ?1 AND revoked_at IS NULL",
            )?
            .query_row([digest(token)], |r| {
                Ok(Device { id: r.get(0)?, user: r.get(1)?, actor: r.get(2)?, public_key: r.get(3)? })
            })
            .optional()?)
    }

    /// Whether any device enrolled with a key (so a deployment key exists somewhere).
    pub fn has_keyed_devices(&self) -> Result<bool, AuthError> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM server_devices WHERE public_key IS NOT NULL)",
            [],
            |r| r.get(0),
        )?)
    }

    /// The actor and the time of revocation of the device whose token this is, if it was revoked.
    pub fn revoked_token(&self, token: &str) -> Result<Option<(String, i64)>, AuthError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT actor, revoked_at FROM server_devices WHERE token_sha256 = ?1 AND revoked_at IS NOT NULL",
            )?
            .query_row([digest(token)], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    /// Records the key of a device that enrolled before devices had keys. A device's key, once
    /// recorded, is never replaced: returns whether `public_key` is now the device's key.
    pub fn bind_key(&self, device: &str, public_key: &str) -> Result<bool, AuthError> {
        self.conn.execute(
            "UPDATE server_devices SET public_key = ?2 WHERE id = ?1 AND public_key IS NULL AND revoked_at IS NULL",
            params![device, public_key],
        )?;
        let key: Option<Option<String>> = self
            .conn
            .query_row("SELECT public_key FROM server_devices WHERE id = ?1", [device], |r| r.get(0))
            .optional()?;
        Ok(key.flatten().as_deref() == Some(public_key))
    }

    /// Stops a device's token from working (a lost phone), keeping the first revocation's time.
    /// Returns the device's actor (hex) if the device exists, revoked now or before.
    pub fn revoke(&self, device: &str, now: i64) -> Result<Option<String>, AuthError> {
        self.conn.execute(
            "UPDATE server_devices SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![device, now],
        )?;
        Ok(self.conn.query_row("SELECT actor FROM server_devices WHERE id = ?1", [device], |r| r.get(0)).optional()?)
    }

    /// Whether the server's database takes a write: one small row rewritten in a transaction
    /// that must get the write lock, as every sync's write must.
    pub fn check_writes(&mut self, now: i64) -> Result<(), AuthError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO server_health (id, checked_at) VALUES (1, ?1)
             ON CONFLICT(id) DO UPDATE SET checked_at = excluded.checked_at",
            [now],
        )?;
        tx.commit()?;
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
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_from_before_keys_gets_the_column_once_and_keeps_its_devices() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.sqlite");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE server_devices (
                     id TEXT PRIMARY KEY, user_id TEXT NOT NULL, actor TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
                     token_sha256 BLOB NOT NULL UNIQUE, created_at INTEGER NOT NULL, revoked_at INTEGER);
                 INSERT INTO server_devices VALUES ('D1', 'U1', '00ff', 'phone', x'01', 1, NULL);",
            )
            .unwrap();
        let auth = Auth::open(&path).unwrap();
        assert!(!auth.has_keyed_devices().unwrap());
        assert!(auth.bind_key("D1", "ab").unwrap());
        assert!(!auth.bind_key("D1", "cd").unwrap(), "a bound key is never replaced");
        assert!(auth.has_keyed_devices().unwrap());
        drop(auth);
        Auth::open(&path).unwrap();
    }

    fn register(auth: &mut Auth, code: &str, actor: &str, now: i64) -> Result<(Device, String), AuthError> {
        let hold = auth.begin_registration(code, actor, now)?;
        auth.finish_registration(&hold, "phone", "ab", now)
    }

    #[test]
    fn a_code_registers_one_device_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut auth = Auth::open(&dir.path().join("s.sqlite")).unwrap();
        let code = auth.issue_code("U1", 1_000).unwrap();
        assert!(matches!(register(&mut auth, &code, "aa", 1_000), Err(AuthError::BadCode)), "expired");
        let code = auth.issue_code("U1", 2_000).unwrap();
        let (device, token) = register(&mut auth, &code.to_lowercase(), "aa", 1_000).unwrap();
        assert_eq!(device.user, "U1");
        assert!(matches!(register(&mut auth, &code, "bb", 1_000), Err(AuthError::BadCode)), "used");
        assert_eq!(auth.device_of_token(&token).unwrap(), Some(device.clone()));
        assert_eq!(auth.device_of_token("not-a-token").unwrap(), None);
        let code = auth.issue_code("U2", 2_000).unwrap();
        assert!(matches!(register(&mut auth, &code, "aa", 1_000), Err(AuthError::ActorTaken)));
        assert_eq!(auth.revoke(&device.id, 1_500).unwrap(), Some(device.actor.clone()));
        assert_eq!(auth.revoke("no-such-device", 1_500).unwrap(), None);
        assert_eq!(auth.device_of_token(&token).unwrap(), None);
    }

    #[test]
    fn a_held_code_and_actor_wait_for_their_registration_and_a_lapsed_hold_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let mut auth = Auth::open(&dir.path().join("s.sqlite")).unwrap();
        let code = auth.issue_code("U1", 1_000_000).unwrap();
        let other = auth.issue_code("U1", 1_000_000).unwrap();
        let hold = auth.begin_registration(&code, "aa", 1_000).unwrap();
        // While it is held, neither the code nor the actor id can start another registration.
        assert!(matches!(auth.begin_registration(&code, "bb", 1_000), Err(AuthError::BadCode)));
        assert!(matches!(auth.begin_registration(&other, "aa", 1_000), Err(AuthError::ActorTaken)));
        // Let go (the directory write failed): the code works again.
        auth.abandon_registration(&hold).unwrap();
        let hold = auth.begin_registration(&code, "aa", 1_000).unwrap();
        // A crash leaves the hold; it lapses, and a registration that finishes late is refused.
        let again = auth.begin_registration(&code, "cc", 1_000 + HOLD_MS).unwrap();
        assert!(matches!(auth.finish_registration(&hold, "phone", "ab", 1_000 + HOLD_MS), Err(AuthError::BadCode)));
        let (device, token) = auth.finish_registration(&again, "phone", "ab", 1_000 + HOLD_MS).unwrap();
        assert_eq!(auth.device_of_token(&token).unwrap(), Some(device));
    }
}
