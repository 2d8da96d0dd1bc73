//! `doorstep bench workflow`: deriving a report's state from its log, and the supervisor's
//! "overdue in my street" over many reports, against plain SQLite running the same query on the
//! same rows in the same run.

use std::sync::Arc;
use std::time::Instant;

use doorstep_core::hooks::OVERDUE_SQL;
use doorstep_core::workflow::{derive, Facts, Person, Policy, Roster};
use doorstep_core::{
    CategoryId, Classification, EventId, FixedClock, NewReport, NewReportEvent, OpenOptions, ReportEvent,
    ReportEventKind, Result, RiskLevel, Role, Store, UserId,
};
use doorstep_core::{DAY_MS, HOUR_MS};
use rand::{rngs::StdRng, Rng, SeedableRng};

use crate::bench::{median, progress, Db};
use crate::sample;

pub struct WorkflowSizes {
    pub reports: usize,
    pub runs: usize,
}

impl WorkflowSizes {
    pub fn full() -> WorkflowSizes {
        WorkflowSizes { reports: 10_000, runs: 51 }
    }
    /// For a quick look (`--quick`); its figures are not the targets.
    pub fn quick() -> WorkflowSizes {
        WorkflowSizes { reports: 1_000, runs: 11 }
    }
}

const START: i64 = 1_795_392_000_000 - 30 * DAY_MS;

