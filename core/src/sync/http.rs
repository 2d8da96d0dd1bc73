//! The phone's HTTP client for the sync server (`docs/PROTOCOL.md`), on the one tokio runtime
//! the core owns.
//!
//! A failed request is retried with exponential backoff and jitter when retrying can help (the
//! connection failed or timed out, the server answered 429 or 5xx) and not when it cannot (any
//! other 4xx: the server looked at the request and refused it). Retrying a sync request is safe:
//! applying the same changes twice changes nothing.

use std::sync::OnceLock;
use std::time::Duration;

use super::api::{CertificateAnswer, CertificateRequest, DeviceRequest, ErrorBody, Registration};
use super::session::Session;
use super::Progress;
use super::VisitsRequest;
use crate::error::{Error, Result};
use crate::ids::HouseholdId;
use crate::period::Period;
use crate::store::query::VisitSummary;
use crate::store::Store;

/// The tokio runtime the core runs its network calls on.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("doorstep-core")
            .enable_all()
            .build()
            .expect("the core's tokio runtime starts")
    })
}

/// How often and how patiently a request is retried.
#[derive(Clone, Debug)]
pub struct Retry {
    /// Attempts in all, the first included.
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry { attempts: 5, first_delay: Duration::from_millis(200), max_delay: Duration::from_secs(10) }
    }
}

/// A connection to one sync server.
#[derive(Clone)]
pub struct ServerClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    pub retry: Retry,
}

impl ServerClient {
    /// A client for the server at `base_url` (e.g. `https://sync.example.org`).
    pub fn new(base_url: &str) -> Result<ServerClient> {
        // Checked here, once: a malformed address is the app's mistake, not a network failure
        // worth five retries.
        let bad = |reason: &str| Error::InvalidInput { field: "server address", reason: reason.to_string() };
        let url =
            reqwest::Url::parse(base_url).map_err(|e| bad(&format!("{e} (expected e.g. https://sync.example.org)")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err(bad("must be an http or https address with a host, e.g. https://sync.example.org"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("must not carry a query or a fragment"));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| Error::Network(e.to_string()))?;
        Ok(ServerClient {
            // The address as parsed (surrounding spaces gone), not the string the app passed.
            base: url.as_str().trim_end_matches('/').to_string(),
            token: None,
            http,
            retry: Retry::default(),
        })
    }

    /// The server's address, as every request uses it.
    pub fn address(&self) -> &str {
        &self.base
    }

    /// The same client, signed in with a device token.
    pub fn with_token(mut self, token: impl Into<String>) -> ServerClient {
        self.token = Some(token.into());
        self
    }

    /// Registers this store's device with an enrolment code from an admin: proves the device
    /// holds its key, and keeps the certificate the server issues (pinning the deployment's
    /// keys, PROTOCOL.md §8). The code is used up once the server answers, so the registration
    /// (its token) is returned even when the certificate is not kept; the next sync asks for
    /// one again. Blocks the calling thread; see [`ServerClient::enrol`].
    pub fn register(&self, code: &str, store: &mut Store, name: &str) -> Result<Registration> {
        let registration = block_on(self.enrol(&enrolment_request(store, code, name)?))?;
        keep_registration(store, &registration);
        Ok(registration)
    }

    /// `POST /v1/devices` with a request [`enrolment_request`] made; the answer is kept with
    /// [`keep_registration`].
    pub async fn enrol(&self, request: &DeviceRequest) -> Result<Registration> {
        let bytes = self.post("/v1/devices", "application/json", serde_json::to_vec(request).expect("json")).await?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Network(format!("unexpected answer: {e}")))
    }

    /// Renews this device's certificate (`POST /v1/certificate`) and keeps the new one.
    /// Blocks the calling thread.
    pub fn renew_certificate(&self, store: &mut Store) -> Result<()> {
        let answer = block_on(self.certificate(&certificate_request(store)?))?;
        store.keep_certificate(&answer.certificate, &answer.deployment_keys)
    }

    /// `POST /v1/certificate` with a request [`certificate_request`] made; the answer is kept
    /// with [`Store::keep_certificate`].
    pub async fn certificate(&self, request: &CertificateRequest) -> Result<CertificateAnswer> {
        let bytes =
            self.post("/v1/certificate", "application/json", serde_json::to_vec(request).expect("json")).await?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Network(format!("unexpected answer: {e}")))
    }

    /// Sends one sync message and returns the server's answer.
    pub async fn exchange(&self, message: Vec<u8>) -> Result<Vec<u8>> {
        self.post("/v1/sync", "application/x-doorstep-sync", message).await
    }

