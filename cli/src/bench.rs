//! `doorstep bench store`: what a worker's phone pays for keeping every visit in a CRDT document,
//! measured against plain SQLite doing the same job in the same run (machines are noisy, so
//! only ratios against an in-run baseline mean anything).
//!
//! Each figure is printed as `name: value unit` on stdout; progress goes to stderr.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use doorstep_core::hooks::{HOUSEHOLDS_DDL, VISITS_DDL};
use doorstep_core::DAY_MS;
use doorstep_core::{Durability, FixedClock, HouseholdFilter, OpenOptions, Result, Store, UnixMillis, VisitId};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rusqlite::{params, Connection};

use crate::sample;

/// The plain-SQLite baselines' errors as the core's, for `?`: `conn.execute(…).db()?` (the core
/// keeps rusqlite out of its API, so there is no `From`).
pub(crate) trait Db<T> {
    fn db(self) -> Result<T>;
}

impl<T> Db<T> for rusqlite::Result<T> {
    fn db(self) -> Result<T> {
        self.map_err(|e| doorstep_core::Error::Storage {
            kind: doorstep_core::StorageKind::Other,
            detail: e.to_string(),
        })
    }
}

/// The visit columns the plain baseline keeps (the store's table has two more since schema 7:
/// which document and register each row comes from).
const PLAIN_VISIT_COLUMNS: &str =
    "id, household_id, grid_id, worker_id, at, lat, lon, kind, outcome, notes, follow_up, photo_count, deleted";
/// The columns of the baseline's households table (the store's has more: the bell-check and
/// follow-up clocks, which the baseline's query does not read).
const PLAIN_HOUSEHOLD_COLUMNS: &str =
    "id, grid_id, micro_grid_id, building, unit, room, lat, lon, care_tags, risk, notes,
     created_at, deleted, visit_interval_ms, last_visit_at, next_due_at";

pub struct Sizes {
    /// Visits already in the grid before measuring `record_visit`.
    pub preload: usize,
    /// Visits measured.
    pub measured: usize,
    /// Visits and grids of the store opened cold for the overdue query.
    pub open_visits: usize,
    pub open_grids: usize,
}

impl Sizes {
    pub fn full() -> Sizes {
        Sizes { preload: 20_000, measured: 10_000, open_visits: 100_000, open_grids: 50 }
    }
    /// For a quick look (`--quick`); the figures it prints are not the targets.
    pub fn quick() -> Sizes {
        Sizes { preload: 2_000, measured: 1_000, open_visits: 10_000, open_grids: 10 }
    }
}

const DAY_START: UnixMillis = 1_795_392_000_000; // 2026-11-23 00:00 UTC

fn options(clock: &Arc<FixedClock>) -> OpenOptions {
    OpenOptions { durability: Durability::Normal, clock: clock.clone(), ..OpenOptions::default() }
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn plain_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

/// Bytes on disk of a SQLite database and its WAL.
pub(crate) fn disk_bytes(path: &Path) -> u64 {
    let mut total = 0;
    for suffix in ["", "-wal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        total += std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
    }
    total
}

/// Drops a database's pages from the OS page cache, so the next open reads from disk.
pub(crate) fn evict_from_page_cache(path: &Path) {
    use std::os::unix::io::AsRawFd;
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        if let Ok(f) = std::fs::File::open(&p) {
            // Dirty pages cannot be dropped: write them back first.
            let _ = f.sync_all();
            // SAFETY: a plain advisory call on a file descriptor we own for its duration.
            unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        }
    }
}

pub(crate) struct VisitPlan {
    household: doorstep_core::HouseholdId,
    kind: doorstep_core::VisitKind,
    outcome: doorstep_core::VisitOutcome,
    notes: String,
    location: doorstep_core::GeoPoint,
    at: UnixMillis,
}

