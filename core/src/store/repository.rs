//! The document repository: the only code that persists Automerge documents. A document is kept
//! as a compacted snapshot plus the change rows appended since, with its current heads and its
//! place in the change feed; a change reaches disk in the same transaction as the query rows it
//! affects (the projections run inside it). Loaded documents are kept in a [`Cache`] within a
//! count and a byte budget, the least recently used let go first.
//!
//! [`DocumentRepository`] is the interface to the stored form (bytes, heads, the feed), with no
//! Automerge in it beyond the heads' hashes: [`SqliteRepository`] serves it from the store's file,
//! and a second implementation (PostgreSQL, for the server) can serve it from elsewhere. Above it,
//! [`load_doc`] and [`store_in_transaction`] turn the stored form into a loaded document and back.
//! The repository's methods run in the caller's unit of work: SQLite's is the connection or
//! transaction the repository was made over, so a change and its query rows commit together.
//!
//! Every implementation must pass `repository::tests::contract`, which shows what each method
//! promises.

use std::collections::HashMap;

use automerge::{ActorId, AutoCommit, ChangeHash};
use rusqlite::{params, Connection};

use super::projection::Indexer;
use super::StoredDocument;
use crate::clock::UnixMillis;
use crate::directory::VisitRules;
use crate::document::{Doc, DocId};
use crate::error::{Db, Error, Result};
use crate::store::query::lookup;
use crate::voucher::Voucher;

/// A document as stored: its snapshot and the change rows appended since, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct StoredForm {
    pub snapshot: Vec<u8>,
    /// The change rows' bytes, one after the other (they load as one chunk after the snapshot).
    pub changes: Vec<u8>,
    pub change_rows: usize,
    /// The sequence number the next appended change row takes.
    pub next_seq: i64,
}

impl StoredForm {
    /// The stored bytes: snapshot followed by the change rows, which load as one document.
    pub fn into_bytes(mut self) -> Vec<u8> {
        self.snapshot.extend_from_slice(&self.changes);
        self.snapshot
    }
}

/// A document's heads as recorded, compared as they are stored: a damaged record never stops a
/// listing; it differs from any heads it is compared with, so its document is looked at again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredHeads(Vec<u8>);

impl StoredHeads {
    #[cfg(test)]
    pub fn of(heads: &[ChangeHash]) -> StoredHeads {
        StoredHeads(encode_heads(heads))
    }

    /// Whether these are the heads recorded elsewhere in their stored form, `encoded`.
    pub fn is(&self, encoded: &[u8]) -> bool {
        self.0 == encoded
    }
}

/// Where documents are persisted. Ids are [`DocId`]s; `id_prefix` arguments select by the id's
/// text, literally (`"grid/"`, `"register/"`; `""` for all). The writes run in the caller's unit
/// of work and are refused outside one: a compaction or a removal is several statements, and a
/// change is kept with its query rows or not at all. A row whose id does not parse (a damaged
/// file) is left out of listings with a warning rather than stopping them.
///
/// Feed positions only grow while documents are added and changed; removing the document at the
/// feed's end lets its position be given again (only phones remove documents, and no replica
/// reads a phone's feed by position).
pub(crate) trait DocumentRepository {
    /// Whether `id` is stored.
    fn exists(&mut self, id: &DocId) -> Result<bool>;
    /// The stored form of `id`; `None` when it is not stored.
    fn load(&mut self, id: &DocId) -> Result<Option<StoredForm>>;
    /// What `id` takes as stored (snapshot plus change rows); 0 when it is not stored.
    fn stored_bytes(&mut self, id: &DocId) -> Result<u64>;
    /// Appends change rows to a stored document, numbered from `first_seq`; a number already
    /// taken is an error (and the unit of work is not to be committed).
    fn append(&mut self, id: &DocId, first_seq: i64, changes: &[Vec<u8>]) -> Result<()>;
    /// Stores `snapshot` as the whole of `id` (new, or compacted): its change rows go, its heads
    /// and place in the feed stay.
    fn replace(&mut self, id: &DocId, snapshot: &[u8], now: UnixMillis) -> Result<()>;
    /// Records `id`'s heads; when they differ from those recorded, `id` moves to the end of the
    /// change feed.
    fn set_heads(&mut self, id: &DocId, heads: &[ChangeHash]) -> Result<()>;
    /// The recorded heads of `id` (sorted); `None` when none are recorded.
    fn heads(&mut self, id: &DocId) -> Result<Option<Vec<ChangeHash>>>;
    /// The recorded heads of every document under `id_prefix`, in feed order (oldest change
    /// first).
    fn all_heads(&mut self, id_prefix: &str) -> Result<Vec<(DocId, StoredHeads)>>;
    /// The stored documents under `id_prefix`, by id, at most `limit`.
    fn ids(&mut self, id_prefix: &str, limit: Option<usize>) -> Result<Vec<DocId>>;
    /// Every stored document with what it takes, by id.
    fn sizes(&mut self) -> Result<Vec<StoredDocument>>;
    /// Documents whose heads changed after feed position `cursor`, oldest first, at most
    /// `limit`, with their positions.
    fn changed_since(&mut self, cursor: u64, limit: usize) -> Result<Vec<(DocId, u64)>>;
    /// The newest position of the change feed (0 when empty).
    fn feed_head(&mut self) -> Result<u64>;
    /// Removes `id`: its snapshot, change rows, heads and place in the feed.
    fn remove(&mut self, id: &DocId) -> Result<()>;
}

