//! The part of a session both sides share: taking the other side's entries in and answering
//! them, document by document, with Automerge's sync protocol underneath.
//!
//! An incoming batch is handled in two passes. The first reads and checks every entry (ids,
//! access, the signatures over every change this store lacks, the boundary) without changing
//! anything, so a refused entry refuses the whole message. The second applies the entries one document at a
//! time; each document's new changes are kept (persisted with their query-table updates) in one
//! transaction before the next is touched.
//!
//! Two refusals concern one document only ([`Error::refuses_document_only`]): a document the
//! other side's user may no longer change, and one that reached a limit. An honest device meets
//! them when the world changed under it, so they refuse that document's entries (listed in the
//! answer's `rejected`) and the rest of the message is taken in; the side refused does not ask
//! about that document again in the session.

use std::collections::{HashMap, HashSet};

use std::sync::Arc;

use automerge::{sync, sync::SyncDoc, ActorId, AutoCommit, Change, ChangeHash};

use super::gate::Gate;
use super::replica::{Documents, Replica};
use super::wire::{heads_digest, Entry, Kind, Rejection};
use crate::document::{genesis_hash, DocId};
use crate::error::{Error, Result};
use crate::identity::{DeploymentKey, DeploymentSigner};
use crate::voucher::{self, DeviceSigner, Signer, SignerKeys, Voucher};

/// An entry after the first pass, with the signatures over its changes that verified.
enum Incoming {
    Sync(sync::Message, Vec<Voucher>),
    Save(Box<AutoCommit>, Vec<Voucher>),
    Want,
    Heads(Vec<u8>),
}

/// How one side signs what it sends and checks what it takes (`crate::voucher`).
pub(crate) enum Vouching {
    /// A phone: it signs its own changes as it sends them, carries the signatures it holds with
    /// the changes of others, sends only changes they cover, and checks the deployment's with
    /// the keys it pinned.
    Phone { trusted: Vec<DeploymentKey> },
    /// The server: it vouches with the deployment key for what it sends.
    Server(Arc<DeploymentSigner>),
}

impl Vouching {
    pub fn phone<R: Replica>(store: &R) -> Result<Vouching> {
        Ok(Vouching::Phone { trusted: store.deployment_keys()? })
    }

    fn trusted(&self) -> Vec<DeploymentKey> {
        match self {
            Vouching::Phone { trusted } => trusted.clone(),
            Vouching::Server(signer) => vec![signer.public(0)],
        }
    }
}

/// The keys a replica checks signatures with: its directory's, and the deployment's it trusts.
struct Keys<'a, R> {
    store: &'a R,
    deployment: Vec<DeploymentKey>,
}

impl<R: Replica> SignerKeys for Keys<'_, R> {
    fn device_signer(&self, actor: &ActorId) -> Result<Option<DeviceSigner>> {
        self.store.device_signer(actor)
    }

    fn deployment_keys(&self) -> &[DeploymentKey] {
        &self.deployment
    }
}

/// Per-document sync states with one peer, and the policy applied to it.
pub(crate) struct Exchange<G: Gate> {
    /// Key of this peer's rows in `peer_docs`.
    pub peer_id: String,
    pub gate: G,
    pub vouching: Vouching,
    states: HashMap<DocId, sync::State>,
    /// Per document, the peer's heads and our heads when we last sent a message without
    /// changes: sending the same again would only ping-pong (see [`Exchange::generate`]).
    idle: HashMap<DocId, (Option<Vec<ChangeHash>>, Vec<ChangeHash>)>,
    /// Documents received or sent whole or in part during this session.
    pub documents_touched: HashSet<DocId>,
    /// Documents the other side refused in this session: not asked about again.
    refused: HashSet<DocId>,
}

/// The longest refusal message taken from the other side, in characters.
pub(crate) const MAX_REFUSAL_CHARS: usize = 300;

/// A refusal's message from the other side, cut to [`MAX_REFUSAL_CHARS`].
pub(crate) fn cut_refusal(mut message: String) -> String {
    if let Some((cut, _)) = message.char_indices().nth(MAX_REFUSAL_CHARS) {
        message.truncate(cut);
    }
    message
}

