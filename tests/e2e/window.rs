//! A phone's rolling window against a real server: months and reports outside it leave the phone
//! once the server holds them, due dates stay right (on that phone and on a new one that never
//! held those months), older visits come back on demand, read-only, and only to whoever may read
//! them.

use std::sync::Arc;

use doorstep_core::sync::wire::{Batch, Entry, Hello, Kind, Mode};
use doorstep_core::*;
use testkit::*;

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;

fn day(year: i32, month: u8, day: i64) -> UnixMillis {
    Period::new(year, month).unwrap().start() + (day - 1) * DAY + 9 * HOUR
}

fn month(year: i32, month: u8) -> Period {
    Period::new(year, month).unwrap()
}

fn at_clock(clock: &Arc<FixedClock>) -> OpenOptions {
    OpenOptions { clock: clock.clone(), ..OpenOptions::default() }
}

/// Records a visit made at `at`, entered now (the store's clock).
fn record(s: &mut Store, h: &HouseholdId, worker: &User, kind: VisitKind, at: UnixMillis) -> Visit {
    s.record_visit(NewVisit {
        household: h.clone(),
        worker: worker.id.clone(),
        at: Some(at),
        location: None,
        kind,
        outcome: VisitOutcome::AllWell,
        notes: format!("{} on day {}", kind.as_str(), at / DAY),
        follow_up: false,
        photos: vec![],
    })
    .unwrap()
}

/// Records a visit made and entered at `at`.
fn visit_on(s: &mut Store, clock: &FixedClock, h: &HouseholdId, worker: &User, kind: VisitKind, at: UnixMillis) {
    clock.set(at);
    record(s, h, worker, kind, at);
}

/// A new phone of `user`, enrolled, its first sync done: the store, its token and that sync.
fn enrolled(
    server: &doorstep_server::RunningServer,
    dir: &std::path::Path,
    name: &str,
    user: &User,
    options: OpenOptions,
) -> (Store, String, sync::Progress) {
    let mut store = Store::open(dir.join(format!("{name}.sqlite")), options).unwrap();
    let client = sync::http::ServerClient::new(&server.url()).unwrap();
    let token = client.register(&enrolment_code(server, user), &mut store, name).unwrap().token;
    let first = client.with_token(token.clone()).sync(&mut store).unwrap();
    (store, token, first)
}

/// The small district on a real server, its clock at `start`, and Li Na's phone (options from
/// `options`) with household 301 of the micro-grid.
struct Field {
    dir: tempfile::TempDir,
    p: District,
    server: doorstep_server::RunningServer,
    clock: Arc<FixedClock>,
    li: Store,
    token: String,
    h: HouseholdId,
}

fn field(start: UnixMillis, options: impl FnOnce(OpenOptions) -> OpenOptions) -> Field {
    let (dir, _office, p, server) = served(|_| {});
    let clock = Arc::new(FixedClock::new(start));
    let (mut li, token, _) = enrolled(&server, dir.path(), "li-na", &p.li_na, options(at_clock(&clock)));
    let h = household(&mut li, &p, "301", &[CareTag::ElderlyAlone]).id;
    Field { dir, p, server, clock, li, token, h }
}

fn client_of(server: &doorstep_server::RunningServer, token: &str) -> sync::http::ServerClient {
    sync::http::ServerClient::new(&server.url()).unwrap().with_token(token)
}

/// What the screens show of a household: its row, clocks included.
fn shown(s: &Store, h: &HouseholdId) -> HouseholdSummary {
    s.households(&HouseholdFilter::default()).unwrap().into_iter().find(|x| &x.id == h).expect("the household shows")
}

fn months_held(s: &Store) -> Vec<String> {
    s.document_ids().unwrap().into_iter().filter(|d| matches!(d, DocId::Visits(..))).map(|d| d.to_string()).collect()
}