/// The repository in a store's SQLite file: tables `documents`, `changes`, `document_heads`.
pub(crate) struct SqliteRepository<'c> {
    conn: &'c Connection,
}

impl<'c> SqliteRepository<'c> {
    /// Over a connection, or a transaction (whose work the repository's then joins).
    pub fn new(conn: &'c Connection) -> Self {
        SqliteRepository { conn }
    }

    fn doc_ids(&self, sql: &str, args: impl rusqlite::Params) -> Result<Vec<DocId>> {
        let mut stmt = self.conn.prepare_cached(sql).db()?;
        let ids = stmt.query_map(args, |r| r.get::<_, String>(0)).db()?.collect::<rusqlite::Result<Vec<_>>>().db()?;
        Ok(ids.iter().filter_map(|s| listed(s)).collect())
    }

    /// Refuses a write outside a transaction (see [`DocumentRepository`]).
    fn in_unit_of_work(&self) -> Result<()> {
        if self.conn.is_autocommit() {
            return Err(Error::storage("a document repository write ran outside a transaction"));
        }
        Ok(())
    }
}

/// A listed row's document id; `None`, with a warning, when it does not parse.
fn listed(id: &str) -> Option<DocId> {
    DocId::parse(id)
        .inspect_err(|e| tracing::warn!(error = %e, "a stored document id does not parse; left out of the listing"))
        .ok()
}

