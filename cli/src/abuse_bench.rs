//! `doorstep bench abuse`: what an honest phone's sync costs while two enrolled devices flood the
//! server with the largest requests the protocol allows, against the same syncs with nobody else
//! on the server; how many bytes the worst legal request gets out of the server per byte sent;
//! and the server's peak memory.
//!
//! The server is a real `doorstep serve` process (this binary, started again) on 127.0.0.1, so
//! its memory is its own. Every loop is bounded in count and time. Figures go to stdout as
//! `name: value unit`, progress to stderr.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use doorstep_core::sync::http::{runtime, ServerClient};
use doorstep_core::sync::wire::{Batch, Entry, Kind};
use doorstep_core::DAY_MS;
use doorstep_core::{Clock, DocId, Error, FixedClock, OpenOptions, Result, Store, User};
use doorstep_server::admin::AdminClient;
use rand::{rngs::StdRng, SeedableRng};

use crate::bench::{plan_visits, progress, record};
use crate::sample;

pub struct AbuseSizes {
    pub households: usize,
    pub visits: usize,
    /// Honest syncs measured alone, and again under abuse.
    pub honest_syncs: usize,
    /// The abuse stops after this long even if the honest syncs are not done.
    pub max_abuse: Duration,
}

impl AbuseSizes {
    pub fn full() -> AbuseSizes {
        AbuseSizes { households: 300, visits: 3_000, honest_syncs: 300, max_abuse: Duration::from_secs(120) }
    }
    /// For a quick look (`--quick`); its figures are not the targets.
    pub fn quick() -> AbuseSizes {
        AbuseSizes { households: 100, visits: 500, honest_syncs: 60, max_abuse: Duration::from_secs(30) }
    }
}

const DAY_START: i64 = 1_795_392_000_000;
pub(crate) const ADMIN_TOKEN: &str = "bench-admin-token";

/// A `doorstep serve` child process, stopped when dropped.
pub(crate) struct ServerProcess {
    child: std::process::Child,
    pub url: String,
}