pub(crate) fn plan_visits(
    rng: &mut StdRng,
    households: &[doorstep_core::Household],
    n: usize,
    start: UnixMillis,
) -> Vec<VisitPlan> {
    (0..n)
        .map(|i| {
            let h = &households[rng.random_range(0..households.len())];
            let (kind, outcome) = sample::visit_kind(rng, h.care_tags.contains(&doorstep_core::CareTag::ElderlyAlone));
            VisitPlan {
                household: h.id.clone(),
                kind,
                outcome,
                notes: sample::visit_note(rng),
                location: h.location.expect("sample households have GPS"),
                at: start + i as i64 * 30_000,
            }
        })
        .collect()
}

pub(crate) fn record(store: &mut Store, worker: &doorstep_core::UserId, p: &VisitPlan) -> Result<()> {
    store.record_visit(sample::visit_to(
        &p.household,
        Some(p.location),
        worker,
        (p.kind, p.outcome),
        p.notes.as_str(),
        Some(p.at),
    ))?;
    Ok(())
}

pub(crate) fn progress(msg: &str) {
    eprintln!("  .. {msg}");
}

/// The choice docs/DATA-MODEL.md (*Two record encodings*) rests on: a write-once visit as one encoded value (what the store
/// does) or as a map of fields, in plain Automerge, each followed by `commit` and encoding the
/// change, into a document that already holds `preload` visits stored the same way.
fn encoding_choice(plans: &[VisitPlan], preload: usize) {
    use automerge::{transaction::Transactable, AutoCommit, ObjType, ROOT};
    let fields = |p: &VisitPlan| -> Vec<(&'static str, automerge::ScalarValue)> {
        vec![
            ("household", p.household.as_str().into()),
            ("worker", "01JDWORKER0000000000000000".into()),
            ("at", p.at.into()),
            ("lat", p.location.lat.into()),
            ("lon", p.location.lon.into()),
            ("kind", p.kind.as_str().into()),
            ("outcome", p.outcome.as_str().into()),
            ("notes", p.notes.as_str().into()),
        ]
    };
    let mut results = Vec::new();
    for as_map in [false, true] {
        let mut doc = AutoCommit::new();
        let visits = doc.put_object(ROOT, "visits", ObjType::Map).expect("new document");
        let (mut times, mut bytes) = (Vec::new(), 0usize);
        for (i, p) in plans.iter().cycle().take(preload + plans.len()).enumerate() {
            let id = VisitId::generate();
            let t = Instant::now();
            if as_map {
                let v = doc.put_object(&visits, id.as_str(), ObjType::Map).expect("put");
                for (k, value) in fields(p) {
                    doc.put(&v, k, value).expect("put");
                }
            } else {
                let json = serde_json::json!({"household": p.household.as_str(), "worker": "01JDWORKER0000000000000000",
                    "at": p.at, "location": {"lat": p.location.lat, "lon": p.location.lon},
                    "kind": p.kind.as_str(), "outcome": p.outcome.as_str(), "notes": p.notes});
                doc.put(&visits, id.as_str(), json.to_string()).expect("put");
            }
            doc.commit();
            let change = doc.get_last_local_change().expect("committed");
            if i >= preload {
                times.push(t.elapsed().as_secs_f64() * 1e6);
                bytes += change.raw_bytes().len();
            }
        }
        let saved = doc.save().len() as f64 / (preload + plans.len()) as f64;
        results.push((median(times), bytes as f64 / plans.len() as f64, saved));
    }
    let ((value_us, value_b, value_saved), (map_us, map_b, map_saved)) = (results[0], results[1]);
    println!("visit_as_value_us: {value_us:.1} us");
    println!("visit_as_map_us: {map_us:.1} us");
    println!("visit_as_value_change_bytes: {value_b:.0} B");
    println!("visit_as_map_change_bytes: {map_b:.0} B");
    println!("visit_as_value_saved_bytes: {value_saved:.1} B");
    println!("visit_as_map_saved_bytes: {map_saved:.1} B");
}

