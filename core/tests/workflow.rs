//! The report workflow: the fold's order independence and authorization as properties, and the
//! closed loop as the field tells it, on real stores that merge each other's logs.

use doorstep_core::workflow::{derive, Facts, Person, Policy, Roster};
use doorstep_core::*;
use proptest::prelude::*;
use testkit::*;

const H: i64 = 3_600_000;

fn uid(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

/// Who takes part: a reporter, two workers of the grid, a supervisor above it, two handlers of
/// one department, a worker of another grid, and a stranger the directory does not know.
const AUTHORS: [&str; 8] =
    ["reporter", "li-na", "zhao-lei", "gao-min", "handler-1", "handler-2", "zhang-wei", "stranger"];

fn roster() -> Roster {
    let p = |role, covers_grid, dept: Option<&str>| Person { role, covers_grid, department: dept.map(Into::into) };
    [
        ("reporter", p(Role::FlowingReporter, false, None)),
        ("li-na", p(Role::GridWorker, true, None)),
        ("zhao-lei", p(Role::GridWorker, true, None)),
        ("gao-min", p(Role::Supervisor, true, None)),
        ("handler-1", p(Role::DepartmentHandler, false, Some("housing"))),
        ("handler-2", p(Role::DepartmentHandler, false, Some("housing"))),
        ("zhang-wei", p(Role::GridWorker, false, None)),
    ]
    .into_iter()
    .map(|(id, p)| (uid(id), p))
    .collect()
}

fn facts() -> Facts {
    Facts { id: ReportId::parse("R1").unwrap(), reporter: uid("reporter"), created_at: 0 }
}

prop_compose! {
    fn event(n: usize)(
        at in 0..(10 * 24 * H),
        author in 0..AUTHORS.len(),
        kind in 0..ReportEventKind::ALL.len(),
        target in 0..4usize,
        score in 1..=5u8,
        class in 0..Classification::ALL.len(),
    ) -> ReportEvent {
        let kind = ReportEventKind::ALL[kind];
        ReportEvent {
            id: EventId::parse(&format!("E{n:04}")).unwrap(),
            at,
            author: uid(AUTHORS[author]),
            kind,
            note: String::new(),
            target: match kind {
                ReportEventKind::Dispatched => Some(["housing", "li-na", "handler-1", "roads"][target].into()),
                ReportEventKind::Escalated => Some(["community", "street", "district", "grid"][target].into()),
                ReportEventKind::MergedAsDuplicate => Some("R2".into()),
                _ => None,
            },
            score: matches!(kind, ReportEventKind::Confirmed | ReportEventKind::Disputed).then_some(score),
            photos: vec![],
            classification: (kind == ReportEventKind::Triaged).then_some(Classification::ALL[class]),
            risk: (kind == ReportEventKind::Triaged).then_some(RiskLevel::Orange),
        }
    }
}

/// A log that mostly follows the loop (so that later steps get exercised), with random noise.
fn log() -> impl Strategy<Value = Vec<ReportEvent>> {
    (1..40usize).prop_flat_map(|n| (0..n).map(event).collect::<Vec<_>>()).prop_map(|mut noise| {
        let step = |n: usize, at: i64, author: &str, kind, target: Option<&str>| ReportEvent {
            id: EventId::parse(&format!("L{n:02}")).unwrap(),
            at,
            author: uid(author),
            kind,
            note: String::new(),
            target: target.map(Into::into),
            score: Some(4),
            photos: vec![],
            classification: Some(Classification::General),
            risk: Some(RiskLevel::Yellow),
        };
        noise.extend([
            step(0, 0, "reporter", ReportEventKind::Submitted, None),
            step(1, 2 * H, "li-na", ReportEventKind::Triaged, None),
            step(2, 3 * H, "li-na", ReportEventKind::Dispatched, Some("housing")),
            step(3, 5 * H, "handler-1", ReportEventKind::Accepted, None),
            step(4, 50 * H, "handler-1", ReportEventKind::Resolved, None),
            step(5, 60 * H, "li-na", ReportEventKind::Closed, None),
        ]);
        noise
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Phones receive events in any order: the derived state is the same.
    #[test]
    fn the_derived_state_does_not_depend_on_arrival_order(
        events in log(),
        order in any::<u64>(),
    ) {
        let expected = derive(&facts(), &events, &roster(), &Policy::default());
        let mut shuffled = events.clone();
        // A deterministic shuffle from the seed.
        let mut seed = order;
        for i in (1..shuffled.len()).rev() {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (seed >> 33) as usize % (i + 1));
        }
        prop_assert_eq!(derive(&facts(), &shuffled, &roster(), &Policy::default()), expected);
    }

    /// An event by someone without the right to it is listed as rejected and changes nothing
    /// else, whatever it is and wherever it falls in the log.
    #[test]
    fn an_unauthorised_event_never_changes_the_state(events in log(), intruder in event(9999), who in 0..2usize) {
        let mut intruder = intruder;
        intruder.author = uid(["stranger", "zhang-wei"][who]);
        let before = derive(&facts(), &events, &roster(), &Policy::default());
        let mut with = events.clone();
        with.push(intruder.clone());
        let after = derive(&facts(), &with, &roster(), &Policy::default());
        prop_assert!(after.rejected.iter().any(|r| r.event == intruder.id), "{:?}", after.rejected);
        let mut after_without_rejection = after.clone();
        after_without_rejection.rejected.retain(|r| r.event != intruder.id);
        prop_assert_eq!(after_without_rejection, before);
    }
}

// ---- the loop on real stores ------------------------------------------------------------------

struct Cast {
    courier: User,
    supervisor: User,
    handler: User,
}

fn cast(s: &mut Store, f: &District) -> Cast {
    let street = f.street.clone();
    let mut user = |name: &str, role, unit: &Unit, department: Option<&str>| {
        s.add_user(NewUser {
            name: Personal::new(name),
            role,
            unit: unit.id.clone(),
            department: department.map(Into::into),
        })
        .unwrap()
    };
    Cast {
        courier: f.courier.clone(),
        // The street's supervisor: above the district's community supervisor, Liu Min.
        supervisor: user("Gao Min", Role::Supervisor, &street, None),
        handler: user("Sun Hao", Role::DepartmentHandler, &f.district, Some("Housing and fire safety")),
    }
}

fn exchange(a: &mut Store, b: &mut Store) {
    for d in a.document_ids().unwrap() {
        b.merge_document(&d, &a.save_document(&d).unwrap()).unwrap();
    }
    for d in b.document_ids().unwrap() {
        a.merge_document(&d, &b.save_document(&d).unwrap()).unwrap();
    }
}

/// A courier photographs a blocked fire exit; the grid worker triages and dispatches it to the
/// fire-safety department, which does not react; the deadline passes and the supervisor's phone
/// escalates it; the handler resolves it with a photo; the courier disputes, the report reopens.
#[test]
fn a_couriers_snapshot_through_the_whole_loop() {
    let dir = tempfile::tempdir().unwrap();
    let (mut office, f) = district(&dir.path().join("office.sqlite"));
    let c = cast(&mut office, &f);
    let street = f.street.clone();
    let mut courier = open(&dir.path().join("courier.sqlite"), &f.clock);
    let mut handler = open(&dir.path().join("handler.sqlite"), &f.clock);
    exchange(&mut office, &mut courier);
    exchange(&mut office, &mut handler);

    let mut filed = report(&f, "Fire exit of building 3 chained shut");
    filed.reporter = c.courier.id.clone();
    filed.photos = vec![photo()];
    let r = courier.file_report(filed).unwrap();
    exchange(&mut courier, &mut office);

    // Triage and dispatch by Li Na (the office store stands for her phone here).
    f.clock.advance(2 * H);
    let mut triage = NewReportEvent::new(r.id.clone(), f.li_na.id.clone(), ReportEventKind::Triaged);
    triage.classification = Some(Classification::Complex);
    triage.risk = Some(RiskLevel::Red);
    office.add_report_event(triage).unwrap();
    let mut dispatch = NewReportEvent::new(r.id.clone(), f.li_na.id.clone(), ReportEventKind::Dispatched);
    dispatch.target = Some("Housing and fire safety".into());
    office.add_report_event(dispatch).unwrap();
    let state = office.report_state(&r.id).unwrap();
    assert_eq!((state.status, state.risk), (ReportStatus::Dispatched, Some(RiskLevel::Red)));

    // The courier may not close it: refused when written, with the reason.
    let err = courier
        .add_report_event(NewReportEvent::new(r.id.clone(), c.courier.id.clone(), ReportEventKind::Closed))
        .unwrap_err();
    assert!(err.to_string().contains("closed"), "{err}");

    // Three days pass with no feedback: overdue in the supervisor's street, by 2 hours.
    f.clock.set(MORNING + 74 * H);
    let overdue = office.overdue_reports(&street.id, f.clock.now_ms()).unwrap();
    assert_eq!(overdue.len(), 1);
    assert_eq!((overdue[0].step, overdue[0].overdue_ms), (Step::Feedback, 2 * H));
    assert!(office.overdue_reports(&f.other_grid.id, f.clock.now_ms()).unwrap().is_empty());
    // The volunteer is not entitled to escalate; the supervisor is.
    assert!(office.escalate_overdue(&f.volunteer.id, &street.id).unwrap().is_empty());
    assert_eq!(office.escalate_overdue(&c.supervisor.id, &street.id).unwrap(), vec![r.id.clone()]);
    assert_eq!(office.report_state(&r.id).unwrap().level, UnitKind::Community);
    assert!(office.escalate_overdue(&c.supervisor.id, &street.id).unwrap().is_empty(), "once per missed deadline");

    // The handler's phone gets it, accepts, resolves with a photo; the office sends feedback.
    exchange(&mut office, &mut handler);
    f.clock.advance(H);
    handler
        .add_report_event(NewReportEvent::new(r.id.clone(), c.handler.id.clone(), ReportEventKind::Accepted))
        .unwrap();
    f.clock.advance(5 * H);
    let mut resolved = NewReportEvent::new(r.id.clone(), c.handler.id.clone(), ReportEventKind::Resolved);
    resolved.note = "Chain removed, owner warned in writing".into();
    resolved.photos = vec![photo()];
    handler.add_report_event(resolved).unwrap();
    exchange(&mut handler, &mut office);
    office
        .add_report_event(NewReportEvent::new(r.id.clone(), f.li_na.id.clone(), ReportEventKind::FeedbackSent))
        .unwrap();
    let state = office.report_state(&r.id).unwrap();
    assert_eq!(state.status, ReportStatus::Resolved);
    assert!(office.overdue_reports(&street.id, f.clock.now_ms()).unwrap().is_empty());

    // The courier checks and disputes: the chain is back. The report reopens with a new clock.
    exchange(&mut office, &mut courier);
    f.clock.advance(H);
    let mut dispute = NewReportEvent::new(r.id.clone(), c.courier.id.clone(), ReportEventKind::Disputed);
    dispute.score = Some(1);
    dispute.note = "Chained again this morning".into();
    courier.add_report_event(dispute).unwrap();
    exchange(&mut courier, &mut office);
    exchange(&mut office, &mut handler);
    for s in [&office, &courier, &handler] {
        let state = s.report_state(&r.id).unwrap();
        assert_eq!(state.status, ReportStatus::Dispatched);
        assert_eq!((state.reopen_count, state.satisfaction, state.level), (1, Some(1), UnitKind::Community));
        assert_eq!(state.resolve_due, f.clock.now_ms() + 168 * H);
        let row = &s.reports(&ReportFilter::default()).unwrap()[0];
        assert_eq!(row.status, ReportStatus::Dispatched);
    }
}

/// Two handlers of the department accept offline; a supervisor escalates while the handler
/// resolves; every phone ends with the same state whichever merged first.
#[test]
fn concurrent_transitions_merge_to_one_state_on_every_phone() {
    let dir = tempfile::tempdir().unwrap();
    let (mut office, f) = district(&dir.path().join("office.sqlite"));
    let c = cast(&mut office, &f);
    let second = office
        .add_user(NewUser {
            name: Personal::new("Qian Li"),
            role: Role::DepartmentHandler,
            unit: f.district.id.clone(),
            department: Some("Housing and fire safety".into()),
        })
        .unwrap();
    let r = office.file_report(report(&f, "Water leaking into the stairwell")).unwrap();
    let mut dispatch = NewReportEvent::new(r.id.clone(), f.li_na.id.clone(), ReportEventKind::Dispatched);
    dispatch.target = Some("Housing and fire safety".into());
    office.add_report_event(dispatch).unwrap();
    let mut a = open(&dir.path().join("a.sqlite"), &f.clock);
    let mut b = open(&dir.path().join("b.sqlite"), &f.clock);
    exchange(&mut office, &mut a);
    exchange(&mut office, &mut b);

    f.clock.advance(H);
    a.add_report_event(NewReportEvent::new(r.id.clone(), c.handler.id.clone(), ReportEventKind::Accepted)).unwrap();
    f.clock.advance(H);
    b.add_report_event(NewReportEvent::new(r.id.clone(), second.id.clone(), ReportEventKind::Accepted)).unwrap();
    f.clock.advance(H);
    a.add_report_event(NewReportEvent::new(r.id.clone(), c.handler.id.clone(), ReportEventKind::Resolved)).unwrap();
    let mut up = NewReportEvent::new(r.id.clone(), c.supervisor.id.clone(), ReportEventKind::Escalated);
    up.target = Some("street".into());
    f.clock.advance(H);
    office.add_report_event(up).unwrap();

    exchange(&mut b, &mut office);
    exchange(&mut a, &mut office);
    exchange(&mut office, &mut b);
    let states: Vec<_> = [&office, &a, &b].iter().map(|s| s.report_state(&r.id).unwrap()).collect();
    assert_eq!(states[0], states[1]);
    assert_eq!(states[0], states[2]);
    let s = &states[0];
    // The first accept wins; the second is listed as rejected. The resolution (earlier) stands;
    // the escalation after it is rejected.
    assert_eq!(s.accepted_by.as_ref(), Some(&c.handler.id));
    assert_eq!((s.status, s.level), (ReportStatus::Resolved, UnitKind::Grid));
    assert_eq!(s.rejected.len(), 2, "{:?}", s.rejected);
    assert_eq!(office.rejected_events(&r.id).unwrap(), s.rejected);
}

/// Three people report the same overflowing bin within an hour; one report of another kind is
/// next to it, one of the same kind is across the district, one the same spot a week earlier.
#[test]
fn reports_of_one_problem_are_offered_as_possible_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, f) = district(&dir.path().join("phone.sqlite"));
    let file = |s: &mut Store, text: &str, category: &str, at: (f64, f64)| {
        let mut r = report(&f, text);
        r.category = CategoryId::parse(category).unwrap();
        r.location = Some(GeoPoint::new(at.0, at.1).unwrap());
        s.file_report(r).unwrap().id
    };
    let bin = (34.75650, 113.65400);
    let week_ago = file(&mut s, "Bin overflowing (last week)", "environment", bin);
    f.clock.advance(7 * 24 * H);
    let first = file(&mut s, "Bin overflowing by gate 2", "environment", bin);
    f.clock.advance(H / 2);
    let second = file(&mut s, "Rubbish everywhere at gate 2", "environment", (34.75660, 113.65410));
    let third = file(&mut s, "垃圾桶满了 bin full", "environment", (34.75640, 113.65395));
    let other_kind = file(&mut s, "Car parked on the pavement at gate 2", "road-traffic", bin);
    let far = file(&mut s, "Bin overflowing at the market", "environment", (34.78, 113.69));
    let offered: Vec<ReportId> = s.possible_duplicates(&first).unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(offered.len(), 2, "{offered:?}");
    assert!(offered.contains(&second) && offered.contains(&third));
    for not in [&week_ago, &other_kind, &far] {
        assert!(!offered.contains(not));
    }
    // Li Na merges the third into the first: it is no longer offered.
    let mut merge = NewReportEvent::new(third.clone(), f.li_na.id.clone(), ReportEventKind::MergedAsDuplicate);
    merge.target = Some(first.to_string());
    s.add_report_event(merge).unwrap();
    assert_eq!(s.report_state(&third).unwrap().status, ReportStatus::Duplicate);
    let offered: Vec<ReportId> = s.possible_duplicates(&first).unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(offered, vec![second]);
}

