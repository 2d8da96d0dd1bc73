//! What the store remembers about the peers it syncs with, and how a peer's bytes are taken in.
//!
//! * `document_heads`: each document's current heads and its place in this store's change feed,
//!   updated in the transaction of every change. They let a sync find
//!   which documents differ (and the server answer "what changed since N") without loading any.
//! * `peer_docs`: per peer and document, the heads both sides were last known to share (the
//!   persistent part of `automerge::sync::State`). A document is *dirty* for a peer when its heads
//!   differ from these.
//! * `peers`: the server's change-feed cursor, when the last sync succeeded, its last error.
//!
//! Taking a peer's bytes in is two steps, so that the sync engine can check what came in before it
//! is kept: [`Store::absorb`] applies them to the in-memory document, [`Store::keep`] persists
//! the new changes and updates the query tables in one transaction, or [`Store::discard`] drops
//! the in-memory copy so that the next read reloads what is on disk.

use std::collections::HashMap;

use automerge::{sync, AutoCommit, ChangeHash, ReadDoc};
use rusqlite::{params, OptionalExtension};

use super::{decode_heads, encode_heads, DocumentRepository, MergeOutcome, Persist, Store};
use crate::clock::UnixMillis;
use crate::document::Collection;
use crate::document::{touched_records, Doc, DocId, Touched, HEADER_KEY};
use crate::error::{Db, Error, Result};
use crate::ids::{EventId, HouseholdId, ReportId, VisitId};
use crate::store::query::lookup;
use crate::voucher::Voucher;

/// The peer id under which a phone keeps its state with the sync server.
pub const SERVER_PEER: &str = "server";

/// What the app shows about syncing with the server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncStatus {
    /// Changes written on this phone that the server has not acknowledged yet.
    pub pending_changes: usize,
    /// Documents holding such changes (or changes from other phones the server may lack).
    pub pending_documents: usize,
    /// When a sync with the server last completed.
    pub last_sync_at: Option<UnixMillis>,
    /// Why the last sync with the server failed, if it did (cleared by the next success).
    pub last_error: Option<String>,
    /// Documents the server refused in the last sessions while taking the rest, with why (a
    /// document is listed until a session ends without refusing it). They stay pending.
    pub refused_documents: Vec<DocumentRefusal>,
}

/// One document the other side of a sync refused to take from this phone, and why. Its changes
/// stay on this phone (and it stays pending) until a later session is accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentRefusal {
    pub doc: DocId,
    /// `forbidden_document` (this phone's user may no longer change it) or `too_large` (it
    /// reached a limit).
    pub code: String,
    pub message: String,
}

/// A record whose "reached the server" receipt the app asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordRef {
    Household(HouseholdId),
    Visit(VisitId),
    Report(ReportId),
    ReportEvent(ReportId, EventId),
}

impl Store {
    // ---- bookkeeping ----------------------------------------------------------------------

    /// The heads of a stored document, from its row (no load). `None`: not stored here. Every
    /// stored document has the row: it is written in the transaction of each change, and the
    /// upgrade to schema 3 fills it in for documents stored before.
    pub(crate) fn stored_heads(&self, id: &DocId) -> Result<Option<Vec<ChangeHash>>> {
        self.repository().heads(id)
    }

    pub(crate) fn peer_heads(&self, peer: &str, id: &DocId) -> Result<Option<Vec<ChangeHash>>> {
        let h: Option<Vec<u8>> = lookup(
            &self.conn,
            "SELECT heads FROM peer_docs WHERE peer_id = ?1 AND doc_id = ?2",
            params![peer, id.to_string()],
        )?;
        h.map(|h| decode_heads(&h)).transpose()
    }

