//! The local store: every document persisted in one SQLite file as a compacted snapshot plus
//! appended change rows, and the derived query tables kept in step in the same transaction.
//!
//! A write is: change the in-memory document, commit it, append the change's bytes and update
//! the query tables in one SQLite transaction. When that transaction commits the write is durable
//! (WAL); when anything fails the in-memory copy is dropped and reloaded from disk, so memory
//! never holds what disk does not. Screens query tables only: opening the store loads no document.
//!
//! The writes are grouped by area (`directory`, `households`, `visits`, `reports`, and
//! `documents` for exchange, compaction and rebuild); `query` holds what screens read, `projection`
//! how records become rows (one module per kind of document), `repository` how documents are persisted and cached, `schema` the
//! tables and their migrations.
//!
//! It must never log or put in an error a resident's personal data, and never expose Automerge
//! types to its callers.

mod access;
mod assessment;
mod boundary;
mod conversion;
mod directory;
mod documents;
mod households;
mod identity;
mod peers;
mod projection;
pub mod query;
mod reports;
mod repository;
pub(crate) mod schema;
mod visits;
mod vouchers;
mod welfare;
mod window;
mod workflow;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use automerge::{transaction::CommitOptions, ActorId};
use rusqlite::{params, Connection, OptionalExtension};

use crate::clock::{Clock, SystemClock, UnixMillis};
use crate::directory::{UnitKind, VisitRules};
use crate::document::Collection;
use crate::document::{Doc, DocId};
use crate::error::{Db, Error, Result};
use crate::household::Household;
use crate::ids::{HouseholdId, UnitId, UserId};
use crate::voucher::Voucher;
use crate::window::Window;
pub use assessment::{assessment_csv, Assessment, Scope};
pub(crate) use boundary::{check_changes, Authors};
pub use boundary::{MAX_CHANGE_BYTES, MAX_RECORD_BYTES};
pub use conversion::{Converted, Skipped};
pub(crate) use documents::load_document;
pub use documents::StoredDocument;
pub use peers::{DocumentRefusal, RecordRef, SyncStatus, SERVER_PEER};
use projection::Indexer;
use query::lookup;
pub(crate) use repository::{decode_heads, encode_heads, save};
use repository::{load_doc, mark_heads, store_in_transaction, Cache, DocumentRepository, Persist, SqliteRepository};
pub use welfare::{Area, Welfare};
pub use window::Released;
pub use workflow::OverdueReport;
#[cfg(feature = "hooks")]
pub(crate) use workflow::OVERDUE_SQL;

/// Largest document a peer may hand to [`Store::merge_document`].
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024 * 1024;

/// How hard a commit waits for the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// WAL with `synchronous=NORMAL`: a committed write survives the app being killed; a power
    /// cut may lose the last commits (never corrupts). The phone default.
    #[default]
    Normal,
    /// WAL with `synchronous=FULL`: a committed write also survives a power cut.
    Full,
}

pub struct OpenOptions {
    pub durability: Durability,
    pub clock: Arc<dyn Clock>,
    /// Where photo files are kept; defaults to `<database>.photos/` beside the database.
    pub photo_dir: Option<PathBuf>,
    /// Documents kept in memory at most (grid documents are the large ones).
    pub cached_documents: usize,
    /// Stored bytes of the documents kept in memory at most (a loaded document takes about 10
    /// to 40 times its stored bytes of memory). The document in use is kept even when it alone
    /// is larger.
    pub cache_bytes: usize,
    /// A document loaded with more change rows than this is compacted right away.
    pub compact_after_changes: usize,
    /// Keep the ids of documents whose content changed (by a write or a sync) for
    /// [`Store::take_changed_documents`]: the app's change notifications. Off for the server.
    pub track_changes: bool,
    /// The rolling window of documents a phone keeps ([`Window`]); `None` keeps everything (the
    /// server, the office).
    pub window: Option<Window>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            durability: Durability::Normal,
            clock: Arc::new(SystemClock),
            photo_dir: None,
            cached_documents: 32,
            cache_bytes: 16 << 20,
            compact_after_changes: 1_000,
            track_changes: false,
            window: Some(Window::default()),
        }
    }
}

