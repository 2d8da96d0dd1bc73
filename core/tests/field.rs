//! Scenarios as the field tells them: what a grid worker, a volunteer and the office see.

use std::collections::BTreeSet;

use doorstep_core::*;
use testkit::*;

fn exchange(a: &mut Store, b: &mut Store) {
    for _ in 0..2 {
        for d in a.document_ids().unwrap() {
            let bytes = a.save_document(&d).unwrap();
            b.merge_document(&d, &bytes).unwrap();
        }
        std::mem::swap(a, b);
    }
}

#[test]
fn two_workers_visit_the_same_household_offline_then_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (mut office, f) = district(&dir.path().join("office.sqlite"));
    let h = household(&mut office, &f, "401", &[CareTag::ElderlyAlone]);
    let mut li = open(&dir.path().join("li.sqlite"), &f.clock);
    let mut wang = open(&dir.path().join("wang.sqlite"), &f.clock);
    exchange(&mut office, &mut li);
    exchange(&mut office, &mut wang);

    // Both offline: Li Na rings the bell, the volunteer drops by; each edits a different field.
    li.record_visit(visit(&h.id, &f.li_na.id, VisitKind::BellCheckAnswered)).unwrap();
    f.clock.advance(3_600_000);
    wang.record_visit(visit(&h.id, &f.volunteer.id, VisitKind::WelfareCheck)).unwrap();
    li.update_household(&h.id, HouseholdUpdate { risk: Some(RiskLevel::Orange), ..Default::default() }).unwrap();
    wang.update_household(
        &h.id,
        HouseholdUpdate {
            care_tags: Some(BTreeSet::from([CareTag::ElderlyAlone, CareTag::Disabled])),
            ..Default::default()
        },
    )
    .unwrap();

    exchange(&mut li, &mut wang);
    exchange(&mut li, &mut office);
    for s in [&li, &wang, &office] {
        let history = s.visit_history(&h.id, 0).unwrap();
        assert_eq!(history.len(), 2, "both visits are kept");
        assert_eq!(history[0].kind, VisitKind::WelfareCheck, "newest first");
        let now = s.household(&h.id).unwrap();
        assert_eq!(now.risk, RiskLevel::Orange, "Li Na's edit survives");
        assert_eq!(
            now.care_tags,
            BTreeSet::from([CareTag::ElderlyAlone, CareTag::Disabled]),
            "the volunteer's edit survives"
        );
    }
    assert_eq!(li.dump_query_tables().unwrap(), office.dump_query_tables().unwrap());
}

#[test]
fn two_phones_that_each_start_a_grid_document_offline_keep_both_households() {
    let dir = tempfile::tempdir().unwrap();
    let (mut office, f) = district(&dir.path().join("office.sqlite"));
    let mut li = open(&dir.path().join("li.sqlite"), &f.clock);
    let mut zhang = open(&dir.path().join("zhang.sqlite"), &f.clock);
    // Both take only the directory: neither holds the grid document yet.
    for p in [&mut li, &mut zhang] {
        let d = office.save_document(&DocId::Directory).unwrap();
        p.merge_document(&DocId::Directory, &d).unwrap();
    }
    let a = household(&mut li, &f, "101", &[]);
    let b = household(&mut zhang, &f, "102", &[]);
    exchange(&mut li, &mut zhang);
    for s in [&li, &zhang] {
        let ids: BTreeSet<_> = s.households(&HouseholdFilter::default()).unwrap().into_iter().map(|h| h.id).collect();
        assert_eq!(ids, BTreeSet::from([a.id.clone(), b.id.clone()]));
    }
}

