//! Syncing documents with the server and with other phones (docs/ARCHITECTURE.md §4, `docs/PROTOCOL.md`).
//!
//! A *session* exchanges batches: each message carries entries for many documents at once
//! (Automerge sync messages, whole documents, requests for whole documents, heads digests).
//! The core never opens a socket or a radio for phone-to-phone sync: the app carries the bytes
//! of [`Session::next_message`] to the other phone's [`PeerResponder::respond`] and back into
//! [`Session::receive`]. Towards the server, [`http::ServerClient`] carries them over HTTP.
//!
//! How a session finds what differs without touching unchanged documents:
//! * with the server, the phone sends its *dirty* documents (heads differ from those it last
//!   shared with the server) and its cursor in the server's change feed; the server answers them
//!   and lists what changed since the cursor that the device may read. Nothing changed: one round
//!   trip of a few dozen bytes, however many documents the phone holds;
//! * with another phone, each side digests the documents both may hold and their heads; equal
//!   digests end the session after one round trip, otherwise an inventory is exchanged.
//!
//! Every limit is a constant here or in [`wire`]; bad bytes end the session with
//! [`crate::Error::Protocol`] or [`crate::Error::Refused`], never a panic or a half-kept document.

pub mod api;
pub(crate) mod channel;
mod exchange;
mod gate;
mod history;
pub mod http;
mod replica;
mod responder;
mod session;
pub mod wire;

pub use channel::MAX_FRAME_BYTES;
pub(crate) use exchange::applied;
pub use history::{VisitsRequest, MAX_HISTORY_MONTHS};
pub use responder::{PeerResponder, ServerResponder};
pub use session::Session;

/// Sync entries started per round (the rest wait for the next round).
pub const DOCS_PER_ROUND: usize = 256;
/// Bytes of entry data per message a side aims for; a single larger document goes alone.
pub const ROUND_BUDGET_BYTES: usize = 8 << 20;
/// Rounds after which a session gives up (two phones converge in a handful).
pub const MAX_ROUNDS: u32 = 64;
/// Changed documents the server lists per answer (the phone asks again for more).
pub const FEED_PAGE: usize = 1_000;
/// Registers a request may ask the server the earlier clocks of (`wire::Earlier`; a phone asks
/// the rest in its next request).
pub const MAX_EARLIER_ASKS: usize = 32;

/// How far a session has come, for the app's progress indicator.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Messages sent so far.
    pub round: u32,
    /// Documents exchanged in part or whole.
    pub documents: usize,
    /// Documents known to need syncing that this session has not started yet (for a progress
    /// bar: `documents / (documents + documents_waiting)`).
    pub documents_waiting: usize,
    pub entries_sent: usize,
    pub entries_received: usize,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub done: bool,
    /// Documents of this phone the other side refused in this session, with why; the session
    /// went on with the others (`docs/PROTOCOL.md` §2, *Refused documents*).
    pub refused: Vec<crate::store::DocumentRefusal>,
    /// Documents that left the phone when the session ended: outside its window (`crate::window`),
    /// or no longer readable by its user (moved to another unit). The server holds every change
    /// of them.
    pub documents_released: usize,
}