impl ServerProcess {
    pub fn start(dir: &std::path::Path) -> Result<ServerProcess> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        Self::start_on(dir, port)
    }

    /// Stops the process and starts a new one on the same database and address: a restart,
    /// with every cache cold.
    pub fn restart(mut self, dir: &std::path::Path) -> Result<ServerProcess> {
        let port: u16 = self.url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("the url has a port");
        let _ = self.child.kill();
        let _ = self.child.wait();
        Self::start_on(dir, port)
    }

    fn start_on(dir: &std::path::Path, port: u16) -> Result<ServerProcess> {
        let child = std::process::Command::new(std::env::current_exe()?)
            .arg("serve")
            .env("DOORSTEP_LISTEN", format!("127.0.0.1:{port}"))
            .env("DOORSTEP_DATABASE", dir.join("server.sqlite"))
            .env("DOORSTEP_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let server = ServerProcess { child, url: format!("http://127.0.0.1:{port}") };
        for _ in 0..100 {
            if let Ok((200, _)) =
                post(&reqwest::Client::new(), &format!("{}/healthz", server.url), None, Vec::new(), "GET")
            {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(Error::Network("the server did not start".into()))
    }

    /// The CPU time the server process has used so far, all its threads, in nanoseconds (the
    /// scheduler's own count: finer than the 10 ms ticks of `/proc/<pid>/stat`).
    pub fn cpu_ns(&self) -> Result<u64> {
        let mut total = 0;
        for task in std::fs::read_dir(format!("/proc/{}/task", self.child.id()))? {
            let stat = std::fs::read_to_string(task?.path().join("schedstat")).unwrap_or_default();
            total += stat.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
        }
        Ok(total)
    }

    /// The most memory the server process has held (VmHWM), in MiB.
    fn peak_rss_mb(&self) -> Result<f64> {
        Ok(crate::bench::status_kb(&self.child.id().to_string(), "VmHWM:")? as f64 / 1024.0)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP call: (status, body).
fn post(http: &reqwest::Client, url: &str, token: Option<&str>, body: Vec<u8>, method: &str) -> Result<(u16, Vec<u8>)> {
    runtime().block_on(async {
        let mut req = http.request(method.parse().expect("a method"), url).body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| Error::Network(e.to_string()))?;
        let status = resp.status().as_u16();
        Ok((status, resp.bytes().await.map_err(|e| Error::Network(e.to_string()))?.to_vec()))
    })
}

pub(crate) struct Phone {
    pub store: Store,
    pub client: ServerClient,
    token: String,
}

pub(crate) fn enrol(url: &str, path: &std::path::Path, clock: &Arc<FixedClock>, user: &User) -> Result<Phone> {
    let mut store = Store::open(path, OpenOptions { clock: clock.clone(), ..OpenOptions::default() })?;
    let admin = AdminClient::new(url, ADMIN_TOKEN);
    let client = ServerClient::new(url)?;
    let reg = client.register(&admin.enrolment_code(&user.id, 1)?, &mut store, "bench phone")?;
    Ok(Phone { store, client: client.with_token(&reg.token), token: reg.token })
}

/// The largest requests a device may legally send: 10,000 entries (the protocol's limit) asking
/// for every document it may read, over and over; the same for heads it does not hold; a full
/// feed listing.
fn maximal_requests(docs: &[DocId]) -> Vec<(&'static str, Vec<u8>)> {
    let many = |kind: Kind, data: Vec<u8>| {
        Batch {
            cursor: Some(0),
            docs: (0..doorstep_core::sync::wire::MAX_ENTRIES)
                .map(|i| Entry::new(&docs[i % docs.len()], kind, data.clone()))
                .collect(),
            ..Batch::default()
        }
        .encode()
    };
    vec![
        ("wants", many(Kind::Want, Vec::new())),
        ("stale_heads", many(Kind::Heads, vec![0; 16])),
        ("feed", Batch { cursor: Some(0), ..Batch::default() }.encode()),
    ]
}

/// Percentile `p` (0–100) of `values`, nearest rank.
fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// Records a visit, then times one sync of it to the server; `n` times.
fn honest_syncs(
    phone: &mut Phone,
    worker: &User,
    households: &[doorstep_core::Household],
    n: usize,
    rng: &mut StdRng,
    clock: &FixedClock,
) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        clock.advance(60_000);
        for p in plan_visits(rng, households, 1, clock.now_ms()) {
            record(&mut phone.store, &worker.id, &p)?;
        }
        let t = Instant::now();
        phone.client.sync(&mut phone.store)?;
        out.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(out)
}

pub fn abuse(sizes: &AbuseSizes) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut rng = StdRng::seed_from_u64(23);
    let clock = Arc::new(FixedClock::new(DAY_START - 30 * DAY_MS));

    progress(&format!("seeding a grid of {} households with {} visits", sizes.households, sizes.visits));
    let mut office =
        Store::open(dir.path().join("office.sqlite"), OpenOptions { clock: clock.clone(), ..OpenOptions::default() })?;
    let d = sample::district(&mut office, 2, 0)?;
    let staff = sample::staff(&mut office, &d)?;
    let worker = staff.workers[0].clone();
    let households: Vec<_> = (0..sizes.households)
        .map(|i| sample::household(&mut office, &mut rng, &d.grids[0], None, i, true))
        .collect::<Result<_>>()?;
    for p in plan_visits(&mut rng, &households, sizes.visits, DAY_START - 25 * DAY_MS) {
        record(&mut office, &worker.id, &p)?;
    }
    office.compact_all()?;
    let server = ServerProcess::start(dir.path())?;
    let admin = AdminClient::new(&server.url, ADMIN_TOKEN);
    // The directory first (it sorts first), then the grid's register and its visits by month.
    for doc in office.document_ids()? {
        admin.import(&doc, office.save_document(&doc)?)?;
    }
    let mut honest = enrol(&server.url, &dir.path().join("worker.sqlite"), &clock, &worker)?;
    honest.client.sync(&mut honest.store)?;
    // Two supervisors' devices (they may read every document) turned hostile.
    let abusers: Vec<Phone> = (0..2)
        .map(|i| enrol(&server.url, &dir.path().join(format!("abuser-{i}.sqlite")), &clock, &staff.supervisor))
        .collect::<Result<_>>()?;
    let readable = office.document_ids()?;
    let requests = maximal_requests(&readable);

    // ---- the worst legal request's amplification ------------------------------------------------
    progress("the largest legal requests, one at a time");
    let http = reqwest::Client::new();
    let mut amplification: f64 = 0.0;
    for (name, body) in &requests {
        let (status, answer) =
            post(&http, &format!("{}/v1/sync", server.url), Some(&abusers[0].token), body.clone(), "POST")?;
        let ratio = answer.len() as f64 / body.len() as f64;
        progress(&format!("  {name}: {} B in, {} B out (HTTP {status}), {ratio:.1}x", body.len(), answer.len()));
        amplification = amplification.max(ratio);
    }

    // ---- honest syncs alone, then under abuse -----------------------------------------------------
    progress(&format!("{} honest syncs alone", sizes.honest_syncs));
    let alone = honest_syncs(&mut honest, &worker, &households, sizes.honest_syncs, &mut rng, &clock)?;

    progress(&format!("{} honest syncs while two devices flood the server", sizes.honest_syncs));
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let deadline = Instant::now() + sizes.max_abuse;
    let floods: Vec<_> = abusers
        .iter()
        .map(|a| {
            let (token, url, requests) = (a.token.clone(), server.url.clone(), requests.clone());
            let (stop, sent, refused) = (stop.clone(), sent.clone(), refused.clone());
            std::thread::spawn(move || {
                let http = reqwest::Client::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let body = requests[i % requests.len()].1.clone();
                    i += 1;
                    match post(&http, &format!("{url}/v1/sync"), Some(&token), body, "POST") {
                        Ok((200, _)) => {}
                        _ => {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let under = honest_syncs(&mut honest, &worker, &households, sizes.honest_syncs, &mut rng, &clock);
    stop.store(true, Ordering::Relaxed);
    for f in floods {
        let _ = f.join();
    }
    let under = under?;
    let peak = server.peak_rss_mb()?;
    drop(server);
    progress(&format!(
        "  the flood sent {} requests, {} answered other than 200",
        sent.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed)
    ));

    let (p50, p99) = (percentile(&alone, 50.0), percentile(&alone, 99.0));
    let (u50, u99) = (percentile(&under, 50.0), percentile(&under, 99.0));
    println!("honest_sync_p50_ms: {p50:.2} ms");
    println!("honest_sync_p99_ms: {p99:.2} ms");
    println!("honest_sync_under_abuse_p50_ms: {u50:.2} ms");
    println!("honest_sync_under_abuse_p99_ms: {u99:.2} ms");
    println!("honest_sync_under_abuse_p99_ratio: {:.2} (target <= 3)", u99 / p99);
    println!("want_amplification: {amplification:.1} (bytes out / bytes in of the worst legal request; target <= 100)");
    println!("abuse_requests: {}", sent.load(Ordering::Relaxed));
    println!("server_peak_rss_mb: {peak:.0} MB (target <= 512)");
    Ok(())
}
