//! The document repository: the only code that persists Automerge documents. A document is kept
//! as a compacted snapshot (`documents`) plus the change rows appended since (`changes`), its
//! current heads and place in the change feed in `document_heads`; a change reaches disk in the
//! same SQLite transaction as the query rows it affects (the indexer runs inside it). Loaded
//! documents are kept in a [`Cache`] within a count and a byte budget, the least recently used
//! let go first.
//!
//! Everything here is SQLite; a second implementation (PostgreSQL, for the server) would sit
//! behind the same functions. They are not a trait yet: the query tables are written in the
//! same transaction, and where those live on a server of several processes is the scale-out
//! issue's design.

use std::collections::HashMap;

use automerge::{ActorId, AutoCommit};
use rusqlite::{params, Connection, OptionalExtension};

use super::projection::Indexer;
use crate::clock::UnixMillis;
use crate::directory::VisitRules;
use crate::document::{Doc, DocId};
use crate::error::{Db, Error, Result};

/// The loaded documents, within a count and a byte budget (of stored bytes: a loaded document
/// takes about 10 to 40 times its stored bytes of memory). Every cached document's changes are
/// on disk: one let go is loaded again at its next use.
pub(crate) struct Cache {
    docs: HashMap<DocId, Doc>,
    /// Counts uses of cached documents: their `last_used` stamps.
    uses: u64,
    max_documents: usize,
    max_bytes: usize,
}

impl Cache {
    pub fn new(max_documents: usize, max_bytes: usize) -> Cache {
        Cache { docs: HashMap::new(), uses: 0, max_documents: max_documents.max(2), max_bytes }
    }

    pub fn get(&self, id: &DocId) -> Option<&Doc> {
        self.docs.get(id)
    }

    pub fn get_mut(&mut self, id: &DocId) -> Option<&mut Doc> {
        self.docs.get_mut(id)
    }

    #[cfg(test)]
    pub fn contains(&self, id: &DocId) -> bool {
        self.docs.contains_key(id)
    }

    /// Lets go of a document (after a failed write, so that memory never holds what disk does
    /// not, or when it leaves the store).
    pub fn remove(&mut self, id: &DocId) -> Option<Doc> {
        self.docs.remove(id)
    }

    /// Marks a cached document as just used; false when it is not cached.
    pub fn touch(&mut self, id: &DocId) -> bool {
        match self.docs.get_mut(id) {
            Some(doc) => {
                self.uses += 1;
                doc.last_used = self.uses;
                true
            }
            None => false,
        }
    }

    /// Puts `doc` in the cache as its most recently used document, making room for it.
    pub fn insert(&mut self, mut doc: Doc) {
        self.uses += 1;
        doc.last_used = self.uses;
        self.make_room(doc.stored_bytes);
        self.docs.insert(doc.id.clone(), doc);
    }

    /// Lets go of the least recently used cached documents until one of `incoming` stored
    /// bytes fits within the cache's count and byte budget.
    fn make_room(&mut self, incoming: usize) {
        let mut bytes: usize = self.docs.values().map(|d| d.stored_bytes).sum();
        while !self.docs.is_empty() && (self.docs.len() >= self.max_documents || bytes + incoming > self.max_bytes) {
            let victim = self.docs.values().min_by_key(|d| d.last_used).map(|d| d.id.clone()).expect("not empty");
            if let Some(d) = self.docs.remove(&victim) {
                bytes -= d.stored_bytes;
            }
        }
    }

    #[cfg(test)]
    pub fn clear(&mut self) {
        self.docs.clear();
    }
}

/// Loads a stored document: its snapshot plus the change rows appended since.
pub(crate) fn load_doc(conn: &Connection, id: &DocId, actor: &ActorId) -> Result<Option<Doc>> {
    let key = id.to_string();
    let snapshot: Option<Vec<u8>> =
        conn.query_row("SELECT snapshot FROM documents WHERE doc_id = ?1", [&key], |r| r.get(0)).optional().db()?;
    let Some(snapshot) = snapshot else {
        return Ok(None);
    };
    let corrupt = |e: automerge::AutomergeError| Error::CorruptDocument { doc: key.clone(), reason: e.to_string() };
    let mut am = AutoCommit::load(&snapshot).map_err(corrupt)?;
    let mut stmt = conn.prepare_cached("SELECT seq, bytes FROM changes WHERE doc_id = ?1 ORDER BY seq").db()?;
    let mut rows = stmt.query([&key]).db()?;
    let mut all = Vec::new();
    let stored = snapshot.len();
    let (mut n, mut last_seq) = (0, 0);
    while let Some(row) = rows.next().db()? {
        last_seq = row.get(0).db()?;
        all.extend_from_slice(row.get_ref(1).db()?.as_blob().map_err(rusqlite::Error::from).db()?);
        n += 1;
    }
    if !all.is_empty() {
        am.load_incremental(&all).map_err(corrupt)?;
    }
    am.set_actor(actor.clone());
    let mut doc = Doc::from_parts(id.clone(), am, true, n, last_seq + 1);
    doc.stored_bytes = stored + all.len();
    Ok(Some(doc))
}

