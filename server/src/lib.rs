//! The Doorstep sync server: phones register with an enrolment code, then send and receive
//! batches of document changes (`docs/PROTOCOL.md`). It stores documents with `doorstep-core`'s
//! own store (one embedded SQLite file) and answers each request with core's `Responder`, so the
//! server and the phones share one implementation of documents, storage and sync.
//!
//! Every sync request is authenticated by a bearer token; what a device may read and write is
//! decided per document from the directory, and a change signed with an actor id that is not the
//! device's own is refused with the whole message. Nothing here logs a resident's personal data:
//! log lines name devices, documents and sizes.
//!
//! The HTTP edge holds against slow, idle, buggy and hostile clients: `accept` bounds open
//! connections and the time to send a request head, `limits` bounds every body's size, the time
//! to send it and the bytes held at once (server-wide and per device), and `error` answers every
//! failure on every route with a documented JSON code. `/healthz` says whether the database
//! takes a write.

mod accept;
pub mod admin;
mod auth;
mod config;
pub mod deployment;
mod error;
mod limits;
mod metrics;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::{header, request::Parts, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use doorstep_core::identity::{self, DeploymentKey, DeploymentSigner};
use doorstep_core::sync::api::{
    CertificateAnswer, CertificateRequest, DeviceRequest, Enrolment, EnrolmentRequest, Imported, MoveRequest,
    Registration, MAX_ENROLMENT_HOURS,
};
use doorstep_core::sync::ServerResponder;
use doorstep_core::{DocId, Error as CoreError, OpenOptions, Store, UserId};
use serde::de::DeserializeOwned;
use serde::Deserialize;

pub use auth::{Auth, AuthError, Device};
pub use config::{Config, ConfigError, LogFormat};
pub use error::{ApiError, Code};
pub use metrics::Metrics;

/// What the handlers share.
pub struct AppState {
    /// The one store, taken by requests in the order they asked for it (tokio's mutex is fair):
    /// a device flooding the server waits its turn like everyone else instead of taking the
    /// store again and again while an honest request waits.
    store: Arc<tokio::sync::Mutex<Store>>,
    auth: Mutex<Auth>,
    pub metrics: Metrics,
    limits: limits::Limits,
    deployment: Arc<DeploymentSigner>,
    config: Config,
}

impl AppState {
    /// Opens (or creates) the server's database.
    pub fn open(config: Config) -> Result<Arc<AppState>, CoreError> {
        // The server keeps every document: no window.
        let mut store = Store::open(&config.database, OpenOptions { window: None, ..OpenOptions::default() })?;
        // A conversion of old grid documents that a crash cut short carries on; a failure is
        // logged and tried again at the next conversion, it does not keep the server down.
        if let Err(e) = store.convert_pending() {
            tracing::error!(error = %e, "converting grid documents at start failed");
        }
        let auth = Auth::open(&config.database)
            .map_err(|e| CoreError::Storage { kind: doorstep_core::StorageKind::Other, detail: e.to_string() })?;
        let keyed = auth
            .has_keyed_devices()
            .map_err(|e| CoreError::Storage { kind: doorstep_core::StorageKind::Other, detail: e.to_string() })?;
        let deployment = deployment::load_or_create(&config.deployment_key_path(), !keyed)
            .map_err(|e| CoreError::File(e.to_string()))?;
        Ok(Arc::new(AppState {
            store: Arc::new(tokio::sync::Mutex::new(store)),
            auth: Mutex::new(auth),
            metrics: Metrics::default(),
            limits: limits::Limits::new(&config),
            deployment: Arc::new(deployment),
            config,
        }))
    }

