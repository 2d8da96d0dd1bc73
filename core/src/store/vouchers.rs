//! The signatures kept with each document (`crate::voucher`, docs/PROTOCOL.md §10): of each
//! signer, the one that covers most (the highest sequence number), so that changes this store
//! took from another replica can travel on with the signature that proves who wrote them.
//! This phone's own voucher is made when it sends changes, from its latest change then.

use automerge::{ActorId, AutoCommit, Change};
use rusqlite::{params, Connection, OptionalExtension};

use super::Store;
use crate::document::DocId;
use crate::error::{Db, Result};
use crate::ids::UserId;
use crate::voucher::{DeviceSigner, Voucher};

impl Store {
    /// What the directory says of the device writing as `actor`: its user, its key, and whether
    /// it was revoked (or deleted). `None`: no such device.
    pub(crate) fn device_signer(&self, actor: &ActorId) -> Result<Option<DeviceSigner>> {
        let row: Option<(String, Option<String>, Option<i64>, bool)> = self
            .conn
            .prepare_cached("SELECT user_id, public_key, revoked_at, deleted FROM devices WHERE actor = ?1")
            .db()?
            .query_row([actor.to_hex_string()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()
            .db()?;
        let Some((user, key, revoked_at, deleted)) = row else { return Ok(None) };
        Ok(Some(DeviceSigner {
            user: UserId::parse(&user)?,
            key: key.and_then(|k| crate::identity::verifying_key(&k).ok()),
            revoked: revoked_at.is_some() || deleted,
        }))
    }

    /// The vouchers kept with `doc`.
    pub(crate) fn vouchers(&self, doc: &DocId) -> Result<Vec<Voucher>> {
        let mut stmt =
            self.conn.prepare_cached("SELECT signer, seq, heads, signature FROM vouchers WHERE doc_id = ?1").db()?;
        let rows = stmt
            .query_map([doc.to_string()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, Vec<u8>>(2)?, r.get::<_, Vec<u8>>(3)?))
            })
            .db()?;
        let mut out = Vec::new();
        for row in rows {
            let (by, seq, heads, signature) = row.db()?;
            out.push(Voucher { by, seq: seq as u64, heads: super::decode_heads(&heads)?, signature });
        }
        Ok(out)
    }

    /// This device's voucher for its change `latest` of `doc` (the newest it sends): the one
    /// kept if it signs that change, else a new signature, kept for next time if it covers more.
    pub(crate) fn own_voucher(&mut self, doc: &DocId, latest: &Change) -> Result<Voucher> {
        let by = self.actor_id();
        let kept = self.vouchers(doc)?.into_iter().find(|v| v.by == by && v.heads == [latest.hash()]);
        if let Some(v) = kept {
            return Ok(v);
        }
        let v = self.device_key()?.vouch(doc, &by, latest);
        put(&self.conn, doc, std::slice::from_ref(&v))?;
        Ok(v)
    }
}

/// Of `vouchers`, those whose every head `am` holds: what is worth keeping with it.
pub(super) fn held(am: &mut AutoCommit, vouchers: &[Voucher]) -> Vec<Voucher> {
    vouchers.iter().filter(|v| v.heads.iter().all(|h| am.get_change_by_hash(h).is_some())).cloned().collect()
}

/// Keeps `vouchers` with `doc`, each in place of its signer's kept one if it covers more.
pub(super) fn put(conn: &Connection, doc: &DocId, vouchers: &[Voucher]) -> Result<()> {
    if vouchers.is_empty() {
        return Ok(());
    }
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO vouchers (doc_id, signer, seq, heads, signature) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (doc_id, signer) DO UPDATE SET seq = excluded.seq, heads = excluded.heads,
             signature = excluded.signature WHERE excluded.seq > vouchers.seq",
        )
        .db()?;
    let id = doc.to_string();
    for v in vouchers {
        let seq = i64::try_from(v.seq).unwrap_or(i64::MAX);
        stmt.execute(params![id, v.by, seq, super::encode_heads(&v.heads), v.signature]).db()?;
    }
    Ok(())
}

#[cfg(feature = "hooks")]
impl Store {
    /// Hook: this device's signature over its change `latest` of `doc`, as its app would send it
    /// (nothing is kept): for tests and benches that build sync messages by hand, the way a
    /// modified app with a genuine key would.
    pub fn vouch_for_tests(&self, doc: &DocId, latest: &Change) -> Result<Voucher> {
        Ok(self.device_key()?.vouch(doc, &self.actor_id(), latest))
    }
}

#[cfg(feature = "hooks")]
impl Store {
    /// Hook: the signatures kept with `doc` (what a modified app would put beside a document it
    /// sends whole).
    pub fn vouchers_for_tests(&self, doc: &DocId) -> Result<Vec<Voucher>> {
        self.vouchers(doc)
    }
}
