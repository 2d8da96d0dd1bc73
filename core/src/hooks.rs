//! Test and bench hooks, behind the feature `hooks`: what the test suites (through
//! `doorstep-testkit`) and `doorstep bench` reach below the facade for. Building a store file of
//! an older schema, the derived tables' names, the baselines' DDL and SQL, the wire's heads digest.
//! The app's library never has them: `doorstep-ffi` does not enable the feature (the `doorstep`
//! command does, for its benches). The store's own hooks are methods of `Store` behind the same
//! feature (`queued_changes_for_tests`, `limit_pages_for_tests`).

use crate::error::Result;
use crate::store::schema;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = schema::CURRENT;

/// The derived tables, in the order a rebuild clears them.
pub const DERIVED_TABLES: &[&str] = schema::DERIVED_TABLES;

/// DDL of the visits and households tables exactly as the store creates them (the plain-SQLite
/// baselines of `doorstep bench store`).
pub const VISITS_DDL: &str = schema::VISITS_DDL;
pub const HOUSEHOLDS_DDL: &str = schema::HOUSEHOLDS_DDL;

/// The overdue reports' query exactly as the store runs it (the plain-SQLite baseline of
/// `doorstep bench workflow`).
pub const OVERDUE_SQL: &str = crate::store::OVERDUE_SQL;

/// The newest schema version whose upgrade rebuilds the derived tables (the crash test kills an
/// upgrade from it).
pub fn newest_rebuilding_upgrade() -> i64 {
    schema::newest_rebuilding_upgrade()
}

/// Brings the SQLite file on `conn` to schema version `target` without rebuilding anything:
/// the upgrade tests build every older version with it.
pub fn migrate_to(conn: &mut rusqlite::Connection, target: i64) -> Result<()> {
    schema::migrate_to(conn, target)
}

/// The digest of `heads` as a `heads` entry of the wire carries it (PROTOCOL.md §2).
pub fn heads_digest(heads: &[automerge::ChangeHash]) -> Vec<u8> {
    crate::sync::wire::heads_digest(heads)
}

/// The genesis change of `doc` (PROTOCOL.md §1) as saved bytes: what another client starts a
/// document from (`doorstep bench upgrade` writes an old-layout grid document on it).
pub fn genesis(doc: &crate::DocId) -> Vec<u8> {
    crate::document::genesis(doc).save()
}

/// A fresh device key's public half and its enrolment proof for `code` and an `actor` of the
/// test's choosing: what a client that is not a `Store` (another implementation, an attacker
/// claiming someone's actor id) sends to `POST /v1/devices`. The key is thrown away.
pub fn enrolment_proof_for(code: &str, actor: &str) -> Result<(String, String)> {
    let key = crate::identity::DeviceKey::generate()?;
    Ok((key.public_hex(), key.enrolment_proof(code, actor)))
}

/// The signature (PROTOCOL.md §10) of the device key made from `seed`, as the device writing as
/// `by`, over its change `latest` of `doc`: what a modified app with its own genuine key sends,
/// or an attacker's key claiming another device's actor.
pub fn vouch_with_seed(
    seed: &[u8; 32],
    doc: &crate::DocId,
    by: &str,
    latest: &automerge::Change,
) -> Result<crate::voucher::Voucher> {
    Ok(crate::identity::DeviceKey::from_stored(seed)?.vouch(doc, by, latest))
}

/// A device key made from `seed`, its public half: for a test's [`Forged`] identity.
pub fn device_public_key_of(seed: &[u8; 32]) -> Result<String> {
    Ok(crate::identity::DeviceKey::from_stored(seed)?.public_hex())
}

/// An identity a modified app presents in a peer session's handshake: any certificate (another
/// phone's, recorded; one of another deployment; one altered), proved with the device key made
/// from `seed`, which may or may not be the key the certificate names.
pub struct Forged {
    pub certificate: crate::identity::Certificate,
    pub seed: [u8; 32],
}

impl crate::sync::channel::Own for Forged {
    fn own_certificate(&self) -> Result<crate::identity::Certificate> {
        Ok(self.certificate.clone())
    }

    fn prove_session_key(&self, session_key: &[u8]) -> Result<[u8; 64]> {
        Ok(crate::identity::DeviceKey::from_stored(&self.seed)?.session_key_proof(session_key))
    }
}

/// One side of a peer session driven by hand, as a modified app would drive it: the channel of
/// `docs/PROTOCOL.md` §9 (this build's own), with any identity, carrying any batch.
pub struct HandPeer(crate::sync::channel::Channel);

impl Default for HandPeer {
    fn default() -> Self {
        HandPeer(crate::sync::channel::Channel::new())
    }
}

impl HandPeer {
    /// As initiator: the handshake's first message.
    pub fn hello(&mut self) -> Result<Vec<u8>> {
        self.0.hello()
    }

    /// As initiator: reads the responder's proof, checked against `store`'s pinned keys and
    /// clock; returns the proved (actor, user).
    pub fn read_proof(&mut self, store: &crate::Store, reply: &[u8]) -> Result<(String, crate::UserId)> {
        let p = self.0.read_proof(store, reply)?;
        Ok((p.actor, p.user))
    }

    /// As responder: answers an initiator's first message, presenting `store`'s identity or a
    /// forged one.
    pub fn answer_hello(&mut self, own: &Identity, hello: &[u8]) -> Result<Vec<u8>> {
        self.0.answer_hello(own.as_own(), hello)
    }

    /// Encrypts a batch's bytes, whatever they are (the initiator's first also finishes the
    /// handshake with `own`).
    pub fn seal(&mut self, own: &Identity, batch: &[u8]) -> Result<Vec<u8>> {
        self.0.seal(own.as_own(), batch)
    }

    /// Decrypts the other side's answer: a refusal (in the clear or not) is its error.
    pub fn open(&mut self, reply: &[u8]) -> Result<crate::sync::wire::Batch> {
        if let Some(e) = crate::sync::channel::plain_refusal(reply) {
            return Err(e);
        }
        let batch = crate::sync::wire::Batch::decode(&self.0.open(reply)?)?;
        match batch.refused {
            Some(r) => Err(crate::Error::refused(crate::RefusalCode::parse(&r.code), r.message)),
            None => Ok(batch),
        }
    }
}

/// Whose identity a [`HandPeer`] presents.
pub enum Identity<'a> {
    Store(&'a crate::Store),
    Forged(Forged),
}

impl Identity<'_> {
    fn as_own(&self) -> &dyn crate::sync::channel::Own {
        match self {
            Identity::Store(s) => *s,
            Identity::Forged(f) => f,
        }
    }
}