#[test]
fn months_outside_the_window_leave_the_phone_and_due_dates_stay_right() {
    let Field { dir, p, server, clock, mut li, token, h } = field(day(2026, 1, 2), |o| o);
    let client = client_of(&server, &token);
    let other = household(&mut li, &p, "302", &[CareTag::ElderlyAlone]).id;
    // A home visit in January; in February a bell answered, then one unanswered: the follow-up
    // and the bell clock come from February, the visit clock from January.
    visit_on(&mut li, &clock, &h, &p.li_na, VisitKind::WelfareCheck, day(2026, 1, 10));
    visit_on(&mut li, &clock, &other, &p.li_na, VisitKind::Routine, day(2026, 1, 12));
    visit_on(&mut li, &clock, &h, &p.li_na, VisitKind::BellCheckAnswered, day(2026, 2, 5));
    visit_on(&mut li, &clock, &h, &p.li_na, VisitKind::BellCheckNoAnswer, day(2026, 2, 20));
    client.sync(&mut li).unwrap();
    // May: the window holds March to May. The other household is visited again in May.
    clock.set(day(2026, 5, 20));
    visit_on(&mut li, &clock, &other, &p.li_na, VisitKind::Routine, day(2026, 5, 20));
    let before = (shown(&li, &h), shown(&li, &other));
    assert!(before.0.follow_up_due_at.is_some(), "the unanswered bell calls for a follow-up");
    assert_eq!(months_held(&li).len(), 3);

    let progress = client.sync(&mut li).unwrap();
    assert_eq!(progress.documents_released, 2, "{progress:?}");
    let m = p.micro_grid.id.as_str();
    assert_eq!(months_held(&li), vec![format!("visits/{m}/2026-05")]);
    assert_eq!((shown(&li, &h), shown(&li, &other)), before, "the clocks stay where the released months set them");
    assert!(li.visit_history(&h, 0).unwrap().is_empty(), "the phone no longer holds those visits");
    // An assessment of January would count its visits short on this phone: refused; May's runs.
    let grid = doorstep_core::Scope::Grid(p.grid.id.clone());
    let refused = li.assessment(&grid, month(2026, 1).start(), month(2026, 2).start()).unwrap_err();
    assert!(matches!(refused, Error::InvalidInput { .. }), "{refused}");
    assert_eq!(li.assessment(&grid, month(2026, 5).start(), month(2026, 6).start()).unwrap().visits, 1);
    li.rebuild_indexes().unwrap();
    assert_eq!((shown(&li, &h), shown(&li, &other)), before, "a rebuild keeps what released months said");
    // The server keeps them.
    server.with_store(|s| {
        assert!(s.document_ids().unwrap().contains(&DocId::Visits(p.micro_grid.id.clone(), month(2026, 1))))
    });

    // A bell answered in May clears the follow-up that came from a released month.
    visit_on(&mut li, &clock, &h, &p.li_na, VisitKind::BellCheckAnswered, day(2026, 5, 21));
    let now = shown(&li, &h);
    assert_eq!(
        (now.follow_up_due_at, now.last_contact_at, now.last_visit_at),
        (None, Some(day(2026, 5, 21)), before.0.last_visit_at)
    );
    client.sync(&mut li).unwrap();

    // A new phone of Li Na's in May never takes January or February, and still shows the clocks
    // they set (the server tells it each household's clocks from the months before its window).
    let (li2, token2, first) = enrolled(&server, dir.path(), "li-na-2", &p.li_na, at_clock(&clock));
    let client2 = client_of(&server, &token2);
    assert_eq!(first.documents_released, 0, "the months outside its window were not even taken");
    assert_eq!(months_held(&li2), vec![format!("visits/{m}/2026-05")]);
    assert_eq!(shown(&li2, &h), shown(&li, &h));
    assert_eq!(shown(&li2, &other), shown(&li, &other));
    assert_eq!(client2.sync(&mut { li2 }).unwrap().round, 1, "asked once, the clocks are not asked again");
}