#[test]
fn a_visit_deleted_on_one_phone_stays_deleted_after_merging() {
    let dir = tempfile::tempdir().unwrap();
    let (mut office, f) = district(&dir.path().join("office.sqlite"));
    let h = household(&mut office, &f, "401", &[]);
    let v = office.record_visit(visit(&h.id, &f.li_na.id, VisitKind::Routine)).unwrap();
    let mut li = open(&dir.path().join("li.sqlite"), &f.clock);
    exchange(&mut office, &mut li);
    li.delete_visit(&v.id).unwrap();
    office.record_visit(visit(&h.id, &f.li_na.id, VisitKind::HazardInspection)).unwrap();
    exchange(&mut office, &mut li);
    for s in [&office, &li] {
        let kinds: Vec<_> = s.visit_history(&h.id, 0).unwrap().into_iter().map(|v| v.kind).collect();
        assert_eq!(kinds, vec![VisitKind::HazardInspection]);
    }
}

#[test]
fn an_unanswered_bell_does_not_count_as_a_visit() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, f) = district(&dir.path().join("phone.sqlite"));
    let h = household(&mut s, &f, "401", &[CareTag::ElderlyAlone]);
    assert_eq!(s.household(&h.id).unwrap().next_due_at, MORNING, "never visited: due from registration");
    s.record_visit(visit(&h.id, &f.li_na.id, VisitKind::BellCheckNoAnswer)).unwrap();
    let after = s.household(&h.id).unwrap();
    assert_eq!(after.last_visit_at, None);
    assert_eq!(after.next_due_at, MORNING);
    f.clock.advance(600_000);
    s.record_visit(visit(&h.id, &f.li_na.id, VisitKind::WelfareCheck)).unwrap();
    let after = s.household(&h.id).unwrap();
    assert_eq!(after.last_visit_at, Some(MORNING + 600_000));
    assert_eq!(after.next_due_at, MORNING + 600_000 + 7 * DAY, "elderly living alone: weekly by default");
}

#[test]
fn visit_rules_from_the_directory_set_who_is_due() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, f) = district(&dir.path().join("phone.sqlite"));
    let elderly = household(&mut s, &f, "401", &[CareTag::ElderlyAlone]);
    let plain = household(&mut s, &f, "402", &[]);
    for h in [&elderly, &plain] {
        s.record_visit(visit(&h.id, &f.li_na.id, VisitKind::Routine)).unwrap();
    }
    let due_in = |s: &Store, days: i64| -> Vec<HouseholdId> {
        s.households(&HouseholdFilter { due_by: Some(MORNING + days * DAY), ..Default::default() })
            .unwrap()
            .into_iter()
            .map(|h| h.id)
            .collect()
    };
    assert_eq!(due_in(&s, 8), vec![elderly.id.clone()]);
    assert_eq!(due_in(&s, 31), vec![elderly.id.clone(), plain.id.clone()], "most overdue first");
    // The district decides elderly people living alone get a visit every day.
    let mut rules = VisitRules::default();
    rules.care_tag_hours.insert(CareTag::ElderlyAlone, 24);
    s.set_visit_rules(&rules).unwrap();
    assert_eq!(s.household(&elderly.id).unwrap().next_due_at, MORNING + DAY);
    // Raising the risk colour to red makes any household daily.
    s.update_household(&plain.id, HouseholdUpdate { risk: Some(RiskLevel::Red), ..Default::default() }).unwrap();
    assert_eq!(due_in(&s, 1).len(), 2);
}

