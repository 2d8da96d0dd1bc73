//! Letting documents outside a phone's window go (`crate::window`), once the server holds them.
//!
//! A document leaves only when nothing is lost by it: it lies outside the window, its month is
//! closed for writing (so no visit can still arrive for it from this phone), and the server holds
//! every change this phone holds (its heads are the heads the server last confirmed; a document
//! with changes the server has not taken — written here, relayed from another phone, refused —
//! stays). It leaves in one transaction: its rows, its query-table rows, its sync bookkeeping.

use std::collections::HashSet;

use rusqlite::OptionalExtension;

use super::{Indexer, Store, SERVER_PEER};
use crate::document::DocId;
use crate::error::Result;
use crate::window::Window;

/// What [`Store::release_outside_window`] let go of.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Released {
    pub documents: usize,
    /// Stored bytes of those documents (snapshots and change rows).
    pub bytes: u64,
}

impl Store {
    /// The window this store keeps, if it keeps one (phones do; the server keeps everything).
    pub fn window(&self) -> Option<Window> {
        self.window
    }

    /// Changes the window (the app's setting); `None` keeps everything from now on. Documents
    /// already let go of come back only on demand (`ServerClient::fetch_visits`).
    pub fn set_window(&mut self, window: Option<Window>) {
        self.window = window;
    }

    /// Whether this store takes `doc` from another replica when it does not hold it yet: not a
    /// visits document outside its window.
    pub(crate) fn takes(&self, doc: &DocId) -> bool {
        self.window.is_none_or(|w| w.takes(doc, self.now()))
    }

    /// Lets go of every document outside the window whose changes the server holds (see the
    /// module doc). Each document's query rows go with it; what its visits said about their
    /// households' clocks stays (`earlier_visits`), so due dates do not move. A sync with the
    /// server does this when it ends; a store without a window keeps everything.
    pub fn release_outside_window(&mut self) -> Result<Released> {
        let Some(window) = self.window else { return Ok(Released::default()) };
        let now = self.now();
        let unsent: HashSet<DocId> = self.dirty_documents(SERVER_PEER)?.into_iter().collect();
        let mut released = Released::default();
        for doc in self.document_ids()? {
            let outside = match &doc {
                DocId::Visits(_, period) => !window.keeps_month(*period, now),
                DocId::Report(id) => {
                    let closed_at: Option<i64> = self
                        .conn
                        .prepare_cached("SELECT closed_at FROM reports WHERE id = ?1 AND status = 'closed'")?
                        .query_row([id.as_str()], |r| r.get(0))
                        .optional()?
                        .flatten();
                    closed_at.is_some_and(|at| !window.keeps_report(Some(at), now))
                }
                _ => false,
            };
            if outside && !unsent.contains(&doc) {
                released.bytes += self.release(&doc)?;
                released.documents += 1;
            }
        }
        if released.documents > 0 {
            tracing::info!(documents = released.documents, bytes = released.bytes, "documents outside the window let go");
        }
        Ok(released)
    }

    /// Removes `doc` and everything derived from it, in one transaction; returns its stored bytes.
    fn release(&mut self, doc: &DocId) -> Result<u64> {
        let key = doc.to_string();
        let tx = self.conn.transaction()?;
        let bytes: i64 = tx.query_row(
            "SELECT COALESCE((SELECT length(snapshot) FROM documents WHERE doc_id = ?1), 0)
                  + COALESCE((SELECT SUM(length(bytes)) FROM changes WHERE doc_id = ?1), 0)",
            [&key],
            |r| r.get(0),
        )?;
        Indexer::new(&tx, &self.rules).forget(doc)?;
        for table in ["documents", "changes", "document_heads", "peer_docs", "refused_documents"] {
            tx.execute(&format!("DELETE FROM {table} WHERE doc_id = ?1"), [&key])?;
        }
        tx.commit()?;
        self.docs.remove(doc);
        self.note_change(doc);
        Ok(bytes as u64)
    }
}