/// The documents of one incoming message refused alone, once each.
#[derive(Default)]
struct Rejected {
    list: Vec<Rejection>,
    docs: HashSet<String>,
}

impl Rejected {
    /// Refuses `doc`'s entries if `err` concerns that document only; any other error refuses
    /// the whole message.
    fn refuse(&mut self, doc: &DocId, err: Error) -> Result<()> {
        if !err.refuses_document_only() {
            return Err(err);
        }
        let Error::Refused { code, message } = err else { unreachable!("checked above") };
        if self.docs.insert(doc.to_string()) {
            self.list.push(Rejection { doc: doc.to_string(), code: code.to_string(), message });
        }
        Ok(())
    }

    fn has(&self, doc: &str) -> bool {
        self.docs.contains(doc)
    }
}

/// What taking one message in produced.
pub(crate) struct Handled {
    /// The answers to send.
    pub answers: Vec<Entry>,
    /// The documents whose entries were refused, for the answer's `rejected`.
    pub rejected: Vec<Rejection>,
}

impl<G: Gate> Exchange<G> {
    pub fn new(peer_id: String, gate: G, vouching: Vouching) -> Self {
        Exchange {
            peer_id,
            gate,
            vouching,
            states: HashMap::new(),
            idle: HashMap::new(),
            documents_touched: HashSet::new(),
            refused: HashSet::new(),
        }
    }

    /// Takes in the other side's refusals of documents this side sent in its last message
    /// (`sent`): they are not asked about again in this session. Returns the new ones. A refusal
    /// of anything else, with another code, or repeated, is ignored; its message is cut to
    /// [`MAX_REFUSAL_CHARS`], so that a hostile peer cannot fill memory or the app's screen.
    pub fn refused_by_other(&mut self, rejected: Vec<Rejection>, sent: &HashSet<DocId>) -> Vec<(DocId, Rejection)> {
        let mut out = Vec::new();
        for mut r in rejected {
            let Ok(doc) = DocId::parse(&r.doc) else { continue };
            if !crate::error::RefusalCode::parse(&r.code).refuses_document_only()
                || !sent.contains(&doc)
                || !self.refused.insert(doc.clone())
            {
                continue;
            }
            r.message = cut_refusal(r.message);
            out.push((doc, r));
        }
        out
    }

    /// Whether the other side refused `doc` in this session.
    pub fn is_refused(&self, doc: &DocId) -> bool {
        self.refused.contains(doc)
    }

