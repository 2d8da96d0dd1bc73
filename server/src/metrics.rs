//! Prometheus metrics, kept as plain atomic counters and written in the text exposition format
//! at `/metrics`. Labels carry outcomes and refusal codes only, never users or devices.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Upper bounds (seconds) of the sync latency histogram.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<String, u64>>,
    refusals: Mutex<BTreeMap<String, u64>>,
    bytes_received: AtomicU64,
    bytes_sent: AtomicU64,
    documents: AtomicU64,
    devices_registered: AtomicU64,
    connections_refused: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

impl Metrics {
    /// One sync request: its outcome (`ok` or an error code), bytes both ways, documents
    /// exchanged, and how long it took.
    pub fn sync(&self, outcome: &str, received: usize, sent: usize, documents: usize, seconds: f64) {
        *self.requests.lock().expect("metrics lock").entry(outcome.to_string()).or_default() += 1;
        self.bytes_received.fetch_add(received as u64, Ordering::Relaxed);
        self.bytes_sent.fetch_add(sent as u64, Ordering::Relaxed);
        self.documents.fetch_add(documents as u64, Ordering::Relaxed);
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    pub fn refusal(&self, code: &str) {
        *self.refusals.lock().expect("metrics lock").entry(code.to_string()).or_default() += 1;
    }

    pub fn device_registered(&self) {
        self.devices_registered.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection closed as soon as it was accepted, because `max_connections` were open.
    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        let _ = writeln!(out, "# HELP doorstep_sync_requests_total Sync requests by outcome.");
        let _ = writeln!(out, "# TYPE doorstep_sync_requests_total counter");
        for (outcome, n) in self.requests.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "doorstep_sync_requests_total{{outcome=\"{outcome}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP doorstep_refusals_total Requests refused, and documents refused alone within answered requests, by error code.");
        let _ = writeln!(out, "# TYPE doorstep_refusals_total counter");
        for (code, n) in self.refusals.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "doorstep_refusals_total{{code=\"{code}\"}} {n}");
        }
        counter(
            &mut out,
            "doorstep_sync_bytes_received_total",
            "Request body bytes of sync requests.",
            self.bytes_received.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "doorstep_sync_bytes_sent_total",
            "Response body bytes of sync requests.",
            self.bytes_sent.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "doorstep_sync_documents_total",
            "Documents taken in or sent by sync requests.",
            self.documents.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "doorstep_devices_registered_total",
            "Devices registered with an enrolment code.",
            self.devices_registered.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "doorstep_connections_refused_total",
            "Connections closed at once because max_connections were open.",
            self.connections_refused.load(Ordering::Relaxed),
        );
        let name = "doorstep_sync_duration_seconds";
        let _ = writeln!(out, "# HELP {name} Time to answer a sync request.\n# TYPE {name} histogram");
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ =
                writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", self.latency_buckets[i].load(Ordering::Relaxed));
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {count}");
        out
    }
}
