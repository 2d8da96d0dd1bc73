//! Syncing from the app: enrolment and sync with the server over HTTP, and sync with another
//! phone as bytes in, bytes out (the app carries them over Bluetooth, Wi-Fi Direct or a QR
//! code).
//!
//! Every call here is `async` and runs on the tokio runtime the core owns, never on the
//! caller's thread. The store is locked only for each step of a session (making or taking in
//! one message), never across a network round trip, so the worker can keep recording visits
//! while a sync runs.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use doorstep_core::sync::http::{certificate_request, enrolment_request, keep_registration, runtime, ServerClient};
use doorstep_core::sync::{PeerResponder, Session, VisitsRequest};
use doorstep_core::{HouseholdId, Period, Store};
use tokio::task::block_in_place;

use crate::error::{DoorstepError, SyncError};
use crate::store::Doorstep;
use crate::types::{ChangeOrigin, DocumentRefusal, PeerReply, Registration, SyncProgress, Visit};

/// Runs `work` on the core's runtime and waits for it from whatever executor the app's binding
/// polls with.
async fn on_core<T, E>(work: impl std::future::Future<Output = Result<T, E>> + Send + 'static) -> Result<T, E>
where
    T: Send + 'static,
    E: From<DoorstepError> + Send + 'static,
{
    match runtime().spawn(work).await {
        Ok(r) => r,
        Err(e) => Err(DoorstepError::Internal(format!("internal error in the Doorstep core ({e})")).into()),
    }
}

impl Doorstep {
    /// One step of a session, on a core thread that may block (`block_in_place`): the store is
    /// locked for `f` alone and the observers are notified after.
    fn step<R>(&self, f: impl FnOnce(&mut Store) -> Result<R, SyncError>) -> Result<R, SyncError> {
        block_in_place(|| self.run_as(ChangeOrigin::Sync, f))
    }

    /// Marks a sync with the server as running (with its progress) or over, and tells the
    /// observers the new status.
    fn set_syncing(&self, progress: Option<SyncProgress>) {
        *self.syncing.lock().unwrap_or_else(|p| p.into_inner()) = progress;
        if self.observers.is_empty() {
            return;
        }
        let status = block_in_place(|| self.sync_status());
        if let Ok(status) = status {
            self.observers.each(|o| o.on_sync_status(status.clone()));
        }
    }

    async fn server_session(&self, client: &ServerClient) -> Result<SyncProgress, SyncError> {
        let mut session = self.step(|s| Ok(Session::with_server(s)?))?;
        while let Some(message) = self.step(|s| Ok(session.next_message(s)?))? {
            self.set_syncing(Some(session.progress().into()));
            match client.exchange(message).await {
                Ok(answer) => self.step(|s| Ok(session.receive(s, &answer)?))?,
                Err(e) => {
                    let reported = self.step(|s| Ok(session.transport_failed(s, e)))?;
                    return Err(reported.into());
                }
            }
        }
        if self.step(|s| Ok(s.certificate_due().unwrap_or(true)))? {
            // The sync stands whatever the renewal does; the next sync tries again.
            if let Err(e) = self.renew_certificate(client).await {
                tracing::warn!(error = %e, "the device certificate was not renewed");
            }
        }
        Ok(session.progress().into())
    }

    /// Asks the server for a fresh certificate and keeps it (PROTOCOL.md §8).
    async fn renew_certificate(&self, client: &ServerClient) -> Result<(), SyncError> {
        let request = self.step(|s| Ok(certificate_request(s)?))?;
        let answer = client.certificate(&request).await?;
        self.step(|s| Ok(s.keep_certificate(&answer.certificate, &answer.deployment_keys)?))
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl Doorstep {
    /// Enrols this phone with the server at `server_url` using a one-time code from an admin.
    /// Keep the returned token in the platform keystore and pass it to `sync_with_server`.
    pub async fn enrol(
        self: Arc<Self>,
        server_url: String,
        code: String,
        device_name: String,
    ) -> Result<Registration, SyncError> {
        on_core(async move {
            let client = ServerClient::new(&server_url)?;
            let request = self.step(|s| Ok(enrolment_request(s, &code, &device_name)?))?;
            let registration = client.enrol(&request).await?;
            self.step(|s| {
                keep_registration(s, &registration);
                Ok(())
            })?;
            Ok(registration.into())
        })
        .await
    }

    /// Syncs with the server: sends this phone's changes, takes in everything new it may read.
    /// Runs until both sides hold the same, in as many round trips as needed; a failed request
    /// is retried when retrying can help. What arrived before a failure is kept. While one
    /// runs, a second call fails with `AlreadySyncing` at once. Cancelling the caller's coroutine or
    /// task does not stop the session: it finishes on the core's runtime.
    pub async fn sync_with_server(
        self: Arc<Self>,
        server_url: String,
        token: String,
    ) -> Result<SyncProgress, SyncError> {
        on_core(async move {
            let client = ServerClient::new(&server_url)?.with_token(token);
            // One at a time, by a flag rather than a lock held across the observers' calls.
            if self.server_sync.swap(true, Ordering::AcqRel) {
                return Err(SyncError::AlreadySyncing("a sync with the server is already running".into()));
            }
            let _running = ClearOnDrop(&self.server_sync);
            self.set_syncing(Some(SyncProgress::default()));
            let result = self.server_session(&client).await;
            self.set_syncing(None);
            result
        })
        .await
    }

    /// A household's visits in its register's months `from` to `to` (`YYYY-MM`, inclusive, at
    /// most 120 months), newest first, read from the server and not stored: history older than
    /// the months the phone keeps. Refused (`SyncError.Refused`, `forbidden_document`) for months
    /// this phone's user may not read.
    pub async fn fetch_visits(
        self: Arc<Self>,
        server_url: String,
        token: String,
        household: String,
        from: String,
        to: String,
    ) -> Result<Vec<Visit>, SyncError> {
        on_core(async move {
            let client = ServerClient::new(&server_url)?.with_token(token);
            let household = HouseholdId::parse(&household)?;
            let (from, to) = (Period::parse(&from)?, Period::parse(&to)?);
            let request = self.step(|s| Ok(VisitsRequest::new(s, &household, from, to)?))?;
            Ok(client.fetch(request).await?.into_iter().map(Visit::from).collect())
        })
        .await
    }

    /// Starts a sync with another phone: send `next_message()` to it, pass its answer to
    /// `receive`, until `next_message()` returns null.
    pub async fn start_peer_sync(self: Arc<Self>) -> Result<Arc<PeerSync>, SyncError> {
        on_core(async move {
            let session = self.step(|s| Ok(Session::with_peer(s)?))?;
            Ok(Arc::new(PeerSync { doorstep: self, session: Mutex::new(Some(session)) }))
        })
        .await
    }

    /// Answers a sync another phone started: pass each of its messages to `respond`, send back
    /// what it returns.
    pub async fn answer_peer(self: Arc<Self>) -> Result<Arc<PeerAnswer>, SyncError> {
        on_core(async move {
            let responder = self.step(|s| Ok(PeerResponder::new(s)?))?;
            Ok(Arc::new(PeerAnswer { doorstep: self, responder: Mutex::new(Some(responder)) }))
        })
        .await
    }

    /// Folds every document's change rows into a snapshot and reclaims the file's free space.
    /// Holds the store while it runs: call it when the phone is idle (e.g. charging at night).
    pub async fn compact(self: Arc<Self>) -> Result<(), DoorstepError> {
        on_core(async move { block_in_place(|| self.run(|s| Ok(s.compact_all()?))) }).await
    }
}

/// Lowers the "sync running" flag however the sync ends.
struct ClearOnDrop<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Takes a session or responder out of its slot for one step, so that no lock of ours is held
/// while the step notifies the app's observers, and puts it back after.
fn take<T>(slot: &Mutex<Option<T>>) -> Result<T, SyncError> {
    slot.lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .ok_or_else(|| SyncError::AlreadySyncing("the previous message of this sync is still being handled".into()))
}

fn put_back<T>(slot: &Mutex<Option<T>>, value: T) {
    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(value);
}

/// A sync this phone started with another phone.
#[derive(uniffi::Object)]
pub struct PeerSync {
    doorstep: Arc<Doorstep>,
    session: Mutex<Option<Session>>,
}

#[uniffi::export(async_runtime = "tokio")]
impl PeerSync {
    /// The next message to send to the other phone, or null when the sync is over.
    pub async fn next_message(self: Arc<Self>) -> Result<Option<Vec<u8>>, SyncError> {
        on_core(async move {
            let mut session = take(&self.session)?;
            let r = self.doorstep.step(|s| Ok(session.next_message(s)?));
            put_back(&self.session, session);
            r
        })
        .await
    }

    /// Takes the other phone's answer in (a refusal from it arrives as `SyncError.Refused`).
    pub async fn receive(self: Arc<Self>, message: Vec<u8>) -> Result<(), SyncError> {
        on_core(async move {
            let mut session = take(&self.session)?;
            let r = self.doorstep.step(|s| Ok(session.receive(s, &message)?));
            put_back(&self.session, session);
            r
        })
        .await
    }

    pub fn is_done(&self) -> bool {
        self.session.lock().unwrap_or_else(|p| p.into_inner()).as_ref().is_some_and(Session::is_done)
    }

    pub fn progress(&self) -> SyncProgress {
        let session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        session.as_ref().map(|s| s.progress().into()).unwrap_or_default()
    }
}

/// This phone's side of a sync another phone started.
#[derive(uniffi::Object)]
pub struct PeerAnswer {
    doorstep: Arc<Doorstep>,
    responder: Mutex<Option<PeerResponder>>,
}

#[uniffi::export(async_runtime = "tokio")]
impl PeerAnswer {
    /// Answers one message of the other phone. A message this phone refuses (damaged, from a
    /// phone the directory does not know, changes to what its user may not touch) still gets
    /// bytes to send back, which tell the other phone why; `refused` says it here.
    pub async fn respond(self: Arc<Self>, message: Vec<u8>) -> Result<PeerReply, SyncError> {
        on_core(async move {
            let mut responder = take(&self.responder)?;
            let r = self.doorstep.step(|s| {
                Ok(match responder.respond(s, &message) {
                    Ok(answer) => PeerReply { message: answer, refused: None },
                    Err(e) => PeerReply { message: responder.refusal(s, &e), refused: Some(e.to_string()) },
                })
            });
            put_back(&self.responder, responder);
            r
        })
        .await
    }

    /// Documents of this phone the other phone refused in this sync while it took the rest.
    pub fn refused_documents(&self) -> Vec<DocumentRefusal> {
        let responder = self.responder.lock().unwrap_or_else(|p| p.into_inner());
        responder.as_ref().map(|r| r.refused().iter().cloned().map(Into::into).collect()).unwrap_or_default()
    }
}