    /// Takes the other side's entries in and returns the answers. `answer_in_sync`: say so
    /// (with a `heads` entry) when a document is in sync, which the responder does so that the
    /// initiator knows it may stop.
    ///
    /// The work one message causes is bounded: an entry repeating a document's `want` or `heads`
    /// is answered once, and a document only if the other side may read it. With a `budget`
    /// (the server, whose initiator asks again for what was not answered), answers are made only
    /// while their entry data stays within it (at least one); without, every entry is answered
    /// and the caller's outbox spreads the answers over its messages.
    pub fn handle<R: Replica>(
        &mut self,
        store: &mut R,
        entries: Vec<Entry>,
        answer_in_sync: bool,
        budget: Option<usize>,
    ) -> Result<Handled> {
        let fits = |out_bytes: usize, size: usize| budget.is_none_or(|b| out_bytes == 0 || out_bytes + size <= b);
        let mut rejected = Rejected::default();
        let mut checked = Vec::with_capacity(entries.len());
        let mut repeated = HashSet::new();
        let mut carrying = HashSet::new();
        for e in entries {
            let doc = DocId::parse(&e.doc).map_err(|_| Error::protocol("an entry names no valid document"))?;
            // A document outside this phone's window that it does not hold, or a grid document of
            // the old layout, is neither asked for nor taken (the other side's offer is left).
            let unwanted =
                !store.takes(&doc) || (matches!(doc, DocId::Grid(_)) && !self.gate.takes_new_grid_documents());
            if e.kind != Kind::Want && unwanted && !store.has_document(&doc)? {
                // A month that left changed where this phone no longer sees it (a visit that
                // arrived late): its register's earlier clocks are asked for again.
                if let DocId::Visits(unit, _) = &doc {
                    store.ask_earlier_again(unit)?;
                }
                continue;
            }
            if matches!(e.kind, Kind::Want | Kind::Heads) && !repeated.insert((doc.clone(), e.kind)) {
                continue;
            }
            // Changes of one document come in one entry: two would each be checked against what
            // the document holds now, and could together write what neither alone may.
            if matches!(e.kind, Kind::Sync | Kind::Save) && !carrying.insert(doc.clone()) {
                return Err(Error::protocol(format!("two entries of the message carry changes to {doc}")));
            }
            match applied(store, &doc, |s| self.check(s, &doc, e)) {
                Ok(incoming) => checked.push((doc, incoming)),
                Err(err) => rejected.refuse(&doc, err)?,
            }
        }
        // A refused document's other entries are left out too.
        checked.retain(|(doc, _)| !rejected.has(&doc.to_string()));
        let mut out = Vec::new();
        let mut out_bytes = 0usize;
        let mut to_answer: Vec<DocId> = Vec::new();
        for (doc, incoming) in checked {
            self.documents_touched.insert(doc.clone());
            match incoming {
                Incoming::Sync(msg, vouchers) => {
                    let state = self.state(store, &doc)?;
                    let before = applied(store, &doc, |s| {
                        s.absorb(&doc, |am| {
                            am.sync().receive_sync_message(state, msg).map_err(|e| Error::protocol(e.to_string()))
                        })
                    })?;
                    if let Err(err) = self.keep(store, &doc, &before, &vouchers) {
                        rejected.refuse(&doc, err)?;
                        continue;
                    }
                    to_answer.push(doc);
                }
                Incoming::Save(other, vouchers) => {
                    let mut other = *other;
                    let theirs = other.get_heads();
                    let before = applied(store, &doc, |s| s.absorb_document(&doc, other))?;
                    if let Err(err) = self.keep(store, &doc, &before, &vouchers) {
                        rejected.refuse(&doc, err)?;
                        continue;
                    }
                    store.set_peer_heads(&self.peer_id, &doc, &theirs)?;
                    self.states.insert(doc.clone(), store.warm_sync_state(&self.peer_id, &doc)?);
                    to_answer.push(doc);
                }
                Incoming::Want => {
                    if !store.has_document(&doc)? {
                        continue;
                    }
                    let size = store.stored_document_bytes(&doc)?;
                    if !fits(out_bytes, size) {
                        continue; // asked again in the next message
                    }
                    out_bytes += size;
                    out.push(self.save_entry(store, &doc)?);
                }
                Incoming::Heads(digest) => match store.stored_heads(&doc)? {
                    None => out.push(Entry {
                        doc: doc.to_string(),
                        kind: Kind::Want,
                        data: Vec::new(),
                        vouchers: Vec::new(),
                    }),
                    Some(ours) if heads_digest(&ours) == digest => {
                        store.set_peer_heads(&self.peer_id, &doc, &ours)?;
                    }
                    // A document the other side refused is not offered again in this session.
                    Some(_) if self.refused.contains(&doc) => {}
                    Some(_) => {
                        if let Some(e) = self.start(store, &doc)? {
                            out.push(e);
                        }
                    }
                },
            }
        }
        // A document refused after its changes were applied gets nothing for its other entries.
        out.retain(|e| !rejected.has(&e.doc));
        // One answer per document, after all its entries were taken in, and only where the
        // other side may read what we hold (a report it may file but not read gets nothing; one
        // this store does not hold yet has nothing to give away).
        let mut answered = HashSet::new();
        for doc in to_answer {
            if answered.insert(doc.clone()) && (!store.has_document(&doc)? || self.gate.may_send(store, &doc)?) {
                let mut answer = Vec::new();
                self.answer(store, &doc, answer_in_sync, &mut answer)?;
                let size = answer.iter().map(|e| e.data.len()).sum::<usize>();
                if !fits(out_bytes, size) {
                    break; // the other side asks again for what was left unanswered
                }
                out_bytes += size;
                out.extend(answer);
            }
        }
        Ok(Handled { answers: out, rejected: rejected.list })
    }

