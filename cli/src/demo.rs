//! `doorstep demo`: a working day in a sample district, on fresh SQLite files.
//!
//! A field day: the district office seeds the register (1,200 households with residents in four
//! grids) and loads it onto a sync server started on 127.0.0.1; two grid workers, a volunteer, a
//! courier and a supervisor enrol their phones with codes from the admin and pull what they may
//! see. The phones work offline all day (bell checks, visits, a hazard found, a report with a
//! photo); at noon the volunteer's and Li Na's phones sync directly in a stairwell with no
//! network; in the evening every phone reaches the server, and the supervisor's phone shows
//! everything.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use doorstep_core::sync::{http::ServerClient, PeerResponder, Session};
use doorstep_core::{assessment_csv, Area, Scope};
use doorstep_core::{
    CareTag, Classification, Clock, FixedClock, HouseholdFilter, HouseholdSummary, NewReport, NewReportEvent, NewVisit,
    OpenOptions, RecordRef, ReportEventKind, ReportFilter, ReportStatus, Result, RiskLevel, SearchHit, Store,
    UnixMillis, User, VisitKind, VisitOutcome,
};
use doorstep_core::{DAY_MS as DAY, HOUR_MS as HOUR};
use doorstep_server::{admin::AdminClient, Config, RunningServer};
use rand::{rngs::StdRng, Rng, SeedableRng};

use crate::sample;

/// Midnight of the demo day in Zhengzhou (UTC+8): 2026-11-23 00:00 +08:00.
const DAY_START: UnixMillis = 1_795_392_000_000 - 8 * HOUR;
const GRIDS: usize = 4;
const HOUSEHOLDS_PER_GRID: usize = 300;
const MICRO_GRIDS_PER_GRID: usize = 25;

