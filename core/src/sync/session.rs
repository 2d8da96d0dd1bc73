//! The initiating side of a sync: a phone talking to the server or to another phone.
//!
//! The app carries the bytes: `next_message` gives the bytes to send, `receive` takes the
//! answer, until `is_done`. Any error ends the session; what was kept before it stays kept and a
//! new session continues from the per-document state persisted so far. A document the other
//! side refuses on its own (`rejected`) does not end the session: it is left out of the rest
//! of it, stays pending, and is listed in the progress (and, with the server, the sync status).

use std::collections::{BTreeSet, HashSet, VecDeque};

use super::channel::{self, Channel, ProvedPeer};
use super::exchange::{Exchange, Vouching};
use super::gate::{Gate, PhoneGate};
use super::replica::Replica;
use super::wire::{heads_digest, summary_digest, Batch, Earlier, Entry, Hello, Kind, Mode, Rejection, MAX_ENTRIES};
use super::{Progress, DOCS_PER_ROUND, MAX_EARLIER_ASKS, MAX_ROUNDS, ROUND_BUDGET_BYTES};
use crate::document::DocId;
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::store::{DocumentRefusal, Store, SERVER_PEER};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Nothing sent yet (peer mode: the handshake is done, the hello not sent).
    Start,
    /// Peer mode: the channel's first message sent, waiting for the other phone's proof.
    Handshake,
    /// Peer mode: hello sent, waiting to learn who the other phone is.
    Introduced,
    Running,
    Done,
    Failed,
}

/// One sync session, started by this phone.
pub struct Session {
    mode: Mode,
    phase: Phase,
    ex: Exchange<PhoneGate>,
    me: Option<UserId>,
    device: String,
    /// Documents to start syncing (dirty for the peer), sent a round's worth at a time.
    to_start: VecDeque<DocId>,
    /// Entries waiting to be sent.
    outbox: VecDeque<Entry>,
    /// This side's refusals of the other side's documents, told in the next message.
    to_tell: Vec<Rejection>,
    /// Peer mode: the inventory to send in the next message, all in one batch (it may be empty:
    /// a phone holding nothing the other may share still says so).
    inventory: Option<Vec<Entry>>,
    /// Documents asked about in the message in flight, with the entry kind used.
    asked: Vec<(DocId, Kind)>,
    awaiting_reply: bool,
    /// Server mode: the feed position seen so far, and whether the server has more.
    cursor: u64,
    more: bool,
    /// Server mode: the registers asked about in the message in flight (`wire::Earlier`), and
    /// every one asked in this session (none is asked twice).
    earlier_asked: Vec<Earlier>,
    earlier_tried: HashSet<String>,
    /// Server mode: documents dirty when the session began, and whether the server's feed went
    /// back in this session (a restore from a backup): neither lets documents leave the window
    /// in this session.
    dirty_at_start: HashSet<DocId>,
    server_went_back: bool,
    /// Server mode: whether this session asked which of its grid documents the server converted
    /// (once per session), and those it named.
    converted_asked: bool,
    converted: HashSet<DocId>,
    /// Server mode: what the user's access rested on when the session began (`None`: not in the
    /// directory yet), and whether this session listed the whole feed again since it changed.
    access_at_start: Option<String>,
    relisted: bool,
    /// Peer mode: the encrypted channel, and the other phone as its handshake proved it.
    channel: Channel,
    proved: Option<ProvedPeer>,
    progress: Progress,
}

impl Session {
    /// A session with the sync server. The server knows the device by its token.
    pub fn with_server(store: &mut Store) -> Result<Session> {
        Session::server(store)
    }

    /// A session with another phone, which answers with a [`super::PeerResponder`]. Only documents
    /// both users may hold by the directory are offered or taken, and only once the other phone
    /// proved its certificate (`channel`): this phone needs one too, from its server sync.
    pub fn with_peer(store: &mut Store) -> Result<Session> {
        Session::peer(store)
    }

    fn server<R: Replica>(store: &mut R) -> Result<Session> {
        let mut s = Session::new(store, Mode::Server, SERVER_PEER.to_string(), None)?;
        s.cursor = store.peer_cursor(SERVER_PEER)?;
        s.to_start = store.dirty_documents(SERVER_PEER)?.into();
        s.dirty_at_start = s.to_start.iter().cloned().collect();
        s.access_at_start = store.device_access()?;
        Ok(s)
    }

