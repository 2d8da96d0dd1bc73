//! The answering side of a sync: the server for each request of a device, or a phone for the
//! phone that started the session.
//!
//! The server keeps no session in memory: each request is answered from the per-document state
//! persisted in `peer_docs`, so any request may reach any server process, and a restarted server
//! carries on where it stopped. A phone answering another phone keeps one `Responder` for the
//! conversation.

use std::collections::{BTreeSet, HashSet, VecDeque};

use super::channel::{self, Channel, ProvedPeer};
use std::sync::Arc;

use super::exchange::{Exchange, Vouching};
use super::gate::{DeviceGate, Gate, PhoneGate};
use super::replica::Replica;
use super::session::{identify_peer, inventory};
use super::wire::{heads_digest, Batch, Earlier, Entry, Hello, Kind, Mode, Refusal};
use super::{DOCS_PER_ROUND, FEED_PAGE, MAX_EARLIER_ASKS, ROUND_BUDGET_BYTES};
use crate::document::DocId;
use crate::error::{Error, Result};
use crate::identity::DeploymentSigner;
use crate::ids::UserId;
use crate::period::Period;
use crate::store::{DocumentRefusal, Store};

/// Answers the messages of one peer, under the policy `G`.
struct Responder<G: Gate> {
    ex: Exchange<G>,
    /// Peer mode: whether the other phone has introduced itself.
    introduced: bool,
    /// Peer mode: answers left over from a round's budget.
    outbox: VecDeque<Entry>,
    /// Peer mode: documents the other phone lacks, offered whole; their bytes are read only
    /// when they go out, within a round's budget, so a large inventory costs no memory.
    to_offer: VecDeque<DocId>,
    /// Peer mode: whether the other phone's inventory came (once per session).
    inventory_taken: bool,
    /// Peer mode: documents of this phone the other phone refused, with why.
    refused: Vec<DocumentRefusal>,
    /// Peer mode: the documents of the last answer (the only ones the other phone may refuse).
    sent: HashSet<DocId>,
}

/// The server's answer to one request of an authenticated device. It keeps nothing between
/// requests but what it persisted, so any server process can answer any request.
pub struct ServerResponder(Responder<DeviceGate>);

impl ServerResponder {
    /// For a device of `user`. What the server sends it carries the deployment's signature
    /// (`deployment`), and what it takes must be signed by its authors' devices.
    pub fn for_device(device_id: &str, user: UserId, deployment: Arc<DeploymentSigner>) -> Result<Self> {
        Ok(ServerResponder(Responder {
            ex: Exchange::new(format!("device:{device_id}"), DeviceGate { user }, Vouching::Server(deployment)),
            introduced: true,
            outbox: VecDeque::new(),
            to_offer: VecDeque::new(),
            inventory_taken: false,
            refused: Vec::new(),
            sent: HashSet::new(),
        }))
    }

    /// Answers one request. An error means the message was refused: its checks (access, actors,
    /// the boundary) run on every entry before anything is kept.
    pub fn respond(&mut self, store: &mut Store, request: &[u8]) -> Result<Vec<u8>> {
        Ok(self.answer_with(store, ServerResponder::read(request)?)?.encode())
    }

    /// Reads a request without the store: the server decodes (and inflates) it before it takes
    /// the store, and encodes the answer after it let go of it, so that one device's large
    /// message keeps no other device waiting for those steps.
    pub fn read(request: &[u8]) -> Result<Batch> {
        let batch = Batch::decode(request)?;
        match &batch.hello {
            Some(h) if h.mode != Mode::Server => Err(Error::protocol("the message is for another kind of peer")),
            _ => Ok(batch),
        }
    }

    /// Answers a request [`ServerResponder::read`] decoded. A request names at most
    /// [`DOCS_PER_ROUND`] documents (a phone's session never sends more in one message), which
    /// bounds the documents one request can make the server load.
    pub fn answer(&mut self, store: &mut Store, batch: Batch) -> Result<Batch> {
        self.answer_with(store, batch)
    }