/// "HH:MM" in China Standard Time.
fn clock_time(ms: UnixMillis) -> String {
    let minutes = (ms + 8 * HOUR).rem_euclid(DAY) / 60_000;
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

fn days_ago(now: UnixMillis, then: UnixMillis) -> String {
    let d = (now - then) / DAY;
    match d {
        0 => "today".into(),
        1 => "yesterday".into(),
        d => format!("{d} days ago"),
    }
}

fn tags(t: &std::collections::BTreeSet<CareTag>) -> String {
    if t.is_empty() {
        return "-".into();
    }
    t.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(",")
}

struct Phone {
    name: &'static str,
    store: Store,
    clock: Arc<FixedClock>,
    client: ServerClient,
}

impl Phone {
    /// A sync with the server; prints what it carried.
    fn sync(&mut self, when: &str) -> Result<()> {
        let started = Instant::now();
        let p = self.client.sync(&mut self.store)?;
        let status = self.store.sync_status()?;
        println!(
            "[{}] {when}: synced with the server in {} round trip(s), {} B up, {} B down, {} document(s), {} ms; pending changes: {}",
            self.name,
            p.round,
            p.bytes_sent,
            p.bytes_received,
            p.documents,
            started.elapsed().as_millis(),
            status.pending_changes
        );
        Ok(())
    }
}

fn open(path: &Path, clock: &Arc<FixedClock>) -> Result<Store> {
    Store::open(path, OpenOptions { clock: clock.clone(), ..OpenOptions::default() })
}

/// Two phones sync directly: the app would carry these bytes over Wi-Fi Direct or Bluetooth.
fn stairwell(a: &mut Store, b: &mut Store) -> Result<(u32, u64)> {
    let mut session = Session::with_peer(a)?;
    let mut responder = PeerResponder::new(b)?;
    while let Some(msg) = session.next_message(a)? {
        let answer = responder.respond(b, &msg)?;
        session.receive(a, &answer)?;
    }
    let p = session.progress();
    Ok((p.round, p.bytes_sent + p.bytes_received))
}

pub fn run(dir: Option<&Path>) -> Result<()> {
    let tmp;
    let kept = dir.is_some();
    let dir: PathBuf = match dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            if std::fs::read_dir(d)?.next().is_some() {
                return Err(doorstep_core::Error::File(format!("{} is not empty; give a new folder", d.display())));
            }
            d.to_path_buf()
        }
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let mut rng = StdRng::seed_from_u64(2026);
    println!("Doorstep demo: a working day in Jinshui District (files in {})", dir.display());

    // ---- the district office sets up the register, two months ago -------------------------
    let office_clock = Arc::new(FixedClock::new(DAY_START - 60 * DAY + 9 * HOUR));
    let mut office = open(&dir.join("office.sqlite"), &office_clock)?;
    let d = sample::district(&mut office, GRIDS, MICRO_GRIDS_PER_GRID)?;
    let staff = sample::staff(&mut office, &d)?;
    println!(
        "\n[office] district, {} grids, {} micro-grids, 6 users, 8 report categories",
        GRIDS,
        GRIDS * MICRO_GRIDS_PER_GRID
    );
    let mut households = Vec::new();
    for (g, grid) in d.grids.iter().enumerate() {
        let mut in_grid = Vec::new();
        for i in 0..HOUSEHOLDS_PER_GRID {
            let micro = &d.micro_grids[g][i * MICRO_GRIDS_PER_GRID / HOUSEHOLDS_PER_GRID];
            in_grid.push(sample::household(&mut office, &mut rng, grid, Some(micro), i, true)?);
        }
        println!(
            "[office] registering households: {} of {}",
            (g + 1) * HOUSEHOLDS_PER_GRID,
            GRIDS * HOUSEHOLDS_PER_GRID
        );
        households.push(in_grid);
    }

    // ---- the last six weeks of visits ------------------------------------------------------
    let mut past = 0;
    for (g, in_grid) in households.iter().enumerate() {
        let worker = staff.workers.get(g).unwrap_or(&staff.supervisor).id.clone();
        for h in in_grid {
            for _ in 0..rng.random_range(0..3) {
                let at = DAY_START - rng.random_range(1..42) * DAY + rng.random_range(9..17) * HOUR;
                let (kind, outcome) = sample::visit_kind(&mut rng, h.care_tags.contains(&CareTag::ElderlyAlone));
                office.record_visit(sample::visit_to(
                    &h.id,
                    h.location,
                    &worker,
                    (kind, outcome),
                    sample::visit_note(&mut rng),
                    Some(at),
                ))?;
                past += 1;
            }
        }
        println!("[office] visit history: grid {} of {} done ({past} visits so far)", g + 1, GRIDS);
    }
    // A courier's report from four days ago that nobody has triaged yet.
    office_clock.set(DAY_START - 4 * DAY + 16 * HOUR);
    office.file_report(NewReport {
        reporter: staff.courier.id.clone(),
        category: doorstep_core::CategoryId::parse("city-management")?,
        description: "Street light out at the north gate, the path is dark at night".into(),
        location: households[1][0].location,
        address: Some("North gate".into()),
        grid: Some(d.grids[1].id.clone()),
        photos: vec![],
    })?;
    office.compact_all()?;

    // ---- the sync server, loaded with the register ----------------------------------------------
    let admin_token = format!("demo-admin-{}", ulid_like(&mut rng));
    let server = RunningServer::start(Config {
        listen: "127.0.0.1:0".into(),
        database: dir.join("server.sqlite"),
        admin_token: Some(admin_token.clone()),
        ..Config::default()
    })?;
    let admin = AdminClient::new(&server.url(), &admin_token);
    let mut loaded = 0;
    for doc in office.document_ids()? {
        let bytes = office.save_document(&doc)?;
        loaded += bytes.len();
        admin.import(&doc, bytes)?;
    }
    println!("\n[server] listening on {}; the office loaded the register ({} KB)", server.url(), loaded / 1024);

    // ---- phones enrol and take their copies in the morning -------------------------------------
    let morning = DAY_START + 8 * HOUR;
    let phone = |name: &'static str, user: &User, at: UnixMillis| -> Result<Phone> {
        let clock = Arc::new(FixedClock::new(at));
        let mut store = open(&dir.join(format!("{name}.sqlite")), &clock)?;
        let client = ServerClient::new(&server.url())?;
        let code = admin.enrolment_code(&user.id, 72)?;
        let reg = client.register(&code, &mut store, name)?;
        let mut p = Phone { name, store, clock, client: client.with_token(reg.token) };
        p.sync(&format!("{} enrolled with code {code}", clock_time(at)))?;
        Ok(p)
    };
    let enrol = morning - 30 * 60_000;
    let mut li_na = phone("li-na-phone", &staff.workers[0], enrol)?;
    let mut zhang_wei = phone("zhang-wei-phone", &staff.workers[1], enrol)?;
    let mut volunteer = phone("volunteer-phone", &staff.volunteer, enrol)?;
    let mut courier = phone("courier-phone", &staff.courier, enrol)?;
    // Before they leave the office, a last sync brings every phone the colleagues enrolled after
    // it (their devices are in the directory): phones only sync directly with known devices.
    for p in [&mut li_na, &mut zhang_wei, &mut volunteer, &mut courier] {
        p.clock.set(morning - 5 * 60_000);
        p.sync(&clock_time(morning - 5 * 60_000))?;
        p.clock.set(morning);
    }

    // ---- the morning screens -------------------------------------------------------------------
    let grid = &d.grids[0];
    let li_grid = HouseholdFilter { grid: Some(grid.id.clone()), ..Default::default() };
    let (overdue, elderly) = morning_screen(&li_na, "Li Na's phone", &staff.workers[0], &grid.name, &li_grid)?;
    let z_grid = HouseholdFilter { grid: Some(d.grids[1].id.clone()), ..Default::default() };
    let (z_overdue, _) = morning_screen(&zhang_wei, "Zhang Wei's phone", &staff.workers[1], &d.grids[1].name, &z_grid)?;
    let micro = &d.micro_grids[0][0];
    let v_micro = HouseholdFilter { micro_grid: Some(micro.id.clone()), ..Default::default() };
    let (_, v_elderly) =
        morning_screen(&volunteer, "Wang Guiying's phone (volunteer)", &staff.volunteer, &micro.name, &v_micro)?;

    // ---- Li Na's round: bell checks on elderly people living alone, then visits -------------
    let mut t = morning + 30 * 60_000;
    let mut unanswered = None;
    for (i, h) in elderly.iter().take(12).enumerate() {
        li_na.clock.set(t);
        let answered = i != 4;
        li_na.store.record_visit(NewVisit {
            household: h.id.clone(),
            worker: staff.workers[0].id.clone(),
            at: None,
            location: h.location,
            kind: if answered { VisitKind::BellCheckAnswered } else { VisitKind::BellCheckNoAnswer },
            outcome: if answered { VisitOutcome::AllWell } else { VisitOutcome::NobodyHome },
            notes: if answered {
                "Waved from the window.".into()
            } else {
                "No answer to the bell; phone not answered either.".into()
            },
            follow_up: !answered,
            photos: vec![],
        })?;
        if !answered {
            unanswered = Some(h.clone());
        }
        t += 4 * 60_000;
    }
    println!("[li-na-phone] {}–{}: 12 bell checks, 1 without answer", clock_time(morning + 30 * 60_000), clock_time(t));
    if let Some(h) = &unanswered {
        t += 20 * 60_000;
        li_na.clock.set(t);
        li_na.store.record_visit(sample::visit_to(
            &h.id,
            h.location,
            &staff.workers[0].id,
            (VisitKind::WelfareCheck, VisitOutcome::AllWell),
            "Went up after the unanswered bell: resident had been at the clinic, back now and well.",
            None,
        ))?;
        println!(
            "[li-na-phone] {}: went up to {} after the unanswered bell — resident well",
            clock_time(t),
            h.address.label()
        );
    }
    for h in overdue.iter().take(15) {
        t += 12 * 60_000;
        li_na.clock.set(t);
        let (kind, outcome) = sample::visit_kind(&mut rng, h.care_tags.contains(&CareTag::ElderlyAlone));
        li_na.store.record_visit(sample::visit_to(
            &h.id,
            h.location,
            &staff.workers[0].id,
            (kind, outcome),
            sample::visit_note(&mut rng),
            None,
        ))?;
    }
    println!("[li-na-phone] until {}: 15 door-to-door visits to the most overdue households", clock_time(t));

    // ---- Zhang Wei: inspections, a dispute, a hazard reported ---------------------------------
    let grid = &d.grids[1];

    let mut t = morning + 45 * 60_000;
    for (i, h) in z_overdue.iter().take(20).enumerate() {
        zhang_wei.clock.set(t);
        let (kind, outcome, notes) = match i {
            3 => (
                VisitKind::DisputeMediation,
                VisitOutcome::ResolvedOnSite,
                "Noise dispute with the flat above mediated; both agreed on quiet hours after 22:00.".to_string(),
            ),
            7 => (
                VisitKind::HazardInspection,
                VisitOutcome::ProblemFound,
                "Fire exit on the ground floor blocked by stored furniture.".to_string(),
            ),
            _ => {
                let (k, o) = sample::visit_kind(&mut rng, h.care_tags.contains(&CareTag::ElderlyAlone));
                (k, o, sample::visit_note(&mut rng))
            }
        };
        zhang_wei.store.record_visit(sample::visit_to(
            &h.id,
            h.location,
            &staff.workers[1].id,
            (kind, outcome),
            notes,
            None,
        ))?;
        if i == 7 {
            zhang_wei.store.file_report(NewReport {
                reporter: staff.workers[1].id.clone(),
                category: doorstep_core::CategoryId::parse("safety-hazard")?,
                description: "Fire exit blocked by stored furniture on the ground floor".into(),
                location: h.location,
                address: Some(h.address.label()),
                grid: Some(grid.id.clone()),
                photos: vec![],
            })?;
            println!("[zhang-wei-phone] {}: hazard inspection found a blocked fire exit — report filed", clock_time(t));
        }
        t += 15 * 60_000;
    }
    println!("[zhang-wei-phone] until {}: 20 visits, one dispute mediated on the spot", clock_time(t));

    // ---- the volunteer rings the bells of the elderly neighbours in her building ---------------
    let mut t = DAY_START + 9 * HOUR;
    for h in &v_elderly {
        volunteer.clock.set(t);
        volunteer.store.record_visit(sample::visit_to(
            &h.id,
            h.location,
            &staff.volunteer.id,
            (VisitKind::BellCheckAnswered, VisitOutcome::AllWell),
            "Rang the bell from downstairs; waved back.",
            None,
        ))?;
        t += 5 * 60_000;
    }
    println!(
        "[volunteer-phone] {}: bell checks on {} elderly neighbours in {}",
        clock_time(DAY_START + 9 * HOUR),
        v_elderly.len(),
        micro.name
    );

    // ---- the volunteer snaps a photo of e-bikes charging in a corridor ------------------------
    volunteer.clock.set(DAY_START + 11 * HOUR + 20 * 60_000);
    let photo_file = dir.join("corridor.png");
    std::fs::write(&photo_file, sample_png())?;
    let photo = volunteer.store.import_photo(
        &photo_file,
        "image/png",
        1,
        1,
        Some(volunteer.clock.now_ms()),
        households[0][3].location,
    )?;
    let report = volunteer.store.file_report(NewReport {
        reporter: staff.volunteer.id.clone(),
        category: doorstep_core::CategoryId::parse("safety-hazard")?,
        description: "Three e-bikes charging in the corridor of building 1, cables across the stairs".into(),
        location: households[0][3].location,
        address: Some(households[0][3].address.label()),
        grid: Some(d.grids[0].id.clone()),
        photos: vec![photo.clone()],
    })?;
    println!(
        "[volunteer-phone] {}: snap-and-report with a photo (sha256 {}…, {} bytes kept on the phone)",
        clock_time(volunteer.clock.now_ms()),
        &photo.sha256[..12],
        photo.byte_size
    );

    // ---- noon: the volunteer meets Li Na in the stairwell; their phones sync without network --
    volunteer.clock.set(DAY_START + 12 * HOUR + 10 * 60_000);
    li_na.clock.set(DAY_START + 12 * HOUR + 10 * 60_000);
    let (rounds, bytes) = stairwell(&mut volunteer.store, &mut li_na.store)?;
    let li_open = li_na.store.reports(&ReportFilter {
        status: Some(ReportStatus::Open),
        grid: Some(d.grids[0].id.clone()),
        ..Default::default()
    })?;
    println!(
        "[stairwell] {}: the volunteer's and Li Na's phones synced directly, no network, each certificate checked, encrypted: {rounds} round trip(s), {bytes} B; Li Na's phone now shows {} open report(s) in her grid",
        clock_time(volunteer.clock.now_ms()),
        li_open.len()
    );

    // ---- Li Na triages the volunteer's report on the spot and sends it to fire safety ------------
    li_na.clock.set(DAY_START + 12 * HOUR + 20 * 60_000);
    let mut triage = NewReportEvent::new(report.id.clone(), staff.workers[0].id.clone(), ReportEventKind::Triaged);
    triage.classification = Some(Classification::General);
    triage.risk = Some(RiskLevel::Orange);
    li_na.store.add_report_event(triage)?;
    let mut dispatch = NewReportEvent::new(report.id.clone(), staff.workers[0].id.clone(), ReportEventKind::Dispatched);
    dispatch.target = Some(sample::FIRE_SAFETY.into());
    li_na.store.add_report_event(dispatch)?;
    println!(
        "[li-na-phone] {}: triaged the e-bike report (general, orange) and dispatched it to {}, still offline",
        clock_time(li_na.clock.now_ms()),
        sample::FIRE_SAFETY
    );

    // ---- a courier on his round reports a leaning tree -----------------------------------------
    courier.clock.set(DAY_START + 14 * HOUR + 5 * 60_000);
    courier.store.file_report(NewReport {
        reporter: staff.courier.id.clone(),
        category: doorstep_core::CategoryId::parse("city-management")?,
        description: "Leaning tree on Wenhua Road outside the school gate, branches over the pavement".into(),
        location: Some(doorstep_core::GeoPoint::new(34.7712, 113.6655)?),
        address: None,
        grid: Some(d.grids[2].id.clone()),
        photos: vec![],
    })?;
    println!("[courier-phone] {}: reported a leaning tree on his delivery round", clock_time(courier.clock.now_ms()));

    // ---- evening: every phone reaches the server --------------------------------------------------
    println!();
    let evening = DAY_START + 18 * HOUR;
    // The volunteer first: Li Na's triage builds on the volunteer's report, and the server takes
    // each phone's own changes only, so hers wait until the report itself has arrived.
    for p in [&mut volunteer, &mut courier, &mut zhang_wei, &mut li_na] {
        p.clock.set(evening);
        p.sync(&clock_time(evening))?;
    }
    if let Some(h) = &unanswered {
        if let Some(v) = li_na.store.visit_history(&h.id, 1)?.first() {
            let reached = li_na.store.reached_server(&RecordRef::Visit(v.id.clone()))?;
            let receipt = if reached { "reached" } else { "has not reached" };
            println!("[li-na-phone] receipt: the follow-up visit after the unanswered bell {receipt} the server");
        }
    }

    // ---- the rest of the loop: the handler, Li Na, the volunteer ------------------------------------
    let mut handler = phone("handler-phone", &staff.handler, evening + 30 * 60_000)?;
    let step = |p: &mut Phone, at: UnixMillis, who: &User, kind: ReportEventKind| -> Result<()> {
        p.clock.set(at);
        p.store.add_report_event(NewReportEvent::new(report.id.clone(), who.id.clone(), kind))?;
        Ok(())
    };
    step(&mut handler, evening + 40 * 60_000, &staff.handler, ReportEventKind::Accepted)?;
    handler.clock.set(evening + 90 * 60_000);
    let evidence = handler.store.import_photo(&photo_file, "image/png", 1, 1, Some(handler.clock.now_ms()), None)?;
    let mut resolved = NewReportEvent::new(report.id.clone(), staff.handler.id.clone(), ReportEventKind::Resolved);
    resolved.note = "E-bikes moved to the charging shed; residents told, owner of flat 302 warned in writing".into();
    resolved.photos = vec![evidence];
    handler.store.add_report_event(resolved)?;
    handler.sync(&format!(
        "{} accepted the e-bike report, resolved it with a photo",
        clock_time(handler.clock.now_ms())
    ))?;
    li_na.clock.set(evening + 105 * 60_000);
    li_na.sync(&clock_time(li_na.clock.now_ms()))?;
    step(&mut li_na, evening + 106 * 60_000, &staff.workers[0], ReportEventKind::FeedbackSent)?;
    li_na.sync(&format!("{} told the volunteer it is handled", clock_time(li_na.clock.now_ms())))?;
    volunteer.clock.set(evening + 2 * HOUR);
    volunteer.sync(&clock_time(volunteer.clock.now_ms()))?;
    let mut confirm = NewReportEvent::new(report.id.clone(), staff.volunteer.id.clone(), ReportEventKind::Confirmed);
    confirm.score = Some(5);
    volunteer.store.add_report_event(confirm)?;
    volunteer.sync(&format!("{} confirmed, 5 of 5", clock_time(volunteer.clock.now_ms())))?;
    li_na.clock.set(evening + 2 * HOUR + 10 * 60_000);
    li_na.sync(&clock_time(li_na.clock.now_ms()))?;
    step(&mut li_na, evening + 2 * HOUR + 11 * 60_000, &staff.workers[0], ReportEventKind::Closed)?;
    li_na.sync(&format!("{} closed the e-bike report", clock_time(li_na.clock.now_ms())))?;

    // ---- the supervisor enrols, sees what is overdue in the district and escalates it -----------
    let mut supervisor = phone("supervisor-phone", &staff.supervisor, evening + 2 * HOUR + 30 * 60_000)?;
    let now = supervisor.clock.now_ms();
    let overdue = supervisor.store.overdue_reports(&d.district.id, now)?;
    println!("\n=== Overdue in Jinshui District, {} ===", clock_time(now));
    for r in &overdue {
        println!(
            "  {} — {} deadline missed by {} h (level {}, {})",
            r.description,
            r.step.as_str(),
            r.overdue_ms / HOUR,
            r.level.as_str(),
            r.status.as_str()
        );
    }
    let escalated = supervisor.store.escalate_overdue(&staff.supervisor.id, &d.district.id)?;
    for id in &escalated {
        let state = supervisor.store.report_state(id)?;
        let (filed, _) = supervisor.store.report(id)?;
        println!("[supervisor-phone] escalated to the {} level: {}", state.level.as_str(), filed.description);
    }
    supervisor.sync(&clock_time(now))?;
    let office = &mut supervisor.store;

    // ---- the supervisor's screens ----------------------------------------------------------------
    let now = supervisor.clock.now_ms();
    println!("\n=== Supervisor's view, {} ===", clock_time(now));
    for g in &d.grids {
        let all = office.households(&HouseholdFilter { grid: Some(g.id.clone()), ..Default::default() })?;
        let visited_today = all.iter().filter(|h| h.last_visit_at.is_some_and(|t| t >= DAY_START)).count();
        let overdue = office.households(&HouseholdFilter {
            grid: Some(g.id.clone()),
            due_by: Some(DAY_START),
            ..Default::default()
        })?;
        println!(
            "{:<18} households {:>4}   seen today {:>3}   still overdue {:>4}",
            g.name,
            all.len(),
            visited_today,
            overdue.len()
        );
    }
    let missed = office.missed_follow_ups(&d.district.id, now)?;
    println!("Unanswered bells nobody followed up in time: {}", missed.len());
    let open = office.reports(&ReportFilter { status: Some(ReportStatus::Open), ..Default::default() })?;
    println!("Open reports: {}", open.len());
    for r in &open {
        println!(
            "  [{}] {} — {} (filed {} {})",
            r.category,
            r.description,
            r.address.as_deref().unwrap_or("-"),
            days_ago(now, r.created_at),
            clock_time(r.created_at)
        );
    }
    let (filed, events) = office.report(&report.id)?;
    let state = office.report_state(&report.id)?;
    println!(
        "Report {} carries {} photo(s) and {} event(s): {}",
        filed.id,
        filed.photos.len(),
        events.len(),
        events.iter().map(|e| format!("{} {}", clock_time(e.at), e.kind.as_str())).collect::<Vec<_>>().join(" → ")
    );
    println!(
        "  now {}, handled by {}, satisfaction {}/5, evidence photos {}",
        state.status.as_str(),
        state.assignee.as_deref().unwrap_or("-"),
        state.satisfaction.unwrap_or(0),
        events.iter().map(|e| e.photos.len()).sum::<usize>()
    );
    if let Some(h) = &unanswered {
        println!("Visit history of {} (the unanswered bell):", h.address.label());
        for v in office.visit_history(&h.id, 4)? {
            println!("  {} {:<22} {:<13} {}", clock_time(v.at), v.kind.as_str(), v.outcome.as_str(), v.notes);
        }
    }
    let hits = office.search("e-bike", 5)?;
    println!("Search \"e-bike\": {} hit(s)", hits.len());
    for h in hits {
        match h {
            SearchHit::Household { address, .. } => println!("  household {address}"),
            SearchHit::Report { description, .. } => println!("  report: {description}"),
        }
    }
    let near =
        office.reports(&ReportFilter { near: households[0][3].location.map(|p| (p, 300.0)), ..Default::default() })?;
    println!("Reports within 300 m of the volunteer's photo: {}", near.len());
    // ---- the week's assessment, per grid and per worker, as CSV -----------------------------
    let week = (DAY_START - 6 * DAY, DAY_START + DAY);
    let mut rows = Vec::new();
    for g in &d.grids {
        rows.push(office.assessment(&Scope::Grid(g.id.clone()), week.0, week.1)?);
    }
    for w in [&staff.workers[0], &staff.workers[1], &staff.volunteer] {
        rows.push(office.assessment(&Scope::Worker(w.id.clone()), week.0, week.1)?);
    }
    let csv = assessment_csv(&rows);
    std::fs::write(dir.join("assessment.csv"), &csv)?;
    println!("Assessment of the last 7 days (assessment.csv):");
    for (row, g) in rows.iter().zip(&d.grids) {
        println!(
            "  {:<18} coverage {:>5.1}% ({} of {} due)   visits/day {:>4.1}   reports {}",
            g.name,
            row.coverage * 100.0,
            row.households_covered,
            row.households_due,
            row.visits_per_day,
            row.reports
        );
    }
    if kept {
        println!("\nDone. Stores: office.sqlite, server.sqlite and five phones in {}", dir.display());
    } else {
        println!("\nDone. The stores were in a temporary folder; `doorstep demo --dir DIR` keeps them.");
    }
    server.stop();
    Ok(())
}

