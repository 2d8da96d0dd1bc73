//! Bad input gets a typed error with a message an app can show, nothing is written, and the
//! store stays usable. Messages never carry a resident's personal data.

use doorstep_core::*;
use testkit::*;

/// Every derived table and every stored change, to prove a refused call wrote nothing.
fn snapshot(s: &mut Store) -> (doorstep_core::TableDump, Vec<Vec<u8>>) {
    let docs = s.document_ids().unwrap();
    let bytes = docs.iter().map(|d| s.save_document(d).unwrap()).collect();
    (s.dump_query_tables().unwrap(), bytes)
}

fn assert_invalid(r: Result<impl std::fmt::Debug>, field: &str) -> String {
    match r {
        Err(Error::InvalidInput { field: f, reason }) => {
            assert_eq!(f, field, "wrong field blamed: {reason}");
            format!("{}", Error::InvalidInput { field: f, reason })
        }
        other => panic!("expected InvalidInput for {field}, got {other:?}"),
    }
}

#[test]
fn refused_calls_write_nothing_and_the_store_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, f) = district(&dir.path().join("phone.sqlite"));
    let h = household(&mut s, &f, "401", &[CareTag::ElderlyAlone]);
    let before = snapshot(&mut s);

    // Ids: empty, malformed, unknown.
    assert_invalid(HouseholdId::parse(""), "household id");
    assert_invalid(HouseholdId::parse("room 401; DROP TABLE"), "household id");
    assert_invalid(UnitId::parse(&"x".repeat(65)), "unit id");
    let unknown = HouseholdId::parse("01J0000000000000000000000Z").unwrap();
    match s.record_visit(visit(&unknown, &f.li_na.id, VisitKind::Routine)) {
        Err(Error::NotFound { what: "household", id }) => assert_eq!(id, unknown.to_string()),
        other => panic!("expected NotFound household, got {other:?}"),
    }
    let ghost = UserId::parse("nobody").unwrap();
    assert!(matches!(
        s.record_visit(visit(&h.id, &ghost, VisitKind::Routine)),
        Err(Error::NotFound { what: "user", .. })
    ));
    assert!(matches!(
        s.add_household(&f.micro_grid.id, NewHousehold::default()),
        Err(Error::InvalidInput { field: "grid", .. })
    ));

    // Coordinates out of range, and not numbers at all.
    let mut v = visit(&h.id, &f.li_na.id, VisitKind::Routine);
    v.location = Some(GeoPoint { lat: 91.0, lon: 113.6 });
    let msg = assert_invalid(s.record_visit(v), "visit location");
    assert!(msg.contains("latitude"), "{msg}");
    let mut v = visit(&h.id, &f.li_na.id, VisitKind::Routine);
    v.location = Some(GeoPoint { lat: 34.7, lon: f64::NAN });
    assert_invalid(s.record_visit(v), "visit location");
    assert!(GeoPoint::new(34.7, -180.5).is_err());

    // Text over its limit, counted in characters (Chinese included).
    let mut v = visit(&h.id, &f.li_na.id, VisitKind::Routine);
    v.notes = "独".repeat(4_001);
    let msg = assert_invalid(s.record_visit(v), "visit notes");
    assert!(msg.contains("4001 characters") && msg.contains("4000"), "{msg}");
    assert_invalid(s.file_report(report(&f, "")), "report description");

    // Photo hashes that are not 64 lower-case hex digits.
    for bad in ["", "abc", &"g".repeat(64), &"A".repeat(64), &"a".repeat(63)] {
        let mut v = visit(&h.id, &f.li_na.id, VisitKind::Routine);
        let mut p = photo();
        p.sha256 = bad.to_string();
        v.photos = vec![p];
        assert_invalid(s.record_visit(v), "photo hash");
    }
    let mut p = photo();
    p.mime = "application/pdf".into();
    let mut r = report(&f, "Blocked fire exit");
    r.photos = vec![p];
    assert_invalid(s.file_report(r), "photo type");

    // Out-of-range numbers.
    let ev = NewReportEvent {
        report: ReportId::parse("01J0000000000000000000000Z").unwrap(),
        author: f.li_na.id.clone(),
        kind: ReportEventKind::Confirmed,
        note: String::new(),
        target: None,
        score: Some(6),
        photos: vec![],
        classification: None,
        risk: None,
    };
    assert!(matches!(s.add_report_event(ev), Err(Error::NotFound { what: "report", .. })));

    // Corrupt, truncated and foreign document bytes.
    let grid_doc = register(&f);
    let good = s.save_document(&grid_doc).unwrap();
    assert!(matches!(s.merge_document(&grid_doc, b"not automerge"), Err(Error::CorruptDocument { .. })));
    assert!(matches!(s.merge_document(&grid_doc, &good[..good.len() / 2]), Err(Error::CorruptDocument { .. })));
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0xff;
    assert!(s.merge_document(&grid_doc, &flipped).is_err());
    let directory = s.save_document(&DocId::Directory).unwrap();
    assert!(matches!(s.merge_document(&grid_doc, &directory), Err(Error::WrongDocument { .. })));
    assert!(DocId::parse("grid/").is_err() && DocId::parse("visits/1").is_err());

    // Nothing of the above reached the tables or the documents.
    assert_eq!(snapshot(&mut s), before);

    // And the store still works.
    s.record_visit(visit(&h.id, &f.li_na.id, VisitKind::BellCheckAnswered)).unwrap();
    assert_eq!(s.visit_history(&h.id, 10).unwrap().len(), 1);
}

