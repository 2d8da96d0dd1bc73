//! What the sync engine asks of the replica it syncs (docs/ARCHITECTURE.md §2).
//!
//! The engine — `exchange`, `gate`, `session`, `responder` — is written against these four
//! traits, not against [`Store`]: its functions are generic over `R: Replica`, so the compiler
//! refuses any call to the facade's other methods, and this file is the whole list of what the
//! engine asks of a replica (the same methods it called on `Store` before, now named in one
//! place). The public entry points (`Session`, `ServerResponder`, `PeerResponder`) still take a
//! `&mut Store`, the one facade the app, the server and the bindings use, and hand it on as a
//! `Replica`; `core/tests/architecture.rs` checks that the engine names `Store` nowhere else and
//! that these traits do not name it either. The engine still uses the store's free parsing
//! helpers (`load_document`, `MAX_CHANGE_BYTES`).
//!
//! Each trait is one job of the replica:
//! * [`Documents`] — its documents as the engine sees them: stored heads and bytes, the change
//!   feed, and the two steps of taking another replica's bytes in (absorb in memory, then keep
//!   with the query rows, or discard). `Store` serves them from its document repository and cache.
//! * [`Rules`] — who this replica is and what it lets others hold and change: the directory's
//!   access rules and the boundary's checks on changes it lacks.
//! * [`Peers`] — what it remembers of each peer: heads both were last known to share, the
//!   server's feed cursor, sessions and refusals.
//! * [`Retention`] — what a phone keeps (its window, the clocks of months it let go of) and the
//!   server's conversion of the old layout's grid documents.
//!
//! `Store` is the only implementation. A server on another database (the scale-out issue) is
//! meant to implement these over its own repository; for that, the traits and entry points must
//! become public or generic, and `Documents::keep` and `Rules::check_changes`, which `Store`
//! serves with its projections and boundary, need an implementation of their own there.

// Each impl below hands the call to `Store`'s inherent method of the same name; were that method
// renamed or removed, the path would resolve to the trait method itself.
#![deny(unconditional_recursion)]

use std::collections::HashSet;

use automerge::{sync, ActorId, AutoCommit, Change, ChangeHash};

use super::wire::{Earlier, EarlierClocks};
use crate::clock::UnixMillis;
use crate::document::DocId;
use crate::error::{Error, Result};
use crate::identity::{Certificate, DeploymentKey, Revocation};
use crate::ids::{UnitId, UserId};
use crate::period::Period;
use crate::store::{check_changes, Authors, Converted, DocumentRefusal, MergeOutcome, Released, Store};
use crate::voucher::{DeviceSigner, Voucher};

/// A replica's documents, as the sync engine reads and changes them.
pub(crate) trait Documents {
    fn has_document(&self, id: &DocId) -> Result<bool>;
    /// Every document held, by id.
    fn document_ids(&self) -> Result<Vec<DocId>>;
    /// Heads as stored (`None`: not held); no document is loaded.
    fn stored_heads(&self, id: &DocId) -> Result<Option<Vec<ChangeHash>>>;
    /// Stored size in bytes (snapshot and change rows); no document is loaded.
    fn stored_document_bytes(&self, id: &DocId) -> Result<usize>;
    /// The whole document, saved.
    fn document_bytes(&self, id: &DocId) -> Result<Vec<u8>>;
    /// Runs `f` on the loaded document (loading it if needed).
    fn with_am<T>(&mut self, id: &DocId, f: impl FnOnce(&mut AutoCommit) -> T) -> Result<T>;
    /// Of `changes`, those this replica does not hold.
    fn lacking_changes(&mut self, doc: &DocId, changes: Vec<Change>) -> Result<Vec<Change>>;
    /// Applies another replica's bytes to the document in memory (creating it if new); returns
    /// the heads before, for [`Documents::keep`]. Nothing is persisted yet.
    fn absorb(&mut self, id: &DocId, f: impl FnOnce(&mut AutoCommit) -> Result<()>) -> Result<Vec<ChangeHash>>;
    /// [`Documents::absorb`] for a whole document of another replica.
    fn absorb_document(&mut self, id: &DocId, other: AutoCommit) -> Result<Vec<ChangeHash>>;
    /// Persists what was absorbed since `before`, with its query rows and the signatures
    /// `vouchers` that cover it, in one unit of work. `checked`: the changes passed the boundary
    /// (they came from another replica).
    fn keep(&mut self, id: &DocId, before: &[ChangeHash], checked: bool, vouchers: &[Voucher]) -> Result<MergeOutcome>;
    /// Drops the in-memory document; the next read loads what is stored.
    fn discard(&mut self, id: &DocId);
    /// The position of the last change in this replica's change feed.
    fn feed_head(&self) -> Result<u64>;
    /// Documents changed after feed position `cursor`, oldest first, at most `limit`.
    fn changed_since(&self, cursor: u64, limit: usize) -> Result<Vec<(DocId, u64)>>;
}