#[test]
fn the_worker_finds_households_by_micro_grid_tag_risk_and_address() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, f) = district(&dir.path().join("phone.sqlite"));
    let a = household(&mut s, &f, "101", &[CareTag::ElderlyAlone]);
    let b = household(&mut s, &f, "102", &[CareTag::HardshipFamily]);
    s.update_household(
        &b.id,
        HouseholdUpdate { risk: Some(RiskLevel::Red), micro_grid: Some(None), ..Default::default() },
    )
    .unwrap();
    let other = s
        .add_household(
            &f.other_grid.id,
            NewHousehold {
                address: Address { building: "7".into(), unit: "1".into(), room: "602".into() },
                ..Default::default()
            },
        )
        .unwrap();
    let ids = |filter: HouseholdFilter| -> Vec<HouseholdId> {
        s.households(&filter).unwrap().into_iter().map(|h| h.id).collect()
    };
    assert_eq!(
        ids(HouseholdFilter { grid: Some(f.grid.id.clone()), ..Default::default() }),
        vec![a.id.clone(), b.id.clone()]
    );
    assert_eq!(
        ids(HouseholdFilter { micro_grid: Some(f.micro_grid.id.clone()), ..Default::default() }),
        vec![a.id.clone()]
    );
    assert_eq!(
        ids(HouseholdFilter { care_tag: Some(CareTag::ElderlyAlone), ..Default::default() }),
        vec![a.id.clone()]
    );
    assert_eq!(ids(HouseholdFilter { risk: Some(RiskLevel::Red), ..Default::default() }), vec![b.id.clone()]);
    assert_eq!(
        ids(HouseholdFilter { grid: Some(f.other_grid.id.clone()), ..Default::default() }),
        vec![other.id.clone()]
    );
    let hits = s.search("Room 602", 10).unwrap();
    assert_eq!(
        hits,
        vec![SearchHit::Household { id: other.id.clone(), address: "Building 7, Unit 1, Room 602".into() }]
    );
    assert_eq!(s.search("60", 10).unwrap().len(), 1, "short queries match by substring");
    for odd in ["Room \"602", "602 OR NOT *", "(Room) AND", "100%", "a_b"] {
        s.search(odd, 10).unwrap_or_else(|e| panic!("search for {odd:?} failed: {e}"));
    }
    assert!(s.search("   ", 10).is_err(), "an empty search is refused");
    s.delete_household(&other.id).unwrap();
    assert!(s.search("Room 602", 10).unwrap().is_empty(), "deleted households are not found");
    assert!(matches!(s.household(&other.id), Err(Error::NotFound { .. })));
}

#[test]
fn reports_are_listed_by_status_grid_category_and_place() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, f) = district(&dir.path().join("phone.sqlite"));
    let near = s.file_report(report(&f, "Leaning tree outside the school gate")).unwrap();
    f.clock.advance(60_000);
    let mut far = report(&f, "垃圾堆放在小区门口 rubbish at the gate");
    far.category = CategoryId::parse("environment").unwrap();
    far.location = Some(GeoPoint::new(34.80, 113.70).unwrap());
    far.grid = Some(f.other_grid.id.clone());
    let far = s.file_report(far).unwrap();
    f.clock.advance(60_000);
    s.add_report_event(NewReportEvent {
        report: near.id.clone(),
        author: f.li_na.id.clone(),
        kind: ReportEventKind::Dispatched,
        note: "Sent to the landscaping team".into(),
        target: Some("landscaping".into()),
        score: None,
        photos: vec![photo()],
        classification: None,
        risk: None,
    })
    .unwrap();
    let ids =
        |filter: ReportFilter| -> Vec<ReportId> { s.reports(&filter).unwrap().into_iter().map(|r| r.id).collect() };
    assert_eq!(ids(ReportFilter::default()), vec![far.id.clone(), near.id.clone()], "newest first");
    assert_eq!(ids(ReportFilter { status: Some(ReportStatus::Open), ..Default::default() }), vec![far.id.clone()]);
    assert_eq!(
        ids(ReportFilter { status: Some(ReportStatus::Dispatched), ..Default::default() }),
        vec![near.id.clone()]
    );
    assert_eq!(ids(ReportFilter { grid: Some(f.grid.id.clone()), ..Default::default() }), vec![near.id.clone()]);
    assert_eq!(
        ids(ReportFilter { category: Some(CategoryId::parse("environment").unwrap()), ..Default::default() }),
        vec![far.id.clone()]
    );
    let school = GeoPoint::new(34.7565, 113.6541).unwrap();
    assert_eq!(ids(ReportFilter { near: Some((school, 200.0)), ..Default::default() }), vec![near.id.clone()]);
    assert_eq!(ids(ReportFilter { near: Some((school, 10_000.0)), ..Default::default() }).len(), 2);
    assert!(matches!(
        s.reports(&ReportFilter { near: Some((school, -1.0)), ..Default::default() }),
        Err(Error::InvalidInput { .. })
    ));
    assert_eq!(
        s.search("小区门口", 5).unwrap(),
        vec![SearchHit::Report {
            id: far.id.clone(), description: "垃圾堆放在小区门口 rubbish at the gate".into()
        }]
    );
    assert_eq!(s.search("school gate", 5).unwrap().len(), 1);
    let (_, events) = s.report(&near.id).unwrap();
    assert_eq!(
        events.iter().map(|e| e.kind).collect::<Vec<_>>(),
        vec![ReportEventKind::Submitted, ReportEventKind::Dispatched]
    );
    assert_eq!(events[1].photos, vec![photo()]);
}