#[test]
fn satisfaction_score_and_event_text_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, f) = district(&dir.path().join("phone.sqlite"));
    let r = s.file_report(report(&f, "Rubbish piled at the gate")).unwrap();
    let ev = |score| NewReportEvent {
        report: r.id.clone(),
        author: f.volunteer.id.clone(),
        kind: ReportEventKind::Confirmed,
        note: String::new(),
        target: None,
        score,
        photos: vec![],
        classification: None,
        risk: None,
    };
    assert_invalid(s.add_report_event(ev(Some(0))), "satisfaction score");
    assert_invalid(s.add_report_event(ev(Some(6))), "satisfaction score");
    // A valid score on a report that is not resolved yet: the workflow refuses it, with why.
    assert_invalid(s.add_report_event(ev(Some(5))), "report event");
    for kind in [ReportEventKind::Dispatched, ReportEventKind::Accepted, ReportEventKind::Resolved] {
        let mut e = NewReportEvent::new(r.id.clone(), f.li_na.id.clone(), kind);
        e.target = Some(f.li_na.id.to_string());
        s.add_report_event(e).unwrap();
    }
    s.add_report_event(ev(Some(5))).unwrap();
    let (_, events) = s.report(&r.id).unwrap();
    assert_eq!(events.len(), 5);
    assert_eq!(s.report_state(&r.id).unwrap().satisfaction, Some(5));
}

