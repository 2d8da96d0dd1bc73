//! `doorstep bench sync`: what syncing costs on the wire and in time, against in-run baselines —
//! the raw bytes of the changes a sync had to carry, plain Automerge sync with warm state, and
//! loading the same document bytes locally.
//!
//! Everything runs against a real `doorstep-server` on 127.0.0.1 over HTTP; bytes are request
//! and response bodies as the client sent and received them. Figures go to stdout as
//! `name: value unit`, progress to stderr.

use std::sync::Arc;
use std::time::Instant;

use automerge::{sync::SyncDoc, transaction::Transactable, AutoCommit, ReadDoc, ROOT};
use doorstep_core::sync::http::ServerClient;
use doorstep_core::DAY_MS;
use doorstep_core::{DocId, FixedClock, NewReport, OpenOptions, Result, Store, User};
use doorstep_server::{admin::AdminClient, Config, RunningServer};
use rand::{rngs::StdRng, SeedableRng};
use rusqlite::OptionalExtension;

use crate::bench::{median, plan_visits, progress, record, Db};
use crate::sample;

pub struct SyncSizes {
    /// Visits in the grid before the steady-state sync.
    pub grid_visits: usize,
    /// New visits carried by the steady-state sync.
    pub new_visits: usize,
    /// Documents on the phone of the no-op sync.
    pub documents: usize,
    /// Runs of the initial sync and of the local load (median reported).
    pub runs: usize,
}

impl SyncSizes {
    pub fn full() -> SyncSizes {
        SyncSizes { grid_visits: 20_000, new_visits: 100, documents: 1_000, runs: 5 }
    }
    /// For a quick look (`--quick`); its figures are not the targets.
    pub fn quick() -> SyncSizes {
        SyncSizes { grid_visits: 2_000, new_visits: 100, documents: 100, runs: 3 }
    }
}

const DAY_START: i64 = 1_795_392_000_000;
const ADMIN_TOKEN: &str = "bench-admin-token";

struct Phone {
    store: Store,
    client: ServerClient,
}

fn enrol(server: &RunningServer, path: &std::path::Path, clock: &Arc<FixedClock>, user: &User) -> Result<Phone> {
    let mut store = Store::open(path, OpenOptions { clock: clock.clone(), ..OpenOptions::default() })?;
    let admin = AdminClient::new(&server.url(), ADMIN_TOKEN);
    let client = ServerClient::new(&server.url())?;
    let reg = client.register(&admin.enrolment_code(&user.id, 1)?, &mut store, "bench phone")?;
    Ok(Phone { store, client: client.with_token(reg.token) })
}

/// Bytes of the change rows a store appended to a document since its last snapshot.
fn change_row_bytes(path: &std::path::Path, doc: &DocId) -> Result<u64> {
    let conn = rusqlite::Connection::open(path).db()?;
    let n: Option<i64> = conn
        .query_row("SELECT SUM(length(bytes)) FROM changes WHERE doc_id = ?1", [doc.to_string()], |r| r.get(0))
        .optional()
        .db()?
        .flatten();
    Ok(n.unwrap_or(0) as u64)
}