impl DocumentRepository for SqliteRepository<'_> {
    fn exists(&mut self, id: &DocId) -> Result<bool> {
        self.conn
            .prepare_cached("SELECT EXISTS(SELECT 1 FROM documents WHERE doc_id = ?1)")
            .db()?
            .query_row([id.to_string()], |r| r.get(0))
            .db()
    }

    fn load(&mut self, id: &DocId) -> Result<Option<StoredForm>> {
        let key = id.to_string();
        let snapshot: Option<Vec<u8>> = lookup(self.conn, "SELECT snapshot FROM documents WHERE doc_id = ?1", [&key])?;
        let Some(snapshot) = snapshot else { return Ok(None) };
        let mut stmt =
            self.conn.prepare_cached("SELECT seq, bytes FROM changes WHERE doc_id = ?1 ORDER BY seq").db()?;
        let mut rows = stmt.query([&key]).db()?;
        let mut form = StoredForm { snapshot, next_seq: 1, ..StoredForm::default() };
        while let Some(row) = rows.next().db()? {
            form.next_seq = row.get::<_, i64>(0).db()? + 1;
            form.changes.extend_from_slice(row.get_ref(1).db()?.as_blob().map_err(rusqlite::Error::from).db()?);
            form.change_rows += 1;
        }
        Ok(Some(form))
    }

    fn stored_bytes(&mut self, id: &DocId) -> Result<u64> {
        let n: i64 = self
            .conn
            .prepare_cached(
                "SELECT COALESCE((SELECT length(snapshot) FROM documents WHERE doc_id = ?1), 0)
                  + COALESCE((SELECT SUM(length(bytes)) FROM changes WHERE doc_id = ?1), 0)",
            )
            .db()?
            .query_row([id.to_string()], |r| r.get(0))
            .db()?;
        Ok(n as u64)
    }

    fn append(&mut self, id: &DocId, first_seq: i64, changes: &[Vec<u8>]) -> Result<()> {
        self.in_unit_of_work()?;
        let key = id.to_string();
        let mut stmt = self.conn.prepare_cached("INSERT INTO changes (doc_id, seq, bytes) VALUES (?1, ?2, ?3)").db()?;
        for (i, c) in changes.iter().enumerate() {
            stmt.execute(params![key, first_seq + i as i64, c]).db()?;
        }
        Ok(())
    }

    fn replace(&mut self, id: &DocId, snapshot: &[u8], now: UnixMillis) -> Result<()> {
        self.in_unit_of_work()?;
        let key = id.to_string();
        self.conn
            .execute(
                "INSERT INTO documents (doc_id, snapshot, compacted_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(doc_id) DO UPDATE SET snapshot = ?2, compacted_at = ?3",
                params![key, snapshot, now],
            )
            .db()?;
        self.conn.execute("DELETE FROM changes WHERE doc_id = ?1", [&key]).db()?;
        Ok(())
    }

    fn set_heads(&mut self, id: &DocId, heads: &[ChangeHash]) -> Result<()> {
        self.in_unit_of_work()?;
        self.conn
            .prepare_cached(
                "INSERT INTO document_heads (doc_id, heads, feed_seq)
                 VALUES (?1, ?2, (SELECT COALESCE(MAX(feed_seq), 0) + 1 FROM document_heads))
                 ON CONFLICT(doc_id) DO UPDATE SET heads = excluded.heads, feed_seq = excluded.feed_seq
                 WHERE heads IS NOT excluded.heads",
            )
            .db()?
            .execute(params![id.to_string(), encode_heads(heads)])
            .db()?;
        Ok(())
    }

    fn heads(&mut self, id: &DocId) -> Result<Option<Vec<ChangeHash>>> {
        let heads: Option<Vec<u8>> =
            lookup(self.conn, "SELECT heads FROM document_heads WHERE doc_id = ?1", [id.to_string()])?;
        heads.map(|h| decode_heads(&h)).transpose()
    }

    fn all_heads(&mut self, id_prefix: &str) -> Result<Vec<(DocId, StoredHeads)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT doc_id, heads FROM document_heads WHERE substr(doc_id, 1, length(?1)) = ?1 ORDER BY feed_seq",
            )
            .db()?;
        let rows = stmt
            .query_map([id_prefix], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?)))
            .db()?
            .collect::<rusqlite::Result<Vec<_>>>()
            .db()?;
        Ok(rows.into_iter().filter_map(|(id, h)| Some((listed(&id)?, StoredHeads(h)))).collect())
    }

    fn ids(&mut self, id_prefix: &str, limit: Option<usize>) -> Result<Vec<DocId>> {
        let limit = limit.map_or(-1, |l| l as i64);
        self.doc_ids(
            "SELECT doc_id FROM documents WHERE substr(doc_id, 1, length(?1)) = ?1 ORDER BY doc_id LIMIT ?2",
            params![id_prefix, limit],
        )
    }

    fn sizes(&mut self) -> Result<Vec<StoredDocument>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT d.doc_id, length(d.snapshot) + COALESCE(SUM(length(c.bytes)), 0), COUNT(c.seq)
                 FROM documents d LEFT JOIN changes c ON c.doc_id = d.doc_id GROUP BY d.doc_id ORDER BY d.doc_id",
            )
            .db()?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))
            .db()?
            .collect::<rusqlite::Result<Vec<_>>>()
            .db()?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, bytes, changes)| {
                Some(StoredDocument { id: listed(&id)?, stored_bytes: bytes as u64, change_rows: changes as u64 })
            })
            .collect())
    }

    fn changed_since(&mut self, cursor: u64, limit: usize) -> Result<Vec<(DocId, u64)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT doc_id, feed_seq FROM document_heads WHERE feed_seq > ?1 ORDER BY feed_seq LIMIT ?2",
            )
            .db()?;
        let rows = stmt
            .query_map(params![cursor as i64, limit as i64], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .db()?
            .collect::<rusqlite::Result<Vec<_>>>()
            .db()?;
        Ok(rows.into_iter().filter_map(|(d, s)| Some((listed(&d)?, s as u64))).collect())
    }

    fn feed_head(&mut self) -> Result<u64> {
        let n: i64 =
            self.conn.query_row("SELECT COALESCE(MAX(feed_seq), 0) FROM document_heads", [], |r| r.get(0)).db()?;
        Ok(n as u64)
    }

    fn remove(&mut self, id: &DocId) -> Result<()> {
        self.in_unit_of_work()?;
        let key = id.to_string();
        for table in ["documents", "changes", "document_heads", "vouchers"] {
            self.conn.execute(&format!("DELETE FROM {table} WHERE doc_id = ?1"), [&key]).db()?;
        }
        Ok(())
    }
}

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

    /// Lets go of every document (the store was erased).
    pub fn clear(&mut self) {
        self.docs.clear();
    }
}