    /// Runs `f` on the store, off the async threads.
    async fn with_store<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Store) -> Result<R, ApiError> + Send + 'static,
    ) -> Result<R, ApiError> {
        let mut store = self.store.clone().lock_owned().await;
        tokio::task::spawn_blocking(move || f(&mut store)).await.map_err(ApiError::internal)?
    }

    /// Runs `f` on the device and enrolment tables, off the async threads too: a write may wait
    /// for the store's connection to finish its own.
    async fn with_auth<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Auth) -> Result<R, AuthError> + Send + 'static,
    ) -> Result<R, ApiError> {
        let state = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut auth = state.auth.lock().map_err(|_| ApiError::internal("the auth lock is poisoned"))?;
            f(&mut auth).map_err(ApiError::from)
        })
        .await
        .map_err(ApiError::internal)?
    }

    /// The deployment's keys, as devices pin them. One today; rotation will list several.
    fn deployment_keys(&self) -> Vec<DeploymentKey> {
        vec![self.deployment.public(0)]
    }

    /// A certificate for `device_key`, valid from now for `certificate_days`.
    fn certify(&self, device_key: &str, actor: &str, user: &UserId) -> Result<CertificateAnswer, ApiError> {
        let now = now_ms();
        let until = now + i64::from(self.config.certificate_days) * doorstep_core::DAY_MS;
        let certificate = self.deployment.issue(device_key, actor, user, now, until)?;
        Ok(CertificateAnswer { certificate, deployment_keys: self.deployment_keys() })
    }

    /// The device a request's token belongs to. A revoked device's token is answered with the
    /// deployment's signed revocation, on which the phone erases its data (PROTOCOL.md §8).
    async fn device(self: &Arc<Self>, headers: &HeaderMap) -> Result<Device, ApiError> {
        let token = bearer(headers).ok_or_else(ApiError::unauthorized)?.to_string();
        let (active, revoked) = self
            .with_auth(move |a| match a.device_of_token(&token)? {
                Some(device) => Ok((Some(device), None)),
                None => Ok((None, a.revoked_token(&token)?)),
            })
            .await?;
        match (active, revoked) {
            (Some(device), _) => Ok(device),
            (None, Some((actor, revoked_at))) => Err(ApiError {
                revocation: Some(Box::new(self.deployment.revoke(&actor, revoked_at))),
                ..ApiError::new(Code::Revoked, "this device was revoked by the deployment's admin")
            }),
            (None, None) => Err(ApiError::unauthorized()),
        }
    }
}

/// The operator, authenticated by the admin token; an extractor, so that no admin route reads
/// a body before it knows who sent it.
struct Admin;

impl FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Admin, ApiError> {
        match (&state.config.admin_token, bearer(&parts.headers)) {
            (None, _) => Err(ApiError::new(Code::NotFound, "admin calls are not enabled")),
            (Some(expected), Some(given)) if constant_time_eq(expected.as_bytes(), given.as_bytes()) => Ok(Admin),
            _ => Err(ApiError::unauthorized()),
        }
    }
}

/// A JSON request body, read under the server's limits ([`limits`]); every refusal is an
/// [`ApiError`], never axum's plain-text rejection.
struct JsonBody<T>(T);

impl<T: DeserializeOwned> FromRequest<Arc<AppState>> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let json = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(ApiError::new(Code::UnsupportedMediaType, "send the body as Content-Type: application/json"));
        }
        let (bytes, _held) = state.limits.read(&parts.headers, body, None).await?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| error::bad_json(&e))
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn now_ms() -> i64 {
    doorstep_core::Clock::now_ms(&doorstep_core::SystemClock)
}

/// The server's routes. Every body is read through [`limits`], so `max_body_bytes` is the one
/// body limit on every route; paths and methods no route takes get the JSON error too.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/devices", post(register))
        .route("/v1/certificate", post(renew_certificate))
        .route("/v1/sync", post(sync))
        .route("/v1/admin/enrolments", post(issue_enrolment))
        .route("/v1/admin/documents", post(import_document))
        .route("/v1/admin/devices/{id}", delete(revoke_device))
        .route("/v1/admin/users/{id}/unit", post(move_user))
        .route("/v1/admin/convert-grids", post(convert_grids))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state)
}