    /// The first message for a document this side wants to sync (it is dirty, or the other side
    /// announced different heads).
    pub fn start<R: Replica>(&mut self, store: &mut R, doc: &DocId) -> Result<Option<Entry>> {
        self.states.insert(doc.clone(), store.warm_sync_state(&self.peer_id, doc)?);
        self.documents_touched.insert(doc.clone());
        self.generate(store, doc)
    }

    /// Asks again for a document whose answer did not come (dropped by the other side's budget).
    pub fn retry<R: Replica>(&mut self, store: &mut R, doc: &DocId) -> Result<Option<Entry>> {
        // The unanswered message is sent again on purpose: it is not the ping-pong that
        // `generate` stops.
        self.idle.remove(doc);
        if let Some(s) = self.states.get_mut(doc) {
            s.in_flight = false;
            s.have_responded = false;
            s.sent_hashes.clear();
        }
        self.generate(store, doc)
    }

    fn check<R: Replica>(&self, store: &mut R, doc: &DocId, e: Entry) -> Result<Incoming> {
        let forbidden = || {
            Error::refused(
                crate::error::RefusalCode::ForbiddenDocument,
                format!("{doc} may not be exchanged with this peer"),
            )
        };
        match e.kind {
            Kind::Want => {
                if !self.gate.may_send(store, doc)? {
                    return Err(forbidden());
                }
                Ok(Incoming::Want)
            }
            Kind::Heads => {
                if e.data.len() != 16 {
                    return Err(Error::protocol("a heads digest is not 16 bytes"));
                }
                // A heads entry is answered with what the other side lacks, and once its digest
                // matches ours the document counts as shared with it: only for what it may read.
                let allowed = if store.has_document(doc)? {
                    self.gate.may_send(store, doc)?
                } else {
                    self.gate.asks_for_unknown() && self.gate.may_take(store, doc)?
                };
                if !allowed {
                    return Err(forbidden());
                }
                Ok(Incoming::Heads(e.data))
            }
            Kind::Sync => {
                if !self.gate.may_take(store, doc)? {
                    return Err(forbidden());
                }
                let msg = sync::Message::decode(&e.data).map_err(|e| Error::protocol(e.to_string()))?;
                let vouchers = if self.gate.checks_changes() && !msg.changes.is_empty() {
                    let new = store.lacking_changes(doc, changes_in(&msg)?)?;
                    self.check_changes(store, doc, &new, &e.vouchers)?
                } else {
                    self.verified(store, doc, &e.vouchers)?
                };
                Ok(Incoming::Sync(msg, vouchers))
            }
            Kind::Save => {
                if !self.gate.may_take(store, doc)? {
                    return Err(forbidden());
                }
                let mut other = crate::store::load_document(doc, &e.data)?;
                let vouchers = if self.gate.checks_changes() {
                    let new = store.lacking_changes(doc, other.get_changes(&[]))?;
                    self.check_changes(store, doc, &new, &e.vouchers)?
                } else {
                    self.verified(store, doc, &e.vouchers)?
                };
                Ok(Incoming::Save(Box::new(other), vouchers))
            }
        }
    }

    /// Checks the changes of `doc` this store lacks, before any is applied: every one signed
    /// by its own device (or vouched for by the deployment), its authors' rights, the boundary.
    /// Returns the signatures that verified, to keep with the document.
    fn check_changes<R: Replica>(
        &self,
        store: &mut R,
        doc: &DocId,
        new: &[Change],
        vouchers: &[Voucher],
    ) -> Result<Vec<Voucher>> {
        let checked =
            voucher::check(doc, new, vouchers, &Keys { store: &*store, deployment: self.vouching.trusted() })?;
        self.gate.check_incoming(store, doc, new)?;
        authors_may_write(store, doc, &checked.authors)?;
        store.check_changes(doc, new)?;
        Ok(checked.vouchers)
    }