/// What a merge of another replica's document changed here.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergeOutcome {
    /// Automerge changes this store did not have before.
    pub new_changes: usize,
    /// Records whose rows in the query tables were re-read.
    pub records_updated: usize,
}

/// An opened Doorstep store: one SQLite file (plus its WAL) and a photo folder.
pub struct Store {
    conn: Connection,
    /// `<database>.lock`, locked for as long as this store is open: one store per file, in any
    /// process (two would append the same change rows). Released when the store is dropped.
    _lock: std::fs::File,
    actor: ActorId,
    clock: Arc<dyn Clock>,
    photo_dir: PathBuf,
    docs: Cache,
    rules: VisitRules,
    compact_after_changes: usize,
    /// Documents whose content changed since the last [`Store::take_changed_documents`], when
    /// tracking is on.
    changed: Option<std::collections::BTreeSet<DocId>>,
    /// The user (and role) the directory gives this store's own actor, looked up once per
    /// change of the directory: every local write checks its author against it.
    own_author: std::cell::RefCell<Option<Option<(String, crate::directory::Role)>>>,
    window: Option<Window>,
}

impl Store {
    /// Opens (or creates) the store at `path`, bringing its schema up to date. A store already
    /// open on the same file, in this process or another (a background worker of the app), is
    /// refused with [`Error::Storage`] saying so: one store per file at a time.
    pub fn open(path: impl AsRef<Path>, options: OpenOptions) -> Result<Store> {
        let path = path.as_ref();
        let lock = lock_file(path)?;
        let mut conn = Connection::open(path).db()?;
        conn.pragma_update(None, "journal_mode", "WAL").db()?;
        conn.pragma_update(None, "synchronous", if options.durability == Durability::Full { "FULL" } else { "NORMAL" })
            .db()?;
        conn.pragma_update(None, "busy_timeout", 5_000).db()?;
        conn.set_prepared_statement_cache_capacity(64);
        schema::migrate(&mut conn, |tx| {
            let actor: Option<Vec<u8>> =
                tx.query_row("SELECT actor FROM device WHERE id = 1", [], |r| r.get(0)).optional().db()?;
            let actor = actor.map(ActorId::from).unwrap_or_else(ActorId::random);
            documents::rebuild_tables(tx, &actor, &mut Cache::new(2, 0)).map(|_| ())
        })?;
        let now = options.clock.now_ms();
        let actor: Option<Vec<u8>> =
            conn.query_row("SELECT actor FROM device WHERE id = 1", [], |r| r.get(0)).optional().db()?;
        let actor = match actor {
            Some(a) => ActorId::from(a),
            None => {
                let a = ActorId::random();
                conn.execute(
                    "INSERT INTO device (id, actor, created_at) VALUES (1, ?1, ?2)",
                    params![a.to_bytes(), now],
                )
                .db()?;
                a
            }
        };
        identity::ensure_device_key(&conn)?;
        let rules = projection::load_rules(&conn)?;
        let photo_dir = options.photo_dir.unwrap_or_else(|| {
            let mut p = path.as_os_str().to_owned();
            p.push(".photos");
            PathBuf::from(p)
        });
        let store = Store {
            conn,
            _lock: lock,
            actor,
            clock: options.clock,
            photo_dir,
            docs: Cache::new(options.cached_documents, options.cache_bytes),
            rules,
            compact_after_changes: options.compact_after_changes,
            changed: options.track_changes.then(Default::default),
            own_author: Default::default(),
            window: options.window,
        };
        Ok(store)
    }

