//! The local store: every document persisted in one SQLite file as a compacted snapshot plus
//! appended change rows, and the derived query tables kept in step in the same transaction.
//!
//! A write is: change the in-memory document, commit it, append the change's bytes and update
//! the query tables in one SQLite transaction. When that transaction commits the write is durable
//! (WAL); when anything fails the in-memory copy is dropped and reloaded from disk, so memory
//! never holds what disk does not. Screens query tables only: opening the store loads no document.
//!
//! It must never log or put in an error a resident's personal data, and never expose Automerge
//! types to its callers.

mod index;
pub mod query;
pub mod schema;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use automerge::{transaction::CommitOptions, ActorId, AutoCommit};
use rusqlite::{params, Connection, OptionalExtension};

use crate::clock::{Clock, SystemClock, UnixMillis};
use crate::directory::{Category, Device, NewCategory, NewUnit, NewUser, Unit, UnitKind, User, VisitRules};
use crate::document::{touched_records, Doc, DocId, Touched, HEADER_KEY};
use crate::error::{Error, Result};
use crate::household::{Household, HouseholdUpdate, NewHousehold, NewResident, Resident, RiskLevel};
use crate::ids::{EventId, HouseholdId, ReportId, ResidentId, UnitId, UserId, VisitId};
use crate::photo::{hash_file, PhotoMeta};
use crate::report::{NewReport, NewReportEvent, Report, ReportEvent, ReportEventKind};
use crate::visit::{NewVisit, Visit};
use index::Indexer;

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
    /// A document loaded with more change rows than this is compacted right away.
    pub compact_after_changes: usize,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            durability: Durability::Normal,
            clock: Arc::new(SystemClock),
            photo_dir: None,
            cached_documents: 32,
            compact_after_changes: 1_000,
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
    actor: ActorId,
    clock: Arc<dyn Clock>,
    photo_dir: PathBuf,
    docs: HashMap<DocId, Doc>,
    rules: VisitRules,
    cached_documents: usize,
    compact_after_changes: usize,
}

impl Store {
    /// Opens (or creates) the store at `path`, bringing its schema up to date.
    pub fn open(path: impl AsRef<Path>, options: OpenOptions) -> Result<Store> {
        let path = path.as_ref();
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(
            None,
            "synchronous",
            if options.durability == Durability::Full { "FULL" } else { "NORMAL" },
        )?;
        conn.pragma_update(None, "busy_timeout", 5_000)?;
        conn.set_prepared_statement_cache_capacity(64);
        let rebuild = schema::migrate(&mut conn)?;
        let now = options.clock.now_ms();
        let actor: Option<Vec<u8>> =
            conn.query_row("SELECT actor FROM device WHERE id = 1", [], |r| r.get(0)).optional()?;
        let actor = match actor {
            Some(a) => ActorId::from(a),
            None => {
                let a = ActorId::random();
                conn.execute(
                    "INSERT INTO device (id, actor, created_at) VALUES (1, ?1, ?2)",
                    params![a.to_bytes(), now],
                )?;
                a
            }
        };
        let rules = index::load_rules(&conn)?;
        let photo_dir = options.photo_dir.unwrap_or_else(|| {
            let mut p = path.as_os_str().to_owned();
            p.push(".photos");
            PathBuf::from(p)
        });
        let mut store = Store {
            conn,
            actor,
            clock: options.clock,
            photo_dir,
            docs: HashMap::new(),
            rules,
            cached_documents: options.cached_documents.max(2),
            compact_after_changes: options.compact_after_changes,
        };
        if rebuild {
            store.rebuild_indexes()?;
        }
        Ok(store)
    }

    /// This device's Automerge actor id (hex): every change it writes carries it.
    pub fn actor_id(&self) -> String {
        self.actor.to_hex_string()
    }

    pub fn now(&self) -> UnixMillis {
        self.clock.now_ms()
    }

    // ---- directory -----------------------------------------------------------------------