#[test]
fn older_visits_come_back_on_demand_read_only_and_only_to_those_who_may_read_them() {
    let Field { dir, p, server, clock, mut li, token, h } = field(day(2026, 1, 2), |o| o);
    let client = client_of(&server, &token);
    let neighbour = household(&mut li, &p, "302", &[CareTag::ElderlyAlone]).id;
    visit_on(&mut li, &clock, &h, &p.li_na, VisitKind::WelfareCheck, day(2026, 1, 10));
    visit_on(&mut li, &clock, &neighbour, &p.li_na, VisitKind::Routine, day(2026, 1, 11));
    visit_on(&mut li, &clock, &h, &p.li_na, VisitKind::Routine, day(2026, 1, 12));
    let mistake = li.visit_history(&h, 1).unwrap()[0].id.clone();
    li.delete_visit(&mistake).unwrap();
    visit_on(&mut li, &clock, &h, &p.li_na, VisitKind::BellCheckAnswered, day(2026, 2, 5));
    visit_on(&mut li, &clock, &h, &p.li_na, VisitKind::BellCheckNoAnswer, day(2026, 2, 20));
    client.sync(&mut li).unwrap();
    clock.set(day(2026, 6, 1));
    client.sync(&mut li).unwrap();
    assert!(months_held(&li).is_empty());
    let stored = li.dump_query_tables().unwrap();

    let visits = client.fetch_visits(&li, &h, month(2025, 12), month(2026, 3)).unwrap();
    let at: Vec<_> = visits.iter().map(|v| (v.at, v.kind)).collect();
    assert_eq!(
        at,
        vec![
            (day(2026, 2, 20), VisitKind::BellCheckNoAnswer),
            (day(2026, 2, 5), VisitKind::BellCheckAnswered),
            (day(2026, 1, 10), VisitKind::WelfareCheck),
        ]
    );
    assert!(months_held(&li).is_empty(), "history is read, not stored");
    assert_eq!(li.dump_query_tables().unwrap(), stored);

    // The volunteer's micro-grid is Li Na's, so she may read it; Zhang Wei, of another grid, may
    // not: his phone does not know the household, and a request made by hand is refused by the
    // server, nothing sent.
    let (vol, vclient) = phone_with(&server, dir.path(), "volunteer", &p.volunteer, at_clock(&clock));
    assert_eq!(vclient.fetch_visits(&vol, &h, month(2026, 1), month(2026, 2)).unwrap().len(), 3);
    let (zhang, zclient) = phone_with(&server, dir.path(), "zhang", &p.zhang_wei, at_clock(&clock));
    assert!(matches!(zclient.fetch_visits(&zhang, &h, month(2026, 1), month(2026, 2)), Err(Error::NotFound { .. })));
    let hand_made = Batch {
        hello: Some(Hello {
            mode: Mode::Server,
            user: p.zhang_wei.id.to_string(),
            device: zhang.actor_id(),
            summary: None,
        }),
        docs: vec![Entry {
            doc: DocId::Visits(p.micro_grid.id.clone(), month(2026, 1)).to_string(),
            kind: Kind::Want,
            data: vec![],
            vouchers: Vec::new(),
        }],
        ..Batch::default()
    };
    let answer = Batch::decode(&sync::http::runtime().block_on(zclient.exchange(hand_made.encode())).unwrap()).unwrap();
    assert!(answer.docs.is_empty(), "{:?}", answer.docs);
    assert_eq!(answer.rejected.iter().map(|r| r.code.as_str()).collect::<Vec<_>>(), vec!["forbidden_document"]);
    // Nor may he ask the server for that register's clocks.
    let ask = Batch {
        earlier: vec![sync::wire::Earlier {
            register: register(&p).to_string(),
            before: "2026-04".into(),
            households: vec![],
        }],
        cursor: Some(0),
        ..Batch::default()
    };
    let answer = Batch::decode(&sync::http::runtime().block_on(zclient.exchange(ask.encode())).unwrap()).unwrap();
    assert!(answer.earlier.is_empty(), "{:?}", answer.earlier);
    // A span the phone refuses to ask for at all.
    assert!(matches!(client.fetch_visits(&li, &h, month(2026, 3), month(2026, 1)), Err(Error::InvalidInput { .. })));
    assert!(matches!(client.fetch_visits(&li, &h, month(2000, 1), month(2026, 1)), Err(Error::InvalidInput { .. })));
}

#[test]
fn a_month_the_server_does_not_hold_yet_stays_on_the_phone() {
    let Field { dir, p, server, clock, mut li, token, h } = field(day(2026, 1, 2), |o| o);
    let client = client_of(&server, &token);
    client.sync(&mut li).unwrap();
    // Recorded offline in January; the phone comes back to the network in May.
    visit_on(&mut li, &clock, &h, &p.li_na, VisitKind::WelfareCheck, day(2026, 1, 10));
    clock.set(day(2026, 5, 20));
    assert_eq!(li.release_outside_window().unwrap().documents, 0, "unsent: it stays");
    assert_eq!(months_held(&li).len(), 1);
    // The server refuses nothing of it (the change was made in January, while the month was
    // open). The session that sent it keeps it (a server restored from a backup taken meanwhile
    // would lack it); a later one lets it go, unless the phone keeps everything.
    let progress = client.sync(&mut li).unwrap();
    assert_eq!(progress.documents_released, 0, "{progress:?}");
    li.set_window(None);
    assert_eq!(client.sync(&mut li).unwrap().documents_released, 0, "no window: everything stays");
    li.set_window(Some(Window::default()));
    assert_eq!(client.sync(&mut li).unwrap().documents_released, 1);
    assert!(months_held(&li).is_empty());
    assert_eq!(shown(&li, &h).last_visit_at, Some(day(2026, 1, 10)));
    let (mut keeper, kclient) =
        phone_with(&server, dir.path(), "keeper", &p.li_na, OpenOptions { window: None, ..at_clock(&clock) });
    kclient.sync(&mut keeper).unwrap();
    assert_eq!(months_held(&keeper).len(), 1);
}