/// Who this replica is, and what it lets others hold and change.
pub(crate) trait Rules {
    /// The actor this replica writes its own changes with.
    fn actor(&self) -> &ActorId;
    fn now(&self) -> UnixMillis;
    /// The user this device is registered to in the directory.
    fn device_user(&self) -> Result<Option<UserId>>;
    /// The user a device's actor id (hex) is registered to; `None` if unknown or revoked.
    fn user_of_actor(&self, actor: &str) -> Result<Option<UserId>>;
    fn may_read(&self, user: &UserId, doc: &DocId) -> Result<bool>;
    fn may_write(&self, user: &UserId, doc: &DocId) -> Result<bool>;
    /// Whether a report, as it stands in memory, may come from `user`.
    fn may_file(&mut self, user: &UserId, doc: &DocId) -> Result<bool>;
    /// The boundary's checks on changes of `doc` this replica lacks, before any is applied.
    fn check_changes(&mut self, doc: &DocId, new: &[Change]) -> Result<()>;
    /// What this device's user's access rests on (role, unit, department), to see it change.
    fn device_access(&self) -> Result<Option<String>>;
    /// This device's certificate, once the server issued one.
    fn certificate(&self) -> Result<Option<Certificate>>;
    /// The deployment keys this device pinned at enrolment.
    fn deployment_keys(&self) -> Result<Vec<DeploymentKey>>;
    /// This device's proof that it speaks in the peer session with Noise static key `session_key`.
    fn session_key_proof(&self, session_key: &[u8]) -> Result<[u8; 64]>;
    /// What the directory says of the device writing as `actor`: its key, and whether it was revoked.
    fn device_signer(&self, actor: &ActorId) -> Result<Option<DeviceSigner>>;
    /// The signatures kept with `doc`, the latest of each signer.
    fn vouchers(&self, doc: &DocId) -> Result<Vec<Voucher>>;
    /// This device's signature over its change `latest` of `doc`, kept for next time.
    fn own_voucher(&mut self, doc: &DocId, latest: &Change) -> Result<Voucher>;
}

/// What this replica remembers of the peers it syncs with.
pub(crate) trait Peers {
    /// An Automerge sync state for `peer` that starts from the heads both last shared.
    fn warm_sync_state(&self, peer: &str, id: &DocId) -> Result<sync::State>;
    fn set_peer_heads(&self, peer: &str, id: &DocId, heads: &[ChangeHash]) -> Result<()>;
    /// Forgets every heads shared with `peer` and sets its cursor (the server went back).
    fn forget_peer_heads(&mut self, peer: &str, cursor: u64) -> Result<()>;
    /// Documents whose heads differ from those last shared with `peer`.
    fn dirty_documents(&self, peer: &str) -> Result<Vec<DocId>>;
    fn peer_cursor(&self, peer: &str) -> Result<u64>;
    fn record_session(&self, peer: &str, outcome: std::result::Result<u64, &Error>) -> Result<()>;
    fn record_refusal(&self, peer: &str, refusal: &DocumentRefusal) -> Result<()>;
    /// The refusals of `peer`'s last session, in place of the earlier ones.
    fn keep_refusals(&self, peer: &str, refused: &[DocumentRefusal]) -> Result<()>;
}

