//! Older history on demand: the visits of a household in months that left the phone's window
//! (`crate::window`), fetched from the server and read in memory, read-only.
//!
//! Nothing fetched is stored: the documents are read and let go of, so history never grows the
//! phone's store and can never be written to. The request is an ordinary sync message of `want`
//! entries (no cursor), which the server answers with the whole documents its user may read
//! (`docs/PROTOCOL.md` §2, *History on demand*); a month the user may not read is refused with
//! `forbidden_document`, before anything is sent, by this phone's directory and again by the
//! server's.

use std::collections::BTreeSet;

use super::wire::{Batch, Entry, Hello, Kind, Mode};
use crate::document::Collection;
use crate::document::{Doc, DocId};
use crate::error::{Error, Result};
use crate::ids::HouseholdId;
use crate::period::Period;
use crate::store::{query::VisitSummary, Store};
use crate::visit::Visit;

/// Months one request may span (ten years).
pub const MAX_HISTORY_MONTHS: usize = 120;

/// A request for one household's visits in a span of months, carried over the server client.
pub struct VisitsRequest {
    hello: Hello,
    household: HouseholdId,
    /// Months not answered yet.
    pending: BTreeSet<DocId>,
    visits: Vec<VisitSummary>,
    /// Whether the last answer brought a document (when none came, the server holds none of the
    /// months still pending).
    progressed: bool,
    started: bool,
}

impl VisitsRequest {
    /// The visits of `household` recorded in its register's months `from` to `to` (inclusive).
    /// Refused when this phone is not registered to a user, the household is unknown, the span
    /// is empty or longer than [`MAX_HISTORY_MONTHS`], or the user may not read those months.
    pub fn new(store: &Store, household: &HouseholdId, from: Period, to: Period) -> Result<VisitsRequest> {
        let me = store.device_user()?.ok_or(Error::NotEnrolled)?;
        let unit = store.register_unit(household, true)?.ok_or_else(|| Error::not_found("household", household))?;
        if from > to {
            return Err(Error::invalid("months", "the first month comes after the last"));
        }
        let mut pending = BTreeSet::new();
        let mut month = from;
        loop {
            if pending.len() == MAX_HISTORY_MONTHS {
                return Err(Error::invalid("months", format!("a request spans at most {MAX_HISTORY_MONTHS} months")));
            }
            let doc = DocId::Visits(unit.clone(), month);
            if !store.may_read(&me, &doc)? {
                return Err(Error::refused(
                    crate::error::RefusalCode::ForbiddenDocument,
                    format!("this phone's user may not read {doc}"),
                ));
            }
            pending.insert(doc);
            if month == to {
                break;
            }
            month = month.next();
        }
        Ok(VisitsRequest {
            hello: Hello { mode: Mode::Server, user: me.to_string(), device: store.actor_id(), summary: None },
            household: household.clone(),
            pending,
            visits: Vec::new(),
            progressed: true,
            started: false,
        })
    }

    /// The next message for the server, or `None` once every month came or the server holds no
    /// more of them.
    pub fn next_message(&mut self) -> Option<Vec<u8>> {
        if self.pending.is_empty() || !self.progressed {
            return None;
        }
        self.progressed = false;
        let hello = (!self.started).then(|| self.hello.clone());
        self.started = true;
        let docs = self.pending.iter().map(|d| Entry {
            doc: d.to_string(),
            kind: Kind::Want,
            data: Vec::new(),
            vouchers: Vec::new(),
        });
        Some(Batch { hello, docs: docs.collect(), ..Batch::default() }.encode())
    }

    /// Takes the server's answer in: each document must be one asked for, whole and valid; its
    /// visits of the household are kept in memory, the document itself is not.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<()> {
        let batch = Batch::decode(bytes)?;
        if let Some(refusal) = batch.refused {
            return Err(Error::refused(crate::error::RefusalCode::parse(&refusal.code), refusal.message));
        }
        if let Some(r) = batch.rejected.into_iter().next() {
            return Err(Error::refused(
                crate::error::RefusalCode::parse(&r.code),
                format!("the server refused {}: {}", r.doc, r.message),
            ));
        }
        for e in batch.docs {
            let doc = DocId::parse(&e.doc).map_err(|_| Error::protocol("an entry names no valid document"))?;
            if e.kind != Kind::Save || !self.pending.remove(&doc) {
                return Err(Error::protocol(format!("the server sent {doc}, which was not asked for")));
            }
            // Read under `catch_unwind`, as every other replica's bytes are: a panic inside
            // Automerge on hostile bytes refuses the answer instead of ending the app.
            let read = std::panic::catch_unwind(|| self.read(doc, &e.data))
                .unwrap_or_else(|_| Err(Error::protocol("a document from the server could not be read")))?;
            self.visits.extend(read);
            self.progressed = true;
        }
        Ok(())
    }

    /// The household's visits in one month's document from the server.
    fn read(&self, id: DocId, bytes: &[u8]) -> Result<Vec<VisitSummary>> {
        let doc = Doc::from_parts(id.clone(), crate::store::load_document(&id, bytes)?, false, 0, 0);
        let mut out = Vec::new();
        for key in doc.keys(Collection::Visits)? {
            // A record that does not read is left out, as the query tables leave it out.
            if let Ok(Some(v)) = doc.get_value::<Visit>(Collection::Visits, &key) {
                if v.id.as_str() == key && v.household == self.household && !v.deleted {
                    out.push(VisitSummary::from(v));
                }
            }
        }
        Ok(out)
    }

    /// The visits found, newest first.
    pub fn visits(mut self) -> Vec<VisitSummary> {
        self.visits.sort_by(|a, b| (b.at, b.id.as_str()).cmp(&(a.at, a.id.as_str())));
        self.visits
    }
}
