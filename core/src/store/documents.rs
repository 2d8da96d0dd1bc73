//! Documents as a whole: exchanging them with other replicas, compacting, rebuilding the
//! query tables from them.

use automerge::{AutoCommit, ChangeHash};

use super::{
    check_changes, load_doc, mark_heads, schema, Authors, DocumentRepository, Indexer, MergeOutcome, Persist,
    SqliteRepository, Store, MAX_DOCUMENT_BYTES,
};
use crate::directory::VisitRules;
use crate::document::{Doc, DocId, Touched};
use crate::error::{Db, Error, Result};

impl Store {
    /// Every document this store holds.
    pub fn document_ids(&self) -> Result<Vec<DocId>> {
        self.repository().ids("", None)
    }

    /// Every document this store holds with what it takes on disk, by id (`doorstep ls`).
    pub fn documents(&self) -> Result<Vec<StoredDocument>> {
        self.repository().sizes()
    }

    /// The whole document, history included, as bytes another replica can merge.
    pub fn save_document(&mut self, id: &DocId) -> Result<Vec<u8>> {
        if !self.has_document(id)? {
            return Err(Error::not_found("document", id));
        }
        self.ensure_loaded(id)?;
        Ok(super::save(&mut self.docs.get_mut(id).expect("loaded above").am))
    }

    /// Merges bytes of another replica of `id` (a whole document or changes) into this store and
    /// updates the query tables from the merge's patches, all in one transaction. Bytes that are
    /// not a valid document, or are another document, change nothing; changes that break the
    /// data model's rules (`boundary`) are refused whole with [`Error::Refused`].
    ///
    /// Records may name any user as their author: this is the office's import of history it
    /// recorded on behalf of workers (the server's admin import). A phone taking a document from
    /// elsewhere uses [`Store::import_document`].
    pub fn merge_document(&mut self, id: &DocId, bytes: &[u8]) -> Result<MergeOutcome> {
        self.merge_checked(id, bytes, Authors::OnBehalf)
    }

    /// Like [`Store::merge_document`], but every record that names its author must have been
    /// written by a device of that user (the directory's `devices`): what a phone does with a
    /// document file another phone exported.
    pub fn import_document(&mut self, id: &DocId, bytes: &[u8]) -> Result<MergeOutcome> {
        self.merge_checked(id, bytes, Authors::Verified)
    }

    fn merge_checked(&mut self, id: &DocId, bytes: &[u8], authors: Authors) -> Result<MergeOutcome> {
        crate::sync::applied(self, id, |s| {
            let mut other = load_document(id, bytes)?;
            let new = s.lacking_changes(id, other.get_changes(&[]))?;
            check_changes(s, id, &new, authors)?;
            let before = s.absorb_document(id, other)?;
            s.keep(id, &before, true, &[])
        })
    }

    /// Merges a loaded replica of `id` into the in-memory document (a document this store does
    /// not hold is adopted whole) and returns the heads from before, for [`Store::keep`].
    pub(crate) fn absorb_document(&mut self, id: &DocId, mut other: AutoCommit) -> Result<Vec<ChangeHash>> {
        if self.has_document(id)? {
            self.absorb(id, |am| {
                am.merge(&mut other)
                    .map(|_| ())
                    .map_err(|e| Error::CorruptDocument { doc: id.to_string(), reason: e.to_string() })
            })
        } else {
            self.adopt(id, other);
            Ok(Vec::new())
        }
    }

    /// Folds a document's change rows into a new snapshot, in one transaction. History is kept:
    /// the snapshot holds every change.
    pub fn compact(&mut self, id: &DocId) -> Result<()> {
        if !self.has_document(id)? {
            return Err(Error::not_found("document", id));
        }
        self.ensure_loaded(id)?;
        self.store_change(id, Persist::Snapshot, &[], |_, _| Ok(()))
    }

    pub fn compact_all(&mut self) -> Result<()> {
        for id in self.document_ids()? {
            self.compact(&id)?;
            self.docs.remove(&id);
        }
        self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;").db()?;
        Ok(())
    }