pub fn sync(sizes: &SyncSizes) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut rng = StdRng::seed_from_u64(11);
    // The office records the grid's history on the bench's day: every visit lands in that
    // month's document (older months are closed by then), which the steady state then grows.
    let clock = Arc::new(FixedClock::new(DAY_START));

    // ---- the office's grid, on the server ---------------------------------------------------------
    progress(&format!("seeding a grid of 400 households with {} visits", sizes.grid_visits));
    let mut office =
        Store::open(dir.path().join("office.sqlite"), OpenOptions { clock: clock.clone(), ..OpenOptions::default() })?;
    let d = sample::district(&mut office, 1, 0)?;
    let staff = sample::staff(&mut office, &d)?;
    let worker = staff.workers[0].clone();
    let households: Vec<_> = (0..400)
        .map(|i| sample::household(&mut office, &mut rng, &d.grids[0], None, i, false))
        .collect::<Result<_>>()?;
    for p in plan_visits(&mut rng, &households, sizes.grid_visits, DAY_START - 50 * DAY_MS) {
        record(&mut office, &worker.id, &p)?;
    }
    office.compact_all()?;
    let server = RunningServer::start(Config {
        listen: "127.0.0.1:0".into(),
        database: dir.path().join("server.sqlite"),
        admin_token: Some(ADMIN_TOKEN.into()),
        ..Config::default()
    })?;
    let admin = AdminClient::new(&server.url(), ADMIN_TOKEN);
    // The directory first (it sorts first), then the grid's register and its visits by month.
    for doc in office.document_ids()? {
        admin.import(&doc, office.save_document(&doc)?)?;
    }
    let grid = DocId::Visits(d.grids[0].id.clone(), doorstep_core::Period::of(DAY_START));
    let grid_docs: Vec<DocId> = office.document_ids()?.into_iter().filter(|d| *d != DocId::Directory).collect();

    // ---- initial sync: a new phone pulls the grid until its screens can query it ----------------
    progress(&format!("initial sync of the {}-visit grid, {} runs", sizes.grid_visits, sizes.runs));
    let mut initial = Vec::new();
    let mut local = Vec::new();
    let grid_bytes = server.with_store(|s| s.save_document(&grid))?;
    let all_bytes: Vec<(DocId, Vec<u8>)> =
        grid_docs.iter().map(|d| Ok((d.clone(), server.with_store(|s| s.save_document(d))?))).collect::<Result<_>>()?;
    let directory_bytes = server.with_store(|s| s.save_document(&DocId::Directory))?;
    for run in 0..sizes.runs {
        let mut phone = enrol(&server, &dir.path().join(format!("new-phone-{run}.sqlite")), &clock, &worker)?;
        let t = Instant::now();
        phone.client.sync(&mut phone.store)?;
        initial.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(phone.store.visit_history(&households[0].id, 1)?.len(), 1, "the screens can query the grid");

        let mut copy = Store::open(dir.path().join(format!("local-{run}.sqlite")), OpenOptions::default())?;
        let t = Instant::now();
        copy.merge_document(&DocId::Directory, &directory_bytes)?;
        for (doc, bytes) in &all_bytes {
            copy.merge_document(doc, bytes)?;
        }
        local.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (initial_ms, local_ms) = (median(initial), median(local));

    // ---- steady state: 100 new visits with warm sync state -------------------------------------------
    progress(&format!("steady-state sync of {} new visits", sizes.new_visits));
    let path = dir.path().join("worker.sqlite");
    let mut phone = enrol(&server, &path, &clock, &worker)?;
    phone.client.sync(&mut phone.store)?;
    phone.store.compact_all()?;
    phone.client.sync(&mut phone.store)?;
    clock.set(DAY_START);
    for p in plan_visits(&mut rng, &households, sizes.new_visits, DAY_START + 9 * 3_600_000) {
        record(&mut phone.store, &worker.id, &p)?;
    }
    let raw = change_row_bytes(&path, &grid)?;
    let p = phone.client.sync(&mut phone.store)?;
    let steady_wire = p.bytes_sent + p.bytes_received;
    let steady_round_trips = p.round;

    progress("one more visit");
    phone.store.compact_all()?;
    for p in plan_visits(&mut rng, &households, 1, DAY_START + 17 * 3_600_000) {
        record(&mut phone.store, &worker.id, &p)?;
    }
    let one_raw = change_row_bytes(&path, &grid)?;
    let p = phone.client.sync(&mut phone.store)?;
    let one_wire = p.bytes_sent + p.bytes_received;

    // ---- baseline: plain Automerge sync of the same kind of changes, warm state ---------------------
    progress("plain Automerge sync with warm state (baseline)");
    let (am_wire, am_raw) = automerge_warm_sync(&grid_bytes, sizes.new_visits);

    // ---- no-op: a phone holding many documents, nothing changed ---------------------------------------
    progress(&format!("no-op sync of a phone holding {} documents", sizes.documents));
    let held = phone.store.document_ids()?.len();
    for i in held..sizes.documents {
        phone.store.file_report(NewReport {
            reporter: worker.id.clone(),
            category: doorstep_core::CategoryId::parse("environment")?,
            description: format!("Overflowing bin no. {i} by the bike shed"),
            location: households[i % households.len()].location,
            address: None,
            grid: Some(d.grids[0].id.clone()),
            photos: vec![],
        })?;
    }
    phone.client.sync(&mut phone.store)?;
    let held = phone.store.document_ids()?.len();
    let p = phone.client.sync(&mut phone.store)?;
    let (noop_bytes, noop_rounds) = (p.bytes_sent + p.bytes_received, p.round);
    server.stop();

    println!("steady_sync_bytes: {steady_wire} B");
    println!("steady_changes_raw_bytes: {raw} B");
    println!("steady_sync_bytes_ratio: {:.2}", steady_wire as f64 / raw as f64);
    println!("steady_sync_round_trips: {steady_round_trips}");
    println!("automerge_warm_sync_bytes_ratio: {:.2}", am_wire as f64 / am_raw as f64);
    println!("one_visit_sync_bytes: {one_wire} B");
    println!("one_visit_raw_bytes: {one_raw} B");
    println!("noop_sync_documents: {held}");
    println!("noop_sync_bytes: {noop_bytes} B");
    println!("noop_sync_round_trips: {noop_rounds}");
    println!("initial_sync_ms: {initial_ms:.1} ms");
    println!("local_load_ms: {local_ms:.1} ms");
    println!("initial_sync_ratio: {:.2}", initial_ms / local_ms);
    Ok(())
}