/// Healthy when the server's database takes a write, as every sync needs, and its documents
/// can be listed; the cause of a failure is logged, not answered.
async fn healthz(State(state): State<Arc<AppState>>) -> Result<&'static str, ApiError> {
    let checked = match state.with_auth(|a| a.check_writes(now_ms())).await {
        Ok(()) => state.with_store(|s| s.document_ids().map(|_| ()).map_err(ApiError::from)).await,
        Err(e) => Err(e),
    };
    checked
        .map(|()| "ok\n")
        .map_err(|_| ApiError::new(Code::Unhealthy, "the server cannot write to its database; see the server's log"))
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let mut text = state.metrics.render();
    let name = "doorstep_body_bytes_in_flight";
    text.push_str(&format!(
        "# HELP {name} Bytes reserved by request bodies being read or answered now.\n# TYPE {name} gauge\n{name} {}\n",
        state.limits.bytes_in_flight()
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

async fn register(
    State(state): State<Arc<AppState>>,
    JsonBody(req): JsonBody<DeviceRequest>,
) -> Result<(StatusCode, Json<Registration>), ApiError> {
    let actor = doorstep_core::ActorHex::parse(&req.actor)
        .map_err(|_| ApiError::new(Code::BadRequest, "actor must be 32 hexadecimal digits"))?
        .as_str()
        .to_string();
    let name: String = req.name.chars().take(100).collect();
    // The device proves it holds its key before anything is held or written.
    let public_key = req.public_key.to_ascii_lowercase();
    identity::verify_enrolment_proof(&req.code, &req.actor, &public_key, &req.proof)?;
    let (code, now) = (req.code, now_ms());
    // The directory is written between holding the code and using it (see `auth`'s header).
    let hold = state.with_auth(move |a| a.begin_registration(&code, &actor, now)).await?;
    let held = hold.clone();
    let registered = async {
        let user = UserId::parse(&held.user).map_err(ApiError::from)?;
        // Issued before the code is used, so nothing can fail after that.
        let answer = state.certify(&public_key, &held.actor, &user)?;
        let (actor, key) = (held.actor.clone(), public_key.clone());
        state
            .with_store(move |s| {
                if actor == s.actor_id() {
                    return Err(ApiError::new(Code::ActorTaken, "this actor id is the server's own"));
                }
                s.enrol_device(&user, &actor, Some(&key)).map_err(|e| match e {
                    CoreError::NotFound { .. } => {
                        ApiError::new(Code::UnknownUser, "the code's user is no longer in the directory")
                    }
                    e => ApiError::from(e),
                })
            })
            .await?;
        let key = public_key.clone();
        let (device, token) = state.with_auth(move |a| a.finish_registration(&held, &name, &key, now)).await?;
        Ok((device, token, answer))
    }
    .await;
    let (device, token, CertificateAnswer { certificate, deployment_keys }) = match registered {
        Ok(registered) => registered,
        Err(e) => {
            if state.with_auth(move |a| a.abandon_registration(&hold)).await.is_err() {
                tracing::warn!("a failed enrolment could not let go of its code; the hold lapses by itself");
            }
            return Err(e);
        }
    };
    state.metrics.device_registered();
    tracing::info!(device = %device.id, certificate = %certificate.id, "device registered");
    let registration = Registration {
        device_id: device.id,
        user_id: device.user,
        token,
        certificate: Some(certificate),
        deployment_keys,
    };
    Ok((StatusCode::CREATED, Json(registration)))
}

/// `POST /v1/certificate`: a fresh certificate for the device's key. A device that enrolled
/// before devices had keys binds its key here, once, on the strength of its token.
async fn renew_certificate(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<CertificateRequest>,
) -> Result<Json<CertificateAnswer>, ApiError> {
    let device = state.device(&headers).await?;
    let public_key = req.public_key.to_ascii_lowercase();
    identity::verify_binding_proof(&device.actor, &public_key, &req.proof)?;
    let bound = match &device.public_key {
        Some(key) => *key == public_key,
        None => {
            let (id, key) = (device.id.clone(), public_key.clone());
            state.with_auth(move |a| a.bind_key(&id, &key)).await?
        }
    };
    if !bound {
        return Err(ApiError::new(Code::BadProof, "this device enrolled with another key"));
    }
    let user = UserId::parse(&device.user)?;
    // The directory names the key too, so that every replica checks the device's signed
    // changes with it (a device that enrolled before keys gets it here; after, nothing changes).
    let (owner, actor, key) = (user.clone(), device.actor.clone(), public_key.clone());
    state.with_store(move |s| s.enrol_device(&owner, &actor, Some(&key)).map_err(ApiError::from)).await?;
    let answer = state.certify(&public_key, &device.actor, &user)?;
    tracing::info!(device = %device.id, certificate = %answer.certificate.id, "device certificate renewed");
    Ok(Json(answer))
}

async fn sync(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let result = async {
        let device = state.device(&headers).await?;
        let (bytes, _held) = state.limits.read(&headers, body, Some(&device.id)).await?;
        let received = bytes.len();
        let device_id = device.id.clone();
        let deployment = state.deployment.clone();
        // Decoding (inflating) the request and encoding (deflating) the answer need no store:
        // they run before it is taken and after it is let go.
        let batch = blocking(move || ServerResponder::read(&bytes).map_err(ApiError::from)).await?;
        let (answer, documents) = state
            .with_store(move |s| {
                let user = UserId::parse(&device.user)?;
                let mut responder = ServerResponder::for_device(&device.id, user, deployment)?;
                let answer = responder.answer(s, batch)?;
                Ok((answer, responder.documents_touched()))
            })
            .await?;
        for r in &answer.rejected {
            // Document ids name units and reports, never a resident.
            state.metrics.refusal(&r.code);
            tracing::warn!(device = %device_id, doc = %r.doc, code = %r.code, "sync: document refused, the rest taken");
        }
        let reply = blocking(move || Ok(answer.encode())).await?;
        Ok::<_, ApiError>((device_id, received, reply, documents))
    }
    .await;
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok((device, received, reply, documents)) => {
            state.metrics.sync("ok", received, reply.len(), documents, seconds);
            tracing::info!(%device, received, sent = reply.len(), documents, ms = seconds * 1e3, "sync");
            ([(header::CONTENT_TYPE, "application/x-doorstep-sync")], reply).into_response()
        }
        Err(e) => {
            state.metrics.sync(e.code.as_str(), 0, 0, 0, seconds);
            if e.code != Code::Internal {
                state.metrics.refusal(e.code.as_str());
                tracing::warn!(code = e.code.as_str(), status = e.code.status().as_u16(), "sync refused");
            }
            e.into_response()
        }
    }
}

async fn issue_enrolment(
    State(state): State<Arc<AppState>>,
    _: Admin,
    JsonBody(req): JsonBody<EnrolmentRequest>,
) -> Result<(StatusCode, Json<Enrolment>), ApiError> {
    let user = UserId::parse(&req.user_id).map_err(|_| ApiError::new(Code::BadRequest, "user_id is not a user id"))?;
    let known = user.clone();
    let exists = state
        .with_store(move |s| Ok(s.users().map_err(ApiError::from)?.iter().any(|u| u.id == known && !u.deleted)))
        .await?;
    if !exists {
        return Err(ApiError::new(Code::UnknownUser, "no such user in the directory"));
    }
    let expires_at = now_ms() + i64::from(req.valid_hours.min(MAX_ENROLMENT_HOURS)) * 3_600_000;
    let code = state.with_auth(move |a| a.issue_code(user.as_str(), expires_at)).await?;
    Ok((StatusCode::CREATED, Json(Enrolment { code, expires_at })))
}

#[derive(Deserialize)]
struct ImportQuery {
    doc: String,
}

/// Seeds the server with a document (the office's directory, before any device can enrol).
async fn import_document(
    State(state): State<Arc<AppState>>,
    _: Admin,
    query: Result<Query<ImportQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Imported>, ApiError> {
    let no_doc = || ApiError::new(Code::BadRequest, "name the document: ?doc=<document id>");
    let Query(q) = query.map_err(|_| no_doc())?;
    let doc = DocId::parse(&q.doc).map_err(|_| no_doc())?;
    let (body, _held) = state.limits.read(&headers, body, None).await?;
    let outcome = state
        .with_store(move |s| {
            let outcome = s.merge_document(&doc, &body)?;
            // An old grid document is converted as a phone's would be; the import is kept
            // either way, and a conversion that fails is logged and tried again later.
            if let DocId::Grid(grid) = &doc {
                if let Err(e) = s.convert_taken(grid) {
                    tracing::error!(doc = %doc, error = %e, "converting an imported grid document failed");
                }
            }
            Ok(outcome)
        })
        .await?;
    Ok(Json(Imported { new_changes: outcome.new_changes }))
}

#[derive(Deserialize)]
struct ConvertQuery {
    #[serde(rename = "as")]
    admin: String,
}

/// Converts the old layout's grid documents into registers and months, recorded by the
/// server's device for the admin named by `?as=<user id>`; from then on it converts what older
/// phones still write into them as it takes it in.
async fn convert_grids(
    State(state): State<Arc<AppState>>,
    _: Admin,
    query: Result<Query<ConvertQuery>, QueryRejection>,
) -> Result<Json<doorstep_core::Converted>, ApiError> {
    let no_user = || ApiError::new(Code::BadRequest, "name the admin the conversion is recorded for: ?as=<user id>");
    let Query(q) = query.map_err(|_| no_user())?;
    let admin = doorstep_core::UserId::parse(&q.admin).map_err(|_| no_user())?;
    let converted = state
        .with_store(move |s| {
            s.convert_grids(&admin).map_err(|e| match e {
                CoreError::InvalidInput { .. } => ApiError::new(Code::BadRequest, e.to_string()),
                CoreError::NotFound { .. } => ApiError::new(Code::UnknownUser, e.to_string()),
                e => ApiError::from(e),
            })
        })
        .await?;
    Ok(Json(converted))
}

/// Moves a worker to another unit in the directory: what they may read and write follows at once
/// on the server, and on their phones at their next sync.
async fn move_user(
    State(state): State<Arc<AppState>>,
    _: Admin,
    id: Result<Path<String>, PathRejection>,
    JsonBody(req): JsonBody<MoveRequest>,
) -> Result<StatusCode, ApiError> {
    let bad = |what: &str| ApiError::new(Code::BadRequest, format!("{what} is not valid"));
    let Path(id) = id.map_err(|_| bad("the user id in the path"))?;
    let user = UserId::parse(&id).map_err(|_| bad("the user id in the path"))?;
    let unit = doorstep_core::UnitId::parse(&req.unit).map_err(|_| bad("unit"))?;
    state
        .with_store(move |s| {
            s.move_user(&user, &unit).map(|_| ()).map_err(|e| match e {
                CoreError::NotFound { what: "user", .. } => ApiError::new(Code::UnknownUser, e.to_string()),
                CoreError::NotFound { .. } => ApiError::new(Code::NotFound, e.to_string()),
                CoreError::InvalidInput { .. } => ApiError::new(Code::BadRequest, e.to_string()),
                e => ApiError::from(e),
            })
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn revoke_device(
    State(state): State<Arc<AppState>>,
    _: Admin,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(id) = id.map_err(|_| ApiError::new(Code::BadRequest, "the path must end in a device id"))?;
    // The token stops working first; then the directory says so, so that phones refuse the
    // device as a peer. Revoking again repeats the directory's part if it failed before.
    let Some(actor) = state.with_auth(move |a| a.revoke(&id, now_ms())).await? else {
        return Err(ApiError::new(Code::NotFound, "no such device"));
    };
    state.with_store(move |s| s.revoke_device(&actor).map_err(ApiError::from)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Runs CPU work off the async threads.
async fn blocking<R: Send + 'static>(f: impl FnOnce() -> Result<R, ApiError> + Send + 'static) -> Result<R, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(ApiError::internal)?
}

/// A server running on its own threads, for tests, the demo and benches.
pub struct RunningServer {
    addr: SocketAddr,
    state: Arc<AppState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningServer {
    /// Opens the database, binds `config.listen` and serves until [`RunningServer::stop`].
    pub fn start(config: Config) -> Result<RunningServer, CoreError> {
        let state = AppState::open(config)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| CoreError::Network(e.to_string()))?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(&state.config.listen))
            .map_err(|e| CoreError::Network(format!("cannot listen on {}: {e}", state.config.listen)))?;
        let addr = listener.local_addr().map_err(|e| CoreError::Network(e.to_string()))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = state.clone();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let stopped = async move {
                    let _ = stopped.await;
                };
                accept::serve(listener, router(served.clone()), &served.config, &served.metrics, stopped).await;
            });
        });
        Ok(RunningServer { addr, state, stop: Some(stop), thread: Some(thread) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Runs `f` on the server's store (tests and the demo look inside).
    pub fn with_store<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        f(&mut self.state.store.blocking_lock())
    }

    /// Finishes the requests in flight, then stops.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// `doorstep serve`: logs, binds, serves until Ctrl-C or SIGTERM, then finishes the requests in
/// flight.
pub async fn serve(config: Config) -> Result<(), CoreError> {
    init_logging(config.log_format);
    let state = AppState::open(config)?;
    let listener = tokio::net::TcpListener::bind(&state.config.listen)
        .await
        .map_err(|e| CoreError::Network(format!("cannot listen on {}: {e}", state.config.listen)))?;
    let addr = listener.local_addr().map_err(|e| CoreError::Network(e.to_string()))?;
    tracing::info!(%addr, database = %state.config.database.display(), "doorstep server listening");
    accept::serve(listener, router(state.clone()), &state.config, &state.metrics, shutdown_signal()).await;
    tracing::info!("doorstep server stopped");
    Ok(())
}

fn init_logging(format: LogFormat) {
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The log filter: `RUST_LOG`, or `info` when it is unset or not valid, with `automerge=warn`
/// unless `RUST_LOG` names automerge itself. Automerge's INFO spans format a document's whole
/// change graph each time a sync enters them: at `info` that was 70% of a warm sync's CPU.
fn log_filter(rust_log: Option<&str>) -> tracing_subscriber::EnvFilter {
    const DEFAULT: &str = "info";
    let given = rust_log.map(str::trim).filter(|v| !v.is_empty() && tracing_subscriber::EnvFilter::try_new(v).is_ok());
    let directives = given.unwrap_or(DEFAULT);
    let names_automerge = directives.split(',').any(|d| d.trim().starts_with("automerge"));
    let directives = if names_automerge { directives.to_string() } else { format!("{directives},automerge=warn") };
    tracing_subscriber::EnvFilter::try_new(&directives).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a subscriber with `filter` writes when the server and Automerge log at each level.
    fn logged(filter: tracing_subscriber::EnvFilter) -> String {
        #[derive(Clone, Default)]
        struct Lines(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Lines {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines::default();
        let out = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(move || out.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "doorstep_server", "server info");
            tracing::debug!(target: "doorstep_server", "server debug");
            tracing::info_span!(target: "automerge::sync", "automerge span").in_scope(|| {
                tracing::info!(target: "automerge::sync", "automerge info");
            });
            tracing::warn!(target: "automerge::sync", "automerge warn");
        });
        let bytes = lines.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn automerge_logs_only_warnings_unless_rust_log_names_it() {
        let by_default = logged(log_filter(None));
        assert!(by_default.contains("server info") && !by_default.contains("server debug"), "{by_default}");
        assert!(!by_default.contains("automerge info") && !by_default.contains("automerge span"), "{by_default}");
        assert!(by_default.contains("automerge warn"), "{by_default}");

        let debug = logged(log_filter(Some("debug")));
        assert!(debug.contains("server debug") && !debug.contains("automerge info"), "{debug}");

        let named = logged(log_filter(Some("warn,automerge=info")));
        assert!(named.contains("automerge info") && !named.contains("server info"), "{named}");

        let invalid = logged(log_filter(Some("=nonsense=")));
        assert!(invalid.contains("server info") && !invalid.contains("automerge info"), "{invalid}");
    }
}