/// Loads a stored document: its snapshot plus the change rows appended since.
pub(crate) fn load_doc(repo: &mut impl DocumentRepository, id: &DocId, actor: &ActorId) -> Result<Option<Doc>> {
    let Some(form) = repo.load(id)? else {
        return Ok(None);
    };
    let corrupt = |e: automerge::AutomergeError| Error::CorruptDocument { doc: id.to_string(), reason: e.to_string() };
    let mut am = AutoCommit::load(&form.snapshot).map_err(corrupt)?;
    if !form.changes.is_empty() {
        am.load_incremental(&form.changes).map_err(corrupt)?;
    }
    am.set_actor(actor.clone());
    let mut doc = Doc::from_parts(id.clone(), am, true, form.change_rows, form.next_seq);
    doc.stored_bytes = form.snapshot.len() + form.changes.len();
    Ok(Some(doc))
}

/// How a change reaches disk: appended change rows, or a new snapshot of the whole document
/// (for a document this store never saved, or a merge that brought many changes).
pub(crate) enum Persist {
    Snapshot,
    Changes(Vec<Vec<u8>>),
}

/// Persists `doc`'s change and runs `index` (the projections) in one SQLite transaction.
pub(crate) fn store_in_transaction(
    conn: &mut Connection,
    rules: &VisitRules,
    doc: &mut Doc,
    persist: &Persist,
    now: UnixMillis,
    vouchers: &[Voucher],
    index: impl FnOnce(&mut Indexer<'_>, &Doc) -> Result<()>,
) -> Result<Option<VisitRules>> {
    let tx = conn.transaction().db()?;
    let mut repo = SqliteRepository::new(&tx);
    match persist {
        Persist::Snapshot => write_snapshot(&mut repo, doc, now)?,
        Persist::Changes(changes) => repo.append(&doc.id, doc.next_seq, changes)?,
    }
    mark_heads(&mut repo, doc)?;
    super::vouchers::put(&tx, &doc.id, vouchers)?;
    let mut ix = Indexer::new(&tx, rules);
    index(&mut ix, doc)?;
    let new_rules = ix.finish(doc)?;
    tx.commit().db()?;
    Ok(new_rules)
}

fn write_snapshot(repo: &mut impl DocumentRepository, doc: &mut Doc, now: UnixMillis) -> Result<()> {
    let snapshot = save(&mut doc.am);
    repo.replace(&doc.id, &snapshot, now)?;
    doc.stored_bytes = snapshot.len();
    Ok(())
}

/// The whole document as bytes, without changes Automerge holds queued for missing dependencies
/// (they were never checked or applied, and must not reach disk or another replica).
pub(crate) fn save(am: &mut AutoCommit) -> Vec<u8> {
    am.save_with_options(automerge::SaveOptions { retain_orphans: false, ..automerge::SaveOptions::default() })
}

/// Records the document's current heads, and moves it to the end of the change feed when they
/// changed (what `changed_since` and the dirty-document checks of a sync read).
pub(crate) fn mark_heads(repo: &mut impl DocumentRepository, doc: &mut Doc) -> Result<()> {
    repo.set_heads(&doc.id, &doc.am.get_heads())
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ids::UnitId;

    /// What every [`DocumentRepository`] promises, run over an empty repository: a second
    /// implementation must pass the same function.
    pub(crate) fn contract(repo: &mut impl DocumentRepository) {
        let grid = DocId::Grid(UnitId::parse("g1").unwrap());
        let other_grid = DocId::Grid(UnitId::parse("g2").unwrap());
        let register = DocId::Register(UnitId::parse("m1").unwrap());
        let h = |n: u8| ChangeHash([n; 32]);

        // Absent.
        assert!(!repo.exists(&grid).unwrap());
        assert_eq!(repo.load(&grid).unwrap(), None);
        assert_eq!(repo.stored_bytes(&grid).unwrap(), 0);
        assert_eq!(repo.heads(&grid).unwrap(), None);
        assert_eq!(repo.feed_head().unwrap(), 0);

        // A snapshot, then change rows after it, then a compaction.
        repo.replace(&grid, b"snapshot", 1).unwrap();
        assert!(repo.exists(&grid).unwrap());
        let form = repo.load(&grid).unwrap().unwrap();
        assert_eq!(form, StoredForm { snapshot: b"snapshot".to_vec(), changes: vec![], change_rows: 0, next_seq: 1 });
        repo.append(&grid, 1, &[b"one".to_vec(), b"two".to_vec()]).unwrap();
        repo.append(&grid, 3, &[b"three".to_vec()]).unwrap();
        let form = repo.load(&grid).unwrap().unwrap();
        assert_eq!((form.changes.as_slice(), form.change_rows, form.next_seq), (&b"onetwothree"[..], 3, 4));
        assert_eq!(repo.stored_bytes(&grid).unwrap(), 19);
        assert_eq!(form.into_bytes(), b"snapshotonetwothree");
        assert!(repo.append(&grid, 3, &[b"again".to_vec()]).is_err(), "a change row's number is taken once");
        repo.replace(&grid, b"compacted", 2).unwrap();
        let form = repo.load(&grid).unwrap().unwrap();
        assert_eq!((form.snapshot.as_slice(), form.change_rows, form.next_seq), (&b"compacted"[..], 0, 1));
        assert_eq!(repo.stored_bytes(&grid).unwrap(), 9);

        // Heads and the feed: a document moves to the feed's end only when its heads change.
        repo.set_heads(&grid, &[h(2), h(1)]).unwrap();
        assert_eq!(repo.heads(&grid).unwrap(), Some(vec![h(1), h(2)]), "sorted");
        let first = repo.feed_head().unwrap();
        assert!(first > 0);
        repo.set_heads(&grid, &[h(1), h(2)]).unwrap();
        assert_eq!(repo.feed_head().unwrap(), first, "the same heads do not move it");
        repo.replace(&register, b"r", 3).unwrap();
        repo.set_heads(&register, &[h(3)]).unwrap();
        repo.replace(&other_grid, b"o", 3).unwrap();
        repo.set_heads(&other_grid, &[h(4)]).unwrap();
        let before_change = repo.feed_head().unwrap();
        repo.set_heads(&grid, &[h(5)]).unwrap();
        assert!(repo.feed_head().unwrap() > before_change);
        let order: Vec<DocId> = repo.all_heads("").unwrap().into_iter().map(|(id, _)| id).collect();
        assert_eq!(order, [register.clone(), other_grid.clone(), grid.clone()], "feed order");
        let grids = [(other_grid.clone(), StoredHeads::of(&[h(4)])), (grid.clone(), StoredHeads::of(&[h(5)]))];
        assert_eq!(repo.all_heads("grid/").unwrap(), grids);
        assert!(repo.all_heads("gri_/").unwrap().is_empty(), "a prefix is literal");
        let head = repo.feed_head().unwrap();
        assert_eq!(repo.changed_since(before_change, 10).unwrap(), [(grid.clone(), head)]);
        let oldest = repo.changed_since(0, 1).unwrap();
        assert_eq!(oldest.iter().map(|(id, _)| id).collect::<Vec<_>>(), [&register], "the oldest, at most the limit");
        let all = repo.changed_since(0, 10).unwrap();
        assert_eq!(all.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(), order, "oldest first");
        assert!(all.windows(2).all(|w| w[0].1 < w[1].1), "positions grow: {all:?}");
        assert_eq!(repo.changed_since(oldest[0].1, 10).unwrap(), all[1..], "after the cursor, not at it");
        // A compaction keeps the heads and the place in the feed.
        repo.replace(&grid, b"compacted", 5).unwrap();
        assert_eq!(repo.heads(&grid).unwrap(), Some(vec![h(5)]));
        assert_eq!(repo.feed_head().unwrap(), head);
        assert_eq!(repo.changed_since(0, 10).unwrap(), all);

        // Listing.
        assert_eq!(repo.ids("", None).unwrap(), [grid.clone(), other_grid.clone(), register.clone()], "by id");
        assert_eq!(repo.ids("grid/", None).unwrap(), [grid.clone(), other_grid.clone()]);
        assert_eq!(repo.ids("grid/", Some(1)).unwrap(), std::slice::from_ref(&grid));
        assert!(repo.ids("gri_/", None).unwrap().is_empty(), "a prefix is literal");
        repo.append(&register, 1, &[b"change".to_vec()]).unwrap();
        let sizes: Vec<(DocId, u64, u64)> =
            repo.sizes().unwrap().into_iter().map(|d| (d.id, d.stored_bytes, d.change_rows)).collect();
        assert_eq!(sizes, [(grid.clone(), 9, 0), (other_grid.clone(), 1, 0), (register.clone(), 7, 1)]);

        // Removal takes the document, its rows, heads and place in the feed; the others stay.
        repo.remove(&register).unwrap();
        assert!(!repo.exists(&register).unwrap());
        assert_eq!(repo.load(&register).unwrap(), None);
        assert_eq!(repo.stored_bytes(&register).unwrap(), 0);
        assert_eq!(repo.heads(&register).unwrap(), None);
        assert!(repo.changed_since(0, 10).unwrap().iter().all(|(id, _)| *id != register));
        assert_eq!(repo.ids("", None).unwrap(), [grid.clone(), other_grid.clone()]);
        assert_eq!(repo.load(&grid).unwrap().unwrap().snapshot, b"compacted");
        repo.replace(&register, b"again", 4).unwrap();
        assert_eq!(repo.load(&register).unwrap().unwrap().next_seq, 1, "no change rows left behind");
        repo.set_heads(&register, &[]).unwrap();
        assert_eq!(repo.heads(&register).unwrap(), Some(vec![]), "no heads is not unknown heads");
    }

    fn open_store(dir: &tempfile::TempDir) -> crate::store::Store {
        crate::store::Store::open(dir.path().join("s.sqlite"), crate::store::OpenOptions::default()).unwrap()
    }

    #[test]
    fn the_sqlite_repository_keeps_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(&dir);
        let tx = store.conn.unchecked_transaction().unwrap();
        contract(&mut SqliteRepository::new(&tx));
    }

    /// A write outside a transaction is refused before it touches a row: a compaction or a
    /// removal half done would leave a snapshot with old change rows, or rows of no document.
    #[test]
    fn writes_outside_a_unit_of_work_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(&dir);
        let (grid, kept) = (DocId::Grid(UnitId::parse("g1").unwrap()), DocId::Grid(UnitId::parse("g2").unwrap()));
        let tx = store.conn.unchecked_transaction().unwrap();
        SqliteRepository::new(&tx).replace(&kept, b"kept", 1).unwrap();
        tx.commit().unwrap();
        let mut repo = SqliteRepository::new(&store.conn);
        assert!(repo.replace(&grid, b"snapshot", 1).is_err());
        assert!(repo.append(&grid, 1, &[b"one".to_vec()]).is_err());
        assert!(repo.set_heads(&grid, &[]).is_err());
        assert!(repo.remove(&kept).is_err());
        assert_eq!((repo.stored_bytes(&grid).unwrap(), repo.heads(&grid).unwrap()), (0, None));
        assert_eq!(repo.load(&kept).unwrap().map(|f| f.snapshot), Some(b"kept".to_vec()), "nothing was removed");
    }

    /// A damaged heads record or an id that does not parse does not stop a listing: the sync
    /// and the conversion that list heads go on for every other document.
    #[test]
    fn a_damaged_row_does_not_stop_a_listing() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(&dir);
        let tx = store.conn.unchecked_transaction().unwrap();
        let mut repo = SqliteRepository::new(&tx);
        let (grid, other) = (DocId::Grid(UnitId::parse("g1").unwrap()), DocId::Grid(UnitId::parse("g2").unwrap()));
        for id in [&grid, &other] {
            repo.replace(id, b"s", 1).unwrap();
            repo.set_heads(id, &[ChangeHash([7; 32])]).unwrap();
        }
        tx.execute("UPDATE document_heads SET heads = x'01' WHERE doc_id = 'grid/g1'", []).unwrap();
        tx.execute("INSERT INTO document_heads (doc_id, heads, feed_seq) VALUES ('grid/', x'', 99)", []).unwrap();
        tx.execute("INSERT INTO documents (doc_id, snapshot, compacted_at) VALUES ('grid/', x'', 0)", []).unwrap();
        let listed = repo.all_heads("grid/").unwrap();
        assert_eq!(listed.iter().map(|(id, _)| id).collect::<Vec<_>>(), [&grid, &other]);
        assert!(!listed[0].1.is(&encode_heads(&[ChangeHash([7; 32])])), "damaged heads match nothing");
        assert_eq!(repo.ids("grid/", None).unwrap(), [grid.clone(), other.clone()]);
        assert_eq!(repo.changed_since(0, 10).unwrap().len(), 2, "g1 and g2, not the id that does not parse");
        assert!(repo.heads(&grid).is_err(), "read alone, damaged heads are an error");
    }
}