pub fn store(sizes: &Sizes) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut rng = StdRng::seed_from_u64(7);
    let clock = Arc::new(FixedClock::new(DAY_START - 90 * DAY_MS));

    // ---- record_visit: one grid that already holds `preload` visits --------------------------
    progress(&format!("seeding one grid of 400 households with {} visits", sizes.preload));
    let path = dir.path().join("phone.sqlite");
    let mut store = Store::open(&path, options(&clock))?;
    let d = sample::district(&mut store, 1, 0)?;
    let staff = sample::staff(&mut store, &d)?;
    let worker = staff.workers[0].id.clone();
    let households: Vec<_> = (0..400)
        .map(|i| sample::household(&mut store, &mut rng, &d.grids[0], None, i, false))
        .collect::<Result<_>>()?;
    let start = DAY_START - 60 * DAY_MS;
    for p in plan_visits(&mut rng, &households, sizes.preload, start) {
        record(&mut store, &worker, &p)?;
    }
    store.compact_all()?;
    progress(&format!("recording {} more visits, one durable transaction each", sizes.measured));
    let plans = plan_visits(&mut rng, &households, sizes.measured, start + sizes.preload as i64 * 30_000);
    let mut times = Vec::with_capacity(plans.len());
    for p in &plans {
        let t = Instant::now();
        record(&mut store, &worker, p)?;
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let record_us = median(times);

    // ---- the same rows into a plain SQLite table ------------------------------------------
    progress("inserting the same visit rows into a plain SQLite table");
    let plain_path = dir.path().join("plain.sqlite");
    let plain = plain_connection(&plain_path).db()?;
    plain.execute_batch(VISITS_DDL).db()?;
    plain.execute_batch(HOUSEHOLDS_DDL).db()?;
    let grid = d.grids[0].id.as_str().to_owned();
    let plain_insert = |p: &VisitPlan| -> rusqlite::Result<()> {
        let tx = plain.unchecked_transaction()?;
        tx.prepare_cached(
            "INSERT INTO visits (id, household_id, grid_id, worker_id, at, lat, lon, kind, outcome, notes, follow_up,
                                 photo_count, deleted) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0, 0, 0)",
        )?
        .execute(params![
            VisitId::generate().as_str(),
            p.household.as_str(),
            grid,
            worker.as_str(),
            p.at,
            p.location.lat,
            p.location.lon,
            p.kind.as_str(),
            p.outcome.as_str(),
            p.notes
        ])?;
        tx.commit()
    };
    let mut rng2 = StdRng::seed_from_u64(8);
    for p in plan_visits(&mut rng2, &households, sizes.preload, start) {
        plain_insert(&p).db()?;
    }
    let mut times = Vec::with_capacity(plans.len());
    for p in &plans {
        let t = Instant::now();
        plain_insert(p).db()?;
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let sqlite_us = median(times);
    println!("record_visit_us: {record_us:.1} us");
    println!("sqlite_insert_us: {sqlite_us:.1} us");
    println!("record_visit_ratio: {:.2}", record_us / sqlite_us);
    encoding_choice(&plans, sizes.preload);

    // ---- bytes on disk per visit, after compaction ------------------------------------------
    store.compact_all()?;
    drop(store);
    let visits = (sizes.preload + sizes.measured) as f64;
    // The plain app keeps the same household rows next to its visits.
    plain.execute("ATTACH DATABASE ?1 AS store", [path.to_string_lossy()]).db()?;
    plain
        .execute(&format!("INSERT INTO main.households SELECT {PLAIN_HOUSEHOLD_COLUMNS} FROM store.households"), [])
        .db()?;
    plain.execute("DETACH DATABASE store", []).db()?;
    plain.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;").db()?;
    drop(plain);
    let bytes = disk_bytes(&path) as f64 / visits;
    let plain_bytes = disk_bytes(&plain_path) as f64 / visits;
    println!("bytes_per_visit: {bytes:.1} B");
    println!("sqlite_bytes_per_visit: {plain_bytes:.1} B");
    println!("bytes_per_visit_ratio: {:.2}", bytes / plain_bytes);

    // ---- open from cold and list the 50 most overdue households -----------------------------
    progress(&format!("building a store of {} visits across {} grids", sizes.open_visits, sizes.open_grids));
    let path = dir.path().join("district.sqlite");
    let mut store = Store::open(&path, options(&clock))?;
    let d = sample::district(&mut store, sizes.open_grids, 0)?;
    let staff = sample::staff(&mut store, &d)?;
    let per_grid = sizes.open_visits / sizes.open_grids;
    for (gi, g) in d.grids.iter().enumerate() {
        let hs: Vec<_> =
            (0..400).map(|i| sample::household(&mut store, &mut rng, g, None, i, false)).collect::<Result<_>>()?;
        for p in plan_visits(&mut rng, &hs, per_grid, start) {
            record(&mut store, &staff.workers[0].id, &p)?;
        }
        if gi % 10 == 9 {
            progress(&format!("{} of {} grids", gi + 1, sizes.open_grids));
        }
    }
    store.compact_all()?;
    drop(store);
    let plain_path = dir.path().join("district-plain.sqlite");
    let plain = plain_connection(&plain_path).db()?;
    plain.execute_batch(VISITS_DDL).db()?;
    plain.execute_batch(HOUSEHOLDS_DDL).db()?;
    plain.execute("ATTACH DATABASE ?1 AS store", [path.to_string_lossy()]).db()?;
    plain
        .execute_batch(&format!(
            "INSERT INTO main.households SELECT {PLAIN_HOUSEHOLD_COLUMNS} FROM store.households;
         INSERT INTO main.visits SELECT {PLAIN_VISIT_COLUMNS} FROM store.visits;
         DETACH DATABASE store;
         PRAGMA wal_checkpoint(TRUNCATE); VACUUM;"
        ))
        .db()?;
    drop(plain);
    progress("opening both from cold, 21 times each");
    let now = DAY_START;
    // Each run is split where the store is open and the query not yet run, so the figures say
    // whether what differs is the opening or the query on the file.
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let (mut ours_open, mut theirs_open) = (Vec::new(), Vec::new());
    let mut listed = (0, 0);
    for _ in 0..21 {
        evict_from_page_cache(&path);
        let t = Instant::now();
        let store = Store::open(&path, options(&clock))?;
        ours_open.push(t.elapsed().as_secs_f64() * 1e3);
        listed.0 = most_overdue(&store, now)?;
        ours.push(t.elapsed().as_secs_f64() * 1e3);
        drop(store);

        evict_from_page_cache(&plain_path);
        let t = Instant::now();
        let conn = plain_connection(&plain_path).db()?;
        theirs_open.push(t.elapsed().as_secs_f64() * 1e3);
        listed.1 = plain_most_overdue(&conn, now)?;
        theirs.push(t.elapsed().as_secs_f64() * 1e3);
    }
    if listed.0 != listed.1 {
        eprintln!("warning: the store listed {} households, plain SQLite {}", listed.0, listed.1);
    }
    let (open, plain_open) = (median(ours_open), median(theirs_open));
    let (ours, theirs) = (median(ours), median(theirs));
    println!("open_ms: {open:.2} ms");
    println!("sqlite_open_ms: {plain_open:.2} ms");
    println!("query_after_open_ms: {:.2} ms", ours - open);
    println!("sqlite_query_after_open_ms: {:.2} ms", theirs - plain_open);
    println!("open_query_ms: {ours:.2} ms");
    println!("sqlite_open_query_ms: {theirs:.2} ms");
    println!("open_query_ratio: {:.2}", ours / theirs);
    count_open_instructions(&path, &plain_path)
}