#[test]
fn a_report_log_appended_on_two_phones_offline_merges_to_the_same_status() {
    let dir = tempfile::tempdir().unwrap();
    let (mut office, f) = district(&dir.path().join("office.sqlite"));
    let r = office.file_report(report(&f, "Blocked fire exit")).unwrap();
    let mut li = open(&dir.path().join("li.sqlite"), &f.clock);
    exchange(&mut office, &mut li);
    let event = |kind| NewReportEvent {
        report: r.id.clone(),
        author: f.li_na.id.clone(),
        kind,
        note: String::new(),
        target: None,
        score: None,
        photos: vec![],
        classification: None,
        risk: None,
    };
    f.clock.advance(60_000);
    let mut dispatch = event(ReportEventKind::Dispatched);
    dispatch.target = Some(f.li_na.id.to_string());
    office.add_report_event(dispatch).unwrap();
    exchange(&mut office, &mut li);
    // Offline on both sides: the office tells the reporter it is in hand, Li Na accepts.
    f.clock.advance(60_000);
    office.add_report_event(event(ReportEventKind::FeedbackSent)).unwrap();
    li.add_report_event(event(ReportEventKind::Accepted)).unwrap();
    exchange(&mut office, &mut li);
    for s in [&office, &li] {
        let listed = s.reports(&ReportFilter::default()).unwrap();
        assert_eq!(listed[0].status, ReportStatus::InProgress);
        assert_eq!(listed[0].event_count, 4);
        let state = s.report_state(&r.id).unwrap();
        assert_eq!(state.accepted_by.as_ref(), Some(&f.li_na.id));
        assert!(state.first_feedback_at.is_some() && state.rejected.is_empty());
    }
}

#[test]
fn compaction_keeps_every_record_and_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.sqlite");
    let (mut s, f) = district(&path);
    let h = household(&mut s, &f, "401", &[]);
    for _ in 0..30 {
        f.clock.advance(60_000);
        s.record_visit(visit(&h.id, &f.li_na.id, VisitKind::Routine)).unwrap();
    }
    let before = s.dump_query_tables().unwrap();
    let grid = month_visits(&f);
    let bytes_before = s.save_document(&grid).unwrap();
    s.compact_all().unwrap();
    drop(s);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let rows: i64 = conn.query_row("SELECT COUNT(*) FROM changes", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 0, "change rows are folded into snapshots");
    drop(conn);
    let mut s = open(&path, &f.clock);
    assert_eq!(s.dump_query_tables().unwrap(), before);
    // The whole history is still there: the old copy merges in without adding anything.
    assert_eq!(s.merge_document(&grid, &bytes_before).unwrap().new_changes, 0);
    s.rebuild_indexes().unwrap();
    assert_eq!(s.dump_query_tables().unwrap(), before);
}