    /// Throws away every query table and derives it again from the documents, in one
    /// transaction.
    pub fn rebuild_indexes(&mut self) -> Result<()> {
        let tx = self.conn.transaction().db()?;
        let rules = rebuild_tables(&tx, &self.actor, &mut self.docs)?;
        tx.commit().db()?;
        self.rules = rules;
        self.own_author.replace(None);
        Ok(())
    }

    /// Changes of `id` held in memory whose dependencies this store lacks (none once a message
    /// was taken in: they are never kept across messages).
    #[cfg(feature = "hooks")]
    pub fn queued_changes_for_tests(&mut self, id: &DocId) -> usize {
        self.docs.get_mut(id).map_or(0, |d| d.am.get_missing_deps(&[]).len())
    }

    /// Caps the database file at `pages` pages, so that tests can see what a full disk does.
    #[cfg(feature = "hooks")]
    pub fn limit_pages_for_tests(&self, pages: i64) -> Result<()> {
        self.conn.pragma_update(None, "max_page_count", pages).db()?;
        Ok(())
    }
}

/// One document of a store and what it takes on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDocument {
    pub id: DocId,
    /// Its snapshot and change rows.
    pub stored_bytes: u64,
    /// Change rows appended since its snapshot (compaction folds them in).
    pub change_rows: u64,
}

/// Reads bytes a peer offered as the whole document `id`: within the size limit, a valid
/// Automerge document, and that document (not another one).
pub(crate) fn load_document(id: &DocId, bytes: &[u8]) -> Result<AutoCommit> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(Error::refused(
            crate::error::RefusalCode::TooLarge,
            format!("{id} is over the document limit of {MAX_DOCUMENT_BYTES} bytes"),
        ));
    }
    crate::chunks::check(bytes, super::MAX_CHANGE_BYTES).map_err(|e| match e {
        Error::Protocol(reason) => Error::CorruptDocument { doc: id.to_string(), reason },
        e => e,
    })?;
    let mut other =
        AutoCommit::load(bytes).map_err(|e| Error::CorruptDocument { doc: id.to_string(), reason: e.to_string() })?;
    Doc::check_identity(&other, id)?;
    // Changes whose dependencies are not in the bytes would wait, unchecked, in Automerge's
    // queue, and be applied once the dependency arrives: a document comes whole or not at all.
    if !other.get_missing_deps(&[]).is_empty() {
        return Err(Error::CorruptDocument {
            doc: id.to_string(),
            reason: "it holds changes whose dependencies it does not hold".into(),
        });
    }
    Ok(other)
}

/// Derives every query table again from the stored documents, inside `tx` (a rebuild, or the
/// schema upgrade that needs one); returns the directory's visit rules. Documents in `cached`
/// are read from memory, the others loaded one at a time and let go again.
pub(super) fn rebuild_tables(
    tx: &rusqlite::Transaction<'_>,
    actor: &automerge::ActorId,
    cached: &mut super::Cache,
) -> Result<VisitRules> {
    let mut repo = SqliteRepository::new(tx);
    let ids = repo.ids("", None)?;
    for t in schema::DERIVED_TABLES {
        tx.execute(&format!("DELETE FROM {t}"), []).db()?;
    }
    // `directory` sorts first, so grids are projected with the directory's visit rules.
    let mut rules = VisitRules::default();
    for id in &ids {
        let mut loaded;
        let doc = match cached.get_mut(id) {
            Some(doc) => doc,
            None => {
                loaded = load_doc(&mut repo, id, actor)?.ok_or_else(|| Error::not_found("document", id))?;
                &mut loaded
            }
        };
        // Documents stored before schema 3 get their heads (and a place in the feed) here.
        mark_heads(&mut repo, doc)?;
        let mut ix = Indexer::new(tx, &rules);
        for c in doc.id.collections() {
            ix.project(doc, &Touched { collection: *c, key: None })?;
        }
        if let Some(r) = ix.finish(doc)? {
            rules = r;
        }
    }
    Ok(rules)
}