    /// Of the signatures the server sent (whose changes this phone does not check), those that
    /// verify: kept so that the changes can travel on to other phones. The server keeps none
    /// (it vouches for what it sends itself).
    fn verified<R: Replica>(&self, store: &R, doc: &DocId, vouchers: &[Voucher]) -> Result<Vec<Voucher>> {
        if matches!(self.vouching, Vouching::Server(_)) || vouchers.len() > voucher::MAX_VOUCHERS_PER_ENTRY {
            return Ok(Vec::new());
        }
        Ok(voucher::verified(doc, vouchers, &Keys { store, deployment: self.vouching.trusted() }))
    }

    /// A `save` entry: the whole document, with the signatures that cover it.
    pub fn save_entry<R: Replica>(&self, store: &mut R, doc: &DocId) -> Result<Entry> {
        let data = store.document_bytes(doc)?;
        let vouchers = match &self.vouching {
            Vouching::Server(signer) => {
                let heads = store.with_am(doc, |am| am.get_heads())?;
                vec![signer.vouch(doc, &heads, store.now())]
            }
            Vouching::Phone { .. } => {
                let own = store.actor().clone();
                let latest = store.with_am(doc, |am| {
                    am.get_changes(&[]).into_iter().filter(|c| c.actor_id() == &own).max_by_key(|c| c.seq())
                })?;
                let mut vouchers = store.vouchers(doc)?;
                if let Some(latest) = latest {
                    let mine = store.own_voucher(doc, &latest)?;
                    vouchers.retain(|v| v.by != mine.by);
                    vouchers.push(mine);
                }
                vouchers
            }
        };
        Ok(Entry { doc: doc.to_string(), kind: Kind::Save, data, vouchers })
    }

    fn state<R: Replica>(&mut self, store: &R, doc: &DocId) -> Result<&mut sync::State> {
        if !self.states.contains_key(doc) {
            self.states.insert(doc.clone(), store.warm_sync_state(&self.peer_id, doc)?);
        }
        Ok(self.states.get_mut(doc).expect("inserted above"))
    }

    /// Lets the gate look at what was absorbed, then keeps it (or drops it from memory), with
    /// the signatures that cover it.
    fn keep<R: Replica>(
        &mut self,
        store: &mut R,
        doc: &DocId,
        before: &[ChangeHash],
        vouchers: &[Voucher],
    ) -> Result<()> {
        let changed = store.with_am(doc, |am| am.get_heads() != before)?;
        if changed {
            if let Err(e) = self.gate.check_absorbed(store, doc) {
                store.discard(doc);
                return Err(e);
            }
        }
        store.keep(doc, before, self.gate.checks_changes(), vouchers)?;
        // Changes whose dependencies did not come are queued by Automerge in memory, unstored
        // (never saved: `store::save` leaves them out). The server lets go of them after each
        // request, so that no request leaves behind memory that disk does not hold: its answer
        // asks for what is missing, and a phone recomputes what the server lacks from its heads.
        // A phone keeps them for the rest of the session, as Automerge's protocol expects (the
        // other phone will not send them again in this session).
        if !self.gate.holds_sessions() && store.with_am(doc, |am| !am.get_missing_deps(&[]).is_empty())? {
            store.discard(doc);
        }
        if let Some(state) = self.states.get(doc) {
            if !state.shared_heads.is_empty() {
                store.set_peer_heads(&self.peer_id, doc, &state.shared_heads)?;
            }
        }
        Ok(())
    }

    /// What to say after taking a document's entry in: nothing when in sync (or, for the
    /// responder, that it is), else the next sync message.
    fn answer<R: Replica>(
        &mut self,
        store: &mut R,
        doc: &DocId,
        answer_in_sync: bool,
        out: &mut Vec<Entry>,
    ) -> Result<()> {
        let ours = store.with_am(doc, |am| am.get_heads())?;
        let in_sync = self.states.get(doc).is_some_and(|s| s.their_heads.as_deref() == Some(ours.as_slice()));
        let next = if in_sync { None } else { self.generate(store, doc)? };
        match next {
            Some(e) => out.push(e),
            None if answer_in_sync => out.push(Entry {
                doc: doc.to_string(),
                kind: Kind::Heads,
                data: heads_digest(&ours),
                vouchers: Vec::new(),
            }),
            None => {}
        }
        Ok(())
    }