pub fn workflow(sizes: &WorkflowSizes) -> Result<()> {
    // ---- the fold alone, a report with 50 events ------------------------------------------------
    progress("deriving a report with 50 events");
    let (facts, events, roster) = fifty_events();
    let policy = Policy::default();
    let mut times = Vec::new();
    for _ in 0..2_001 {
        let t = Instant::now();
        let d = derive(&facts, &events, &roster, &policy);
        times.push(t.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(d);
    }
    let derive_us = median(times);

    // ---- a district's reports in a store --------------------------------------------------------
    let dir = tempfile::tempdir()?;
    let clock = Arc::new(FixedClock::new(START));
    let path = dir.path().join("supervisor.sqlite");
    let mut store = Store::open(&path, OpenOptions { clock: clock.clone(), ..OpenOptions::default() })?;
    let d = sample::district(&mut store, 18, 0)?;
    let staff = sample::staff(&mut store, &d)?;
    let boss = staff.supervisor.id.clone();
    let mut rng = StdRng::seed_from_u64(5);
    let categories: Vec<CategoryId> = ["environment", "safety-hazard", "road-traffic", "city-management"]
        .iter()
        .map(|c| CategoryId::parse(c))
        .collect::<Result<_>>()?;
    progress(&format!("filing {} reports over 30 days and moving them along the loop", sizes.reports));
    let mut fifty = None;
    for i in 0..sizes.reports {
        clock.set(START + (i as i64 * 30 * DAY_MS) / sizes.reports as i64);
        let grid = &d.grids[rng.random_range(0..d.grids.len())];
        let r = store.file_report(NewReport {
            reporter: staff.courier.id.clone(),
            category: categories[i % categories.len()].clone(),
            description: format!("Report {i}: {}", sample::visit_note(&mut rng)),
            location: None,
            address: Some(format!("Building {}", i % 40 + 1)),
            grid: Some(grid.id.clone()),
            photos: vec![],
        })?;
        let steps = if i == 0 { 4 } else { rng.random_range(0..5) };
        let kinds = [
            ReportEventKind::Triaged,
            ReportEventKind::Dispatched,
            ReportEventKind::Accepted,
            ReportEventKind::Resolved,
        ];
        for kind in kinds.iter().take(steps) {
            clock.advance(rng.random_range(1..30) * HOUR_MS);
            let mut e = NewReportEvent::new(r.id.clone(), boss.clone(), *kind);
            if *kind == ReportEventKind::Dispatched {
                e.target = Some(boss.to_string());
            }
            store.add_report_event(e)?;
        }
        if i == 0 {
            // One report with a 50-event log, for the store-side figure.
            for _ in 0..45 {
                store.add_report_event(NewReportEvent::new(r.id.clone(), boss.clone(), ReportEventKind::Comment))?;
            }
            fifty = Some(r.id.clone());
        }
    }
    let now = START + 31 * DAY_MS;
    let fifty = fifty.expect("the first report");
    let mut times = Vec::new();
    for _ in 0..sizes.runs {
        let t = Instant::now();
        std::hint::black_box(store.report_state(&fifty)?);
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let derive_store_us = median(times);

    // ---- overdue in my street: the store's query, then plain SQLite ---------------------------
    progress("overdue in my street");
    let street = &d.streets[0];
    let mut times = Vec::new();
    let mut found = 0;
    for _ in 0..sizes.runs {
        let t = Instant::now();
        found = store.overdue_reports(&street.id, now)?.len();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let store_ms = median(times);

    let plain_path = dir.path().join("plain.sqlite");
    copy_tables(&path, &plain_path)?;
    let plain = rusqlite::Connection::open(&plain_path).db()?;
    plain.pragma_update(None, "journal_mode", "WAL").db()?;
    let mut times = Vec::new();
    let mut plain_found = 0;
    for _ in 0..sizes.runs {
        let t = Instant::now();
        let mut stmt = plain.prepare_cached(OVERDUE_SQL).db()?;
        // Every column read, as the store reads them (it also parses them into typed records).
        let rows = stmt
            .query_map(rusqlite::params![street.id.as_str(), now], |r| {
                (0..9).map(|i| r.get::<_, rusqlite::types::Value>(i)).collect::<rusqlite::Result<Vec<_>>>()
            })
            .db()?;
        plain_found = rows.collect::<rusqlite::Result<Vec<_>>>().db()?.len();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let plain_ms = median(times);
    assert_eq!(found, plain_found, "both answer the same question");

    println!("derive_report_us: {derive_us:.1} us");
    println!("derive_report_store_us: {derive_store_us:.1} us");
    println!("reports: {}", sizes.reports);
    println!("overdue_in_street: {found}");
    println!("overdue_query_ms: {store_ms:.2} ms");
    println!("sqlite_overdue_query_ms: {plain_ms:.2} ms");
    println!("overdue_query_ratio: {:.2}", store_ms / plain_ms);
    Ok(())
}

/// The store's `units` and `reports` tables, with their indexes, copied into a plain database.
fn copy_tables(from: &std::path::Path, to: &std::path::Path) -> Result<()> {
    let conn = rusqlite::Connection::open(to).db()?;
    conn.execute("ATTACH DATABASE ?1 AS store", [from.to_string_lossy()]).db()?;
    let ddl: Vec<String> = {
        let mut stmt = conn
            .prepare(
                "SELECT sql FROM store.sqlite_master WHERE tbl_name IN ('units', 'reports') AND sql IS NOT NULL
             ORDER BY type DESC",
            )
            .db()?;
        let rows = stmt.query_map([], |r| r.get(0)).db()?;
        rows.collect::<rusqlite::Result<_>>().db()?
    };
    for sql in ddl {
        conn.execute_batch(&sql).db()?;
    }
    conn.execute_batch(
        "INSERT INTO main.units SELECT * FROM store.units;
         INSERT INTO main.reports SELECT * FROM store.reports;
         ANALYZE;",
    )
    .db()?;
    conn.execute("DETACH DATABASE store", []).db()?;
    Ok(())
}

/// A report's facts, a 50-event log (the loop with comments and progress notes between the
/// steps, two refused events among them) and its authors.
fn fifty_events() -> (Facts, Vec<ReportEvent>, Roster) {
    let uid = |s: &str| UserId::parse(s).expect("valid id");
    let roster: Roster = [
        ("reporter", Person { role: Role::FlowingReporter, covers_grid: false, department: None }),
        ("li-na", Person { role: Role::GridWorker, covers_grid: true, department: None }),
        ("handler", Person { role: Role::DepartmentHandler, covers_grid: false, department: Some("housing".into()) }),
    ]
    .into_iter()
    .map(|(u, p)| (uid(u), p))
    .collect();
    let mut kinds = vec![
        ("reporter", ReportEventKind::Submitted),
        ("li-na", ReportEventKind::Triaged),
        ("li-na", ReportEventKind::Dispatched),
        ("handler", ReportEventKind::Accepted),
    ];
    for i in 0..43 {
        kinds.push(if i % 3 == 0 {
            ("handler", ReportEventKind::ProgressNote)
        } else {
            ("li-na", ReportEventKind::Comment)
        });
    }
    kinds.extend([
        ("reporter", ReportEventKind::Closed),
        ("handler", ReportEventKind::Resolved),
        ("li-na", ReportEventKind::Closed),
    ]);
    let events = kinds
        .into_iter()
        .enumerate()
        .map(|(i, (author, kind))| ReportEvent {
            id: EventId::parse(&format!("E{i:03}")).expect("valid id"),
            at: i as i64 * HOUR_MS,
            author: uid(author),
            kind,
            note: "On site; the owner was told.".into(),
            target: (kind == ReportEventKind::Dispatched).then(|| "housing".into()),
            score: None,
            photos: vec![],
            classification: (kind == ReportEventKind::Triaged).then_some(Classification::General),
            risk: (kind == ReportEventKind::Triaged).then_some(RiskLevel::Yellow),
        })
        .collect();
    (
        Facts { id: doorstep_core::ReportId::parse("R1").expect("valid id"), reporter: uid("reporter"), created_at: 0 },
        events,
        roster,
    )
}
