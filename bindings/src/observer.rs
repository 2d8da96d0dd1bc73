//! Change and sync-status notifications to the app, through a trait the app implements
//! (a Kotlin or Swift object).
//!
//! Rule: foreign code is never called while a Rust lock is held. The store lock is released
//! before notifying, and the observer list is copied out of its lock first, so an observer may
//! call straight back into the store (re-query a screen) without deadlocking.

use std::sync::{Arc, Mutex};

use crate::types::{Change, SyncStatus};

/// Implemented by the app to hear about changes. Called on the thread that made the change
/// (the caller's for a write, a core thread for a sync), after it is durable: keep it short
/// and hand the work to the UI thread.
#[uniffi::export(with_foreign)]
pub trait DoorstepObserver: Send + Sync {
    /// Documents changed: screens showing them should re-query.
    fn on_change(&self, change: Change);
    /// The sync badge changed: a sync started, advanced or ended, or a local write added a
    /// change the server has not seen.
    fn on_sync_status(&self, status: SyncStatus);
}

/// The observers of one store, by the id `add` returned.
#[derive(Default)]
pub(crate) struct Observers {
    list: Mutex<Vec<(u64, Arc<dyn DoorstepObserver>)>>,
    next_id: std::sync::atomic::AtomicU64,
}

impl Observers {
    pub(crate) fn add(&self, observer: Arc<dyn DoorstepObserver>) -> u64 {
        let id = self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        self.lock().push((id, observer));
        id
    }

    pub(crate) fn remove(&self, id: u64) -> bool {
        let mut list = self.lock();
        let before = list.len();
        list.retain(|(i, _)| *i != id);
        list.len() != before
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Calls `f` on every observer, with no lock held. An observer that throws does not fail
    /// the call that notified it (the change is already durable) nor keep the others from
    /// hearing: uniffi turns its exception into a panic here, which is caught and dropped.
    pub(crate) fn each(&self, f: impl Fn(&dyn DoorstepObserver)) {
        let copy: Vec<Arc<dyn DoorstepObserver>> = self.lock().iter().map(|(_, o)| o.clone()).collect();
        for o in copy {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(o.as_ref())));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(u64, Arc<dyn DoorstepObserver>)>> {
        // The list is only pushed to and filtered: a panic elsewhere cannot leave it half-changed.
        self.list.lock().unwrap_or_else(|p| p.into_inner())
    }
}