#[test]
fn a_report_closed_more_than_thirty_days_ago_leaves_the_phone() {
    let Field { p, server, clock, mut li, token, .. } = field(day(2026, 3, 2), |o| o);
    let client = client_of(&server, &token);
    let closed = file_report(&mut li, &p, &p.li_na, "Broken stair light in Building 3");
    let open = file_report(&mut li, &p, &p.li_na, "Bicycles blocking the fire exit");
    for kind in
        [ReportEventKind::Dispatched, ReportEventKind::Accepted, ReportEventKind::Resolved, ReportEventKind::Closed]
    {
        clock.advance(HOUR);
        let mut e = NewReportEvent::new(closed.id.clone(), p.li_na.id.clone(), kind);
        e.target = Some(p.li_na.id.to_string());
        li.add_report_event(e).unwrap();
    }
    client.sync(&mut li).unwrap();
    assert_eq!(li.search("stair", 0).unwrap().len(), 1);
    let rows_before: std::collections::HashMap<String, usize> =
        li.dump_query_tables().unwrap().into_iter().map(|(t, rows)| (t, rows.len())).collect();
    // What the closed report gave the tables: its row, its search entry, its five events.
    let removed: std::collections::HashMap<String, usize> =
        [("reports", 1), ("report_search", 1), ("report_events", 5), ("report_rejections", 0)]
            .into_iter()
            .map(|(t, n)| (t.to_string(), n))
            .collect();
    clock.advance(29 * DAY);
    assert_eq!(client.sync(&mut li).unwrap().documents_released, 0, "closed 29 days ago: it stays");
    clock.advance(2 * DAY);
    assert_eq!(client.sync(&mut li).unwrap().documents_released, 1);
    let held = li.document_ids().unwrap();
    assert!(!held.contains(&DocId::Report(closed.id.clone())));
    assert!(held.contains(&DocId::Report(open.id.clone())), "an open report stays however old");
    let listed: Vec<_> = li.reports(&ReportFilter::default()).unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(listed, vec![open.id.clone()]);
    assert!(li.search("stair", 0).unwrap().is_empty(), "nor is it found by search");
    for (table, rows) in li.dump_query_tables().unwrap() {
        if table.starts_with("report") {
            assert_eq!(rows.len(), rows_before[&table] - removed[&table], "{table}");
        }
    }
}

/// A one-month window: February stays through its grace week; visits entered then for late
/// February go into it, one of them deleted again; when February leaves, its clocks are the
/// month's as it closed (no clock the server told while it was still open, nor the deleted visit).
#[test]
fn a_visit_entered_in_the_grace_week_still_counts_once_its_month_left() {
    let one_month = |o| OpenOptions { window: Some(Window { months: 1, ..Window::default() }), ..o };
    let Field { p, server, clock, mut li, token, h, .. } = field(day(2026, 2, 2), one_month);
    let client = client_of(&server, &token);
    visit_on(&mut li, &clock, &h, &p.li_na, VisitKind::WelfareCheck, day(2026, 2, 10));
    let late = |li: &mut Store, date: UnixMillis| record(li, &h, &p.li_na, VisitKind::Routine, date);
    clock.set(day(2026, 3, 3));
    let mistake = late(&mut li, day(2026, 2, 27));
    assert_eq!(client.sync(&mut li).unwrap().documents_released, 0, "February is open for its grace week");
    // Two days later: the visit of the 27th was a mistake (deleted), the right one was the 26th.
    clock.set(day(2026, 3, 5));
    li.delete_visit(&mistake.id).unwrap();
    late(&mut li, day(2026, 2, 26));
    client.sync(&mut li).unwrap();
    let before = shown(&li, &h);
    assert_eq!(before.last_visit_at, Some(day(2026, 2, 26)));
    clock.set(day(2026, 3, 9));
    assert_eq!(client.sync(&mut li).unwrap().documents_released, 1);
    assert!(months_held(&li).is_empty());
    assert_eq!(shown(&li, &h), before);
}