#[test]
fn personal_data_never_reaches_an_error_message_or_debug_output() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, f) = district(&dir.path().join("phone.sqlite"));
    let h = household(&mut s, &f, "401", &[]);
    let phone = "138-1234-5678 ext 99999";
    let id_number = "41010519410101123X-EXTRA";
    let name = "Zhao Shulan ".repeat(20);
    for (new, secret, field) in [
        (
            NewResident {
                household: h.id.clone(),
                name: Personal::new("Zhao Shulan"),
                phone: Personal::new(phone),
                id_number: Personal::default(),
                birth_year: Some(1941),
                relation: Relation::Head,
            },
            phone,
            "resident phone",
        ),
        (
            NewResident {
                household: h.id.clone(),
                name: Personal::new("Zhao Shulan"),
                phone: Personal::default(),
                id_number: Personal::new(id_number),
                birth_year: Some(1941),
                relation: Relation::Head,
            },
            id_number,
            "resident ID number",
        ),
        (
            NewResident {
                household: h.id.clone(),
                name: Personal::new(name.as_str()),
                phone: Personal::default(),
                id_number: Personal::default(),
                birth_year: None,
                relation: Relation::Head,
            },
            name.as_str(),
            "resident name",
        ),
    ] {
        let debug = format!("{new:?}");
        let err = s.add_resident(new).unwrap_err();
        let shown = err.to_string();
        assert!(matches!(&err, Error::InvalidInput { field: f, .. } if *f == field), "{shown}");
        assert!(!shown.contains(secret.trim()) && !format!("{err:?}").contains(secret.trim()), "leaked: {shown}");
        assert!(!debug.contains(secret.trim()) && debug.contains("redacted"), "Debug leaks: {debug}");
    }
    assert!(s.residents(&h.id).unwrap().is_empty());
}

#[test]
fn a_newer_schema_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.sqlite");
    drop(district(&path).0);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    match Store::open(&path, OpenOptions::default()) {
        Err(e @ Error::SchemaTooNew { found: 99, .. }) => {
            assert!(e.to_string().contains("update the app"))
        }
        Err(e) => panic!("expected SchemaTooNew, got {e:?}"),
        Ok(_) => panic!("expected SchemaTooNew, the store opened"),
    }
}

#[test]
fn a_full_disk_refuses_the_write_keeps_what_was_stored_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, f) = district(&dir.path().join("phone.sqlite"));
    let h = household(&mut s, &f, "401", &[]);
    let pages: i64 = {
        let conn = rusqlite::Connection::open(dir.path().join("phone.sqlite")).unwrap();
        conn.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap()
    };
    s.limit_pages_for_tests(pages + 2).unwrap();
    let mut kept = 0;
    let err = loop {
        let mut v = visit(&h.id, &f.li_na.id, VisitKind::Routine);
        v.notes = "Long notes so that pages fill up quickly. ".repeat(40);
        match s.record_visit(v) {
            Ok(_) => kept += 1,
            Err(e) => break e,
        }
        assert!(kept < 10_000, "the page limit never bit");
    };
    assert!(matches!(err, Error::Storage { kind: StorageKind::Full, .. }), "{err:?}");
    assert!(err.to_string().contains("full"), "{err}");
    // Nothing half-written: the tables hold exactly the acknowledged visits, and so do the documents.
    assert_eq!(s.visit_history(&h.id, 0).unwrap().len(), kept);
    s.limit_pages_for_tests(1_000_000).unwrap();
    let before = s.dump_query_tables().unwrap();
    s.rebuild_indexes().unwrap();
    assert_eq!(s.dump_query_tables().unwrap(), before);
    // Space again: the phone goes on recording.
    s.record_visit(visit(&h.id, &f.li_na.id, VisitKind::BellCheckAnswered)).unwrap();
    assert_eq!(s.visit_history(&h.id, 0).unwrap().len(), kept + 1);
}

