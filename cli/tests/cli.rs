//! The `doorstep` command as a user runs it.

use std::process::Command;

fn doorstep(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_doorstep")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn the_demo_plays_a_field_day_and_the_supervisor_sees_everything() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("demo");
    let (ok, out, err) = doorstep(&["demo", "--dir", target.to_str().unwrap()]);
    assert!(ok, "demo failed: {err}\n{out}");
    assert!(out.contains("registering households: 1200 of 1200"), "{out}");
    assert!(out.contains("=== Li Na's phone"), "{out}");
    assert!(out.contains("Open reports: 3"), "{out}");
    assert!(out.contains("Report ") && out.contains("carries 1 photo(s)"), "{out}");
    assert!(out.contains("[stairwell]") && out.contains("Li Na's phone now shows 1 open report(s)"), "{out}");
    assert!(out.contains("the follow-up visit after the unanswered bell reached the server"), "{out}");
    assert!(out.contains("[li-na-phone] 18:00: synced with the server") && out.contains("pending changes: 0"), "{out}");
    assert!(out.contains("escalated to the street level"), "{out}");
    assert!(out.contains("now closed, handled by Housing and fire safety, satisfaction 5/5"), "{out}");
    let csv = std::fs::read_to_string(target.join("assessment.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 4 + 3, "{csv}");
    for f in [
        "office.sqlite",
        "server.sqlite",
        "supervisor-phone.sqlite",
        "li-na-phone.sqlite",
        "zhang-wei-phone.sqlite",
        "volunteer-phone.sqlite",
        "courier-phone.sqlite",
    ] {
        assert!(target.join(f).exists(), "{f} missing");
    }
    // The folder is not empty any more: a second run refuses instead of mixing stores.
    let (ok, _, err) = doorstep(&["demo", "--dir", target.to_str().unwrap()]);
    assert!(!ok && err.contains("not empty"), "{err}");
}

/// The value of a bench's `name: value unit` line, which must be there and be a positive number.
fn figure(out: &str, name: &str) -> f64 {
    let line =
        out.lines().find(|l| l.starts_with(&format!("{name}: "))).unwrap_or_else(|| panic!("no {name} in\n{out}"));
    let value: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(value.is_finite() && value > 0.0, "{line}");
    value
}

#[test]
fn bench_store_prints_every_figure_as_name_value_unit() {
    let (ok, out, err) = doorstep(&["bench", "store", "--quick"]);
    assert!(ok, "bench failed: {err}");
    for name in [
        "record_visit_us",
        "sqlite_insert_us",
        "record_visit_ratio",
        "visit_as_value_us",
        "visit_as_map_us",
        "visit_as_value_change_bytes",
        "visit_as_map_change_bytes",
        "open_query_ms",
        "sqlite_open_query_ms",
        "open_query_ratio",
        // Counted by callgrind (scripts/setup installs valgrind), so they do not drift with load.
        "open_query_instructions",
        "sqlite_open_query_instructions",
        "open_query_instructions_ratio",
        "store_schema_instructions",
        "sqlite_schema_instructions",
        "bytes_per_visit",
        "sqlite_bytes_per_visit",
        "bytes_per_visit_ratio",
    ] {
        figure(&out, name);
    }
    assert!(!err.contains("warning"), "{err}");
}

#[test]
fn unknown_commands_print_usage() {
    let (ok, _, err) = doorstep(&["frobnicate"]);
    assert!(!ok && err.contains("usage:"));
}

#[test]
fn bench_sync_prints_every_figure_as_name_value_unit() {
    let (ok, out, err) = doorstep(&["bench", "sync", "--quick"]);
    assert!(ok, "bench failed: {err}");
    for name in [
        "steady_sync_bytes_ratio",
        "automerge_warm_sync_bytes_ratio",
        "one_visit_sync_bytes",
        "noop_sync_bytes",
        "noop_sync_round_trips",
        "initial_sync_ms",
        "local_load_ms",
        "initial_sync_ratio",
    ] {
        figure(&out, name);
    }
}

#[test]
fn bench_growth_prints_every_figure_and_the_volunteer_holds_her_micro_grid_only() {
    let (ok, out, err) = doorstep(&["bench", "growth", "--quick"]);
    assert!(ok, "bench failed: {err}");
    for name in [
        "largest_phone_document_bytes",
        "first_write_after_open_ms",
        "load_peak_heap_bytes",
        "load_peak_heap_ratio",
        "load_peak_heap_per_change_bytes",
        "plain_automerge_load_peak_heap_per_change_bytes",
        "load_peak_heap_inflated_ratio",
        "load_peak_heap_one_change_ratio",
        "load_peak_rss_ratio",
        "phone_store_bytes",
        "new_phone_initial_sync_bytes",
        "server_sync_10_visits_ms",
        "server_sync_10_visits_after_restart_ms",
    ] {
        figure(&out, name);
    }
    assert!(
        figure(&out, "load_peak_heap_bytes") > figure(&out, "load_peak_heap_empty_document_bytes"),
        "loading the busiest document takes more heap than loading an empty one: {out}"
    );
    assert!(
        figure(&out, "busiest_document_inflated_bytes") > figure(&out, "largest_phone_document_bytes"),
        "the busiest document's columns are deflated when it is saved: {out}"
    );
    let (held, of_hers) = (figure(&out, "volunteer_residents_held"), figure(&out, "micro_grid_residents"));
    assert_eq!(held, of_hers, "{out}");
    assert!(figure(&out, "phone_documents") > 3.0, "the grid is kept in many small documents: {out}");
}

#[test]
fn bench_upgrade_converts_every_record_of_an_old_grid_and_prints_its_cost() {
    let (ok, out, err) = doorstep(&["bench", "upgrade", "--quick"]);
    assert!(ok, "bench failed: {err}");
    for name in ["merge_old_grid_ms", "automerge_load_old_grid_ms", "convert_grid_ms", "convert_grid_per_load_ratio"] {
        figure(&out, name);
    }
    for (old, converted) in [
        ("old_grid_households", "converted_households"),
        ("old_grid_residents", "converted_residents"),
        ("old_grid_visits", "converted_visits"),
    ] {
        assert!(figure(&out, old) > 0.0, "{out}");
        assert_eq!(figure(&out, old), figure(&out, converted), "{out}");
    }
    assert!(out.lines().any(|l| l == "converted_skipped: 0 records"), "{out}");
    assert!(figure(&out, "converted_documents") > 2.0, "registers and months: {out}");
}

#[test]
fn serve_refuses_a_bad_configuration_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nlisten_typo = 1\n").unwrap();
    let (ok, _, err) = doorstep(&["serve", "--config", file.to_str().unwrap()]);
    assert!(!ok && err.contains("configuration file is not valid"), "{err}");
}

#[test]
fn serve_logs_json_answers_healthz_and_stops_gracefully_on_sigterm() {
    use std::io::{BufRead, BufReader, Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_doorstep"))
        .arg("serve")
        .env("DOORSTEP_LISTEN", "127.0.0.1:0")
        .env("DOORSTEP_DATABASE", dir.path().join("server.sqlite"))
        .env("DOORSTEP_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    // Every line is JSON; the first start makes the deployment key, then the server listens.
    let mut messages = Vec::new();
    let log = loop {
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        let log: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        messages.push(log["fields"]["message"].as_str().unwrap_or_default().to_string());
        if log["fields"]["message"] == "doorstep server listening" {
            break log;
        }
        assert!(messages.len() < 5, "the server did not say it listens: {messages:?}");
    };
    assert_eq!(messages, ["made the deployment key", "doorstep server listening"]);
    let addr = log["fields"]["addr"].as_str().unwrap().to_string();

    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok\n"), "{answer}");

    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "{status:?} {rest}");
    assert!(rest.contains("doorstep server stopped"), "{rest}");
}

#[test]
fn bench_workflow_prints_every_figure_as_name_value_unit() {
    let (ok, out, err) = doorstep(&["bench", "workflow", "--quick"]);
    assert!(ok, "bench failed: {err}");
    for name in [
        "derive_report_us",
        "derive_report_store_us",
        "overdue_query_ms",
        "sqlite_overdue_query_ms",
        "overdue_query_ratio",
    ] {
        figure(&out, name);
    }
    figure(&out, "overdue_in_street"); // the sample has overdue reports
}

/// An operator lists a store's documents, saves one to a file and merges it into another store,
/// each one command; bad input gets a clear error and changes nothing.
#[test]
fn ls_export_and_import_move_a_stores_documents_as_files() {
    use doorstep_core::*;
    let dir = tempfile::tempdir().unwrap();
    let (office, copy) = (dir.path().join("office.sqlite"), dir.path().join("copy.sqlite"));
    let household = {
        let mut s = Store::open(&office, OpenOptions::default()).unwrap();
        let mut parent = None;
        for (kind, name) in [
            (UnitKind::District, "Jinshui District"),
            (UnitKind::Street, "Wenhua Road"),
            (UnitKind::Community, "Weilai"),
            (UnitKind::Grid, "Weilai Grid 1"),
        ] {
            parent = Some(s.add_unit(NewUnit { kind, parent: parent.clone(), name: name.into() }).unwrap().id);
        }
        let new = NewHousehold {
            micro_grid: None,
            address: Address { building: "3".into(), unit: "2".into(), room: "301".into() },
            location: None,
            care_tags: Default::default(),
            risk: None,
            notes: String::new(),
        };
        s.add_household(&parent.unwrap(), new).unwrap()
    };
    let register = format!("register/{}", household.grid);
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();

    let (ok, out, err) = doorstep(&["ls", &path(&office)]);
    assert!(ok, "{err}");
    let listed: Vec<&str> = out.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(listed, vec!["directory", register.as_str()], "{out}");
    assert!(out.lines().all(|l| l.contains(" bytes\t") && l.ends_with(" change rows")), "{out}");

    for doc in ["directory", register.as_str()] {
        let file = dir.path().join(doc.replace('/', "_"));
        let (ok, _, err) = doorstep(&["export", &path(&office), doc, &path(&file)]);
        assert!(ok && err.contains("bytes written"), "{err}");
        let (ok, out, err) = doorstep(&["import", &path(&copy), doc, &path(&file)]);
        assert!(ok && out.contains(" new changes"), "{err}{out}");
    }
    let s = Store::open(&copy, OpenOptions::default()).unwrap();
    assert_eq!(s.household(&household.id).unwrap().address.room, "301");
    drop(s);
    let (_, copied, _) = doorstep(&["ls", &path(&copy)]);

    // A document the store does not hold, a file that is not a document, a document under
    // another id, a store that is not there, a store open elsewhere: each a clear error.
    let (ok, _, err) = doorstep(&["export", &path(&office), "report/01J0000000000000000000000Z", "-"]);
    assert!(!ok && err.contains("no document"), "{err}");
    let junk = dir.path().join("junk");
    std::fs::write(&junk, b"not a document").unwrap();
    let (ok, _, err) = doorstep(&["import", &path(&copy), &register, &path(&junk)]);
    assert!(!ok && err.starts_with("error: "), "{err}");
    let directory_file = dir.path().join("directory");
    let (ok, _, err) = doorstep(&["import", &path(&copy), &register, &path(&directory_file)]);
    assert!(!ok && err.contains("another document"), "{err}");
    let (ok, _, err) = doorstep(&["ls", &path(&dir.path().join("nowhere.sqlite"))]);
    assert!(!ok && err.contains("no store"), "{err}");
    for over in [office.clone(), dir.path().join("office.sqlite-wal")] {
        let (ok, _, err) = doorstep(&["export", &path(&office), "directory", &path(&over)]);
        assert!(!ok && err.contains("is the store"), "{err}");
    }
    let (ok, out, _) = doorstep(&["ls", &path(&office)]);
    assert!(ok && out.starts_with("directory\t"), "the store is whole: {out}");
    let (ok, _, err) = doorstep(&["export", &path(&office), "visits/x", "-"]);
    assert!(!ok && err.contains("document"), "{err}");
    let held = Store::open(&copy, OpenOptions::default()).unwrap();
    let (ok, _, err) = doorstep(&["ls", &path(&copy)]);
    assert!(!ok && err.contains("already open"), "{err}");
    drop(held);
    let (_, after, _) = doorstep(&["ls", &path(&copy)]);
    assert_eq!(after, copied, "the refused imports changed nothing");
}