    fn peer<R: Replica>(store: &mut R) -> Result<Session> {
        let me = store.device_user()?.ok_or(Error::NotEnrolled)?;
        channel::ready(store)?;
        // The peer's id is learned from its first answer.
        let mut s = Session::new(store, Mode::Peer, String::new(), Some(me))?;
        s.phase = Phase::Handshake;
        Ok(s)
    }

    fn new<R: Replica>(store: &R, mode: Mode, peer_id: String, me: Option<UserId>) -> Result<Session> {
        Ok(Session {
            mode,
            phase: Phase::Start,
            ex: Exchange::new(peer_id, PhoneGate { me: me.clone(), peer: None }, Vouching::phone(store)?),
            me,
            device: store.actor().to_hex_string(),
            to_start: VecDeque::new(),
            outbox: VecDeque::new(),
            to_tell: Vec::new(),
            inventory: None,
            asked: Vec::new(),
            awaiting_reply: false,
            cursor: 0,
            more: false,
            earlier_asked: Vec::new(),
            earlier_tried: HashSet::new(),
            dirty_at_start: HashSet::new(),
            server_went_back: false,
            converted_asked: false,
            converted: HashSet::new(),
            access_at_start: None,
            relisted: false,
            channel: Channel::new(),
            proved: None,
            progress: Progress::default(),
        })
    }

    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    pub fn progress(&self) -> Progress {
        Progress {
            done: self.is_done(),
            documents: self.ex.documents_touched.len(),
            documents_waiting: self.to_start.len(),
            ..self.progress.clone()
        }
    }

    /// The next message to send, or `None` when the session is over.
    pub fn next_message(&mut self, store: &mut Store) -> Result<Option<Vec<u8>>> {
        self.next_counted(store)
    }

    fn next_counted<R: Replica>(&mut self, store: &mut R) -> Result<Option<Vec<u8>>> {
        let bytes = self.failing_on_error(store, |session, store| match session.mode {
            Mode::Server => session.next_inner(store),
            Mode::Peer => session.next_sealed(store),
        })?;
        if let Some(b) = &bytes {
            self.progress.bytes_sent += b.len() as u64;
        }
        Ok(bytes)
    }

    /// Takes the other side's answer in.
    pub fn receive(&mut self, store: &mut Store, bytes: &[u8]) -> Result<()> {
        self.receive_counted(store, bytes)
    }

    fn receive_counted<R: Replica>(&mut self, store: &mut R, bytes: &[u8]) -> Result<()> {
        self.progress.bytes_received += bytes.len() as u64;
        self.failing_on_error(store, |session, store| match session.mode {
            Mode::Server => session.receive_inner(store, bytes),
            Mode::Peer => session.receive_sealed(store, bytes),
        })
    }

    /// Peer mode: the channel's first message, then every batch encrypted.
    fn next_sealed<R: Replica>(&mut self, store: &mut R) -> Result<Option<Vec<u8>>> {
        if self.phase == Phase::Handshake {
            if self.awaiting_reply {
                return Err(Error::protocol("the answer to the last message has not arrived"));
            }
            self.awaiting_reply = true;
            self.progress.round += 1;
            return self.channel.hello().map(Some);
        }
        match self.next_inner(store)? {
            Some(batch) => self.channel.seal(store, &batch).map(Some),
            None => Ok(None),
        }
    }

    /// Peer mode: the other phone's proof, then its batches, decrypted.
    fn receive_sealed<R: Replica>(&mut self, store: &mut R, bytes: &[u8]) -> Result<()> {
        // A refusal in the clear comes only before the other phone's channel is open: to the
        // handshake's first message, or to the message with this phone's credential.
        if matches!(self.phase, Phase::Handshake | Phase::Introduced) {
            if let Some(refusal) = channel::plain_refusal(bytes) {
                return Err(refusal);
            }
        }
        if self.phase == Phase::Handshake {
            if !self.awaiting_reply {
                return Err(Error::protocol("an answer arrived before a message was sent"));
            }
            self.proved = Some(self.channel.read_proof(store, bytes)?);
            self.awaiting_reply = false;
            self.phase = Phase::Start;
            return Ok(());
        }
        if !self.awaiting_reply {
            return Err(Error::protocol("an answer arrived before a message was sent"));
        }
        let batch = self.channel.open(bytes)?;
        self.receive_inner(store, &batch)
    }