#[test]
fn malformed_records_and_replaced_maps_from_a_peer_are_refused_whole() {
    use automerge::{transaction::Transactable, AutoCommit, ObjType, ReadDoc, ROOT};
    let dir = tempfile::tempdir().unwrap();
    let (mut s, f) = district(&dir.path().join("phone.sqlite"));
    let h = household(&mut s, &f, "401", &[]);
    s.record_visit(visit(&h.id, &f.li_na.id, VisitKind::Routine)).unwrap();
    let (register, visits) = (register(&f), month_visits(&f));
    let saved_before = [s.save_document(&register).unwrap(), s.save_document(&visits).unwrap()];
    let before = s.dump_query_tables().unwrap();

    // Peers' copies with well-formed Automerge but records that make no sense: each merge is
    // refused with the code and the record it names, and nothing of it is kept.
    type Edit = Box<dyn Fn(&mut AutoCommit)>;
    let visit_json = |id: &str, household: &str| {
        serde_json::json!({"id": id, "household": household, "worker": f.li_na.id.as_str(),
            "at": MORNING, "kind": "routine", "outcome": "all_well"})
        .to_string()
    };
    let hh = h.id.as_str().to_string();
    let cases: Vec<(&str, &str, Edit)> = vec![
        ("bad_record", "V-number", Box::new(|p| put_in(p, "visits", "V-number", 5))),
        ("bad_record", "V-text", Box::new(|p| put_in(p, "visits", "V-text", "{not json"))),
        ("bad_record", "V-mismatch", {
            let v = visit_json("V-other", &hh);
            Box::new(move |p| put_in(p, "visits", "V-mismatch", v.as_str()))
        }),
        ("bad_record", "V-enum", {
            let v = visit_json("V-enum", &hh).replace("routine", "teleport");
            Box::new(move |p| put_in(p, "visits", "V-enum", v.as_str()))
        }),
        (
            "bad_record",
            "V-as-text",
            Box::new(|p| {
                let (_, visits) = p.get(ROOT, "visits").unwrap().unwrap();
                let t = p.put_object(&visits, "V-as-text", ObjType::Text).unwrap();
                p.splice_text(&t, 0, 0, "{}").unwrap();
            }),
        ),
        ("bad_record", "H-scalar", Box::new(|p| put_in(p, "households", "H-scalar", "just text"))),
        (
            "bad_record",
            "H-odd",
            Box::new(|p| {
                let (_, households) = p.get(ROOT, "households").unwrap().unwrap();
                let odd = p.put_object(&households, "H-odd", ObjType::Map).unwrap();
                p.put(&odd, "id", "H-odd").unwrap();
                p.put(&odd, "risk", "purple").unwrap();
            }),
        ),
        (
            "bad_record",
            "R-stranger",
            Box::new(|p| {
                let (_, residents) = p.get(ROOT, "residents").unwrap().unwrap();
                let stranger = p.put_object(&residents, "R-stranger", ObjType::Map).unwrap();
                for (k, v) in [
                    ("id", "R-stranger"),
                    ("household", "H-not-in-this-grid"),
                    ("name", "X"),
                    ("phone", ""),
                    ("id_number", ""),
                    ("relation", "head"),
                ] {
                    p.put(&stranger, k, v).unwrap();
                }
            }),
        ),
        ("root_changed", "visits", Box::new(|p| p.put(ROOT, "visits", "gone").unwrap())),
        (
            "root_changed",
            "households",
            Box::new(|p| {
                p.put_object(ROOT, "households", ObjType::Map).unwrap();
            }),
        ),
        ("root_changed", "residents", Box::new(|p| p.delete(ROOT, "residents").unwrap())),
        ("deleted_record", "households", {
            let hh = hh.clone();
            Box::new(move |p| {
                let (_, households) = p.get(ROOT, "households").unwrap().unwrap();
                p.delete(&households, hh.as_str()).unwrap();
            })
        }),
        ("replaced_record", "households", {
            let hh = hh.clone();
            Box::new(move |p| {
                let (_, households) = p.get(ROOT, "households").unwrap().unwrap();
                p.put_object(&households, hh.as_str(), ObjType::Map).unwrap();
            })
        }),
    ];
    for (code, names, edit) in cases {
        // Visits live in the month's document, households and residents in the register.
        let (doc, saved) = if names.starts_with('V') || names == "visits" {
            (&visits, &saved_before[1])
        } else {
            (&register, &saved_before[0])
        };
        let mut peer = AutoCommit::load(saved).unwrap();
        edit(&mut peer);
        match s.merge_document(doc, &peer.save()) {
            Err(Error::Refused { code: c, message }) => {
                assert_eq!(c, code, "{names}: {message}");
                assert!(message.contains(names), "{message}");
            }
            other => panic!("{names}: {other:?}"),
        }
        assert_eq!(&s.save_document(doc).unwrap(), saved, "{names}");
        assert_eq!(s.dump_query_tables().unwrap(), before, "{names}");
    }
    // …and so is a copy that renamed the document.
    let mut renamed = AutoCommit::load(&saved_before[0]).unwrap();
    renamed.put(ROOT, "doc", "register/elsewhere").unwrap();
    assert!(matches!(s.merge_document(&register, &renamed.save()), Err(Error::WrongDocument { .. })));
    assert_eq!(s.save_document(&register).unwrap(), saved_before[0]);
    s.record_visit(visit(&h.id, &f.li_na.id, VisitKind::Routine)).unwrap();
    assert_eq!(s.visit_history(&h.id, 0).unwrap().len(), 2);
}