/// The server is restored from a backup taken before it took February's visits. The phone sees
/// the server's feed go back, sends everything again, and lets nothing go in that session: the
/// month the server lost is on the server again before it leaves the phone.
#[test]
fn a_server_restored_from_a_backup_gets_everything_again_before_anything_leaves_the_phone() {
    let Field { dir, p, server, clock, mut li, token, h } = field(day(2026, 1, 2), |o| o);
    let client = client_of(&server, &token);
    visit_on(&mut li, &clock, &h, &p.li_na, VisitKind::WelfareCheck, day(2026, 1, 10));
    client.sync(&mut li).unwrap();
    let files = |from: &std::path::Path, to: &std::path::Path| {
        std::fs::create_dir_all(to).unwrap();
        for f in std::fs::read_dir(from).unwrap().map(|f| f.unwrap().path()) {
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with("server.sqlite") && !name.ends_with(".lock") {
                std::fs::copy(&f, to.join(&name)).unwrap();
            }
        }
    };
    // The operator's nightly backup, taken with the server stopped.
    server.stop();
    files(dir.path(), &dir.path().join("backup"));
    let server = start_server(dir.path(), |_| {});
    let client = client_of(&server, &token);
    visit_on(&mut li, &clock, &h, &p.li_na, VisitKind::Routine, day(2026, 2, 10));
    client.sync(&mut li).unwrap();
    // The disk fails; the backup comes back.
    server.stop();
    files(&dir.path().join("backup"), dir.path());
    let server = start_server(dir.path(), |_| {});
    let client = client_of(&server, &token);
    let february = DocId::Visits(p.micro_grid.id.clone(), month(2026, 2));
    assert!(!server.with_store(|s| s.document_ids().unwrap()).contains(&february), "the backup lacks February");

    // In May, with a new visit and a change to the register to send: the first request moves
    // the restored feed on before the listing, which must not hide that the feed went back.
    clock.set(day(2026, 5, 20));
    record(&mut li, &h, &p.li_na, VisitKind::Routine, day(2026, 5, 20));
    let notes = HouseholdUpdate { notes: Some("Gate code changed.".into()), ..Default::default() };
    li.update_household(&h, notes).unwrap();
    let progress = client.sync(&mut li).unwrap();
    assert_eq!(progress.documents_released, 0, "{progress:?}");
    assert!(server.with_store(|s| s.document_ids().unwrap()).contains(&february), "sent again");
    assert_eq!(server.with_store(|s| s.visit_history(&h, 0).unwrap()).len(), 3);
    assert_eq!(client.sync(&mut li).unwrap().documents_released, 2);
}

/// A visit of February recorded offline by the volunteer reaches the server in May, after Li
/// Na's phone let February go: her phone does not take February back, but asks the server for
/// the register's clocks again and shows the household's newer visit.
#[test]
fn a_late_visit_to_a_month_that_left_moves_the_clocks_on_the_phone_that_let_it_go() {
    let Field { dir, p, server, clock, mut li, token, h } = field(day(2026, 2, 2), |o| o);
    let client = client_of(&server, &token);
    visit_on(&mut li, &clock, &h, &p.li_na, VisitKind::WelfareCheck, day(2026, 2, 10));
    client.sync(&mut li).unwrap();
    let (mut vol, vclient) = phone_with(&server, dir.path(), "volunteer", &p.volunteer, at_clock(&clock));
    visit_on(&mut vol, &clock, &h, &p.volunteer, VisitKind::WelfareCheck, day(2026, 2, 20));

    clock.set(day(2026, 5, 20));
    assert_eq!(client.sync(&mut li).unwrap().documents_released, 1);
    assert_eq!(shown(&li, &h).last_visit_at, Some(day(2026, 2, 10)));
    vclient.sync(&mut vol).unwrap();
    let progress = client.sync(&mut li).unwrap();
    assert_eq!(progress.documents_released, 0, "February was not taken back: {progress:?}");
    assert!(months_held(&li).is_empty());
    assert_eq!(shown(&li, &h).last_visit_at, Some(day(2026, 2, 20)));
}