    fn generate<R: Replica>(&mut self, store: &mut R, doc: &DocId) -> Result<Option<Entry>> {
        let state = self.state(store, doc)?;
        let msg = store.with_am(doc, |am| am.sync().generate_sync_message(state))?;
        let Some(mut msg) = msg else { return Ok(None) };
        let mut vouchers = Vec::new();
        if let Vouching::Server(signer) = &self.vouching {
            if !msg.changes.is_empty() {
                let heads = store.with_am(doc, |am| am.get_heads())?;
                vouchers.push(signer.vouch(doc, &heads, store.now()));
            }
        } else {
            // What the other side lacks, as single changes, whenever its heads are known:
            // Automerge may have packed the whole document (a V2 message, with changes the other
            // side already has), or think it sent changes this filter held back last time.
            let lacking = match self.states.get(doc).and_then(|s| s.their_heads.clone()) {
                Some(their) => store.with_am(doc, |am| {
                    let known: Vec<ChangeHash> =
                        their.iter().filter(|h| am.get_change_by_hash(h).is_some()).copied().collect();
                    am.get_changes(&known)
                })?,
                None if msg.changes.is_empty() => Vec::new(),
                None => changes_in(&msg)?,
            };
            let (kept, covering) = sendable(store, doc, lacking)?;
            msg.changes = kept.iter().map(|c| c.raw_bytes().to_vec()).collect::<Vec<_>>().into();
            vouchers = covering;
            // Changes held back (no signature this phone holds covers them, or they depend on
            // such a change) leave the heads apart: Automerge would send the same heads back and
            // forth. Once the peer's heads and ours stay as they were after a message without
            // changes, stop; the held changes go with their author.
            if msg.changes.is_empty() && msg.need.is_empty() {
                let now = (self.states.get(doc).and_then(|s| s.their_heads.clone()), msg.heads.clone());
                if self.idle.get(doc) == Some(&now) {
                    return Ok(None);
                }
                self.idle.insert(doc.clone(), now);
            }
        }
        Ok(Some(Entry { doc: doc.to_string(), kind: Kind::Sync, data: msg.encode(), vouchers }))
    }
}

/// Whether the user of every device in `authors` may change `doc`: a phone carrying another's
/// changes carries only what that other could write itself. (Their signatures were checked
/// before, so each device did write what it signed.)
fn authors_may_write<R: Replica>(store: &R, doc: &DocId, authors: &[ActorId]) -> Result<()> {
    for actor in authors {
        let allowed = match store.device_signer(actor)? {
            Some(d) => store.may_write(&d.user, doc)?,
            None => false,
        };
        if !allowed {
            return Err(Error::refused(
                crate::error::RefusalCode::ForbiddenDocument,
                format!(
                    "a change to {doc} was written by device {}, whose user may not change it",
                    actor.to_hex_string()
                ),
            ));
        }
    }
    Ok(())
}

/// Runs `f`, which reads or applies another replica's changes to `doc`, so that a panic inside
/// Automerge on hostile bytes ends the message as refused instead of the process, and leaves no
/// half-applied document in memory (it is reloaded from disk when next needed).
pub(crate) fn applied<S: Documents, T>(store: &mut S, doc: &DocId, f: impl FnOnce(&mut S) -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(store))) {
        Ok(r) => r,
        Err(_) => {
            store.discard(doc);
            Err(Error::protocol(format!("a change to {doc} could not be read or applied")))
        }
    }
}

/// The changes a sync message carries: single changes (V1 messages), or chunks concatenated into
/// one (V2: several changes, or a whole document).
fn changes_in(msg: &sync::Message) -> Result<Vec<Change>> {
    let damaged = |e: &dyn std::fmt::Display| Error::protocol(format!("a change is damaged ({e})"));
    let mut out = Vec::new();
    for data in msg.changes.iter() {
        crate::chunks::check(data, crate::store::MAX_CHANGE_BYTES)?;
        for chunk in crate::chunks::split(data)? {
            if crate::chunks::kind(chunk) == crate::chunks::DOCUMENT {
                let mut am = AutoCommit::load(chunk).map_err(|e| damaged(&e))?;
                out.extend(am.get_changes(&[]));
            } else {
                out.push(Change::from_bytes(chunk.to_vec()).map_err(|e| damaged(&e))?);
            }
        }
    }
    Ok(out)
}

