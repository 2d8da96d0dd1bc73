//! Welfare-visit schedules as the field tells them: an elderly neighbour living alone gets a bell
//! check every day and a home visit every week; an unanswered bell needs a follow-up within hours,
//! and the supervisors see it if nobody went.

use doorstep_core::*;
use doorstep_core::{Area, Welfare};
use testkit::*;

const H: i64 = 3_600_000;

fn ids(list: &[HouseholdSummary]) -> Vec<HouseholdId> {
    list.iter().map(|h| h.id.clone()).collect()
}

fn screen(s: &Store, area: &Area, now: i64) -> Welfare {
    // "Today" ends at the next midnight after `now` (days start at MORNING - 8 h here).
    let day_start = MORNING - 8 * H;
    let day_end = day_start + ((now - day_start) / DAY + 1) * DAY;
    s.welfare(area, now, day_end).unwrap()
}

#[test]
fn a_bell_every_day_a_visit_every_week_and_follow_ups_within_hours() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, f) = district(&dir.path().join("phone.sqlite"));
    let grandma = household(&mut s, &f, "301", &[CareTag::ElderlyAlone]);
    let family = household(&mut s, &f, "302", &[]);
    let red = household(&mut s, &f, "303", &[]);
    s.update_household(&red.id, HouseholdUpdate { risk: Some(RiskLevel::Red), ..Default::default() }).unwrap();
    let grid = Area::Grid(f.grid.id.clone());

    // Day 1, 08:30: Li Na rings Grandma's bell; she answers from the window.
    f.clock.set(MORNING + H / 2);
    s.record_visit(visit(&grandma.id, &f.li_na.id, VisitKind::BellCheckAnswered)).unwrap();
    let g = s.household(&grandma.id).unwrap();
    assert_eq!(g.next_bell_due_at, Some(MORNING + H / 2 + DAY), "bell again tomorrow");
    assert_eq!(g.last_visit_at, None, "a bell check is not a home visit");
    assert_eq!(s.household(&family.id).unwrap().next_bell_due_at, None, "no bell schedule without a care tag");
    let w = screen(&s, &grid, f.clock.now_ms());
    let mut never = ids(&w.never_visited);
    never.sort();
    let mut all = vec![grandma.id.clone(), family.id.clone(), red.id.clone()];
    all.sort();
    assert_eq!(never, all, "all three registered at once");
    assert!(w.bell_checks_due.is_empty(), "rung today");
    assert_eq!(ids(&w.visits_overdue).len(), 3, "registered this morning, never visited: due since then");

    // Li Na visits the red household and the family; the red one is due again tomorrow.
    s.record_visit(visit(&red.id, &f.li_na.id, VisitKind::WelfareCheck)).unwrap();
    s.record_visit(visit(&family.id, &f.li_na.id, VisitKind::Routine)).unwrap();
    assert_eq!(s.household(&red.id).unwrap().next_due_at, MORNING + H / 2 + DAY);

    // Day 2, 08:30: the volunteer rings; no answer. A follow-up is due by 12:30.
    f.clock.set(MORNING + DAY + H / 2);
    let w = screen(&s, &grid, f.clock.now_ms());
    assert_eq!(ids(&w.bell_checks_due), vec![grandma.id.clone()]);
    assert_eq!(ids(&w.visits_due_today), vec![red.id.clone()]);
    s.record_visit(visit(&grandma.id, &f.volunteer.id, VisitKind::BellCheckNoAnswer)).unwrap();
    assert_eq!(s.household(&grandma.id).unwrap().follow_up_due_at, Some(MORNING + DAY + H / 2 + 4 * H));
    let mine = screen(&s, &Area::Worker(f.volunteer.id.clone()), f.clock.now_ms());
    assert_eq!(ids(&mine.follow_ups), vec![grandma.id.clone()], "on the volunteer's screen (her micro-grid)");
    // 10:00: she goes up; Grandma was at the clinic. Home visit done, follow-up cleared.
    f.clock.set(MORNING + DAY + 2 * H);
    s.record_visit(visit(&grandma.id, &f.volunteer.id, VisitKind::WelfareCheck)).unwrap();
    let g = s.household(&grandma.id).unwrap();
    assert_eq!((g.follow_up_due_at, g.last_visit_at), (None, Some(MORNING + DAY + 2 * H)));
    assert_eq!(g.next_due_at, MORNING + DAY + 2 * H + 7 * DAY, "weekly home visit");

    // Day 3, 09:00: no answer again, and nobody goes. At 14:00 the street's supervisors see it.
    f.clock.set(MORNING + 2 * DAY + H);
    s.record_visit(visit(&grandma.id, &f.volunteer.id, VisitKind::BellCheckNoAnswer)).unwrap();
    f.clock.set(MORNING + 2 * DAY + 2 * H);
    s.record_visit(visit(&grandma.id, &f.volunteer.id, VisitKind::BellCheckNoAnswer)).unwrap();
    assert_eq!(
        s.household(&grandma.id).unwrap().follow_up_due_at,
        Some(MORNING + 2 * DAY + 5 * H),
        "counted from the first unanswered bell"
    );
    assert!(s.missed_follow_ups(&f.street.id, MORNING + 2 * DAY + 4 * H).unwrap().is_empty());
    let missed = s.missed_follow_ups(&f.street.id, MORNING + 2 * DAY + 6 * H).unwrap();
    assert_eq!(ids(&missed), vec![grandma.id.clone()]);
    assert!(s.missed_follow_ups(&f.other_grid.id, MORNING + 2 * DAY + 6 * H).unwrap().is_empty());

    // The rebuilt tables agree with the clocks kept visit by visit.
    let before = s.dump_query_tables().unwrap();
    s.rebuild_indexes().unwrap();
    assert_eq!(s.dump_query_tables().unwrap(), before);
}

#[test]
fn bell_schedules_come_from_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, f) = district(&dir.path().join("phone.sqlite"));
    let disabled = household(&mut s, &f, "401", &[CareTag::Disabled]);
    assert_eq!(s.household(&disabled.id).unwrap().next_bell_due_at, None);
    let mut rules = s.visit_rules().clone();
    rules.bell_check_hours.insert(CareTag::Disabled, 48);
    rules.follow_up_hours = 2;
    s.set_visit_rules(&rules).unwrap();
    assert_eq!(s.household(&disabled.id).unwrap().next_bell_due_at, Some(MORNING + 48 * H));
    s.record_visit(visit(&disabled.id, &f.li_na.id, VisitKind::BellCheckNoAnswer)).unwrap();
    assert_eq!(s.household(&disabled.id).unwrap().follow_up_due_at, Some(MORNING + 2 * H));
    let mut bad = rules.clone();
    bad.follow_up_hours = 0;
    assert!(matches!(s.set_visit_rules(&bad), Err(Error::InvalidInput { .. })));
}