/// A category can give complex reports longer to resolve; the deadline follows the triage.
#[test]
fn a_categorys_deadline_for_complex_reports_is_used_after_triage() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, f) = district(&dir.path().join("phone.sqlite"));
    let mut c = NewCategory::defaults().into_iter().find(|c| c.id.as_str() == "safety-hazard").unwrap();
    c.resolve_hours_by_class.insert(Classification::Complex, 14 * 24);
    s.set_category(c).unwrap();
    let r = s.file_report(report(&f, "Cracked balcony slab above the entrance")).unwrap();
    assert_eq!(s.report_state(&r.id).unwrap().resolve_due, MORNING + 7 * 24 * H);
    let mut triage = NewReportEvent::new(r.id.clone(), f.li_na.id.clone(), ReportEventKind::Triaged);
    triage.classification = Some(Classification::Complex);
    s.add_report_event(triage).unwrap();
    assert_eq!(s.report_state(&r.id).unwrap().resolve_due, MORNING + 14 * 24 * H);
}

/// A week of Li Na's grid, assessed per grid and per worker, the same on two phones.
#[test]
fn assessment_of_a_week_per_grid_and_per_worker() {
    use doorstep_core::{assessment_csv, Scope};
    let dir = tempfile::tempdir().unwrap();
    let (mut s, f) = district(&dir.path().join("office.sqlite"));
    const D: i64 = 24 * H;
    let elderly = household(&mut s, &f, "301", &[CareTag::ElderlyAlone]);
    let plain = household(&mut s, &f, "302", &[]);
    let never = household(&mut s, &f, "303", &[]);
    f.clock.set(MORNING + D);
    s.record_visit(visit(&plain.id, &f.li_na.id, VisitKind::Routine)).unwrap();
    let (from, to) = (MORNING + 3 * D, MORNING + 10 * D);

    f.clock.set(MORNING + 4 * D);
    s.record_visit(visit(&elderly.id, &f.li_na.id, VisitKind::WelfareCheck)).unwrap();
    s.record_visit(visit(&plain.id, &f.li_na.id, VisitKind::Routine)).unwrap();
    let found =
        s.file_report(NewReport { reporter: f.li_na.id.clone(), ..report(&f, "Loose railing on stair 2") }).unwrap();
    s.file_report(report(&f, "Broken intercom at entrance 1")).unwrap(); // never triaged
    f.clock.advance(H);
    let step = |s: &mut Store, kind, target: Option<String>, score: Option<u8>| {
        let mut e = NewReportEvent::new(found.id.clone(), f.li_na.id.clone(), kind);
        e.target = target;
        e.score = score;
        s.add_report_event(e).unwrap();
    };
    step(&mut s, ReportEventKind::Triaged, None, None);
    step(&mut s, ReportEventKind::Dispatched, Some(f.li_na.id.to_string()), None);
    step(&mut s, ReportEventKind::Accepted, None, None);
    f.clock.advance(H);
    step(&mut s, ReportEventKind::FeedbackSent, None, None);
    f.clock.set(MORNING + 5 * D);
    s.record_visit(visit(&elderly.id, &f.li_na.id, VisitKind::Routine)).unwrap();
    s.record_visit(visit(&never.id, &f.volunteer.id, VisitKind::Routine)).unwrap();
    s.record_visit(visit(&elderly.id, &f.volunteer.id, VisitKind::BellCheckAnswered)).unwrap();
    step(&mut s, ReportEventKind::Resolved, None, None);
    f.clock.advance(H);
    step(&mut s, ReportEventKind::Confirmed, None, Some(4));

    let grid = s.assessment(&Scope::Grid(f.grid.id.clone()), from, to).unwrap();
    assert_eq!((grid.households_due, grid.households_covered, grid.coverage), (2, 2, 1.0), "{grid:?}");
    assert_eq!((grid.visits, grid.reports_found, grid.reports), (5, 2, 2));
    assert!((grid.visits_per_day - 5.0 / 7.0).abs() < 1e-9);
    assert_eq!(grid.triage_on_time, Some(0.5), "the intercom report was never triaged");
    assert_eq!(grid.feedback_on_time, Some(0.5));
    assert_eq!(grid.resolution_on_time, Some(1.0), "the intercom's resolution deadline is after the period");
    assert_eq!((grid.resolution_rate, grid.average_satisfaction, grid.reopen_rate), (Some(0.5), Some(4.0), Some(0.0)));

    let worker = s.assessment(&Scope::Worker(f.li_na.id.clone()), from, to).unwrap();
    assert_eq!((worker.visits, worker.reports_found, worker.households_due), (3, 1, 2));
    let volunteer = s.assessment(&Scope::Worker(f.volunteer.id.clone()), from, to).unwrap();
    assert_eq!((volunteer.visits, volunteer.reports_found), (2, 1));
    assert!(matches!(s.assessment(&Scope::Grid(f.grid.id.clone()), to, from), Err(Error::InvalidInput { .. })));

    // Another phone holding the same documents computes the same CSV.
    let csv = assessment_csv(&[grid, worker]);
    let mut copy = open(&dir.path().join("copy.sqlite"), &f.clock);
    for d in s.document_ids().unwrap() {
        copy.merge_document(&d, &s.save_document(&d).unwrap()).unwrap();
    }
    let again = assessment_csv(&[
        copy.assessment(&Scope::Grid(f.grid.id.clone()), from, to).unwrap(),
        copy.assessment(&Scope::Worker(f.li_na.id.clone()), from, to).unwrap(),
    ]);
    assert_eq!(csv, again);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("scope,from,to,households_due"));
    assert!(
        lines[1].starts_with(&format!(
            "grid:{},{from},{to},2,2,1.0000,5,0.7143,2,2,0.5000,0.5000,1.0000,0.5000,4.0000,0.0000",
            f.grid.id
        )),
        "{}",
        lines[1]
    );
}