    pub fn add_unit(&mut self, new: NewUnit) -> Result<Unit> {
        new.validate()?;
        if let Some(parent) = &new.parent {
            let kind = self.unit_kind(parent)?;
            if Some(kind) != new.kind.parent_kind() {
                return Err(Error::invalid(
                    "parent unit",
                    format!(
                        "a {} must hang under a {}",
                        new.kind.as_str(),
                        new.kind.parent_kind().map_or("nothing", |k| k.as_str())
                    ),
                ));
            }
        }
        let unit = Unit { id: UnitId::generate(), kind: new.kind, parent: new.parent, name: new.name, deleted: false };
        self.write(&DocId::Directory, |d| d.put_map("units", unit.id.as_str(), &unit), |ix, _| ix.unit(&unit))?;
        Ok(unit)
    }

    pub fn add_user(&mut self, new: NewUser) -> Result<User> {
        new.validate()?;
        self.unit_kind(&new.unit)?;
        let user = User {
            id: UserId::generate(),
            name: new.name,
            role: new.role,
            unit: new.unit,
            department: new.department,
            deleted: false,
        };
        self.write(&DocId::Directory, |d| d.put_map("users", user.id.as_str(), &user), |ix, _| ix.user(&user))?;
        Ok(user)
    }

    /// Records in the directory that this device belongs to `user` and writes with this store's actor id.
    pub fn register_device(&mut self, user: &UserId) -> Result<()> {
        self.require_user(user)?;
        let actor = self.actor_id();
        let device = Device { id: actor.clone(), user: user.clone(), actor, deleted: false };
        self.write(&DocId::Directory, |d| d.put_map("devices", &device.id, &device), |ix, _| ix.device(&device))
    }

    /// Adds or changes a report category and its deadlines.
    pub fn set_category(&mut self, new: NewCategory) -> Result<()> {
        new.validate()?;
        let c = Category {
            id: new.id,
            name: new.name,
            triage_hours: new.triage_hours,
            feedback_hours: new.feedback_hours,
            resolve_hours: new.resolve_hours,
            deleted: false,
        };
        self.write(&DocId::Directory, |d| d.put_map("categories", c.id.as_str(), &c), |ix, _| ix.category(&c))
    }

    /// Replaces the rules that say how often households must be visited; every household's due
    /// date follows in the same transaction.
    pub fn set_visit_rules(&mut self, rules: &VisitRules) -> Result<()> {
        rules.validate()?;
        let entries = rules.to_entries();
        self.write(
            &DocId::Directory,
            |d| entries.iter().try_for_each(|(k, h)| d.put_int("visit_rules", k, *h as i64)),
            |ix, doc| {
                entries.iter().try_for_each(|(k, _)| {
                    ix.project(doc, &Touched { collection: "visit_rules".into(), key: Some(k.clone()) })
                })
            },
        )
    }

    pub fn visit_rules(&self) -> &VisitRules {
        &self.rules
    }

    // ---- households ----------------------------------------------------------------------

    /// Registers a household in a grid (optionally in one of its micro-grids).
    pub fn add_household(&mut self, grid: &UnitId, new: NewHousehold) -> Result<Household> {
        self.require_unit(grid, UnitKind::Grid, "grid")?;
        if let Some(m) = &new.micro_grid {
            self.require_micro_grid_of(m, grid)?;
        }
        let h = Household {
            id: HouseholdId::generate(),
            grid: grid.clone(),
            micro_grid: new.micro_grid,
            address: new.address,
            location: new.location,
            care_tags: new.care_tags,
            risk: new.risk.unwrap_or(RiskLevel::Grey),
            notes: new.notes,
            created_at: self.now(),
            deleted: false,
        };
        h.validate()?;
        self.write(
            &DocId::Grid(grid.clone()),
            |d| d.put_map("households", h.id.as_str(), &h),
            |ix, _| ix.household(&h),
        )?;
        Ok(h)
    }