    fn answer_with<R: Replica>(&mut self, store: &mut R, batch: Batch) -> Result<Batch> {
        let named: BTreeSet<&str> = batch.docs.iter().map(|e| e.doc.as_str()).collect();
        if named.len() > DOCS_PER_ROUND {
            return Err(Error::protocol(format!(
                "a request to the server names at most {DOCS_PER_ROUND} documents, this one {}",
                named.len()
            )));
        }
        self.0.respond_as_server(store, batch)
    }

    /// How many documents this request took in or sent.
    pub fn documents_touched(&self) -> usize {
        self.0.ex.documents_touched.len()
    }
}

/// A phone's side of a session another phone started: one for the whole conversation, over
/// the encrypted channel the other phone opens (`channel`).
pub struct PeerResponder {
    r: Responder<PhoneGate>,
    channel: Channel,
    /// The other phone, once its handshake proved who it is.
    proved: Option<ProvedPeer>,
    /// A message was refused: the session is over.
    failed: bool,
}

impl PeerResponder {
    /// This phone's side of a session; it needs a certificate, from its server sync.
    pub fn new(store: &Store) -> Result<Self> {
        PeerResponder::of(store)
    }

    fn of<R: Replica>(store: &R) -> Result<Self> {
        let me = store.device_user()?.ok_or(Error::NotEnrolled)?;
        channel::ready(store)?;
        let r = Responder {
            ex: Exchange::new(String::new(), PhoneGate { me: Some(me), peer: None }, Vouching::phone(store)?),
            introduced: false,
            outbox: VecDeque::new(),
            to_offer: VecDeque::new(),
            inventory_taken: false,
            refused: Vec::new(),
            sent: HashSet::new(),
        };
        Ok(PeerResponder { r, channel: Channel::new(), proved: None, failed: false })
    }

    /// Documents of this phone the other phone refused in this session (it went on with the
    /// others), for the app to show.
    pub fn refused(&self) -> &[DocumentRefusal] {
        &self.r.refused
    }

    /// Answers one message of the other phone. On an error, send [`PeerResponder::refusal`]
    /// instead; the session is over then, and every later message is refused.
    pub fn respond(&mut self, store: &mut Store, request: &[u8]) -> Result<Vec<u8>> {
        self.respond_once(store, request)
    }

    fn respond_once<R: Replica>(&mut self, store: &mut R, request: &[u8]) -> Result<Vec<u8>> {
        if self.failed {
            return Err(Error::protocol("this session already failed; start a new one"));
        }
        let r = self.respond_sealed(store, request);
        self.failed = r.is_err();
        r
    }

    fn respond_sealed<R: Replica>(&mut self, store: &mut R, request: &[u8]) -> Result<Vec<u8>> {
        let batch = match &self.proved {
            None if self.channel.is_fresh() => return self.channel.answer_hello(store, request),
            None => {
                let (peer, batch) = self.channel.read_proof_and_open(store, request)?;
                self.proved = Some(peer);
                batch
            }
            Some(_) => self.channel.open(request)?,
        };
        let batch = self.r.decode(&batch, Mode::Peer)?;
        let proved = self.proved.as_ref().expect("proved above");
        let reply = self.r.respond_as_phone(store, batch, proved)?;
        self.channel.seal(store, &reply)
    }

    /// The message to send back instead of an answer when [`PeerResponder::respond`] refused the
    /// other phone's message with `err`, so that the other side learns why: encrypted once the
    /// channel is open, in the clear before (the other phone may be no Doorstep phone at all).
    pub fn refusal(&mut self, store: &Store, err: &Error) -> Vec<u8> {
        self.refusal_for(store, err)
    }