    /// The documents whose content changed (a local write, or what a sync or merge brought in)
    /// since the last call, in id order; empty unless the store was opened with
    /// `track_changes`. Compaction and rebuilds change no content and are not listed.
    pub fn take_changed_documents(&mut self) -> Vec<DocId> {
        self.changed.as_mut().map(|c| std::mem::take(c).into_iter().collect()).unwrap_or_default()
    }

    /// This device's Automerge actor id (hex): every change it writes carries it.
    pub fn actor_id(&self) -> String {
        self.actor.to_hex_string()
    }

    pub(crate) fn actor(&self) -> &ActorId {
        &self.actor
    }

    pub fn now(&self) -> UnixMillis {
        self.clock.now_ms()
    }

    // ---- internals -----------------------------------------------------------------------

    /// The one write path: edit the document, commit, append the change and update the query
    /// tables in one SQLite transaction.
    fn write<R>(
        &mut self,
        id: &DocId,
        edit: impl FnOnce(&mut Doc) -> Result<R>,
        index: impl FnOnce(&mut Indexer<'_>, &Doc) -> Result<()>,
    ) -> Result<R> {
        let now = self.clock.now_ms();
        self.ensure_loaded(id)?;
        let doc = self.docs.get_mut(id).expect("loaded above");
        let r = match edit(doc) {
            Ok(r) => r,
            Err(e) => {
                doc.am.rollback();
                return Err(e);
            }
        };
        if doc.am.commit_with(CommitOptions::default().with_time(now / 1000)).is_none() {
            return Ok(r); // nothing changed
        }
        let change = doc.am.get_last_local_change().expect("just committed").raw_bytes().to_vec();
        if doc.stored_bytes + change.len() > MAX_DOCUMENT_BYTES {
            // Every other replica would refuse the change (`too_large`): it is not kept here
            // either, and the document is reloaded from disk without it.
            self.docs.remove(id);
            return Err(Error::invalid(
                "document",
                format!("{id} is full (the limit is {MAX_DOCUMENT_BYTES} bytes); nothing more can be written to it"),
            ));
        }
        let persist = if doc.persisted { Persist::Changes(vec![change]) } else { Persist::Snapshot };
        self.store_change(id, persist, &[], index)?;
        self.note_change(id);
        Ok(r)
    }

    fn note_change(&mut self, id: &DocId) {
        if let Some(changed) = &mut self.changed {
            changed.insert(id.clone());
        }
    }

    /// Makes a change to a loaded document durable: its bytes and the query tables it affects,
    /// in one SQLite transaction. On failure the in-memory document is dropped (memory must not
    /// hold what disk does not) and reloaded from disk when next needed.
    fn store_change(
        &mut self,
        id: &DocId,
        persist: Persist,
        vouchers: &[Voucher],
        index: impl FnOnce(&mut Indexer<'_>, &Doc) -> Result<()>,
    ) -> Result<()> {
        let now = self.clock.now_ms();
        let doc = self.docs.get_mut(id).expect("the caller loaded the document");
        match store_in_transaction(&mut self.conn, &self.rules, doc, &persist, now, vouchers, index) {
            Ok(rules) => {
                match persist {
                    Persist::Snapshot => doc.change_rows = 0,
                    Persist::Changes(c) => {
                        doc.change_rows += c.len();
                        doc.next_seq += c.len() as i64;
                        doc.stored_bytes += c.iter().map(Vec::len).sum::<usize>();
                    }
                }
                doc.persisted = true;
                if *id == DocId::Directory {
                    self.own_author.replace(None);
                }
                if let Some(rules) = rules {
                    self.rules = rules;
                }
                Ok(())
            }
            Err(e) => {
                self.docs.remove(id);
                Err(e)
            }
        }
    }

    fn doc(&mut self, id: &DocId) -> Result<&Doc> {
        self.ensure_loaded(id)?;
        Ok(self.docs.get(id).expect("loaded above"))
    }

    /// Puts the document in the cache: from disk if stored, else a fresh one from its genesis.
    fn ensure_loaded(&mut self, id: &DocId) -> Result<()> {
        if self.docs.touch(id) {
            return Ok(());
        }
        let doc = match load_doc(&mut self.repository(), id, &self.actor)? {
            Some(doc) => doc,
            None => Doc::new(id.clone(), self.actor.clone()),
        };
        let needs_compaction = doc.change_rows > self.compact_after_changes;
        self.docs.insert(doc);
        if needs_compaction {
            self.compact(id)?;
        }
        Ok(())
    }

    pub(crate) fn has_document(&self, id: &DocId) -> Result<bool> {
        if self.docs.get(id).is_some_and(|d| d.persisted) {
            return Ok(true);
        }
        self.repository().exists(id)
    }

    /// The document repository over this store's connection (outside any transaction).
    fn repository(&self) -> SqliteRepository<'_> {
        SqliteRepository::new(&self.conn)
    }

    fn load_household(&mut self, doc_id: &DocId, id: &HouseholdId) -> Result<Household> {
        self.doc(doc_id)?
            .get_map::<Household>(Collection::Households, id.as_str())?
            .ok_or_else(|| Error::not_found("household", id))
    }

    fn unit_kind(&self, id: &UnitId) -> Result<UnitKind> {
        query::unit_kind(&self.conn, id)
    }

    fn require_unit(&self, id: &UnitId, kind: UnitKind, what: &'static str) -> Result<()> {
        query::require_unit(&self.conn, id, kind, what)
    }

    fn require_micro_grid_of(&self, micro: &UnitId, grid: &UnitId) -> Result<()> {
        self.require_unit(micro, UnitKind::MicroGrid, "micro-grid")?;
        let parent: Option<String> =
            self.conn.query_row("SELECT parent_id FROM units WHERE id = ?1", [micro.as_str()], |r| r.get(0)).db()?;
        if parent.as_deref() != Some(grid.as_str()) {
            return Err(Error::invalid("micro-grid", format!("micro-grid {micro} is not part of grid {grid}")));
        }
        Ok(())
    }

    fn require_user(&self, id: &UserId) -> Result<()> {
        query::require_user(&self.conn, id)
    }

    /// The user a record written on this phone names as its author must be the user the phone is
    /// registered to (every other replica refuses it otherwise, as `forged_author`); an admin's
    /// device may record for others. A phone not registered yet (the office's own store, tests)
    /// records as anyone.
    fn require_author(&self, author: &UserId) -> Result<()> {
        self.require_user(author)?;
        if self.own_author.borrow().is_none() {
            let found = self.author_of_actor(&self.actor_id())?;
            *self.own_author.borrow_mut() = Some(found);
        }
        let own = self.own_author.borrow();
        let Some(Some((me, role))) = own.as_ref() else { return Ok(()) };
        if me == author.as_str() || *role == crate::directory::Role::Admin {
            Ok(())
        } else {
            Err(Error::invalid("author", "this phone is registered to another user and records only as that user"))
        }
    }

    /// The document a household's or resident's row in `table` comes from.
    fn row_document(&self, table: &'static str, id: &str) -> Result<DocId> {
        let doc: Option<String> = lookup(&self.conn, &format!("SELECT doc_id FROM {table} WHERE id = ?1"), [id])?;
        DocId::parse(&doc.ok_or_else(|| Error::not_found("record", id))?)
    }
}

/// Takes the exclusive lock of the store at `path` (an advisory lock on `<path>.lock`, which the
/// operating system releases when the process ends, however it ends).
fn lock_file(path: &Path) -> Result<std::fs::File> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&lock_path)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::storage(
            "the store is already open, in this app or another process; use that one or close it first",
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

fn year_of(ms: UnixMillis) -> i32 {
    // Days since 1970 to a Gregorian year, good for validating birth years.
    (1970.0 + ms as f64 / (365.2425 * 86_400_000.0)).floor() as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ReportId;

    fn store(dir: &tempfile::TempDir, cached_documents: usize, cache_bytes: usize) -> Store {
        let options = OpenOptions { cached_documents, cache_bytes, ..OpenOptions::default() };
        Store::open(dir.path().join("phone.sqlite"), options).unwrap()
    }

    fn report() -> DocId {
        DocId::Report(ReportId::generate())
    }

    fn unit(s: &mut Store, name: &str) -> Result<crate::directory::Unit> {
        s.add_unit(crate::directory::NewUnit { kind: UnitKind::District, parent: None, name: name.into() })
    }

    /// A full disk, a database another connection holds, a damaged file: each is a storage
    /// error of its own kind, and what was stored before is still there.
    #[test]
    fn storage_failures_say_which_kind_they_are() {
        use crate::error::StorageKind;
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(&dir, 32, 16 << 20);
        let kept = unit(&mut s, "Jinshui District").unwrap();
        // Full: SQLite may not grow the file any further.
        let pages: i64 = s.conn.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
        s.conn.pragma_update(None, "max_page_count", pages).unwrap();
        let full = (0..5_000).find_map(|i| unit(&mut s, &format!("District {i:04} {}", "x".repeat(80))).err()).unwrap();
        assert!(matches!(full, Error::Storage { kind: StorageKind::Full, .. }), "{full}");
        assert!(full.to_string().contains("storage is full"), "{full}");
        s.conn.pragma_update(None, "max_page_count", 1_073_741_823).unwrap();
        assert_eq!(s.units(None).unwrap().iter().filter(|u| u.id == kept.id).count(), 1);
        unit(&mut s, "Zhongyuan District").unwrap();
        // Busy: another connection holds the write lock longer than the store waits.
        let other = rusqlite::Connection::open(dir.path().join("phone.sqlite")).unwrap();
        other.execute_batch("BEGIN EXCLUSIVE").unwrap();
        s.conn.busy_timeout(std::time::Duration::from_millis(50)).unwrap();
        let busy = unit(&mut s, "Erqi District").unwrap_err();
        assert!(matches!(busy, Error::Storage { kind: StorageKind::Busy, .. }), "{busy}");
        other.execute_batch("ROLLBACK").unwrap();
        unit(&mut s, "Erqi District").unwrap();
        drop(s);
        // Corrupt: a file that is not a database.
        let junk = dir.path().join("junk.sqlite");
        std::fs::write(&junk, vec![0x5a; 8192]).unwrap();
        let damaged = Store::open(&junk, OpenOptions::default()).err().unwrap();
        assert!(matches!(damaged, Error::Storage { kind: StorageKind::Corrupt, .. }), "{damaged}");
    }

    /// A full cache lets go of the document used longest ago, never of one in use since.
    #[test]
    fn the_cache_lets_go_of_the_least_recently_used_document() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(&dir, 3, usize::MAX);
        for _ in 0..30 {
            s.docs.clear();
            let [a, b, c, d] = [report(), report(), report(), report()];
            for doc in [&a, &b, &c, &a, &b, &d] {
                s.ensure_loaded(doc).unwrap();
            }
            let cached: Vec<bool> = [&a, &b, &c, &d].iter().map(|doc| s.docs.contains(doc)).collect();
            assert_eq!(cached, vec![true, true, false, true]);
        }
    }

    /// Documents are let go of, oldest use first, until the stored bytes fit the budget.
    #[test]
    fn the_cache_keeps_within_its_byte_budget() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(&dir, 32, 25);
        let docs: Vec<DocId> = (0..4).map(|_| report()).collect();
        for d in &docs[..3] {
            s.ensure_loaded(d).unwrap();
            s.docs.get_mut(d).unwrap().stored_bytes = 10;
        }
        // 30 bytes are cached now; the next load lets go of the oldest until 25 hold.
        s.ensure_loaded(&docs[3]).unwrap();
        let cached: Vec<bool> = docs.iter().map(|d| s.docs.contains(d)).collect();
        assert_eq!(cached, vec![false, true, true, true]);
    }
}