    /// Ends the session because the transport failed (the server could not be reached, or
    /// refused the request before reading it), so that the sync status shows `e`.
    /// The request failed with `e`: ends the session, and returns the error to report. A
    /// server's signed word that this device is revoked erases the phone's data first
    /// (PROTOCOL.md §8, *Revocation*); one that does not verify erases nothing and is reported
    /// as the refusal it is.
    pub fn transport_failed(&mut self, store: &mut Store, e: Error) -> Error {
        self.transport_failed_on(store, e)
    }

    fn transport_failed_on<R: Replica>(&mut self, store: &mut R, e: Error) -> Error {
        let e = match (self.mode, e) {
            (Mode::Server, Error::Revoked(revocation)) => match store.erase_revoked(&revocation) {
                Ok(()) => {
                    tracing::warn!("this device was revoked: its data on this phone is erased");
                    Error::Revoked(revocation)
                }
                Err(not_erased) => {
                    tracing::error!(error = %not_erased, "a revocation that does not verify; nothing was erased");
                    not_erased
                }
            },
            (_, e) => e,
        };
        self.fail(store, &e);
        e
    }

    fn fail<R: Replica>(&mut self, store: &R, e: &Error) {
        if self.phase != Phase::Failed {
            self.phase = Phase::Failed;
            if self.mode == Mode::Server {
                store.record_session(SERVER_PEER, Err(e)).ok();
            }
        }
    }

    /// Runs `f`; an error ends the session (and is recorded, with the server).
    fn failing_on_error<R: Replica, T>(
        &mut self,
        store: &mut R,
        f: impl FnOnce(&mut Self, &mut R) -> Result<T>,
    ) -> Result<T> {
        let r = f(self, store);
        if let Err(e) = &r {
            self.fail(store, e);
        }
        r
    }

    fn next_inner<R: Replica>(&mut self, store: &mut R) -> Result<Option<Vec<u8>>> {
        match self.phase {
            Phase::Done => return Ok(None),
            Phase::Failed => return Err(Error::protocol("this session already failed; start a new one")),
            _ if self.awaiting_reply => return Err(Error::protocol("the answer to the last message has not arrived")),
            _ => {}
        }
        if self.progress.round >= MAX_ROUNDS {
            return Err(Error::protocol(format!("the peers did not converge within {MAX_ROUNDS} rounds")));
        }
        let mut batch = Batch::default();
        match (self.mode, self.phase) {
            (Mode::Peer, Phase::Start) => {
                batch.hello = Some(self.hello());
                self.phase = Phase::Introduced;
            }
            (Mode::Server, Phase::Start) => {
                batch.hello = Some(self.hello());
                self.phase = Phase::Running;
            }
            _ => {}
        }
        // Top the outbox up with documents to start, within the round's budget.
        let mut budget: usize = self.outbox.iter().map(|e| e.data.len()).sum();
        while self.outbox.len() < DOCS_PER_ROUND && budget < ROUND_BUDGET_BYTES {
            let Some(doc) = self.to_start.pop_front() else { break };
            if let Some(e) = self.ex.start(store, &doc)? {
                budget += e.data.len();
                self.outbox.push_back(e);
            }
        }
        if let Some(inventory) = self.inventory.take() {
            batch.docs = inventory;
            batch.inventory = true;
        }
        batch.rejected = std::mem::take(&mut self.to_tell);
        let mut size = 0;
        let mut carrying = std::collections::HashSet::new();
        while let Some(e) = self.outbox.front() {
            if !batch.docs.is_empty()
                && (batch.docs.len() >= DOCS_PER_ROUND || size + e.data.len() > ROUND_BUDGET_BYTES)
            {
                break;
            }
            // One entry with changes per document per message (the receiver refuses two).
            if matches!(e.kind, Kind::Sync | Kind::Save) && !carrying.insert(e.doc.clone()) {
                break;
            }
            size += e.data.len();
            batch.docs.push(self.outbox.pop_front().expect("front exists"));
        }
        if self.mode == Mode::Server {
            batch.cursor = Some(self.cursor);
        }
        let idle = |b: &Batch| b.hello.is_none() && b.docs.is_empty() && !b.inventory && b.rejected.is_empty();
        if self.mode == Mode::Server && idle(&batch) && !self.more {
            // Documents are in sync: the clocks of the registers held that the months before the
            // window set, where this phone has not had them yet.
            batch.earlier = store
                .earlier_to_ask()?
                .into_iter()
                .filter(|e| !self.earlier_tried.contains(&e.register))
                .take(MAX_EARLIER_ASKS)
                .collect();
            self.earlier_tried.extend(batch.earlier.iter().map(|e| e.register.clone()));
            if !self.converted_asked {
                self.converted_asked = true;
                batch.converted = store.grid_documents(MAX_EARLIER_ASKS)?;
            }
        }
        if idle(&batch) && batch.earlier.is_empty() && batch.converted.is_empty() && !self.more {
            self.finish(store)?;
            return Ok(None);
        }
        self.earlier_asked = batch.earlier.clone();
        self.asked = batch.docs.iter().filter_map(|e| Some((DocId::parse(&e.doc).ok()?, e.kind))).collect();
        let bytes = batch.encode();
        self.progress.round += 1;
        self.progress.entries_sent += batch.docs.len();
        self.awaiting_reply = true;
        Ok(Some(bytes))
    }

