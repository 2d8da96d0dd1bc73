//! The Doorstep sync server: phones register with an enrolment code, then send and receive
//! batches of document changes (`docs/PROTOCOL.md`). It stores documents with `doorstep-core`'s
//! own store (one embedded SQLite file) and answers each request with core's `Responder`, so the
//! server and the phones share one implementation of documents, storage and sync.
//!
//! Every sync request is authenticated by a bearer token; what a device may read and write is
//! decided per document from the directory, and a change signed with an actor id that is not the
//! device's own is refused with the whole message. Nothing here logs a resident's personal data:
//! log lines name devices, documents and sizes.

mod accept;
pub mod admin;
mod auth;
mod config;
mod metrics;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use doorstep_core::sync::http::Registration;
use doorstep_core::sync::ServerResponder;
use doorstep_core::{DocId, Error as CoreError, OpenOptions, Store, UserId};
use serde::{Deserialize, Serialize};

pub use auth::{Auth, AuthError, Device};
pub use config::{Config, ConfigError, LogFormat};
pub use metrics::Metrics;

/// What the handlers share.
pub struct AppState {
    store: Mutex<Store>,
    auth: Mutex<Auth>,
    pub metrics: Metrics,
    config: Config,
}

/// An error answer: an HTTP status and a JSON body `{"error": code, "message": text}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody { error: self.code, message: &self.message })).into_response()
    }
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into() }
    }

    fn unauthorized() -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "a valid device token is required")
    }

    fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the server failed; try again later")
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Protocol(m) => ApiError::new(StatusCode::BAD_REQUEST, "bad_message", m),
            CoreError::Refused { code, message } => {
                let code = match code.as_str() {
                    "foreign_actor" => "foreign_actor",
                    "forbidden_document" => "forbidden_document",
                    _ => "refused",
                };
                ApiError::new(StatusCode::FORBIDDEN, code, message)
            }
            e @ (CoreError::CorruptDocument { .. }
            | CoreError::WrongDocument { .. }
            | CoreError::InvalidInput { .. }) => ApiError::new(StatusCode::BAD_REQUEST, "bad_document", e.to_string()),
            e => ApiError::internal(e),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::BadCode => ApiError::new(StatusCode::FORBIDDEN, "bad_code", e.to_string()),
            AuthError::ActorTaken => ApiError::new(StatusCode::CONFLICT, "actor_taken", e.to_string()),
            AuthError::Storage(e) => ApiError::internal(e),
        }
    }
}

impl AppState {
    /// Opens (or creates) the server's database.
    pub fn open(config: Config) -> Result<Arc<AppState>, CoreError> {
        let store = Store::open(&config.database, OpenOptions::default())?;
        let auth = Auth::open(&config.database).map_err(|e| CoreError::Storage(e.to_string()))?;
        Ok(Arc::new(AppState { store: Mutex::new(store), auth: Mutex::new(auth), metrics: Metrics::default(), config }))
    }

    /// Runs `f` on the store, off the async threads.
    async fn with_store<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Store) -> Result<R, ApiError> + Send + 'static,
    ) -> Result<R, ApiError> {
        let state = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut store = state.store.lock().map_err(|_| ApiError::internal("the store lock is poisoned"))?;
            f(&mut store)
        })
        .await
        .map_err(ApiError::internal)?
    }

    fn auth(&self) -> Result<std::sync::MutexGuard<'_, Auth>, ApiError> {
        self.auth.lock().map_err(|_| ApiError::internal("the auth lock is poisoned"))
    }

    fn device(&self, headers: &HeaderMap) -> Result<Device, ApiError> {
        let token = bearer(headers).ok_or_else(ApiError::unauthorized)?;
        self.auth()?.device_of_token(token)?.ok_or_else(ApiError::unauthorized)
    }

    fn require_admin(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        match (&self.config.admin_token, bearer(headers)) {
            (None, _) => Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "admin calls are not enabled")),
            (Some(expected), Some(given)) if constant_time_eq(expected.as_bytes(), given.as_bytes()) => Ok(()),
            _ => Err(ApiError::unauthorized()),
        }
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

/// The server's routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/devices", post(register))
        .route("/v1/sync", post(sync))
        .route("/v1/admin/enrolments", post(issue_enrolment))
        .route("/v1/admin/documents", post(import_document))
        .route("/v1/admin/devices/{id}", delete(revoke_device))
        .with_state(state)
}