    fn refusal_for<R: Replica>(&mut self, store: &R, err: &Error) -> Vec<u8> {
        let code = match err {
            Error::Refused { code, .. } => code.to_string(),
            Error::Protocol(_) => crate::error::RefusalCode::BadMessage.to_string(),
            _ => crate::error::RefusalCode::Refused.to_string(),
        };
        let batch =
            |message: String| Batch { refused: Some(Refusal { code: code.clone(), message }), ..Batch::default() };
        let reason = match err {
            Error::Refused { message, .. } | Error::Protocol(message) => message.clone(),
            e => e.to_string(),
        };
        if self.channel.is_open() {
            if let Ok(sealed) = self.channel.seal(store, &batch(reason.clone()).encode()) {
                return sealed;
            }
        }
        // In the clear, to a phone that may not have proved anything: the reason only where it is
        // the other phone's own (its message, its certificate), never this phone's inner errors.
        let message = match err {
            Error::Refused { .. } | Error::Protocol(_) if !self.channel.is_open() => reason,
            _ => "the other phone could not answer".to_string(),
        };
        batch(message).encode()
    }
}

impl<G: Gate> Responder<G> {
    fn decode(&self, request: &[u8], mode: Mode) -> Result<Batch> {
        let batch = Batch::decode(request)?;
        match &batch.hello {
            Some(h) if h.mode != mode => Err(Error::protocol("the message is for another kind of peer")),
            _ => Ok(batch),
        }
    }
}

impl Responder<DeviceGate> {
    fn respond_as_server<R: Replica>(&mut self, store: &mut R, mut batch: Batch) -> Result<Batch> {
        // The earlier clocks each cost a scan of a register's visits: a bounded number per request.
        if batch.earlier.len() > MAX_EARLIER_ASKS {
            return Err(Error::protocol(format!("a request asks about at most {MAX_EARLIER_ASKS} registers")));
        }
        if batch.converted.len() > MAX_EARLIER_ASKS {
            return Err(Error::protocol(format!("a request asks about at most {MAX_EARLIER_ASKS} grid documents")));
        }
        let earlier = std::mem::take(&mut batch.earlier);
        let converted = std::mem::take(&mut batch.converted);
        let asked: BTreeSet<String> = batch.docs.iter().map(|e| e.doc.clone()).collect();
        // The feed as it was before this request's documents moved it on: a phone whose cursor
        // is beyond it saw a feed this server no longer has (restored from a backup).
        let head_before = store.feed_head()?;
        let handled = self.ex.handle(store, batch.docs, true, Some(ROUND_BUDGET_BYTES))?;
        // What an older phone wrote into its grid document reaches the registers and months now.
        // A conversion that fails is logged and tried again with the next change or at the
        // server's next start: what the phone sent is kept either way.
        for doc in asked.iter().filter_map(|d| DocId::parse(d).ok()) {
            if let DocId::Grid(grid) = &doc {
                if let Err(e) = store.convert_taken(grid) {
                    tracing::error!(doc = %doc, error = %e, "converting a grid document failed");
                }
            }
        }
        let mut out = handled.answers;
        let mut reply = Batch { rejected: handled.rejected, ..Batch::default() };
        if let Some(mut cursor) = batch.cursor {
            let head = store.feed_head()?;
            if cursor > head_before {
                // List all, and say so: the phone sends everything again.
                cursor = 0;
                reply.feed_reset = true;
            }
            let changed = store.changed_since(cursor, FEED_PAGE)?;
            let full_page = changed.len() == FEED_PAGE;
            let mut last = cursor;
            for (doc, seq) in changed {
                last = seq;
                if asked.contains(&doc.to_string()) || !self.ex.gate.may_send(store, &doc)? {
                    continue;
                }
                if let Some(heads) = store.stored_heads(&doc)? {
                    out.push(Entry {
                        doc: doc.to_string(),
                        kind: Kind::Heads,
                        data: heads_digest(&heads),
                        vouchers: Vec::new(),
                    });
                }
            }
            reply.cursor = Some(if full_page { last } else { head });
            reply.more = full_page;
        }
        let mut asked_registers = HashSet::new();
        let this_month = Period::of(store.now());
        for ask in earlier {
            // A register the device may not read, an ask that does not parse or repeats one,
            // gets no answer; nothing after the current month is counted.
            let (Ok(doc @ DocId::Register(_)), Ok(before)) = (DocId::parse(&ask.register), Period::parse(&ask.before))
            else {
                continue;
            };
            if asked_registers.insert(doc.clone()) && self.ex.gate.may_send(store, &doc)? {
                let households = store.earlier_clocks(&doc, before.min(this_month))?;
                reply.earlier.push(Earlier { households, ..ask });
            }
        }
        let mut asked_grids = HashSet::new();
        for doc in converted {
            let Ok(doc @ DocId::Grid(_)) = DocId::parse(&doc) else { continue };
            if asked_grids.insert(doc.clone()) && self.ex.gate.may_send(store, &doc)? && store.converted_now(&doc)? {
                reply.converted.push(doc.to_string());
            }
        }
        reply.docs = out;
        Ok(reply)
    }
}