/// How a change reaches disk: appended change rows, or a new snapshot of the whole document
/// (for a document this store never saved, or a merge that brought many changes).
pub(crate) enum Persist {
    Snapshot,
    Changes(Vec<Vec<u8>>),
}

pub(crate) fn store_in_transaction(
    conn: &mut Connection,
    rules: &VisitRules,
    doc: &mut Doc,
    persist: &Persist,
    now: UnixMillis,
    index: impl FnOnce(&mut Indexer<'_>, &Doc) -> Result<()>,
) -> Result<Option<VisitRules>> {
    let tx = conn.transaction().db()?;
    match persist {
        Persist::Snapshot => write_snapshot(&tx, doc, now)?,
        Persist::Changes(changes) => {
            for (i, c) in changes.iter().enumerate() {
                tx.prepare_cached("INSERT INTO changes (doc_id, seq, bytes) VALUES (?1, ?2, ?3)")
                    .db()?
                    .execute(params![doc.id.to_string(), doc.next_seq + i as i64, c])
                    .db()?;
            }
        }
    }
    mark_heads(&tx, doc)?;
    let mut ix = Indexer::new(&tx, rules);
    index(&mut ix, doc)?;
    let new_rules = ix.finish(doc)?;
    tx.commit().db()?;
    Ok(new_rules)
}

fn write_snapshot(tx: &rusqlite::Transaction<'_>, doc: &mut Doc, now: UnixMillis) -> Result<()> {
    let key = doc.id.to_string();
    let snapshot = save(&mut doc.am);
    tx.execute(
        "INSERT INTO documents (doc_id, snapshot, compacted_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(doc_id) DO UPDATE SET snapshot = ?2, compacted_at = ?3",
        params![key, snapshot, now],
    )
    .db()?;
    doc.stored_bytes = snapshot.len();
    tx.execute("DELETE FROM changes WHERE doc_id = ?1", [&key]).db()?;
    Ok(())
}

/// The whole document as bytes, without changes Automerge holds queued for missing dependencies
/// (they were never checked or applied, and must not reach disk or another replica).
pub(crate) fn save(am: &mut AutoCommit) -> Vec<u8> {
    am.save_with_options(automerge::SaveOptions { retain_orphans: false, ..automerge::SaveOptions::default() })
}

/// Records the document's current heads, and moves it to the end of the change feed when they
/// changed (what `changed_since` and the dirty-document checks of a sync read).
pub(crate) fn mark_heads(tx: &rusqlite::Transaction<'_>, doc: &mut Doc) -> Result<()> {
    let heads = encode_heads(&doc.am.get_heads());
    tx.prepare_cached(
        "INSERT INTO document_heads (doc_id, heads, feed_seq)
         VALUES (?1, ?2, (SELECT COALESCE(MAX(feed_seq), 0) + 1 FROM document_heads))
         ON CONFLICT(doc_id) DO UPDATE SET heads = excluded.heads, feed_seq = excluded.feed_seq
         WHERE heads IS NOT excluded.heads",
    )
    .db()?
    .execute(params![doc.id.to_string(), heads])
    .db()?;
    Ok(())
}

/// Heads as stored in SQLite: the sorted 32-byte hashes, concatenated.
pub(crate) fn encode_heads(heads: &[automerge::ChangeHash]) -> Vec<u8> {
    let mut sorted = heads.to_vec();
    sorted.sort();
    sorted.iter().flat_map(|h| h.0).collect()
}

pub(crate) fn decode_heads(bytes: &[u8]) -> Result<Vec<automerge::ChangeHash>> {
    if !bytes.len().is_multiple_of(32) {
        return Err(Error::storage("stored heads are damaged"));
    }
    Ok(bytes.chunks_exact(32).map(|c| automerge::ChangeHash(c.try_into().expect("32 bytes"))).collect())
}