    /// Changes some fields of a household; fields left `None` are untouched, so an edit made on
    /// another phone to other fields merges with this one.
    pub fn update_household(&mut self, id: &HouseholdId, update: HouseholdUpdate) -> Result<Household> {
        let grid = self.household_grid(id)?;
        if let Some(Some(m)) = &update.micro_grid {
            self.require_micro_grid_of(m, &grid)?;
        }
        let doc_id = DocId::Grid(grid);
        let mut h = self.load_household(&doc_id, id)?;
        h.apply(update);
        h.validate()?;
        self.write(&doc_id, |d| d.put_map("households", h.id.as_str(), &h), |ix, _| ix.household(&h))?;
        Ok(h)
    }

    /// Deletes a household by tombstone: its history stays in the document.
    pub fn delete_household(&mut self, id: &HouseholdId) -> Result<()> {
        let doc_id = DocId::Grid(self.household_grid(id)?);
        let mut h = self.load_household(&doc_id, id)?;
        h.deleted = true;
        self.write(&doc_id, |d| d.put_map("households", h.id.as_str(), &h), |ix, _| ix.household(&h))
    }

    pub fn add_resident(&mut self, new: NewResident) -> Result<Resident> {
        let grid = self.household_grid(&new.household)?;
        let r = Resident {
            id: ResidentId::generate(),
            household: new.household,
            name: new.name,
            phone: new.phone,
            id_number: new.id_number,
            birth_year: new.birth_year,
            relation: new.relation,
            deleted: false,
        };
        r.validate(year_of(self.now()))?;
        let g = grid.as_str().to_owned();
        self.write(&DocId::Grid(grid), |d| d.put_map("residents", r.id.as_str(), &r), |ix, _| ix.resident(&g, &r))?;
        Ok(r)
    }

    // ---- visits --------------------------------------------------------------------------