/// What one request may make the server do for earlier clocks is bounded: at most 32 registers,
/// each once, and nothing after the server's current month (a visit dated years ahead is no clock).
#[test]
fn asks_for_earlier_clocks_are_bounded() {
    let (dir, _office, p, server) = served(|_| {});
    let (mut li, client) = phone(&server, dir.path(), "li-na", &p.li_na);
    let h = household(&mut li, &p, "301", &[CareTag::ElderlyAlone]).id;
    let ahead = SystemClock.now_ms() + 4 * 365 * DAY;
    visit_on(&mut li, &FixedClock::new(0), &h, &p.li_na, VisitKind::WelfareCheck, ahead);
    client.sync(&mut li).unwrap();
    let ask =
        |register: String, before: &str| sync::wire::Earlier { register, before: before.into(), households: vec![] };
    let send = |earlier: Vec<sync::wire::Earlier>| {
        let batch = Batch { earlier, cursor: Some(0), ..Batch::default() };
        sync::http::runtime().block_on(client.exchange(batch.encode())).map(|b| Batch::decode(&b).unwrap())
    };
    let answer =
        send(vec![ask(register(&p).to_string(), "9999-12"), ask(register(&p).to_string(), "9999-12")]).unwrap();
    assert_eq!(answer.earlier.len(), 1, "asked twice, answered once");
    let none = sync::wire::EarlierClocks {
        household: h.to_string(),
        last_visit_at: None,
        last_contact_at: None,
        unanswered_bell_at: None,
    };
    assert_eq!(answer.earlier[0].households, vec![none], "every household named; nothing of this month on counts");
    let many = (0..33).map(|i| ask(format!("register/{i:026}"), "2026-01")).collect();
    assert!(matches!(send(many), Err(Error::Refused { .. })));
}

/// A visit dated years ahead (a phone's clock gone wrong, or a hostile app) sits in January's
/// document. While January is on the phone it shows as recorded; once January left, neither the
/// phone's own fold nor the server's answer lets it set a clock: no honest visit in January is
/// dated after January could close.
#[test]
fn a_visit_dated_after_its_month_could_close_sets_no_clock_once_the_month_left() {
    let Field { dir, p, server, clock, mut li, token, h } = field(day(2026, 1, 2), |o| o);
    let client = client_of(&server, &token);
    visit_on(&mut li, &clock, &h, &p.li_na, VisitKind::WelfareCheck, day(2026, 1, 10));
    record(&mut li, &h, &p.li_na, VisitKind::Routine, day(2030, 1, 10));
    assert_eq!(shown(&li, &h).last_visit_at, Some(day(2030, 1, 10)));
    client.sync(&mut li).unwrap();
    clock.set(day(2026, 5, 20));
    assert_eq!(client.sync(&mut li).unwrap().documents_released, 1);
    assert_eq!(shown(&li, &h).last_visit_at, Some(day(2026, 1, 10)));
    let (li2, _) = phone_with(&server, dir.path(), "li-na-2", &p.li_na, at_clock(&clock));
    assert_eq!(shown(&li2, &h).last_visit_at, Some(day(2026, 1, 10)));
}

/// A history request takes from the server only the months it asked for, whole and valid: a
/// document it did not ask for, bytes that are no document, a refusal, each ends the request
/// with an error and nothing of it is kept.
#[test]
fn a_history_answer_that_was_not_asked_for_or_is_damaged_is_refused() {
    let Field { mut li, h, .. } = field(day(2026, 3, 2), |o| o);
    let asked =
        DocId::Visits(li.households(&Default::default()).unwrap()[0].micro_grid.clone().unwrap(), month(2026, 1));
    let register = DocId::Register(asked.unit().unwrap().clone());
    let other_bytes = li.save_document(&register).unwrap();
    let stored = li.dump_query_tables().unwrap();
    let request = || {
        let mut r = sync::VisitsRequest::new(&li, &h, month(2026, 1), month(2026, 1)).unwrap();
        assert!(r.next_message().is_some());
        r
    };
    let answer = |doc: &DocId, data: Vec<u8>| {
        Batch { docs: vec![Entry::new(doc, Kind::Save, data)], ..Batch::default() }.encode()
    };
    assert!(matches!(request().receive(&answer(&register, other_bytes.clone())), Err(Error::Protocol(_))));
    assert!(matches!(
        request().receive(&answer(&asked, other_bytes)),
        Err(Error::WrongDocument { .. } | Error::CorruptDocument { .. })
    ));
    assert!(matches!(
        request().receive(&answer(&asked, b"not a document".to_vec())),
        Err(Error::CorruptDocument { .. })
    ));
    let refused = Batch {
        refused: Some(sync::wire::Refusal { code: "forbidden_document".into(), message: "no".into() }),
        ..Batch::default()
    };
    assert!(matches!(request().receive(&refused.encode()), Err(Error::Refused { .. })));
    assert_eq!(li.dump_query_tables().unwrap(), stored);
}
