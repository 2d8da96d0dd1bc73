//! What each side of a session lets through: which documents it offers and takes, and which
//! incoming changes it accepts. The rules themselves live in `store::access`; a gate asks them
//! through [`Rules`].

use automerge::Change;

use super::replica::Rules;
use crate::document::DocId;
use crate::error::{Error, Result};
use crate::ids::UserId;

/// The policy one side of a session applies to the other.
pub(crate) trait Gate {
    /// Whether the other side may be told about and sent `doc`.
    fn may_send<R: Rules>(&self, store: &R, doc: &DocId) -> Result<bool>;
    /// Whether this side takes `doc` from the other side at all.
    fn may_take<R: Rules>(&self, store: &R, doc: &DocId) -> Result<bool>;
    /// Whether this side asks the other for a document it does not hold when the other side
    /// announces it (a `heads` entry): a phone does, for what it may take; the server does not,
    /// and refuses a `heads` entry for a document it does not hold.
    fn asks_for_unknown(&self) -> bool;
    /// Whether this side takes an old-layout grid document it does not hold: the server does
    /// (an older phone's, which it converts); a phone of this version never does, the
    /// registers and months hold what it needs.
    fn takes_new_grid_documents(&self) -> bool;
    /// Whether this side keeps a conversation's sync state between messages (a phone does; the
    /// server answers each request afresh, from what it persisted).
    fn holds_sessions(&self) -> bool;
    /// Whether [`Gate::check_incoming`] needs to see the incoming changes.
    fn checks_changes(&self) -> bool;
    /// Checks changes this store lacks before any of them is applied. An error refuses the
    /// whole message.
    fn check_incoming<R: Rules>(&self, store: &R, doc: &DocId, new: &[Change]) -> Result<()>;
    /// Checks a document after the other side's bytes were applied in memory, before they are
    /// kept. An error drops them.
    fn check_absorbed<R: Rules>(&self, store: &mut R, doc: &DocId) -> Result<()>;
}

/// A phone's gate. Towards the server it offers and takes everything (the server authorizes);
/// towards another phone, only documents both users may hold by the directory, and never the
/// directory itself: it comes from the server alone (a phone cannot tell an admin's change to
/// it from a forged one, and the directory decides who may read everything else). Changes
/// from another phone pass the boundary's checks.
pub(crate) struct PhoneGate {
    pub me: Option<UserId>,
    pub peer: Option<UserId>,
}

impl Gate for PhoneGate {
    fn may_send<R: Rules>(&self, store: &R, doc: &DocId) -> Result<bool> {
        match (&self.me, &self.peer) {
            (_, None) => Ok(true),
            (_, Some(_)) if *doc == DocId::Directory => Ok(false),
            (Some(me), Some(peer)) => Ok(store.may_read(me, doc)? && store.may_read(peer, doc)?),
            (None, Some(_)) => Ok(false),
        }
    }

    fn may_take<R: Rules>(&self, store: &R, doc: &DocId) -> Result<bool> {
        match (&self.me, &self.peer) {
            (_, None) => Ok(true),
            (_, Some(_)) if *doc == DocId::Directory => Ok(false),
            // A report this phone has not seen yet is checked on its header once it is in.
            (Some(me), Some(_)) => Ok(store.may_read(me, doc)? || matches!(doc, DocId::Report(_))),
            (None, Some(_)) => Ok(false),
        }
    }

    fn asks_for_unknown(&self) -> bool {
        true
    }

    fn takes_new_grid_documents(&self) -> bool {
        false
    }

    fn holds_sessions(&self) -> bool {
        true
    }

    fn checks_changes(&self) -> bool {
        self.peer.is_some()
    }

    fn check_incoming<R: Rules>(&self, _: &R, _: &DocId, _: &[Change]) -> Result<()> {
        Ok(())
    }

    fn check_absorbed<R: Rules>(&self, store: &mut R, doc: &DocId) -> Result<()> {
        match (&self.me, &self.peer) {
            (Some(me), Some(_)) if !store.may_read(me, doc)? && !store.may_file(me, doc)? => Err(Error::refused(
                crate::error::RefusalCode::ForbiddenDocument,
                format!("the other phone sent {doc}, which this phone's user may not hold"),
            )),
            _ => Ok(()),
        }
    }
}

/// The server's gate for one authenticated device: it reads what its user may read, and takes
/// changes to what its user may write, its own and those it carries for others (each signed by
/// its author's device, checked before the gate, and each author allowed to write there too).
pub(crate) struct DeviceGate {
    pub user: UserId,
}

impl Gate for DeviceGate {
    fn may_send<R: Rules>(&self, store: &R, doc: &DocId) -> Result<bool> {
        store.may_read(&self.user, doc)
    }

    fn may_take<R: Rules>(&self, store: &R, doc: &DocId) -> Result<bool> {
        Ok(store.may_read(&self.user, doc)? || store.may_write(&self.user, doc)?)
    }

    fn asks_for_unknown(&self) -> bool {
        false
    }

    fn takes_new_grid_documents(&self) -> bool {
        true
    }

    fn holds_sessions(&self) -> bool {
        false
    }

    fn checks_changes(&self) -> bool {
        true
    }

    fn check_incoming<R: Rules>(&self, store: &R, doc: &DocId, new: &[Change]) -> Result<()> {
        if new.is_empty() {
            return Ok(());
        }
        if !store.may_write(&self.user, doc)? {
            return Err(Error::refused(
                crate::error::RefusalCode::ForbiddenDocument,
                format!("this device's user may not change {doc}"),
            ));
        }
        Ok(())
    }

    fn check_absorbed<R: Rules>(&self, store: &mut R, doc: &DocId) -> Result<()> {
        // A report the server already held was authorized by `may_write` (its tables still show
        // it as it was); a new one must name this user as reporter or lie in a grid of theirs.
        if store.may_read(&self.user, doc)? || store.may_file(&self.user, doc)? {
            Ok(())
        } else {
            Err(Error::refused(
                crate::error::RefusalCode::ForbiddenDocument,
                format!("{doc} names another reporter and a grid this device's user does not work in"),
            ))
        }
    }
}