/// Plain Automerge between two replicas of the grid that are in sync (warm `sync::State` on both
/// sides): one replica adds `n` visits, then messages go back and forth until both are quiet.
/// Returns (bytes of all messages, raw bytes of the new changes).
fn automerge_warm_sync(grid: &[u8], n: usize) -> (u64, u64) {
    let mut a = AutoCommit::load(grid).expect("the server's grid loads");
    let mut b = AutoCommit::load(grid).expect("the server's grid loads");
    let (mut sa, mut sb) = (automerge::sync::State::new(), automerge::sync::State::new());
    let exchange =
        |a: &mut AutoCommit, b: &mut AutoCommit, sa: &mut automerge::sync::State, sb: &mut automerge::sync::State| {
            let mut bytes = 0u64;
            loop {
                let mut quiet = true;
                if let Some(m) = a.sync().generate_sync_message(sa) {
                    let e = m.encode();
                    bytes += e.len() as u64;
                    b.sync().receive_sync_message(sb, automerge::sync::Message::decode(&e).unwrap()).unwrap();
                    quiet = false;
                }
                if let Some(m) = b.sync().generate_sync_message(sb) {
                    let e = m.encode();
                    bytes += e.len() as u64;
                    a.sync().receive_sync_message(sa, automerge::sync::Message::decode(&e).unwrap()).unwrap();
                    quiet = false;
                }
                if quiet {
                    return bytes;
                }
            }
        };
    exchange(&mut a, &mut b, &mut sa, &mut sb);
    let heads = a.get_heads();
    let visits = match a.get(ROOT, "visits") {
        Ok(Some((_, obj))) => obj,
        _ => panic!("the grid has its visits map"),
    };
    for i in 0..n {
        let v = serde_json::json!({
            "id": format!("01BENCHVISIT{i:014}"), "household": "01BENCHHOUSEHOLD0000000000", "worker": "01BENCHWORKER0000000000000",
            "at": DAY_START + i as i64 * 60_000, "kind": "routine", "outcome": "all_well",
            "notes": "Checked on the family; all well.", "follow_up": false, "photos": []
        });
        a.put(&visits, format!("01BENCHVISIT{i:014}"), v.to_string()).unwrap();
        a.commit();
    }
    let raw: u64 = a.get_changes(&heads).iter().map(|c| c.raw_bytes().len() as u64).sum();
    (exchange(&mut a, &mut b, &mut sa, &mut sb), raw)
}
