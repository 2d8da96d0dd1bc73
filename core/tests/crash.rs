//! A writer killed with SIGKILL in the middle of a stream of writes and compactions loses
//! nothing it had acknowledged, and the store opens cleanly afterwards.
//!
//! The test runs itself as the writer: `crash_writer_child` is ignored in normal runs, and the
//! parent starts this test binary again to run just it, with `DOORSTEP_CRASH_STORE` set.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use doorstep_core::*;
use testkit::*;

#[test]
#[ignore = "the writer half of a_killed_writer_loses_nothing_it_acknowledged, which starts it"]
fn crash_writer_child() {
    let path = std::env::var("DOORSTEP_CRASH_STORE").expect("started by a_killed_writer_loses_nothing_it_acknowledged");
    let household = HouseholdId::parse(&std::env::var("DOORSTEP_CRASH_HOUSEHOLD").unwrap()).unwrap();
    let worker = UserId::parse(&std::env::var("DOORSTEP_CRASH_WORKER").unwrap()).unwrap();
    let mut s = Store::open(&path, OpenOptions::default()).unwrap();
    let grid = DocId::parse(&std::env::var("DOORSTEP_CRASH_GRID").unwrap()).unwrap();
    let out = std::io::stdout();
    for i in 0..200_000 {
        let mut v = visit(&household, &worker, VisitKind::Routine);
        v.notes = format!("visit number {i}");
        let recorded = s.record_visit(v).unwrap();
        // Acknowledged: record_visit has returned.
        writeln!(out.lock(), "ACK {}", recorded.id).unwrap();
        if i % 97 == 96 {
            writeln!(out.lock(), "COMPACTING").unwrap();
            s.compact(&grid).unwrap();
            writeln!(out.lock(), "COMPACTED").unwrap();
        }
    }
}

#[test]
fn a_killed_writer_loses_nothing_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.sqlite");
    let (mut s, f) = district(&path);
    let h = household(&mut s, &f, "401", &[CareTag::ElderlyAlone]);
    drop(s);

    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_writer_child", "--ignored", "--nocapture", "--test-threads=1"])
            .env("DOORSTEP_CRASH_STORE", &path)
            .env("DOORSTEP_CRASH_HOUSEHOLD", h.id.as_str())
            .env("DOORSTEP_CRASH_WORKER", f.li_na.id.as_str())
            .env(
                "DOORSTEP_CRASH_GRID",
                DocId::Visits(f.micro_grid.id.clone(), Period::of(SystemClock.now_ms())).to_string(),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut acked = Vec::new();
        let mut compactions = 0;
        // Kill at a different point each round, after at least one compaction: rounds 0 and 1
        // between two writes, the last one as soon as a compaction has started.
        let kill_after = 250 + round * 137;
        while let Some(Ok(line)) = lines.next() {
            if let Some(id) = line.strip_prefix("ACK ") {
                acked.push(VisitId::parse(id).unwrap());
            } else if line == "COMPACTED" {
                compactions += 1;
            }
            let during_compaction = round == 2 && compactions >= 1 && line == "COMPACTING";
            if acked.len() == kill_after || during_compaction {
                child.kill().unwrap(); // SIGKILL
                break;
            }
        }
        // Whatever the writer acknowledged before dying is still in the pipe.
        for line in lines.map_while(|l| l.ok()) {
            if let Some(id) = line.strip_prefix("ACK ") {
                acked.push(VisitId::parse(id).unwrap());
            }
        }
        child.wait().unwrap();
        assert!(compactions >= 1, "the writer should have compacted before being killed");

        let conn = rusqlite::Connection::open(&path).unwrap();
        let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
        drop(conn);

        let mut s = Store::open(&path, OpenOptions::default()).unwrap();
        let seen: std::collections::HashSet<VisitId> =
            s.visit_history(&h.id, 0).unwrap().into_iter().map(|v| v.id).collect();
        let missing = acked.iter().filter(|id| !seen.contains(*id)).count();
        assert_eq!(missing, 0, "round {round}: {missing} of {} acknowledged visits lost", acked.len());
        // The documents hold them too, not just the query tables.
        s.rebuild_indexes().unwrap();
        let rebuilt = s.visit_history(&h.id, 0).unwrap().len();
        assert!(
            rebuilt >= acked.len(),
            "round {round}: document has {rebuilt} visits, {} were acknowledged",
            acked.len()
        );
        // And the store takes new writes.
        s.record_visit(visit(&h.id, &f.li_na.id, VisitKind::BellCheckAnswered)).unwrap();
    }
}

#[test]
#[ignore = "the upgrading half of a_store_killed_while_upgrading_opens_upgraded_and_complete, which starts it"]
fn upgrade_child() {
    let path = std::env::var("DOORSTEP_UPGRADE_STORE").expect("started by a_store_killed_while_upgrading_…");
    println!("OPENING");
    let _s = Store::open(&path, OpenOptions::default()).unwrap();
    println!("OPENED");
}

/// A schema upgrade rebuilds the query tables from the documents; a kill at any moment of it
/// leaves a store that opens upgraded with every table complete (never the new schema with
/// tables that were not rebuilt).
#[test]
fn a_store_killed_while_upgrading_opens_upgraded_and_complete() {
    use doorstep_core::hooks::{newest_rebuilding_upgrade, SCHEMA_VERSION as CURRENT};
    let dir = tempfile::tempdir().unwrap();
    let current = dir.path().join("current.sqlite");
    let (mut s, f) = district(&current);
    // Enough to make the rebuild take a while: 120 households, 1,200 visits.
    for i in 0..120 {
        let h = household(&mut s, &f, &format!("{}", 100 + i), &[CareTag::ElderlyAlone]);
        for _ in 0..10 {
            s.record_visit(visit(&h.id, &f.li_na.id, VisitKind::BellCheckAnswered)).unwrap();
        }
    }
    let docs: Vec<(DocId, Vec<u8>)> =
        s.document_ids().unwrap().into_iter().map(|d| (d.clone(), s.save_document(&d).unwrap())).collect();
    let expected = s.dump_query_tables().unwrap();
    drop(s);
    // The same documents in a store of the newest schema whose upgrade rebuilds the query
    // tables, with no query rows yet.
    let template = dir.path().join("old.sqlite");
    old_store(&template, newest_rebuilding_upgrade(), &docs);

    let mut interrupted = 0;
    for delay_ms in [0u64, 1, 3, 6, 10, 20, 40, 80, 160, 320, 640] {
        let path = dir.path().join(format!("upgrading-{delay_ms}.sqlite"));
        std::fs::copy(&template, &path).unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "upgrade_child", "--ignored", "--nocapture", "--test-threads=1"])
            .env("DOORSTEP_UPGRADE_STORE", &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        while let Some(Ok(line)) = lines.next() {
            // The test harness may print its own words before the child's on the same line.
            if line.ends_with("OPENING") {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL, wherever the upgrade is
        let opened = lines.map_while(|l| l.ok()).any(|l| l.contains("OPENED"));
        child.wait().unwrap();
        if !opened {
            interrupted += 1;
        }
        let s = Store::open(&path, OpenOptions { clock: f.clock.clone(), ..OpenOptions::default() }).unwrap();
        assert_eq!(s.dump_query_tables().unwrap(), expected, "killed {delay_ms} ms into the upgrade");
        let conn = rusqlite::Connection::open(&path).unwrap();
        assert_eq!(conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)).unwrap(), CURRENT);
        if opened && delay_ms > 0 {
            break; // the upgrade is shorter than this delay: every moment of it was tried
        }
    }
    assert!(interrupted >= 2, "only {interrupted} upgrades were killed before they finished");
}