/// The reporter disputes a resolution on her phone while Li Na closes the report on hers; both
/// phones and the office end with the report reopened, whichever order they merged in, and with
/// the close listed as rejected when the dispute came first.
#[test]
fn a_dispute_and_a_close_made_offline_merge_the_same_way_everywhere() {
    for dispute_first in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let (mut office, f) = district(&dir.path().join("office.sqlite"));
        let r = office.file_report(report(&f, "Stairwell light broken")).unwrap();
        for kind in [ReportEventKind::Dispatched, ReportEventKind::Accepted, ReportEventKind::Resolved] {
            f.clock.advance(H);
            let mut e = NewReportEvent::new(r.id.clone(), f.li_na.id.clone(), kind);
            e.target = Some(f.li_na.id.to_string());
            office.add_report_event(e).unwrap();
        }
        let mut reporter = open(&dir.path().join("reporter.sqlite"), &f.clock);
        let mut li = open(&dir.path().join("li.sqlite"), &f.clock);
        exchange(&mut office, &mut reporter);
        exchange(&mut office, &mut li);
        let mut dispute = NewReportEvent::new(r.id.clone(), f.volunteer.id.clone(), ReportEventKind::Disputed);
        dispute.score = Some(2);
        let close = NewReportEvent::new(r.id.clone(), f.li_na.id.clone(), ReportEventKind::Closed);
        if dispute_first {
            f.clock.advance(H);
            reporter.add_report_event(dispute).unwrap();
            f.clock.advance(H);
            li.add_report_event(close).unwrap();
        } else {
            f.clock.advance(H);
            li.add_report_event(close).unwrap();
            f.clock.advance(H);
            reporter.add_report_event(dispute).unwrap();
        }
        exchange(&mut li, &mut office);
        exchange(&mut reporter, &mut office);
        exchange(&mut office, &mut li);
        let states: Vec<_> = [&office, &li, &reporter].iter().map(|s| s.report_state(&r.id).unwrap()).collect();
        assert_eq!(states[0], states[1]);
        assert_eq!(states[0], states[2]);
        let s = &states[0];
        assert_eq!((s.status, s.reopen_count, s.satisfaction), (ReportStatus::Dispatched, 1, Some(2)));
        assert_eq!(s.rejected.len(), usize::from(dispute_first), "{:?}", s.rejected);
        assert_eq!(s.closed_at, None);
    }
}