impl Responder<PhoneGate> {
    fn respond_as_phone<R: Replica>(&mut self, store: &mut R, batch: Batch, proved: &ProvedPeer) -> Result<Vec<u8>> {
        let mut reply = Batch::default();
        if !self.introduced {
            let hello = batch.hello.ok_or_else(|| Error::protocol("the other phone did not introduce itself"))?;
            let (peer_id, peer) = identify_peer(store, &hello, proved)?;
            self.ex.peer_id = peer_id;
            self.ex.gate.peer = Some(peer);
            self.introduced = true;
            let (_, summary) = inventory(store, &self.ex.gate)?;
            reply.hello = Some(Hello {
                mode: Mode::Peer,
                user: self.ex.gate.me.as_ref().map(|u| u.to_string()).unwrap_or_default(),
                device: store.actor().to_hex_string(),
                summary: Some(summary),
            });
            return Ok(reply.encode());
        }
        let listed: BTreeSet<String> = batch.docs.iter().map(|e| e.doc.clone()).collect();
        // The work one message may cause: an inventory once per session (it may list every
        // document both may hold), any other message at most a round's documents, as a
        // session sends them.
        if batch.inventory {
            if self.inventory_taken {
                return Err(Error::protocol("the other phone sent its inventory twice"));
            }
            self.inventory_taken = true;
        } else if listed.len() > DOCS_PER_ROUND {
            return Err(Error::protocol(format!("a message names at most {DOCS_PER_ROUND} documents")));
        }
        for (doc, r) in self.ex.refused_by_other(batch.rejected, &self.sent) {
            self.refused.push(DocumentRefusal { doc, code: r.code, message: r.message });
        }
        let handled = self.ex.handle(store, batch.docs, true, None)?;
        self.outbox.extend(handled.answers);
        reply.rejected = handled.rejected;
        if batch.inventory {
            // What the other phone did not list, it lacks: offer it whole.
            for (doc, _) in inventory(store, &self.ex.gate)?.0 {
                if !listed.contains(&doc) {
                    self.to_offer.push_back(DocId::parse(&doc)?);
                }
            }
        }
        let mut size = 0;
        let mut carrying = std::collections::HashSet::new();
        while let Some(e) = self.outbox.front() {
            if !reply.docs.is_empty() && size + e.data.len() > ROUND_BUDGET_BYTES {
                break;
            }
            // One entry with changes per document per message (the receiver refuses two).
            if matches!(e.kind, Kind::Sync | Kind::Save) && !carrying.insert(e.doc.clone()) {
                break;
            }
            size += e.data.len();
            reply.docs.push(self.outbox.pop_front().expect("front exists"));
        }
        while self.outbox.is_empty() {
            let Some(doc) = self.to_offer.front() else { break };
            let bytes = store.stored_document_bytes(doc)?;
            if (!reply.docs.is_empty() && size + bytes > ROUND_BUDGET_BYTES) || carrying.contains(&doc.to_string()) {
                break;
            }
            let doc = self.to_offer.pop_front().expect("front exists");
            size += bytes;
            reply.docs.push(self.ex.save_entry(store, &doc)?);
        }
        reply.more = !self.outbox.is_empty() || !self.to_offer.is_empty();
        self.sent = reply.docs.iter().filter_map(|e| DocId::parse(&e.doc).ok()).collect();
        Ok(reply.encode())
    }
}