    /// Records a visit: one change to the household's grid document, durable when this returns.
    pub fn record_visit(&mut self, new: NewVisit) -> Result<Visit> {
        let (grid, worker_known): (Option<String>, bool) = self
            .conn
            .prepare_cached(
                "SELECT (SELECT grid_id FROM households WHERE id = ?1 AND deleted = 0),
                        EXISTS(SELECT 1 FROM users WHERE id = ?2 AND deleted = 0)",
            )?
            .query_row([new.household.as_str(), new.worker.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let grid = UnitId::parse(&grid.ok_or_else(|| Error::not_found("household", &new.household))?)?;
        if !worker_known {
            return Err(Error::not_found("user", &new.worker));
        }
        let v = Visit {
            id: VisitId::generate(),
            household: new.household,
            worker: new.worker,
            at: new.at.unwrap_or_else(|| self.now()),
            location: new.location,
            kind: new.kind,
            outcome: new.outcome,
            notes: new.notes,
            follow_up: new.follow_up,
            photos: new.photos,
            deleted: false,
        };
        v.validate()?;
        let doc_id = DocId::Grid(grid.clone());
        self.write(
            &doc_id,
            |d| d.put_value("visits", v.id.as_str(), &v),
            |ix, d| ix.visit(&d.id, grid.as_str(), &v, true),
        )?;
        Ok(v)
    }

    /// Deletes a visit recorded by mistake: a tombstone replaces it, its history stays.
    pub fn delete_visit(&mut self, id: &VisitId) -> Result<()> {
        let grid: Option<String> =
            self.conn.query_row("SELECT grid_id FROM visits WHERE id = ?1", [id.as_str()], |r| r.get(0)).optional()?;
        let grid = UnitId::parse(&grid.ok_or_else(|| Error::not_found("visit", id))?)?;
        let doc_id = DocId::Grid(grid.clone());
        let mut v = self
            .doc(&doc_id)?
            .get_value::<Visit>("visits", id.as_str())?
            .ok_or_else(|| Error::not_found("visit", id))?;
        v.deleted = true;
        self.write(
            &doc_id,
            |d| d.put_value("visits", v.id.as_str(), &v),
            |ix, d| ix.visit(&d.id, grid.as_str(), &v, false),
        )
    }

    /// Hashes a photo file and keeps a copy under its SHA-256 in the photo folder; the returned
    /// metadata goes into a visit or a report. Photo bytes never enter a document.
    pub fn import_photo(
        &mut self,
        path: &Path,
        mime: &str,
        width: u32,
        height: u32,
        taken_at: Option<UnixMillis>,
        location: Option<crate::GeoPoint>,
    ) -> Result<PhotoMeta> {
        let (sha256, byte_size) = hash_file(path)?;
        let meta = PhotoMeta { sha256, byte_size, mime: mime.to_owned(), width, height, taken_at, location };
        meta.validate()?;
        std::fs::create_dir_all(&self.photo_dir)?;
        let target = self.photo_dir.join(&meta.sha256);
        if !target.exists() {
            let tmp = self.photo_dir.join(format!("{}.part", meta.sha256));
            std::fs::copy(path, &tmp)?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &target)?;
        }
        Ok(meta)
    }

    /// Where the file of a photo is kept, if this phone has it.
    pub fn photo_path(&self, sha256: &str) -> Option<PathBuf> {
        let p = self.photo_dir.join(sha256);
        (sha256.len() == 64 && p.exists()).then_some(p)
    }

    // ---- reports -------------------------------------------------------------------------

    /// Files a citizen report: a new `report/<id>` document with its header and `submitted` event.
    pub fn file_report(&mut self, new: NewReport) -> Result<Report> {
        self.require_user(&new.reporter)?;
        let exists: bool = self.conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM categories WHERE id = ?1 AND deleted = 0)",
            [new.category.as_str()],
            |r| r.get(0),
        )?;
        if !exists {
            return Err(Error::not_found("report category", &new.category));
        }
        if let Some(g) = &new.grid {
            self.require_unit(g, UnitKind::Grid, "grid")?;
        }
        let now = self.now();
        let report = Report {
            id: ReportId::generate(),
            reporter: new.reporter,
            category: new.category,
            description: new.description,
            location: new.location,
            address: new.address,
            grid: new.grid,
            photos: new.photos,
            created_at: now,
        };
        report.validate()?;
        let submitted = ReportEvent {
            id: EventId::generate(),
            at: now,
            author: report.reporter.clone(),
            kind: ReportEventKind::Submitted,
            note: String::new(),
            target: None,
            score: None,
            photos: vec![],
        };
        self.write(
            &DocId::Report(report.id.clone()),
            |d| {
                d.put_value("header", HEADER_KEY, &report)?;
                d.put_value("events", submitted.id.as_str(), &submitted)
            },
            |ix, d| ix.project(d, &Touched { collection: "header".into(), key: Some(HEADER_KEY.into()) }),
        )?;
        Ok(report)
    }

    /// Appends an event to a report's log.
    pub fn add_report_event(&mut self, new: NewReportEvent) -> Result<ReportEvent> {
        self.require_user(&new.author)?;
        let doc_id = DocId::Report(new.report.clone());
        if !self.has_document(&doc_id)? {
            return Err(Error::not_found("report", &new.report));
        }
        let e = ReportEvent {
            id: EventId::generate(),
            at: self.now(),
            author: new.author,
            kind: new.kind,
            note: new.note,
            target: new.target,
            score: new.score,
            photos: new.photos,
        };
        e.validate()?;
        self.write(
            &doc_id,
            |d| d.put_value("events", e.id.as_str(), &e),
            |ix, d| ix.project(d, &Touched { collection: "events".into(), key: Some(e.id.to_string()) }),
        )?;
        Ok(e)
    }

    /// A report as filed and its whole event log, oldest first.
    pub fn report(&mut self, id: &ReportId) -> Result<(Report, Vec<ReportEvent>)> {
        let doc_id = DocId::Report(id.clone());
        if !self.has_document(&doc_id)? {
            return Err(Error::not_found("report", id));
        }
        let doc = self.doc(&doc_id)?;
        let report = doc.get_value::<Report>("header", HEADER_KEY)?.ok_or_else(|| Error::not_found("report", id))?;
        let mut events = Vec::new();
        for k in doc.keys("events")? {
            events.extend(doc.get_value::<ReportEvent>("events", &k)?);
        }
        events.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        Ok((report, events))
    }

    // ---- documents: exchange, compaction, rebuild ------------------------------------------

    /// Every document this store holds.
    pub fn document_ids(&self) -> Result<Vec<DocId>> {
        let mut stmt = self.conn.prepare("SELECT doc_id FROM documents ORDER BY doc_id")?;
        let ids = stmt.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
        ids.iter().map(|s| DocId::parse(s)).collect()
    }

    /// The whole document, history included, as bytes another replica can merge.
    pub fn save_document(&mut self, id: &DocId) -> Result<Vec<u8>> {
        if !self.has_document(id)? {
            return Err(Error::not_found("document", id));
        }
        self.ensure_loaded(id)?;
        Ok(self.docs.get_mut(id).expect("loaded above").am.save())
    }

    /// Merges bytes of another replica of `id` (a whole document or changes) into this store and
    /// updates the query tables from the merge's patches, all in one transaction. Bytes that are
    /// not a valid document, or are another document, change nothing.
    pub fn merge_document(&mut self, id: &DocId, bytes: &[u8]) -> Result<MergeOutcome> {
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return Err(Error::invalid("document", format!("is over the limit of {MAX_DOCUMENT_BYTES} bytes")));
        }
        let mut other = AutoCommit::load(bytes)
            .map_err(|e| Error::CorruptDocument { doc: id.to_string(), reason: e.to_string() })?;
        Doc::check_identity(&other, id)?;
        self.ensure_loaded(id)?;
        let doc = self.docs.get_mut(id).expect("loaded above");
        let before = doc.am.get_heads();
        if let Err(e) = doc.am.merge(&mut other) {
            self.docs.remove(id);
            return Err(Error::CorruptDocument { doc: id.to_string(), reason: e.to_string() });
        }
        let after = doc.am.get_heads();
        if before == after {
            return Ok(MergeOutcome::default());
        }
        let changes: Vec<Vec<u8>> = doc.am.get_changes(&before).iter().map(|c| c.raw_bytes().to_vec()).collect();
        let touched = touched_records(&doc.am.diff(&before, &after));
        doc.index_collections();
        let new_changes = changes.len();
        let persist = if !doc.persisted || new_changes > 64 { Persist::Snapshot } else { Persist::Changes(changes) };
        self.store_change(id, persist, |ix, doc| touched.iter().try_for_each(|t| ix.project(doc, t)))?;
        Ok(MergeOutcome { new_changes, records_updated: touched.len() })
    }

    /// Folds a document's change rows into a new snapshot, in one transaction. History is kept:
    /// the snapshot holds every change.
    pub fn compact(&mut self, id: &DocId) -> Result<()> {
        if !self.has_document(id)? {
            return Err(Error::not_found("document", id));
        }
        self.ensure_loaded(id)?;
        self.store_change(id, Persist::Snapshot, |_, _| Ok(()))
    }

    pub fn compact_all(&mut self) -> Result<()> {
        for id in self.document_ids()? {
            self.compact(&id)?;
            self.docs.remove(&id);
        }
        self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;")?;
        Ok(())
    }

    /// Throws away every query table and derives it again from the documents.
    pub fn rebuild_indexes(&mut self) -> Result<()> {
        let ids = self.document_ids()?;
        let tx = self.conn.transaction()?;
        for t in schema::DERIVED_TABLES {
            tx.execute(&format!("DELETE FROM {t}"), [])?;
        }
        // `directory` sorts first, so grids are projected with the directory's visit rules.
        // Documents not in the cache are loaded one at a time and let go again.
        let mut rules = VisitRules::default();
        for id in &ids {
            let loaded;
            let doc = match self.docs.get(id) {
                Some(doc) => doc,
                None => {
                    loaded = load_doc(&tx, id, &self.actor)?.ok_or_else(|| Error::not_found("document", id))?;
                    &loaded
                }
            };
            let mut ix = Indexer::new(&tx, &rules);
            for c in doc.id.collections() {
                ix.project(doc, &Touched { collection: (*c).into(), key: None })?;
            }
            if let Some(r) = ix.finish(doc)? {
                rules = r;
            }
        }
        tx.commit()?;
        self.rules = rules;
        Ok(())
    }

    /// Caps the database file at `pages` pages, so that tests can see what a full disk does.
    #[doc(hidden)]
    pub fn limit_pages_for_tests(&self, pages: i64) -> Result<()> {
        self.conn.pragma_update(None, "max_page_count", pages)?;
        Ok(())
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
        let persist = if doc.persisted {
            Persist::Changes(vec![doc.am.get_last_local_change().expect("just committed").raw_bytes().to_vec()])
        } else {
            Persist::Snapshot
        };
        self.store_change(id, persist, index)?;
        Ok(r)
    }

    /// Makes a change to a loaded document durable: its bytes and the query tables it affects,
    /// in one SQLite transaction. On failure the in-memory document is dropped (memory must not
    /// hold what disk does not) and reloaded from disk when next needed.
    fn store_change(
        &mut self,
        id: &DocId,
        persist: Persist,
        index: impl FnOnce(&mut Indexer<'_>, &Doc) -> Result<()>,
    ) -> Result<()> {
        let now = self.clock.now_ms();
        let doc = self.docs.get_mut(id).expect("the caller loaded the document");
        match store_in_transaction(&mut self.conn, &self.rules, doc, &persist, now, index) {
            Ok(rules) => {
                match persist {
                    Persist::Snapshot => doc.change_rows = 0,
                    Persist::Changes(c) => {
                        doc.change_rows += c.len();
                        doc.next_seq += c.len() as i64;
                    }
                }
                doc.persisted = true;
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
        if self.docs.contains_key(id) {
            return Ok(());
        }
        let doc = match load_doc(&self.conn, id, &self.actor)? {
            Some(doc) => doc,
            None => Doc::new(id.clone(), self.actor.clone()),
        };
        if self.docs.len() >= self.cached_documents {
            let victim = self.docs.keys().next().cloned();
            if let Some(v) = victim {
                self.docs.remove(&v);
            }
        }
        let needs_compaction = doc.change_rows > self.compact_after_changes;
        self.docs.insert(id.clone(), doc);
        if needs_compaction {
            self.compact(id)?;
        }
        Ok(())
    }

    fn has_document(&self, id: &DocId) -> Result<bool> {
        if self.docs.get(id).is_some_and(|d| d.persisted) {
            return Ok(true);
        }
        Ok(self
            .conn
            .query_row("SELECT EXISTS(SELECT 1 FROM documents WHERE doc_id = ?1)", [id.to_string()], |r| r.get(0))?)
    }

    fn load_household(&mut self, doc_id: &DocId, id: &HouseholdId) -> Result<Household> {
        self.doc(doc_id)?
            .get_map::<Household>("households", id.as_str())?
            .ok_or_else(|| Error::not_found("household", id))
    }

    fn unit_kind(&self, id: &UnitId) -> Result<UnitKind> {
        let kind: Option<String> = self
            .conn
            .prepare_cached("SELECT kind FROM units WHERE id = ?1 AND deleted = 0")?
            .query_row([id.as_str()], |r| r.get(0))
            .optional()?;
        kind.and_then(|k| UnitKind::parse(&k)).ok_or_else(|| Error::not_found("unit", id))
    }

    fn require_unit(&self, id: &UnitId, kind: UnitKind, what: &'static str) -> Result<()> {
        match self.unit_kind(id) {
            Ok(k) if k == kind => Ok(()),
            Ok(_) => Err(Error::invalid(what, format!("unit {id} is not a {}", kind.as_str()))),
            Err(_) => Err(Error::not_found(what, id)),
        }
    }

    fn require_micro_grid_of(&self, micro: &UnitId, grid: &UnitId) -> Result<()> {
        self.require_unit(micro, UnitKind::MicroGrid, "micro-grid")?;
        let parent: Option<String> =
            self.conn.query_row("SELECT parent_id FROM units WHERE id = ?1", [micro.as_str()], |r| r.get(0))?;
        if parent.as_deref() != Some(grid.as_str()) {
            return Err(Error::invalid("micro-grid", format!("micro-grid {micro} is not part of grid {grid}")));
        }
        Ok(())
    }

    fn require_user(&self, id: &UserId) -> Result<()> {
        let exists: bool = self
            .conn
            .prepare_cached("SELECT EXISTS(SELECT 1 FROM users WHERE id = ?1 AND deleted = 0)")?
            .query_row([id.as_str()], |r| r.get(0))?;
        if exists {
            Ok(())
        } else {
            Err(Error::not_found("user", id))
        }
    }

    fn household_grid(&self, id: &HouseholdId) -> Result<UnitId> {
        let grid: Option<String> = self
            .conn
            .prepare_cached("SELECT grid_id FROM households WHERE id = ?1 AND deleted = 0")?
            .query_row([id.as_str()], |r| r.get(0))
            .optional()?;
        UnitId::parse(&grid.ok_or_else(|| Error::not_found("household", id))?)
    }
}

/// Loads a stored document: its snapshot plus the change rows appended since.
fn load_doc(conn: &Connection, id: &DocId, actor: &ActorId) -> Result<Option<Doc>> {
    let key = id.to_string();
    let snapshot: Option<Vec<u8>> =
        conn.query_row("SELECT snapshot FROM documents WHERE doc_id = ?1", [&key], |r| r.get(0)).optional()?;
    let Some(snapshot) = snapshot else {
        return Ok(None);
    };
    let corrupt = |e: automerge::AutomergeError| Error::CorruptDocument { doc: key.clone(), reason: e.to_string() };
    let mut am = AutoCommit::load(&snapshot).map_err(corrupt)?;
    let mut stmt = conn.prepare_cached("SELECT seq, bytes FROM changes WHERE doc_id = ?1 ORDER BY seq")?;
    let mut rows = stmt.query([&key])?;
    let mut all = Vec::new();
    let (mut n, mut last_seq) = (0, 0);
    while let Some(row) = rows.next()? {
        last_seq = row.get(0)?;
        all.extend_from_slice(row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?);
        n += 1;
    }
    if !all.is_empty() {
        am.load_incremental(&all).map_err(corrupt)?;
    }
    am.set_actor(actor.clone());
    Ok(Some(Doc::from_parts(id.clone(), am, true, n, last_seq + 1)))
}

/// How a change reaches disk: appended change rows, or a new snapshot of the whole document
/// (for a document this store never saved, or a merge that brought many changes).
enum Persist {
    Snapshot,
    Changes(Vec<Vec<u8>>),
}

fn store_in_transaction(
    conn: &mut Connection,
    rules: &VisitRules,
    doc: &mut Doc,
    persist: &Persist,
    now: UnixMillis,
    index: impl FnOnce(&mut Indexer<'_>, &Doc) -> Result<()>,
) -> Result<Option<VisitRules>> {
    let tx = conn.transaction()?;
    match persist {
        Persist::Snapshot => write_snapshot(&tx, doc, now)?,
        Persist::Changes(changes) => {
            for (i, c) in changes.iter().enumerate() {
                tx.prepare_cached("INSERT INTO changes (doc_id, seq, bytes) VALUES (?1, ?2, ?3)")?.execute(params![
                    doc.id.to_string(),
                    doc.next_seq + i as i64,
                    c
                ])?;
            }
        }
    }
    let mut ix = Indexer::new(&tx, rules);
    index(&mut ix, doc)?;
    let new_rules = ix.finish(doc)?;
    tx.commit()?;
    Ok(new_rules)
}

fn write_snapshot(tx: &rusqlite::Transaction<'_>, doc: &mut Doc, now: UnixMillis) -> Result<()> {
    let key = doc.id.to_string();
    tx.execute(
        "INSERT INTO documents (doc_id, snapshot, compacted_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(doc_id) DO UPDATE SET snapshot = ?2, compacted_at = ?3",
        params![key, doc.am.save(), now],
    )?;
    tx.execute("DELETE FROM changes WHERE doc_id = ?1", [&key])?;
    Ok(())
}

fn year_of(ms: UnixMillis) -> i32 {
    // Days since 1970 to a Gregorian year, good for validating birth years.
    (1970.0 + ms as f64 / (365.2425 * 86_400_000.0)).floor() as i32
}