    fn receive_inner<R: Replica>(&mut self, store: &mut R, bytes: &[u8]) -> Result<()> {
        match self.phase {
            Phase::Failed => return Err(Error::protocol("this session already failed; start a new one")),
            Phase::Done => return Err(Error::protocol("this session is over")),
            _ if !self.awaiting_reply => return Err(Error::protocol("an answer arrived before a message was sent")),
            _ => {}
        }
        let batch = Batch::decode(bytes)?;
        self.awaiting_reply = false;
        if let Some(refusal) = batch.refused {
            let message = super::exchange::cut_refusal(refusal.message);
            return Err(Error::refused(channel::peer_code(&refusal.code), message));
        }
        self.progress.entries_received += batch.docs.len();
        if self.phase == Phase::Introduced {
            self.meet(store, &batch)?;
            return Ok(());
        }
        let sent: HashSet<DocId> = self.asked.iter().map(|(d, _)| d.clone()).collect();
        for (doc, r) in self.ex.refused_by_other(batch.rejected, &sent) {
            let refusal = DocumentRefusal { doc, code: r.code, message: r.message };
            if self.mode == Mode::Server {
                store.record_refusal(SERVER_PEER, &refusal)?;
            }
            self.progress.refused.push(refusal);
        }
        let answered: BTreeSet<String> = batch.docs.iter().map(|e| e.doc.clone()).collect();
        let handled = self.ex.handle(store, batch.docs, false, None)?;
        self.outbox.extend(handled.answers);
        self.to_tell.extend(handled.rejected);
        // Whatever the other side left unanswered (its round budget) is asked again.
        for (doc, kind) in std::mem::take(&mut self.asked) {
            if answered.contains(&doc.to_string()) || self.ex.is_refused(&doc) {
                continue;
            }
            match kind {
                Kind::Sync => {
                    if let Some(e) = self.ex.retry(store, &doc)? {
                        self.outbox.push_back(e);
                    }
                }
                Kind::Want => self.outbox.push_back(Entry::new(doc, kind, Vec::new())),
                Kind::Save | Kind::Heads => {}
            }
        }
        if self.mode == Mode::Server {
            if let Some(c) = batch.cursor {
                if batch.feed_reset || c < self.cursor {
                    self.server_went_back(store, c)?;
                }
                self.cursor = c;
            }
            let asked = std::mem::take(&mut self.earlier_asked);
            if !batch.earlier.is_empty() {
                store.keep_earlier(&batch.earlier, &asked)?;
            }
            self.converted.extend(batch.converted.iter().filter_map(|d| DocId::parse(d).ok()));
        }
        self.more = batch.more;
        if self.mode == Mode::Server && self.access_at_start.is_some() && !self.relisted {
            // The office moved the user (or changed their role): documents of the new unit that
            // changed before the cursor are in no later listing. Ask for the whole feed once.
            if store.device_access()? != self.access_at_start {
                self.relisted = true;
                self.cursor = 0;
                self.more = true;
            }
        }
        Ok(())
    }

    /// Peer mode: the other phone introduced itself; compare summaries, and if they differ send
    /// the inventory of what may be shared.
    fn meet<R: Replica>(&mut self, store: &mut R, batch: &Batch) -> Result<()> {
        let hello = batch.hello.as_ref().ok_or_else(|| Error::protocol("the other phone did not introduce itself"))?;
        if hello.mode != Mode::Peer {
            return Err(Error::protocol("the other side is not a phone in peer mode"));
        }
        let proved = self.proved.as_ref().ok_or_else(|| Error::protocol("the other phone has not proved who it is"))?;
        let (peer_id, peer_user) = identify_peer(store, hello, proved)?;
        self.ex.peer_id = peer_id;
        self.ex.gate.peer = Some(peer_user);
        let (inventory, summary) = inventory(store, &self.ex.gate)?;
        self.phase = Phase::Running;
        if hello.summary.as_deref() == Some(summary.as_slice()) {
            for (doc, _) in &inventory {
                let doc = DocId::parse(doc)?;
                if let Some(heads) = store.stored_heads(&doc)? {
                    store.set_peer_heads(&self.ex.peer_id, &doc, &heads)?;
                }
            }
            return Ok(());
        }
        if inventory.len() > MAX_ENTRIES {
            return Err(Error::protocol(format!("more than {MAX_ENTRIES} documents to compare with another phone")));
        }
        self.inventory =
            Some(inventory.into_iter().map(|(doc, digest)| Entry::new(doc, Kind::Heads, digest)).collect());
        Ok(())
    }