#[test]
fn photos_are_kept_by_their_hash_and_only_metadata_enters_documents() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, f) = district(&dir.path().join("phone.sqlite"));
    let h = household(&mut s, &f, "401", &[]);
    let file = dir.path().join("IMG_0001.jpg");
    std::fs::write(&file, b"\xff\xd8\xff\xe0 not really a jpeg, but bytes all the same").unwrap();
    let meta = s.import_photo(&file, "image/jpeg", 640, 480, Some(MORNING), None).unwrap();
    assert_eq!(meta.byte_size, std::fs::metadata(&file).unwrap().len());
    let stored = s.photo_path(&meta.sha256).unwrap();
    assert_eq!(std::fs::read(stored).unwrap(), std::fs::read(&file).unwrap());
    let mut v = visit(&h.id, &f.li_na.id, VisitKind::HazardInspection);
    v.photos = vec![meta.clone()];
    let recorded = s.record_visit(v).unwrap();
    assert_eq!(s.visit_history(&h.id, 1).unwrap()[0].photo_count, 1);
    assert_eq!(s.photos(recorded.id.as_str()).unwrap(), vec![meta.clone()]);
    let doc = s.save_document(&month_visits(&f)).unwrap();
    assert!(doc.len() < 4_096, "photo bytes must not enter the document");
    assert!(matches!(
        s.import_photo(&dir.path().join("missing.jpg"), "image/jpeg", 1, 1, None, None),
        Err(Error::File(_))
    ));
}

#[test]
fn the_register_follows_residents_who_change_number_or_move_out() {
    let dir = tempfile::tempdir().unwrap();
    let (mut office, f) = district(&dir.path().join("office.sqlite"));
    let h = household(&mut office, &f, "401", &[]);
    let resident = |name: &str, relation| NewResident {
        household: h.id.clone(),
        name: Personal::new(name),
        phone: Personal::new("13800000001"),
        id_number: Personal::default(),
        birth_year: Some(1948),
        relation,
    };
    let grandma = office.add_resident(resident("Zhao Shulan", Relation::Head)).unwrap();
    let grandson = office.add_resident(resident("Zhao Lei", Relation::Grandchild)).unwrap();
    let mut li = open(&dir.path().join("li.sqlite"), &f.clock);
    exchange(&mut office, &mut li);
    // Offline: the office corrects grandma's birth year, Li Na records her new phone number,
    // and the grandson has moved out for work.
    office.update_resident(&grandma.id, ResidentUpdate { birth_year: Some(Some(1947)), ..Default::default() }).unwrap();
    li.update_resident(&grandma.id, ResidentUpdate { phone: Some(Personal::new("13900000002")), ..Default::default() })
        .unwrap();
    li.delete_resident(&grandson.id).unwrap();
    exchange(&mut office, &mut li);
    for s in [&office, &li] {
        let people = s.residents(&h.id).unwrap();
        assert_eq!(people.len(), 1, "the grandson moved out");
        assert_eq!(people[0].birth_year, Some(1947));
        assert_eq!(people[0].phone.expose(), "13900000002");
    }
    assert!(matches!(li.delete_resident(&grandson.id), Err(Error::NotFound { what: "resident", .. })));
    let bad = li.update_resident(&grandma.id, ResidentUpdate { birth_year: Some(Some(1850)), ..Default::default() });
    assert!(matches!(bad, Err(Error::InvalidInput { field: "birth year", .. })));
    // A household that is deleted takes its residents off the screen.
    li.delete_household(&h.id).unwrap();
    assert!(li.residents(&h.id).unwrap().is_empty());
}