/// Puts a plain value under `key` in one of the document's collections, as a hostile client would.
fn put_in(peer: &mut automerge::AutoCommit, collection: &str, key: &str, value: impl Into<automerge::ScalarValue>) {
    use automerge::{transaction::Transactable, ReadDoc, ROOT};
    let (_, map) = peer.get(ROOT, collection).unwrap().unwrap();
    peer.put(&map, key, value).unwrap();
}

#[test]
fn a_second_open_of_the_same_store_is_refused_until_the_first_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.sqlite");
    let (mut s, f) = district(&path);
    let h = household(&mut s, &f, "401", &[]);
    // A background worker of the app opening the same file.
    let err = Store::open(&path, OpenOptions::default()).err().expect("a second open is refused");
    assert!(
        matches!(&err, Error::Storage { kind: StorageKind::Other, detail } if detail.contains("already open")),
        "{err}"
    );
    s.record_visit(visit(&h.id, &f.li_na.id, VisitKind::Routine)).unwrap();
    drop(s);
    let s = Store::open(&path, OpenOptions::default()).unwrap();
    assert_eq!(s.visit_history(&h.id, 0).unwrap().len(), 1);
}

#[test]
fn records_a_store_cannot_read_are_listed_not_dropped_silently() {
    use automerge::{transaction::Transactable, AutoCommit, ReadDoc, ROOT};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.sqlite");
    let (mut s, f) = district(&path);
    let h = household(&mut s, &f, "401", &[]);
    s.record_visit(visit(&h.id, &f.li_na.id, VisitKind::Routine)).unwrap();
    let grid = month_visits(&f);
    // A document as an older server handed it over, with a visit no version can read.
    let mut am = AutoCommit::load(&s.save_document(&grid).unwrap()).unwrap();
    let (_, visits) = am.get(ROOT, "visits").unwrap().unwrap();
    am.put(&visits, "V-unreadable", "{\"id\": \"V-unreadable\", \"kind\": 7}").unwrap();
    am.commit();
    assert!(s.rejected_records().unwrap().is_empty());
    drop(s);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE documents SET snapshot = ?1 WHERE doc_id = ?2",
        rusqlite::params![am.save(), grid.to_string()],
    )
    .unwrap();
    conn.execute("DELETE FROM changes WHERE doc_id = ?1", [grid.to_string()]).unwrap();
    drop(conn);
    let mut s = open(&path, &f.clock);
    s.rebuild_indexes().unwrap();
    let rejected = s.rejected_records().unwrap();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(
        (rejected[0].doc.clone(), rejected[0].collection.as_str(), rejected[0].record_id.as_str()),
        (grid, "visits", "V-unreadable")
    );
    assert_eq!(s.visit_history(&h.id, 0).unwrap().len(), 1, "the readable visit is still shown");
}