/// What a phone keeps, and the server's conversion of the old layout.
pub(crate) trait Retention {
    /// Whether this replica takes `doc` when it does not hold it (not a month outside its window).
    fn takes(&self, doc: &DocId) -> bool;
    /// A month of `unit` that left changed: ask its register's earlier clocks again.
    fn ask_earlier_again(&self, unit: &UnitId) -> Result<()>;
    /// The registers whose clocks from before the window this phone still needs.
    fn earlier_to_ask(&self) -> Result<Vec<Earlier>>;
    /// Keeps the server's answers to [`Retention::earlier_to_ask`].
    fn keep_earlier(&mut self, answers: &[Earlier], asked: &[Earlier]) -> Result<()>;
    /// The server side: each household's clocks from the months of `register` before `before`.
    fn earlier_clocks(&self, register: &DocId, before: Period) -> Result<Vec<EarlierClocks>>;
    /// Old-layout grid documents held, at most `limit`, to ask whether the server converted them.
    fn grid_documents(&self, limit: usize) -> Result<Vec<String>>;
    /// The server side: whether grid document `doc` is converted as it stands.
    fn converted_now(&self, doc: &DocId) -> Result<bool>;
    /// The server side: converts what a phone of the old layout wrote into its grid document.
    fn convert_taken(&mut self, grid: &UnitId) -> Result<Converted>;
    /// Lets go of converted grid documents the server confirmed (none dirty when the session began).
    fn release_converted_grids(
        &mut self,
        converted: &HashSet<DocId>,
        dirty_at_start: &HashSet<DocId>,
    ) -> Result<Released>;
    /// Lets go of documents outside the window the server holds, but those in `dirty_at_start`.
    fn release_outside_window_but(&mut self, dirty_at_start: &HashSet<DocId>) -> Result<Released>;
    /// Lets go of documents this phone's user may no longer read, but those in `dirty_at_start`
    /// and those the server lacks changes of.
    fn release_unreadable_but(&mut self, dirty_at_start: &HashSet<DocId>) -> Result<Released>;
    /// Erases everything this replica holds, once `revocation` verifies for it.
    fn erase_revoked(&mut self, revocation: &Revocation) -> Result<()>;
}

/// Everything the sync engine needs of a replica.
pub(crate) trait Replica: Documents + Rules + Peers + Retention {}
impl<T: Documents + Rules + Peers + Retention> Replica for T {}

// `Store` serves the engine with the methods it already has; each line only hands the call on.

impl Documents for Store {
    fn has_document(&self, id: &DocId) -> Result<bool> {
        Store::has_document(self, id)
    }
    fn document_ids(&self) -> Result<Vec<DocId>> {
        Store::document_ids(self)
    }
    fn stored_heads(&self, id: &DocId) -> Result<Option<Vec<ChangeHash>>> {
        Store::stored_heads(self, id)
    }
    fn stored_document_bytes(&self, id: &DocId) -> Result<usize> {
        Store::stored_document_bytes(self, id)
    }
    fn document_bytes(&self, id: &DocId) -> Result<Vec<u8>> {
        Store::document_bytes(self, id)
    }
    fn with_am<T>(&mut self, id: &DocId, f: impl FnOnce(&mut AutoCommit) -> T) -> Result<T> {
        Store::with_am(self, id, f)
    }
    fn lacking_changes(&mut self, doc: &DocId, changes: Vec<Change>) -> Result<Vec<Change>> {
        Store::lacking_changes(self, doc, changes)
    }
    fn absorb(&mut self, id: &DocId, f: impl FnOnce(&mut AutoCommit) -> Result<()>) -> Result<Vec<ChangeHash>> {
        Store::absorb(self, id, f)
    }
    fn absorb_document(&mut self, id: &DocId, other: AutoCommit) -> Result<Vec<ChangeHash>> {
        Store::absorb_document(self, id, other)
    }
    fn keep(&mut self, id: &DocId, before: &[ChangeHash], checked: bool, vouchers: &[Voucher]) -> Result<MergeOutcome> {
        Store::keep(self, id, before, checked, vouchers)
    }
    fn discard(&mut self, id: &DocId) {
        Store::discard(self, id)
    }
    fn feed_head(&self) -> Result<u64> {
        Store::feed_head(self)
    }
    fn changed_since(&self, cursor: u64, limit: usize) -> Result<Vec<(DocId, u64)>> {
        Store::changed_since(self, cursor, limit)
    }
}