fn ulid_like(rng: &mut StdRng) -> String {
    (0..16).map(|_| format!("{:02x}", rng.random::<u8>())).collect()
}

/// What a worker sees first in the morning: overdue and due visits in their area, the most
/// overdue households, and the area's open reports. Returns the overdue and the elderly-alone lists.
fn morning_screen(
    p: &Phone,
    who: &str,
    user: &User,
    area: &str,
    scope: &HouseholdFilter,
) -> Result<(Vec<HouseholdSummary>, Vec<HouseholdSummary>)> {
    let now = p.clock.now_ms();
    let overdue = p.store.households(&HouseholdFilter { due_by: Some(DAY_START), ..scope.clone() })?;
    let due_today = p.store.households(&HouseholdFilter { due_by: Some(DAY_START + DAY - 1), ..scope.clone() })?.len();
    let elderly = p.store.households(&HouseholdFilter { care_tag: Some(CareTag::ElderlyAlone), ..scope.clone() })?;
    let open = p.store.reports(&ReportFilter {
        status: Some(ReportStatus::Open),
        grid: scope.grid.clone(),
        ..Default::default()
    })?;
    let welfare = p.store.welfare(&Area::Worker(user.id.clone()), now, DAY_START + DAY)?;
    println!("\n=== {who}, {} — {area} ===", clock_time(now));
    println!(
        "Overdue visits: {}   due today: {}   elderly living alone: {}   open reports: {}",
        overdue.len(),
        due_today - overdue.len(),
        elderly.len(),
        open.len()
    );
    println!(
        "Bell checks due today: {}   unanswered bells to follow up: {}   never visited: {}",
        welfare.bell_checks_due.len(),
        welfare.follow_ups.len(),
        welfare.never_visited.len()
    );
    for h in overdue.iter().take(3) {
        let last = h.last_visit_at.map_or("never visited".into(), |t| format!("last visit {}", days_ago(now, t)));
        println!("  {:<34} risk {:<6} care {:<28} {last}", h.address.label(), h.risk.as_str(), tags(&h.care_tags));
    }
    Ok((overdue, elderly))
}

/// A valid 1×1 PNG, standing in for the camera's photo.
fn sample_png() -> Vec<u8> {
    vec![
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00,
        0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4, 0x89, 0x00, 0x00, 0x00,
        0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0xF8, 0xCF, 0xC0, 0xF0, 0x1F, 0x00, 0x05, 0x00, 0x01, 0xFF,
        0x89, 0x99, 0x3D, 0x1D, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
    ]
}