#[test]
fn a_phone_registered_to_one_user_records_only_as_that_user() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, f) = district(&dir.path().join("phone.sqlite"));
    let h = household(&mut s, &f, "401", &[]);
    // Not registered yet (the office's store), it records as anyone.
    s.record_visit(visit(&h.id, &f.li_na.id, VisitKind::Routine)).unwrap();
    s.register_device(&f.volunteer.id).unwrap();
    let before = s.dump_query_tables().unwrap();
    // Every other replica would refuse these as forged: the phone refuses them first.
    let err = s.record_visit(visit(&h.id, &f.li_na.id, VisitKind::Routine)).unwrap_err();
    assert!(matches!(&err, Error::InvalidInput { field: "author", .. }), "{err}");
    let mut as_li = report(&f, "Broken street light");
    as_li.reporter = f.li_na.id.clone();
    assert!(matches!(s.file_report(as_li), Err(Error::InvalidInput { field: "author", .. })));
    assert_eq!(s.dump_query_tables().unwrap(), before);
    // As herself, the volunteer records and files.
    s.record_visit(visit(&h.id, &f.volunteer.id, VisitKind::Routine)).unwrap();
    assert_eq!(s.visit_history(&h.id, 0).unwrap().len(), 2);
    let r = s.file_report(report(&f, "Broken street light")).unwrap();
    let err = s
        .add_report_event(NewReportEvent::new(r.id.clone(), f.li_na.id.clone(), ReportEventKind::Triaged))
        .unwrap_err();
    assert!(matches!(&err, Error::InvalidInput { field: "author", .. }), "{err}");
}

/// A document file from another phone: its records' authors are checked against the directory
/// (`import_document`); the office's own import may name anyone (`merge_document`).
#[test]
fn an_imported_document_must_name_the_writers_of_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let (mut office, f) = district(&dir.path().join("office.sqlite"));
    let h = household(&mut office, &f, "401", &[]);
    office.record_visit(visit(&h.id, &f.li_na.id, VisitKind::Routine)).unwrap();
    let grid = month_visits(&f);
    let bytes = office.save_document(&grid).unwrap();
    let directory = office.save_document(&DocId::Directory).unwrap();
    let mut phone = open(&dir.path().join("phone.sqlite"), &f.clock);
    phone.merge_document(&DocId::Directory, &directory).unwrap();
    // The office's store is no device of Li Na's: a phone refuses her visit from that file.
    let err = phone.import_document(&grid, &bytes).unwrap_err();
    assert!(matches!(&err, Error::Refused { code, .. } if code == "forged_author"), "{err}");
    assert!(phone.households(&HouseholdFilter::default()).unwrap().is_empty());
    // The office importing its own history is the one exception.
    phone.merge_document(&register(&f), &office.save_document(&register(&f)).unwrap()).unwrap();
    phone.merge_document(&grid, &bytes).unwrap();
    assert_eq!(phone.visit_history(&h.id, 0).unwrap().len(), 1);
}