    /// The server's feed is behind the cursor this phone reached (it says so, or its cursor went
    /// down): it was restored from a backup and may lack what it once confirmed. Everything counts as unsent to it again, and goes in
    /// this session.
    fn server_went_back<R: Replica>(&mut self, store: &mut R, cursor: u64) -> Result<()> {
        tracing::warn!("the server's change feed went back (restored from a backup?): sending everything again");
        self.server_went_back = true;
        // With the lowered cursor, so that a session that fails after this starts from it.
        store.forget_peer_heads(SERVER_PEER, cursor)?;
        let queued: HashSet<DocId> = self.to_start.iter().cloned().collect();
        for doc in store.dirty_documents(SERVER_PEER)? {
            if !queued.contains(&doc) && !self.ex.is_refused(&doc) {
                self.to_start.push_back(doc);
            }
        }
        Ok(())
    }

    fn hello(&self) -> Hello {
        Hello {
            mode: self.mode,
            user: self.me.as_ref().map(|u| u.to_string()).unwrap_or_default(),
            device: self.device.clone(),
            summary: None,
        }
    }

    fn finish<R: Replica>(&mut self, store: &mut R) -> Result<()> {
        self.phase = Phase::Done;
        if self.mode == Mode::Server {
            store.record_session(SERVER_PEER, Ok(self.cursor))?;
            store.keep_refusals(SERVER_PEER, &self.progress.refused)?;
            // The server holds what it confirmed before this session: documents outside the
            // window may leave now.
            if !self.server_went_back {
                let grids = store.release_converted_grids(&self.converted, &self.dirty_at_start)?;
                let outside = store.release_outside_window_but(&self.dirty_at_start)?;
                let unreadable = store.release_unreadable_but(&self.dirty_at_start)?;
                self.progress.documents_released = grids.documents + outside.documents + unreadable.documents;
            }
        }
        Ok(())
    }
}

/// Document ids with their heads digests.
pub(crate) type Digests = Vec<(String, Vec<u8>)>;

/// The documents this store may share through `gate`, with their heads digests, by id, and the
/// summary digest over them.
pub(crate) fn inventory<R: Replica>(store: &mut R, gate: &PhoneGate) -> Result<(Digests, Vec<u8>)> {
    let mut out = Vec::new();
    for doc in store.document_ids()? {
        if gate.may_send(store, &doc)? {
            if let Some(heads) = store.stored_heads(&doc)? {
                out.push((doc.to_string(), heads_digest(&heads)));
            }
        }
    }
    let summary = summary_digest(out.iter().map(|(d, h)| (d.as_str(), h.as_slice())));
    Ok((out, summary))
}

/// Who the other phone is, as its handshake proved it (`proved`), checked against what it says in
/// its hello and against this phone's directory: its peer id for the sync state, and its user.
pub(crate) fn identify_peer<R: Replica>(store: &R, hello: &Hello, proved: &ProvedPeer) -> Result<(String, UserId)> {
    if hello.device != proved.actor || hello.user != proved.user.as_str() {
        return Err(Error::refused(
            crate::error::RefusalCode::UnknownPeer,
            "the other phone says it is another device or user than its certificate names",
        ));
    }
    if proved.actor == store.actor().to_hex_string() {
        return Err(Error::refused(crate::error::RefusalCode::UnknownPeer, "the other phone is this phone itself"));
    }
    let user = proved.user.clone();
    if store.user_of_actor(&proved.actor)?.as_ref() != Some(&user) {
        return Err(Error::refused(
            crate::error::RefusalCode::UnknownPeer,
            "the other phone is not registered to that user in this phone's directory; sync with the server first",
        ));
    }
    Ok((format!("device:{}", proved.actor), user))
}