    /// Runs a whole session with the server: blocks the calling thread (never call it from the
    /// UI thread, or from inside an async runtime).
    pub fn sync(&self, store: &mut Store) -> Result<Progress> {
        let mut session = Session::with_server(store)?;
        while let Some(msg) = session.next_message(store)? {
            let answer = block_on(self.exchange(msg));
            match answer {
                Ok(answer) => session.receive(store, &answer)?,
                Err(e) => return Err(session.transport_failed(store, e)),
            }
        }
        if store.certificate_due().unwrap_or(true) {
            // The sync stands whatever the renewal does; the next sync tries again.
            if let Err(e) = self.renew_certificate(store) {
                tracing::warn!(error = %e, "the device certificate was not renewed");
            }
        }
        Ok(session.progress())
    }

    /// The visits of `household` in its register's months `from` to `to` (inclusive), read from
    /// the server's documents and not stored: older history than the phone's window keeps
    /// (`crate::window`), read-only. Blocks the calling thread, like [`ServerClient::sync`].
    pub fn fetch_visits(
        &self,
        store: &Store,
        household: &HouseholdId,
        from: Period,
        to: Period,
    ) -> Result<Vec<VisitSummary>> {
        block_on(self.fetch(VisitsRequest::new(store, household, from, to)?))
    }

    /// Runs a [`VisitsRequest`] made while holding the store, without it.
    pub async fn fetch(&self, mut request: VisitsRequest) -> Result<Vec<VisitSummary>> {
        while let Some(message) = request.next_message() {
            let answer = self.exchange(message).await?;
            request.receive(&answer)?;
        }
        Ok(request.visits())
    }

    async fn post(&self, path: &str, content_type: &str, body: Vec<u8>) -> Result<Vec<u8>> {
        let url = format!("{}{}", self.base, path);
        let mut delay = self.retry.first_delay;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self.http.post(&url).header("content-type", content_type).body(body.clone());
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
            let failure = match req.send().await {
                Ok(resp) if resp.status().is_success() => {
                    return resp.bytes().await.map(|b| b.to_vec()).map_err(|e| Error::Network(e.to_string()))
                }
                Ok(resp) => {
                    let status = resp.status();
                    let retryable = status.is_server_error() || status.as_u16() == 429;
                    let body = resp.bytes().await.unwrap_or_default();
                    let e = ErrorBody::refusal(status.as_u16(), &body);
                    if !retryable {
                        return Err(e);
                    }
                    e
                }
                Err(e) => Error::Network(without_url(e)),
            };
            if attempt >= self.retry.attempts {
                return Err(match failure {
                    Error::Refused { code, message } => {
                        Error::Network(format!("{message} ({code}), after {attempt} attempts"))
                    }
                    Error::Network(m) => Error::Network(format!("{m}, after {attempt} attempts")),
                    other => other,
                });
            }
            let jitter = rand::random::<f64>() * 0.5 + 0.75;
            tokio::time::sleep(delay.mul_f64(jitter)).await;
            delay = (delay * 2).min(self.retry.max_delay);
        }
    }
}

fn without_url(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "the request timed out"
    } else if e.is_connect() {
        "no connection to the server"
    } else {
        "the connection failed"
    };
    format!("{kind} ({})", e.without_url())
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    runtime().block_on(f)
}

/// The request with which `store`'s device enrols with `code`: its actor id, public key and the
/// proof that it holds the key.
pub fn enrolment_request(store: &Store, code: &str, name: &str) -> Result<DeviceRequest> {
    Ok(DeviceRequest {
        code: code.into(),
        actor: store.actor_id(),
        name: name.into(),
        public_key: store.device_public_key()?,
        proof: store.enrolment_proof(code)?,
    })
}

/// Keeps the certificate an enrolment returned, if it is for the user the answer names and
/// [`Store::keep_certificate`] takes it. A certificate not kept is logged, never an error: the
/// token in the answer is the one the code gave, and the next sync asks for a certificate again.
pub fn keep_registration(store: &mut Store, registration: &Registration) {
    let kept = match &registration.certificate {
        Some(c) if c.user.as_str() != registration.user_id => {
            Err(crate::identity::bad_certificate("the device certificate", "names another user than the enrolment"))
        }
        Some(c) => store.keep_certificate(c, &registration.deployment_keys),
        None => Ok(()),
    };
    if let Err(e) = kept {
        tracing::warn!(error = %e, "the enrolment's device certificate was not kept");
    }
}

/// The request with which `store`'s device asks for a fresh certificate.
pub fn certificate_request(store: &Store) -> Result<CertificateRequest> {
    Ok(CertificateRequest { public_key: store.device_public_key()?, proof: store.binding_proof()? })
}