/// The units a record names decide who holds it, so they must be the units of the document it
/// sits in: a visit in one micro-grid's month naming a household of another (which would reset
/// that household's visit clock on the grid worker's phone), or a household in a register that
/// names another micro-grid, is refused whole.
#[test]
fn records_in_another_units_document_are_refused() {
    use automerge::{transaction::Transactable, AutoCommit, ReadDoc, ROOT};
    let dir = tempfile::tempdir().unwrap();
    let (mut s, f) = district(&dir.path().join("office.sqlite"));
    let next_door = s
        .add_unit(NewUnit { kind: UnitKind::MicroGrid, parent: Some(f.grid.id.clone()), name: "Building 4".into() })
        .unwrap();
    let mine = household(&mut s, &f, "401", &[]);
    s.record_visit(visit(&mine.id, &f.li_na.id, VisitKind::Routine)).unwrap();
    let theirs = s
        .add_household(&f.grid.id, NewHousehold { micro_grid: Some(next_door.id.clone()), ..household_at("1", "101") })
        .unwrap();
    let before = s.dump_query_tables().unwrap();
    let edit = |s: &mut Store, doc: &DocId, change: &dyn Fn(&mut AutoCommit)| {
        let mut am = AutoCommit::load(&s.save_document(doc).unwrap()).unwrap();
        change(&mut am);
        am.commit();
        am.save()
    };
    let visit_of_theirs = serde_json::json!({"id": "01JOTHERREGISTER0000000000", "household": theirs.id.as_str(),
        "worker": f.li_na.id.as_str(), "at": MORNING, "kind": "bell_check_answered", "outcome": "all_well"});
    let visits = month_visits(&f);
    let bytes = edit(&mut s, &visits, &|am| {
        let (_, map) = am.get(ROOT, "visits").unwrap().unwrap();
        am.put(&map, "01JOTHERREGISTER0000000000", visit_of_theirs.to_string()).unwrap();
    });
    let err = s.merge_document(&visits, &bytes).unwrap_err();
    assert!(
        matches!(&err, Error::Refused { code, message } if code == "bad_record" && message.contains("another register")),
        "{err}"
    );
    let register = register(&f);
    let bytes = edit(&mut s, &register, &|am| {
        let (_, map) = am.get(ROOT, "households").unwrap().unwrap();
        let (_, h) = am.get(&map, mine.id.as_str()).unwrap().unwrap();
        am.put(&h, "micro_grid", next_door.id.as_str()).unwrap();
    });
    let err = s.merge_document(&register, &bytes).unwrap_err();
    assert!(matches!(&err, Error::Refused { code, .. } if code == "bad_record"), "{err}");
    // Its micro-grid left as it is, its grid changed to one the micro-grid is not part of.
    let bytes = edit(&mut s, &register, &|am| {
        let (_, map) = am.get(ROOT, "households").unwrap().unwrap();
        let (_, h) = am.get(&map, mine.id.as_str()).unwrap().unwrap();
        am.put(&h, "grid", f.other_grid.id.as_str()).unwrap();
    });
    let err = s.merge_document(&register, &bytes).unwrap_err();
    assert!(matches!(&err, Error::Refused { code, .. } if code == "bad_record"), "{err}");
    assert_eq!(s.dump_query_tables().unwrap(), before);
    assert_eq!(s.household(&theirs.id).unwrap().last_contact_at, None, "her clock was not reset");
}

fn household_at(building: &str, room: &str) -> NewHousehold {
    NewHousehold {
        address: Address { building: building.into(), unit: "1".into(), room: room.into() },
        ..Default::default()
    }
}

/// A server address the app got wrong is refused when the client is made, before any request
/// (it used to become a `Network` error after five retries); a phone not in the directory gets
/// `NotEnrolled` when it starts a peer sync or answers one.
#[test]
fn a_malformed_server_address_and_an_unenrolled_phone_get_their_own_errors() {
    use doorstep_core::sync::{http::ServerClient, PeerResponder, Session};
    for bad in ["", "sync.example.org", "htp:/nowhere", "ftp://sync.example.org", "http://", "https://x.org/?a=1"] {
        let msg = assert_invalid(ServerClient::new(bad).map(|_| ()), "server address");
        assert!(msg.contains("server address"), "{bad}: {msg}");
    }
    for (good, used) in [
        ("http://127.0.0.1:7300", "http://127.0.0.1:7300"),
        (" https://sync.example.org/ ", "https://sync.example.org"),
        ("HTTPS://sync.example.org/doorstep/", "https://sync.example.org/doorstep"),
        ("http://[::1]:7300", "http://[::1]:7300"),
    ] {
        assert_eq!(ServerClient::new(good).unwrap().address(), used, "{good}");
    }
    let dir = tempfile::tempdir().unwrap();
    let mut stranger = Store::open(dir.path().join("stranger.sqlite"), OpenOptions::default()).unwrap();
    assert!(matches!(Session::with_peer(&mut stranger), Err(Error::NotEnrolled)));
    assert!(matches!(PeerResponder::new(&stranger), Err(Error::NotEnrolled)));
    assert!(Error::NotEnrolled.to_string().contains("sync with the server first"));
}