impl Rules for Store {
    fn actor(&self) -> &ActorId {
        Store::actor(self)
    }
    fn now(&self) -> UnixMillis {
        Store::now(self)
    }
    fn device_user(&self) -> Result<Option<UserId>> {
        Store::device_user(self)
    }
    fn user_of_actor(&self, actor: &str) -> Result<Option<UserId>> {
        Store::user_of_actor(self, actor)
    }
    fn may_read(&self, user: &UserId, doc: &DocId) -> Result<bool> {
        Store::may_read(self, user, doc)
    }
    fn may_write(&self, user: &UserId, doc: &DocId) -> Result<bool> {
        Store::may_write(self, user, doc)
    }
    fn may_file(&mut self, user: &UserId, doc: &DocId) -> Result<bool> {
        Store::may_file(self, user, doc)
    }
    fn check_changes(&mut self, doc: &DocId, new: &[Change]) -> Result<()> {
        check_changes(self, doc, new, Authors::Verified)
    }
    fn device_access(&self) -> Result<Option<String>> {
        Store::device_access(self)
    }
    fn certificate(&self) -> Result<Option<Certificate>> {
        Store::certificate(self)
    }
    fn deployment_keys(&self) -> Result<Vec<DeploymentKey>> {
        Store::deployment_keys(self)
    }
    fn session_key_proof(&self, session_key: &[u8]) -> Result<[u8; 64]> {
        Store::session_key_proof(self, session_key)
    }
    fn device_signer(&self, actor: &ActorId) -> Result<Option<DeviceSigner>> {
        Store::device_signer(self, actor)
    }
    fn vouchers(&self, doc: &DocId) -> Result<Vec<Voucher>> {
        Store::vouchers(self, doc)
    }
    fn own_voucher(&mut self, doc: &DocId, latest: &Change) -> Result<Voucher> {
        Store::own_voucher(self, doc, latest)
    }
}

impl Peers for Store {
    fn warm_sync_state(&self, peer: &str, id: &DocId) -> Result<sync::State> {
        Store::warm_sync_state(self, peer, id)
    }
    fn set_peer_heads(&self, peer: &str, id: &DocId, heads: &[ChangeHash]) -> Result<()> {
        Store::set_peer_heads(self, peer, id, heads)
    }
    fn forget_peer_heads(&mut self, peer: &str, cursor: u64) -> Result<()> {
        Store::forget_peer_heads(self, peer, cursor)
    }
    fn dirty_documents(&self, peer: &str) -> Result<Vec<DocId>> {
        Store::dirty_documents(self, peer)
    }
    fn peer_cursor(&self, peer: &str) -> Result<u64> {
        Store::peer_cursor(self, peer)
    }
    fn record_session(&self, peer: &str, outcome: std::result::Result<u64, &Error>) -> Result<()> {
        Store::record_session(self, peer, outcome)
    }
    fn record_refusal(&self, peer: &str, refusal: &DocumentRefusal) -> Result<()> {
        Store::record_refusal(self, peer, refusal)
    }
    fn keep_refusals(&self, peer: &str, refused: &[DocumentRefusal]) -> Result<()> {
        Store::keep_refusals(self, peer, refused)
    }
}

impl Retention for Store {
    fn takes(&self, doc: &DocId) -> bool {
        Store::takes(self, doc)
    }
    fn erase_revoked(&mut self, revocation: &Revocation) -> Result<()> {
        Store::erase_revoked(self, revocation)
    }
    fn ask_earlier_again(&self, unit: &UnitId) -> Result<()> {
        Store::ask_earlier_again(self, unit)
    }
    fn earlier_to_ask(&self) -> Result<Vec<Earlier>> {
        Store::earlier_to_ask(self)
    }
    fn keep_earlier(&mut self, answers: &[Earlier], asked: &[Earlier]) -> Result<()> {
        Store::keep_earlier(self, answers, asked)
    }
    fn earlier_clocks(&self, register: &DocId, before: Period) -> Result<Vec<EarlierClocks>> {
        Store::earlier_clocks(self, register, before)
    }
    fn grid_documents(&self, limit: usize) -> Result<Vec<String>> {
        Store::grid_documents(self, limit)
    }
    fn converted_now(&self, doc: &DocId) -> Result<bool> {
        Store::converted_now(self, doc)
    }
    fn convert_taken(&mut self, grid: &UnitId) -> Result<Converted> {
        Store::convert_taken(self, grid)
    }
    fn release_converted_grids(
        &mut self,
        converted: &HashSet<DocId>,
        dirty_at_start: &HashSet<DocId>,
    ) -> Result<Released> {
        Store::release_converted_grids(self, converted, dirty_at_start)
    }
    fn release_outside_window_but(&mut self, dirty_at_start: &HashSet<DocId>) -> Result<Released> {
        Store::release_outside_window_but(self, dirty_at_start)
    }
    fn release_unreadable_but(&mut self, dirty_at_start: &HashSet<DocId>) -> Result<Released> {
        Store::release_unreadable_but(self, dirty_at_start)
    }
}