#[test]
fn a_phone_tracking_changes_lists_the_documents_a_write_or_a_merge_changed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut office, f) = district(&dir.path().join("office.sqlite"));
    let h = household(&mut office, &f, "401", &[]);
    let tracked = |name: &str| {
        let options = OpenOptions { clock: f.clock.clone(), track_changes: true, ..OpenOptions::default() };
        Store::open(dir.path().join(name), options).unwrap()
    };
    let mut li = tracked("li.sqlite");
    assert!(li.take_changed_documents().is_empty());

    // What a merge brought in is listed once; a merge that brings nothing lists nothing.
    exchange(&mut office, &mut li);
    let register = register(&f);
    assert_eq!(li.take_changed_documents(), vec![DocId::Directory, register.clone()]);
    let bytes = office.save_document(&register).unwrap();
    li.merge_document(&register, &bytes).unwrap();
    assert!(li.take_changed_documents().is_empty());

    // A write lists its document; a refused write and compaction list nothing.
    li.record_visit(visit(&h.id, &f.li_na.id, VisitKind::Routine)).unwrap();
    let grid = month_visits(&f);
    assert_eq!(li.take_changed_documents(), vec![grid.clone()]);
    let mut bad = visit(&h.id, &f.li_na.id, VisitKind::Routine);
    bad.notes = "x".repeat(4_001);
    assert!(li.record_visit(bad).is_err());
    li.compact(&grid).unwrap();
    assert!(li.take_changed_documents().is_empty());

    // Off by default (the server's store keeps no such list).
    office.record_visit(visit(&h.id, &f.li_na.id, VisitKind::Routine)).unwrap();
    assert!(office.take_changed_documents().is_empty());
}

/// A phone can take a month's visits before the directory that places their micro-grid in its
/// grid (a new phone's first sync brings documents in feed order): once the directory arrives,
/// each visit counts for its grid.
#[test]
fn visits_taken_before_the_directory_count_for_their_grid_once_it_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let (mut office, f) = district(&dir.path().join("office.sqlite"));
    let h = household(&mut office, &f, "401", &[]);
    office.record_visit(visit(&h.id, &f.li_na.id, VisitKind::Routine)).unwrap();
    let mut phone = open(&dir.path().join("supervisor.sqlite"), &f.clock);
    for doc in [month_visits(&f), register(&f), DocId::Directory] {
        phone.merge_document(&doc, &office.save_document(&doc).unwrap()).unwrap();
    }
    let week = (MORNING - 6 * DAY, MORNING + DAY);
    let seen = phone.assessment(&doorstep_core::Scope::Grid(f.grid.id.clone()), week.0, week.1).unwrap();
    assert_eq!(seen.visits, 1);
    assert_eq!(phone.dump_query_tables().unwrap(), office.dump_query_tables().unwrap());
}

/// A household moved out of its micro-grid and back is live in its register again with nothing
/// left of the move: the tombstone's `moved_to` goes when it comes back.
#[test]
fn a_household_moved_away_and_back_keeps_no_trace_of_the_move() {
    use automerge::ReadDoc;
    let dir = tempfile::tempdir().unwrap();
    let (mut s, f) = district(&dir.path().join("office.sqlite"));
    let h = household(&mut s, &f, "301", &[]);
    s.update_household(&h.id, HouseholdUpdate { micro_grid: Some(None), ..Default::default() }).unwrap();
    s.update_household(
        &h.id,
        HouseholdUpdate { micro_grid: Some(Some(f.micro_grid.id.clone())), ..Default::default() },
    )
    .unwrap();
    let register = DocId::Register(f.micro_grid.id.clone());
    let am = automerge::AutoCommit::load(&s.save_document(&register).unwrap()).unwrap();
    let (_, households) = am.get(automerge::ROOT, "households").unwrap().unwrap();
    let (_, record) = am.get(&households, h.id.as_str()).unwrap().unwrap();
    assert_eq!(am.get(&record, "deleted").unwrap().map(|(v, _)| v.to_string()), Some("false".into()));
    assert!(am.get(&record, "moved_to").unwrap().is_none(), "moved_to stayed on the live record");
    assert_eq!(s.household(&h.id).unwrap().micro_grid, Some(f.micro_grid.id.clone()));
}