    pub(crate) fn set_peer_heads(&self, peer: &str, id: &DocId, heads: &[ChangeHash]) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO peer_docs (peer_id, doc_id, heads) VALUES (?1, ?2, ?3)
                 ON CONFLICT(peer_id, doc_id) DO UPDATE SET heads = ?3",
            )
            .db()?
            .execute(params![peer, id.to_string(), encode_heads(heads)])
            .db()?;
        Ok(())
    }

    /// Documents whose heads differ from what `peer` is known to hold (or that it never saw).
    /// Forgets which heads `peer` holds (every document is dirty for it again) and sets its feed
    /// cursor to `cursor`, in one transaction.
    pub(crate) fn forget_peer_heads(&mut self, peer: &str, cursor: u64) -> Result<()> {
        let tx = self.conn.transaction().db()?;
        tx.execute("DELETE FROM peer_docs WHERE peer_id = ?1", [peer]).db()?;
        tx.execute(
            "INSERT INTO peers (peer_id, cursor) VALUES (?1, ?2) ON CONFLICT(peer_id) DO UPDATE SET cursor = ?2",
            params![peer, cursor as i64],
        )
        .db()?;
        tx.commit().db()?;
        Ok(())
    }

    pub(crate) fn dirty_documents(&self, peer: &str) -> Result<Vec<DocId>> {
        let mut stmt = self.conn.prepare_cached("SELECT doc_id, heads FROM peer_docs WHERE peer_id = ?1").db()?;
        let known: HashMap<String, Vec<u8>> =
            stmt.query_map([peer], |r| Ok((r.get(0)?, r.get(1)?))).db()?.collect::<rusqlite::Result<_>>().db()?;
        Ok(self
            .repository()
            .all_heads("")?
            .into_iter()
            .filter(|(id, heads)| known.get(&id.to_string()).is_none_or(|k| !heads.is(k)))
            .map(|(id, _)| id)
            .collect())
    }

    /// Documents changed after feed position `cursor`, oldest first, at most `limit`, with their
    /// feed positions (the server's change feed).
    pub(crate) fn changed_since(&self, cursor: u64, limit: usize) -> Result<Vec<(DocId, u64)>> {
        self.repository().changed_since(cursor, limit)
    }

    /// The newest position of this store's change feed.
    pub(crate) fn feed_head(&self) -> Result<u64> {
        self.repository().feed_head()
    }

    pub(crate) fn peer_cursor(&self, peer: &str) -> Result<u64> {
        let c: Option<i64> =
            self.conn.query_row("SELECT cursor FROM peers WHERE peer_id = ?1", [peer], |r| r.get(0)).optional().db()?;
        Ok(c.unwrap_or(0) as u64)
    }

    /// Records the end of a session with `peer`: on success its new cursor and time, on failure
    /// the reason (shown by [`Store::sync_status`]).
    pub(crate) fn record_session(&self, peer: &str, outcome: std::result::Result<u64, &Error>) -> Result<()> {
        match outcome {
            Ok(cursor) => self
                .conn
                .execute(
                    "INSERT INTO peers (peer_id, cursor, last_sync_at, last_error) VALUES (?1, ?2, ?3, NULL)
                 ON CONFLICT(peer_id) DO UPDATE SET cursor = ?2, last_sync_at = ?3, last_error = NULL",
                    params![peer, cursor as i64, self.clock.now_ms()],
                )
                .db()?,
            Err(e) => self
                .conn
                .execute(
                    "INSERT INTO peers (peer_id, last_error) VALUES (?1, ?2)
                 ON CONFLICT(peer_id) DO UPDATE SET last_error = ?2",
                    params![peer, e.to_string()],
                )
                .db()?,
        };
        Ok(())
    }

    /// Remembers that `peer` refused `doc` (shown by [`Store::sync_status`] until a session
    /// ends without refusing it).
    pub(crate) fn record_refusal(&self, peer: &str, refusal: &DocumentRefusal) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO refused_documents (peer_id, doc_id, code, message) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(peer_id, doc_id) DO UPDATE SET code = ?3, message = ?4",
            )
            .db()?
            .execute(params![peer, refusal.doc.to_string(), refusal.code, refusal.message])
            .db()?;
        Ok(())
    }

    /// At the end of a session with `peer`: forgets its refusals of documents it did not refuse
    /// again in that session.
    pub(crate) fn keep_refusals(&self, peer: &str, refused: &[DocumentRefusal]) -> Result<()> {
        for old in self.refusals(peer)? {
            if !refused.iter().any(|r| r.doc == old.doc) {
                self.conn
                    .execute(
                        "DELETE FROM refused_documents WHERE peer_id = ?1 AND doc_id = ?2",
                        params![peer, old.doc.to_string()],
                    )
                    .db()?;
            }
        }
        Ok(())
    }

    /// The refusals of `peer` remembered now, by document id.
    fn refusals(&self, peer: &str) -> Result<Vec<DocumentRefusal>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT doc_id, code, message FROM refused_documents WHERE peer_id = ?1 ORDER BY doc_id")
            .db()?;
        let rows = stmt.query_map([peer], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?))).db()?;
        rows.map(|row| {
            let (doc, code, message) = row.db()?;
            Ok(DocumentRefusal { doc: DocId::parse(&doc)?, code, message })
        })
        .collect()
    }

    /// The bytes of a stored document as kept on disk (snapshot followed by its change rows),
    /// which load as one document: what a peer that lacks the document receives, without
    /// loading or saving it here (memory never holds what disk does not).
    pub(crate) fn document_bytes(&self, id: &DocId) -> Result<Vec<u8>> {
        Ok(self.repository().load(id)?.ok_or_else(|| Error::not_found("document", id))?.into_bytes())
    }

    // ---- taking a peer's bytes in ----------------------------------------------------------

    /// Applies `f` to the in-memory document `id` (loading it, or starting it from its genesis)
    /// and returns the heads from before, for [`Store::keep`] or [`Store::discard`].
    pub(crate) fn absorb(
        &mut self,
        id: &DocId,
        f: impl FnOnce(&mut AutoCommit) -> Result<()>,
    ) -> Result<Vec<ChangeHash>> {
        self.ensure_loaded(id)?;
        let doc = self.docs.get_mut(id).expect("loaded above");
        let before = doc.am.get_heads();
        if let Err(e) = f(&mut doc.am) {
            self.docs.remove(id);
            return Err(e);
        }
        doc.index_collections();
        Ok(before)
    }

    /// Persists what an absorb brought in and updates the query tables from its patches, in one
    /// transaction. A result that lost the document's shape is refused and dropped, and so is
    /// one whose touched records break the boundary's rules when `checked` (another replica's
    /// changes, see `boundary`).
    ///
    /// `vouchers` (signatures over changes, checked by the caller) are kept with the document,
    /// in the same transaction, where they cover what it now holds.
    pub(crate) fn keep(
        &mut self,
        id: &DocId,
        before: &[ChangeHash],
        checked: bool,
        vouchers: &[Voucher],
    ) -> Result<MergeOutcome> {
        let doc = self.docs.get_mut(id).ok_or_else(|| Error::not_found("document", id))?;
        let after = doc.am.get_heads();
        if before == after.as_slice() {
            return Ok(MergeOutcome::default());
        }
        doc.index_collections();
        if let Err(e) = doc.check_shape() {
            self.docs.remove(id);
            return Err(e);
        }
        let changes: Vec<Vec<u8>> = doc.am.get_changes(before).iter().map(|c| c.raw_bytes().to_vec()).collect();
        let new_changes = changes.len();
        let (persist, touched) = if !doc.persisted {
            // A document this store did not hold: project every collection.
            let all = doc.id.collections().iter().map(|c| Touched { collection: *c, key: None }).collect();
            (Persist::Snapshot, all)
        } else {
            let touched = touched_records(&doc.am.diff(before, &after));
            (if new_changes > 64 { Persist::Snapshot } else { Persist::Changes(changes) }, touched)
        };
        if checked {
            let doc = self.docs.get(id).expect("loaded above");
            if let Err(e) = super::boundary::check_records(self, doc, &touched) {
                self.docs.remove(id);
                return Err(e);
            }
        }
        let vouchers = super::vouchers::held(&mut self.docs.get_mut(id).expect("loaded above").am, vouchers);
        self.store_change(id, persist, &vouchers, |ix, doc| touched.iter().try_for_each(|t| ix.project(doc, t)))?;
        self.note_change(id);
        Ok(MergeOutcome { new_changes, records_updated: touched.len() })
    }

    /// Forgets the in-memory copy of `id` (what was absorbed and not kept).
    pub(crate) fn discard(&mut self, id: &DocId) {
        self.docs.remove(id);
    }

    /// Replaces the in-memory copy of a document this store does not hold with `am` (a whole
    /// document from a peer): much faster than merging its history change by change.
    pub(crate) fn adopt(&mut self, id: &DocId, mut am: AutoCommit) {
        am.set_actor(self.actor.clone());
        self.docs.insert(Doc::from_parts(id.clone(), am, false, 0, 1));
    }

    /// Runs an Automerge sync step on a loaded document.
    pub(crate) fn with_am<R>(&mut self, id: &DocId, f: impl FnOnce(&mut AutoCommit) -> R) -> Result<R> {
        self.ensure_loaded(id)?;
        Ok(f(&mut self.docs.get_mut(id).expect("loaded above").am))
    }

    /// A sync state for `peer` and `id` that assumes the peer still holds the heads it was last
    /// known to share, so that the first message already carries what it lacks (if it lost
    /// something, Automerge's own protocol asks again).
    pub(crate) fn warm_sync_state(&self, peer: &str, id: &DocId) -> Result<sync::State> {
        let mut state = sync::State::new();
        if let Some(shared) = self.peer_heads(peer, id)? {
            state.their_heads = Some(shared.clone());
            state.their_need = Some(Vec::new());
            state.their_have = Some(vec![sync::Have { last_sync: shared.clone(), bloom: Default::default() }]);
            state.shared_heads = shared;
        }
        Ok(state)
    }

    // ---- status for the app ----------------------------------------------------------------

    /// Pending changes, last sync and last error of syncing with the server.
    pub fn sync_status(&mut self) -> Result<SyncStatus> {
        let (last_sync_at, last_error) = self
            .conn
            .query_row("SELECT last_sync_at, last_error FROM peers WHERE peer_id = ?1", [SERVER_PEER], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .db()?
            .unwrap_or((None, None));
        let refused_documents = self.refusals(SERVER_PEER)?;
        let mut status = SyncStatus { last_sync_at, last_error, refused_documents, ..SyncStatus::default() };
        let own = self.actor.clone();
        for id in self.dirty_documents(SERVER_PEER)? {
            let shared = self.peer_heads(SERVER_PEER, &id)?.unwrap_or_default();
            let mine =
                self.with_am(&id, |am| am.get_changes(&shared).iter().filter(|c| c.actor_id() == &own).count())?;
            status.pending_changes += mine;
            status.pending_documents += 1;
        }
        Ok(status)
    }

    /// Whether the change that created `record` is known to have reached the server.
    pub fn reached_server(&mut self, record: &RecordRef) -> Result<bool> {
        let (doc, collection, key) = match record {
            RecordRef::Household(h) => {
                (self.row_document("households", h.as_str())?, Collection::Households, h.to_string())
            }
            RecordRef::Visit(v) => (self.visit_document(v.as_str())?, Collection::Visits, v.to_string()),
            RecordRef::Report(r) => (DocId::Report(r.clone()), Collection::Header, HEADER_KEY.to_string()),
            RecordRef::ReportEvent(r, e) => (DocId::Report(r.clone()), Collection::Events, e.as_str().to_string()),
        };
        if !self.has_document(&doc)? {
            return Err(Error::not_found("record", &key));
        }
        let shared = self.peer_heads(SERVER_PEER, &doc)?.unwrap_or_default();
        let doc_ref = self.doc(&doc)?;
        let obj = doc_ref.collection(collection)?;
        let Ok(Some((_, op))) = doc_ref.am.get(&obj, key.as_str()) else {
            return Err(Error::not_found("record", &key));
        };
        let doc_mut = self.docs.get_mut(&doc).expect("loaded above");
        let Some(hash) = doc_mut.am.hash_for_opid(&op) else { return Ok(false) };
        if shared.is_empty() {
            return Ok(false);
        }
        Ok(!doc_mut.am.get_changes(&shared).iter().any(|c| c.hash() == hash))
    }
}