async fn healthz(State(state): State<Arc<AppState>>) -> Result<&'static str, ApiError> {
    state.auth()?.check()?;
    state.with_store(|s| s.document_ids().map(|_| ()).map_err(ApiError::from)).await?;
    Ok("ok\n")
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

#[derive(Deserialize)]
struct RegisterRequest {
    code: String,
    actor: String,
    #[serde(default)]
    name: String,
}

async fn register(
    State(state): State<Arc<AppState>>,
    Json(req): Json<RegisterRequest>,
) -> Result<(StatusCode, Json<Registration>), ApiError> {
    if req.actor.len() != 32 || !req.actor.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_request", "actor must be 32 hexadecimal digits"));
    }
    let actor = req.actor.to_ascii_lowercase();
    let name: String = req.name.chars().take(100).collect();
    let (device, token) = state.auth()?.register(&req.code, &actor, &name, now_ms())?;
    let user = UserId::parse(&device.user).map_err(ApiError::from)?;
    let enrolled = actor.clone();
    state.with_store(move |s| s.enrol_device(&user, &enrolled).map_err(ApiError::from)).await?;
    state.metrics.device_registered();
    tracing::info!(device = %device.id, "device registered");
    Ok((StatusCode::CREATED, Json(Registration { device_id: device.id, user_id: device.user, token })))
}

async fn sync(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let limit = state.config.max_body_bytes;
    let result = async {
        let device = state.device(&headers)?;
        let bytes: Bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", format!("the body is over {limit} bytes"))
        })?;
        let received = bytes.len();
        let device_id = device.id.clone();
        let (reply, documents) = state
            .with_store(move |s| {
                let user = UserId::parse(&device.user)?;
                let mut responder = ServerResponder::for_device(&device.id, user, &[device.actor])?;
                let reply = responder.respond(s, &bytes)?;
                Ok((reply, responder.documents_touched()))
            })
            .await?;
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
            state.metrics.sync(e.code, 0, 0, 0, seconds);
            if e.status != StatusCode::INTERNAL_SERVER_ERROR {
                state.metrics.refusal(e.code);
                tracing::warn!(code = e.code, status = e.status.as_u16(), "sync refused");
            }
            e.into_response()
        }
    }
}

#[derive(Deserialize)]
struct EnrolmentRequest {
    user_id: String,
    #[serde(default = "default_valid_hours")]
    valid_hours: u32,
}

fn default_valid_hours() -> u32 {
    72
}

#[derive(Serialize, Deserialize)]
pub struct Enrolment {
    pub code: String,
    pub expires_at: i64,
}

async fn issue_enrolment(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(req): Json<EnrolmentRequest>,
) -> Result<(StatusCode, Json<Enrolment>), ApiError> {
    state.require_admin(&headers)?;
    let user = UserId::parse(&req.user_id).map_err(ApiError::from)?;
    let known = user.clone();
    let exists = state
        .with_store(move |s| Ok(s.users().map_err(ApiError::from)?.iter().any(|u| u.id == known && !u.deleted)))
        .await?;
    if !exists {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "unknown_user", "no such user in the directory"));
    }
    let expires_at = now_ms() + i64::from(req.valid_hours.min(24 * 30)) * 3_600_000;
    let code = state.auth()?.issue_code(user.as_str(), expires_at)?;
    Ok((StatusCode::CREATED, Json(Enrolment { code, expires_at })))
}

#[derive(Deserialize)]
struct ImportQuery {
    doc: String,
}

#[derive(Serialize)]
struct Imported {
    new_changes: usize,
}

/// Seeds the server with a document (the office's directory, before any device can enrol).
async fn import_document(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<ImportQuery>,
    body: Bytes,
) -> Result<Json<Imported>, ApiError> {
    state.require_admin(&headers)?;
    let doc = DocId::parse(&q.doc).map_err(ApiError::from)?;
    let outcome = state.with_store(move |s| s.merge_document(&doc, &body).map_err(ApiError::from)).await?;
    Ok(Json(Imported { new_changes: outcome.new_changes }))
}

async fn revoke_device(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<StatusCode, ApiError> {
    state.require_admin(&headers)?;
    if state.auth()?.revoke(&id, now_ms())? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such device"))
    }
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
        f(&mut self.state.store.lock().expect("store lock"))
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
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
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