/// Of `changes` (what the other side lacks), those a phone may send, with the signatures that
/// cover them: its own (signed now, over the latest it sends), the genesis, and others' that a
/// signature it holds covers whose signer is not revoked by its directory; never one that
/// depends on a change it may not send. The rest waits for its author to send it.
fn sendable<R: Replica>(store: &mut R, doc: &DocId, changes: Vec<Change>) -> Result<(Vec<Change>, Vec<Voucher>)> {
    if changes.is_empty() {
        return Ok((changes, Vec::new()));
    }
    let own = store.actor().clone();
    let genesis = genesis_hash(doc);
    let held_vouchers: Vec<Voucher> =
        store.vouchers(doc)?.into_iter().filter(|v| v.by != own.to_hex_string()).collect();
    let mut scopes = Vec::new();
    for v in &held_vouchers {
        match v.signer() {
            Ok(Signer::Device(actor)) if !store.device_signer(&actor)?.is_some_and(|d| d.revoked) => {
                scopes.push((v, Some(actor)))
            }
            Ok(Signer::Deployment(_)) => scopes.push((v, None)),
            _ => {}
        }
    }
    let mut kept = changes;
    loop {
        // A change is covered only from a head that is itself sent: once one is held, what it
        // covered is counted again.
        let covered = voucher::coverage(&kept, scopes.iter().map(|(v, a)| (*v, a.clone())));
        let mut held: HashSet<ChangeHash> = kept
            .iter()
            .filter(|c| c.actor_id() != &own && c.hash() != genesis && !covered.contains(&c.hash()))
            .map(|c| c.hash())
            .collect();
        if held.is_empty() {
            break;
        }
        loop {
            let before = held.len();
            for c in &kept {
                if !held.contains(&c.hash()) && c.deps().iter().any(|d| held.contains(d)) {
                    held.insert(c.hash());
                }
            }
            if held.len() == before {
                break;
            }
        }
        kept.retain(|c| !held.contains(&c.hash()));
    }
    let actors: HashSet<&ActorId> = kept.iter().map(|c| c.actor_id()).collect();
    let mut vouchers: Vec<Voucher> = scopes
        .iter()
        .filter(|(_, a)| a.as_ref().is_none_or(|a| actors.contains(a)))
        .map(|(v, _)| (*v).clone())
        .collect();
    if let Some(latest) = kept.iter().filter(|c| c.actor_id() == &own).max_by_key(|c| c.seq()) {
        vouchers.push(store.own_voucher(doc, latest)?);
    }
    Ok((kept, vouchers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::{NewUnit, UnitKind};
    use crate::store::{OpenOptions, Store};
    use crate::sync::gate::PhoneGate;

    /// A document the other side refused is not started again in the session, even when the
    /// other side later announces different heads for it (the server's feed, after another
    /// device changed it).
    #[test]
    fn a_refused_document_is_not_started_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path().join("phone.sqlite"), OpenOptions::default()).unwrap();
        store.add_unit(NewUnit { kind: UnitKind::District, parent: None, name: "Jinshui District".into() }).unwrap();
        let doc = DocId::Directory;
        let heads = || vec![Entry { doc: doc.to_string(), kind: Kind::Heads, data: vec![0; 16], vouchers: Vec::new() }];
        let mut ex =
            Exchange::new("server".into(), PhoneGate { me: None, peer: None }, Vouching::Phone { trusted: Vec::new() });
        let before = ex.handle(&mut store, heads(), false, None).unwrap();
        assert_eq!(before.answers.len(), 1, "different heads start the document");
        let refusal = Rejection { doc: doc.to_string(), code: "forbidden_document".into(), message: "no".into() };
        assert_eq!(ex.refused_by_other(vec![refusal], &HashSet::from([doc.clone()])).len(), 1);
        let after = ex.handle(&mut store, heads(), false, None).unwrap();
        assert!(after.answers.is_empty(), "{:?}", after.answers);
    }
}