/// The first screen after a cold open: the 50 most overdue households, as the store lists them.
fn most_overdue(store: &Store, now: UnixMillis) -> Result<usize> {
    Ok(store.households(&HouseholdFilter { due_by: Some(now), limit: 50, ..Default::default() })?.len())
}

/// The same SQL on the plain file; of its rows it reads the id and due date (the store builds
/// whole `HouseholdSummary`s, so the comparison leans against the store).
fn plain_most_overdue(conn: &Connection, now: UnixMillis) -> Result<usize> {
    let mut stmt = conn
        .prepare(
            "SELECT id, grid_id, micro_grid_id, building, unit, room, lat, lon, care_tags, risk, notes, last_visit_at,
                    next_due_at FROM households WHERE deleted = 0 AND next_due_at <= ?1 ORDER BY next_due_at, id LIMIT 50",
        )
        .db()?;
    let rows: Vec<(String, i64)> =
        stmt.query_map([now], |r| Ok((r.get(0)?, r.get(12)?))).db()?.collect::<rusqlite::Result<_>>().db()?;
    Ok(rows.len())
}

/// `doorstep bench open-probe KIND FILE`: one process doing one thing of the open-and-query
/// figure, for callgrind to count. `store`: open FILE as a store and list the most overdue;
/// `sqlite`: the same on the plain file; `schema`: plain SQLite opening FILE and reading its
/// schema, which any first statement does; `none`: the process alone (subtracted from the others).
pub fn open_probe(kind: &str, file: &Path) -> Result<()> {
    let now = DAY_START;
    let n = match kind {
        "store" => most_overdue(&Store::open(file, options(&Arc::new(FixedClock::new(now))))?, now)?,
        "sqlite" => plain_most_overdue(&plain_connection(file).db()?, now)?,
        "schema" => {
            let conn = Connection::open(file).db()?;
            conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get::<_, i64>(0)).db()? as usize
        }
        "none" => 0,
        _ => {
            return Err(doorstep_core::Error::InvalidInput {
                field: "probe",
                reason: "one of store, sqlite, schema, none".into(),
            })
        }
    };
    println!("{n}");
    Ok(())
}

/// Instructions (`valgrind --tool=callgrind`) of one open and the query, the store's and plain
/// SQLite's, each less those of a process that does nothing. They count user-space work only (a
/// cold open's disk reads are the times' business), and do not move with the machine's load, so
/// they complement the times above. valgrind is required (`scripts/setup` installs it).
fn count_open_instructions(store: &Path, plain: &Path) -> Result<()> {
    let none = probe("none", plain)?.0;
    let less_none = |kind: &str, file: &Path| -> Result<(u64, String)> {
        let (n, out) = probe(kind, file)?;
        Ok((n.saturating_sub(none), out))
    };
    let ((ours, our_rows), (theirs, their_rows)) = (less_none("store", store)?, less_none("sqlite", plain)?);
    if our_rows != their_rows {
        return Err(doorstep_core::Error::File(format!(
            "the probes listed {our_rows} households from the store and {their_rows} from plain SQLite"
        )));
    }
    let ((ours_schema, our_objects), (theirs_schema, their_objects)) =
        (less_none("schema", store)?, less_none("schema", plain)?);
    println!("open_query_instructions: {ours} instructions (callgrind; one open and the query, {our_rows} rows)");
    println!("sqlite_open_query_instructions: {theirs} instructions");
    println!("open_query_instructions_ratio: {:.2} (target <= 1.5)", ours as f64 / theirs as f64);
    println!(
        "store_schema_instructions: {ours_schema} instructions (SQLite reading the store file's schema of {our_objects} objects, which its first statement does)"
    );
    println!("sqlite_schema_instructions: {theirs_schema} instructions (the plain file's {their_objects} objects)");
    Ok(())
}

/// Runs `doorstep bench open-probe KIND FILE` under callgrind: the instructions it counted and
/// what the probe printed.
fn probe(kind: &str, file: &Path) -> Result<(u64, String)> {
    let out = std::process::Command::new("valgrind")
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(std::env::current_exe()?)
        .args(["bench", "open-probe", kind])
        .arg(file)
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => doorstep_core::Error::File(
                "valgrind is not installed (scripts/setup installs it): the instruction counts need it".into(),
            ),
            _ => e.into(),
        })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let collected = stderr
        .lines()
        .find_map(|l| l.split_once("Collected : ").map(|(_, n)| n.trim().replace(',', "")))
        .and_then(|n| n.parse().ok());
    match collected {
        Some(n) if out.status.success() => Ok((n, String::from_utf8_lossy(&out.stdout).trim().to_owned())),
        _ => Err(doorstep_core::Error::File(format!("callgrind counted nothing for {kind}: {stderr}"))),
    }
}

/// A figure in KB of `/proc/<process>/status` (`process`: a pid, or `self`), e.g. `VmHWM:`.
pub fn status_kb(process: &str, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{process}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| doorstep_core::Error::File(format!("no {field} in /proc/{process}/status")))
}
