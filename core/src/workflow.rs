//! The closed loop of a citizen report, derived (docs/DATA-MODEL.md, *Report workflow*): status, assignee, escalation
//! level, deadlines and the overdue flag are a pure, deterministic fold over the report's event
//! log, the directory's facts about each author, and the category's deadlines. Nothing derived is
//! stored in the document, so two phones that merged the same events show the same state,
//! whatever order they received them in.
//!
//! The fold visits events in (time, event id) order. Each event is applied only if its author
//! has the right to it (by role and relationship to the report) and the report is in a state
//! where it makes sense; otherwise it is *rejected* with a reason and changes nothing. The rules
//! for each event kind, and how concurrent offline events resolve, are written down in
//! `docs/DATA-MODEL.md` ("Report workflow").

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::clock::{UnixMillis, HOUR_MS};
use crate::directory::{Role, UnitKind};
use crate::household::RiskLevel;
use crate::ids::{EventId, ReportId, UserId};
use crate::report::{ReportEvent, ReportEventKind, ReportStatus};

field_enum! {
    /// How hard a report is to handle, set at triage (简单 / 一般 / 复杂 / 历史遗留 / 重大疑难).
    pub enum Classification {
        Simple = "simple",
        General = "general",
        Complex = "complex",
        HistoricalLegacy = "historical_legacy",
        /// Goes to the district at once.
        MajorDifficult = "major_difficult",
    }
}

field_enum! {
    /// A deadline of the loop.
    pub enum Step {
        Triage = "triage",
        Feedback = "feedback",
        Resolution = "resolution",
    }
}

/// What the directory says about one author, as far as this report goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    pub role: Role,
    /// Works in the report's grid (or one of its micro-grids), or in a unit above it.
    pub covers_grid: bool,
    /// For department handlers.
    pub department: Option<String>,
}

/// The authors of a report's events, looked up in the directory. An author missing here (not
/// in this phone's directory yet, or deleted) has no rights.
pub type Roster = HashMap<UserId, Person>;

/// The deadlines of a report's category, in milliseconds from filing (resolution: from filing,
/// or from the last reopening).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub triage_ms: i64,
    pub feedback_ms: i64,
    pub resolve_ms: i64,
    /// Resolution deadlines that replace `resolve_ms` once a report is classified so.
    pub resolve_ms_by_class: BTreeMap<Classification, i64>,
}

impl Policy {
    pub fn from_hours(triage: u32, feedback: u32, resolve: u32) -> Policy {
        Policy {
            triage_ms: i64::from(triage) * HOUR_MS,
            feedback_ms: i64::from(feedback) * HOUR_MS,
            resolve_ms: i64::from(resolve) * HOUR_MS,
            resolve_ms_by_class: BTreeMap::new(),
        }
    }

    fn resolve_ms(&self, class: Option<Classification>) -> i64 {
        class.and_then(|c| self.resolve_ms_by_class.get(&c).copied()).unwrap_or(self.resolve_ms)
    }
}

impl Default for Policy {
    /// Triage within 1 day, first feedback within 3, resolution within 7.
    fn default() -> Self {
        Policy::from_hours(24, 72, 168)
    }
}

/// The facts of a report the fold needs besides its events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    pub id: ReportId,
    pub reporter: UserId,
    pub created_at: UnixMillis,
}

/// An event the fold did not apply, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    pub event: EventId,
    pub reason: String,
}

/// Where a report stands, derived from its log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Derived {
    pub status: ReportStatus,
    pub classification: Option<Classification>,
    pub risk: Option<RiskLevel>,
    /// Who it is dispatched to: a department's name or a user id.
    pub assignee: Option<String>,
    pub accepted_by: Option<UserId>,
    /// The level it has been escalated to (`Grid` when never escalated).
    pub level: UnitKind,
    pub triage_due: UnixMillis,
    pub feedback_due: UnixMillis,
    pub resolve_due: UnixMillis,
    pub triaged_at: Option<UnixMillis>,
    pub first_feedback_at: Option<UnixMillis>,
    pub resolved_at: Option<UnixMillis>,
    pub closed_at: Option<UnixMillis>,
    /// The reporter's last satisfaction score (1–5).
    pub satisfaction: Option<u8>,
    pub reopen_count: u32,
    pub duplicate_of: Option<String>,
    pub rejected: Vec<Rejected>,
    /// When the resolution clock started: filing, or the last reopening.
    pub resolve_from: UnixMillis,
}

impl Derived {
    fn is_open(&self) -> bool {
        !matches!(self.status, ReportStatus::Resolved | ReportStatus::Closed | ReportStatus::Duplicate)
    }

    /// The earliest deadline not met yet, if any: what the report is waiting for next.
    pub fn next_due(&self) -> Option<(Step, UnixMillis)> {
        let mut due = Vec::new();
        if self.triaged_at.is_none() && self.status == ReportStatus::Open {
            due.push((Step::Triage, self.triage_due));
        }
        if self.first_feedback_at.is_none() && self.status != ReportStatus::Duplicate && self.closed_at.is_none() {
            due.push((Step::Feedback, self.feedback_due));
        }
        if self.is_open() {
            due.push((Step::Resolution, self.resolve_due));
        }
        due.into_iter().min_by_key(|(step, at)| (*at, *step))
    }

    /// The deadlines missed as of `now`, each with how long ago it passed.
    pub fn overdue(&self, now: UnixMillis) -> Vec<(Step, i64)> {
        let mut out = Vec::new();
        if self.triaged_at.is_none() && self.status == ReportStatus::Open && now > self.triage_due {
            out.push((Step::Triage, now - self.triage_due));
        }
        if self.first_feedback_at.is_none()
            && self.status != ReportStatus::Duplicate
            && self.closed_at.is_none()
            && now > self.feedback_due
        {
            out.push((Step::Feedback, now - self.feedback_due));
        }
        if self.is_open() && now > self.resolve_due {
            out.push((Step::Resolution, now - self.resolve_due));
        }
        out
    }

    /// The level a report should have reached by `now`: one level up for each missed deadline.
    pub fn due_level(&self, now: UnixMillis) -> UnitKind {
        match self.overdue(now).len() {
            0 => UnitKind::Grid,
            1 => UnitKind::Community,
            2 => UnitKind::Street,
            _ => UnitKind::District,
        }
    }
}

/// Rank of an escalation level: grid 0 → district 3.
pub fn level_rank(k: UnitKind) -> u8 {
    match k {
        UnitKind::MicroGrid | UnitKind::Grid => 0,
        UnitKind::Community => 1,
        UnitKind::Street => 2,
        UnitKind::District => 3,
    }
}

/// The fold. Events may come in any order; they are sorted by (time, id) first.
pub fn derive(facts: &Facts, events: &[ReportEvent], roster: &Roster, policy: &Policy) -> Derived {
    let mut sorted: Vec<&ReportEvent> = events.iter().collect();
    sorted.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
    let mut d = Derived {
        status: ReportStatus::Open,
        classification: None,
        risk: None,
        assignee: None,
        accepted_by: None,
        level: UnitKind::Grid,
        triage_due: facts.created_at + policy.triage_ms,
        feedback_due: facts.created_at + policy.feedback_ms,
        resolve_due: facts.created_at + policy.resolve_ms,
        triaged_at: None,
        first_feedback_at: None,
        resolved_at: None,
        closed_at: None,
        satisfaction: None,
        reopen_count: 0,
        duplicate_of: None,
        rejected: Vec::new(),
        resolve_from: facts.created_at,
    };
    let mut submitted = false;
    for e in sorted {
        if let Err(reason) = apply(&mut d, facts, e, roster, policy, &mut submitted) {
            d.rejected.push(Rejected { event: e.id.clone(), reason });
        }
    }
    d
}

fn apply(
    d: &mut Derived,
    facts: &Facts,
    e: &ReportEvent,
    roster: &Roster,
    policy: &Policy,
    submitted: &mut bool,
) -> Result<(), String> {
    use ReportEventKind as K;
    use ReportStatus as S;
    let who = roster.get(&e.author);
    let is_reporter = e.author == facts.reporter;
    let admin = who.is_some_and(|p| p.role == Role::Admin);
    // Grid workers and supervisors who work in or above the report's grid.
    let staff = admin || who.is_some_and(|p| p.covers_grid && matches!(p.role, Role::GridWorker | Role::Supervisor));
    let supervisor = admin || who.is_some_and(|p| p.covers_grid && p.role == Role::Supervisor);
    // The one the report is dispatched to: that user, or a handler of that department.
    let handler = d.assignee.as_deref().is_some_and(|a| {
        a == e.author.as_str()
            || who.is_some_and(|p| p.role == Role::DepartmentHandler && p.department.as_deref() == Some(a))
    });
    let deny = |who: &str| Err(format!("{} may not be recorded by {who}", e.kind.as_str()));
    let state = |s: ReportStatus| Err(format!("{} does not apply to a report that is {}", e.kind.as_str(), s.as_str()));
    match e.kind {
        K::Submitted => {
            if !is_reporter {
                return deny("anyone but the reporter");
            }
            if *submitted {
                return Err("the report was already submitted".into());
            }
            *submitted = true;
        }
        K::Triaged => {
            if !staff {
                return deny("someone who does not work in the report's grid");
            }
            if !matches!(d.status, S::Open | S::Triaged) {
                return state(d.status);
            }
            d.classification = e.classification.or(d.classification);
            d.risk = e.risk.or(d.risk);
            d.resolve_due = d.resolve_from + policy.resolve_ms(d.classification);
            d.triaged_at.get_or_insert(e.at);
            d.status = S::Triaged;
            if d.classification == Some(Classification::MajorDifficult) {
                d.level = UnitKind::District;
            }
        }
        K::Dispatched => {
            if !staff {
                return deny("someone who does not work in the report's grid");
            }
            if !matches!(d.status, S::Open | S::Triaged | S::Dispatched | S::InProgress) {
                return state(d.status);
            }
            let Some(target) = e.target.clone() else {
                return Err("a dispatch must name a department or a worker".into());
            };
            d.triaged_at.get_or_insert(e.at);
            d.assignee = Some(target);
            d.accepted_by = None;
            d.status = S::Dispatched;
        }
        K::Accepted => {
            if !handler {
                return deny("anyone but the department it is dispatched to");
            }
            match d.status {
                S::Dispatched => {
                    d.accepted_by = Some(e.author.clone());
                    d.status = S::InProgress;
                }
                S::InProgress => {
                    let by = d.accepted_by.as_ref().map_or("someone", |u| u.as_str());
                    return Err(format!("already accepted by {by}"));
                }
                s => return state(s),
            }
        }
        K::ProgressNote => {
            if !(handler || staff) {
                return deny("anyone but the handler or the grid's staff");
            }
            if !matches!(d.status, S::Dispatched | S::InProgress) {
                return state(d.status);
            }
        }
        K::Escalated => {
            if !(handler || staff) {
                return deny("anyone but the handler or the grid's staff");
            }
            if !d.is_open() {
                return state(d.status);
            }
            let target = match e.target.as_deref().and_then(UnitKind::parse) {
                Some(k) if k != UnitKind::MicroGrid => k,
                _ => return Err("an escalation must name the level: community, street or district".into()),
            };
            if level_rank(target) <= level_rank(d.level) {
                return Err(format!("already at the {} level", d.level.as_str()));
            }
            d.level = target;
        }
        K::Resolved => {
            if !(handler || supervisor) {
                return deny("anyone but the handler or a supervisor");
            }
            if !matches!(d.status, S::Dispatched | S::InProgress) {
                return state(d.status);
            }
            d.resolved_at = Some(e.at);
            d.status = S::Resolved;
        }
        K::FeedbackSent => {
            if !(handler || staff) {
                return deny("anyone but the handler or the grid's staff");
            }
            if d.status == S::Duplicate {
                return state(d.status);
            }
            d.first_feedback_at.get_or_insert(e.at);
        }
        K::Confirmed => {
            if !is_reporter {
                return deny("anyone but the reporter");
            }
            if !matches!(d.status, S::Resolved | S::Closed) {
                return state(d.status);
            }
            d.satisfaction = e.score.or(d.satisfaction);
        }
        K::Disputed | K::Reopened => {
            let allowed = if e.kind == K::Disputed { is_reporter } else { is_reporter || supervisor };
            if !allowed {
                return deny(if e.kind == K::Disputed {
                    "anyone but the reporter"
                } else {
                    "anyone but the reporter or a supervisor"
                });
            }
            if !matches!(d.status, S::Resolved | S::Closed) {
                return state(d.status);
            }
            if e.kind == K::Disputed {
                d.satisfaction = e.score.or(d.satisfaction);
            }
            d.reopen_count += 1;
            d.resolved_at = None;
            d.closed_at = None;
            d.accepted_by = None;
            d.resolve_from = e.at;
            d.resolve_due = e.at + policy.resolve_ms(d.classification);
            d.status = if d.assignee.is_some() { S::Dispatched } else { S::Open };
        }
        K::Closed => {
            if !staff {
                return deny("someone who does not work in the report's grid");
            }
            if d.status != S::Resolved {
                return state(d.status);
            }
            d.closed_at = Some(e.at);
            d.status = S::Closed;
        }
        K::MergedAsDuplicate => {
            if !staff {
                return deny("someone who does not work in the report's grid");
            }
            if matches!(d.status, S::Closed | S::Duplicate) {
                return state(d.status);
            }
            match &e.target {
                Some(t) if t != facts.id.as_str() => d.duplicate_of = Some(t.clone()),
                _ => return Err("a merge must name the other report".into()),
            }
            d.status = S::Duplicate;
        }
        K::Comment => {
            if !(is_reporter || handler || who.is_some_and(|p| p.covers_grid || p.role == Role::Admin)) {
                return deny("someone who may not see the report");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = HOUR_MS;

    fn u(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    fn roster() -> Roster {
        let p = |role, covers_grid, department: Option<&str>| Person {
            role,
            covers_grid,
            department: department.map(str::to_string),
        };
        [
            ("reporter", p(Role::FlowingReporter, false, None)),
            ("li-na", p(Role::GridWorker, true, None)),
            ("zhang-wei", p(Role::GridWorker, false, None)),
            ("gao-min", p(Role::Supervisor, true, None)),
            ("handler-1", p(Role::DepartmentHandler, false, Some("housing"))),
            ("handler-2", p(Role::DepartmentHandler, false, Some("housing"))),
            ("volunteer", p(Role::MicroGridVolunteer, true, None)),
        ]
        .into_iter()
        .map(|(id, p)| (u(id), p))
        .collect()
    }

    fn facts() -> Facts {
        Facts { id: ReportId::parse("R1").unwrap(), reporter: u("reporter"), created_at: 0 }
    }

    fn ev(n: u32, at: i64, author: &str, kind: ReportEventKind) -> ReportEvent {
        ReportEvent {
            id: EventId::parse(&format!("E{n:03}")).unwrap(),
            at,
            author: u(author),
            kind,
            note: String::new(),
            target: None,
            score: None,
            photos: vec![],
            classification: None,
            risk: None,
        }
    }

    fn with_target(mut e: ReportEvent, t: &str) -> ReportEvent {
        e.target = Some(t.into());
        e
    }

    fn loop_events() -> Vec<ReportEvent> {
        use ReportEventKind as K;
        let mut triage = ev(2, H, "li-na", K::Triaged);
        triage.classification = Some(Classification::General);
        triage.risk = Some(RiskLevel::Yellow);
        vec![
            ev(1, 0, "reporter", K::Submitted),
            triage,
            with_target(ev(3, 2 * H, "li-na", K::Dispatched), "housing"),
            ev(4, 3 * H, "handler-1", K::Accepted),
            ev(5, 20 * H, "li-na", K::FeedbackSent),
            ev(6, 30 * H, "handler-1", K::Resolved),
        ]
    }

    #[test]
    fn the_whole_loop() {
        let mut events = loop_events();
        let mut confirm = ev(7, 31 * H, "reporter", ReportEventKind::Confirmed);
        confirm.score = Some(5);
        events.push(confirm);
        events.push(ev(8, 32 * H, "li-na", ReportEventKind::Closed));
        let d = derive(&facts(), &events, &roster(), &Policy::default());
        assert_eq!(d.status, ReportStatus::Closed);
        assert_eq!(d.assignee.as_deref(), Some("housing"));
        assert_eq!(d.accepted_by, Some(u("handler-1")));
        assert_eq!((d.classification, d.risk), (Some(Classification::General), Some(RiskLevel::Yellow)));
        assert_eq!(d.satisfaction, Some(5));
        assert!(d.rejected.is_empty(), "{:?}", d.rejected);
        assert_eq!(d.next_due(), None);
        assert!(d.overdue(1_000 * H).is_empty());
    }

    #[test]
    fn a_volunteer_closing_a_report_is_rejected_and_changes_nothing() {
        let mut events = loop_events();
        events.push(ev(7, 31 * H, "volunteer", ReportEventKind::Closed));
        let d = derive(&facts(), &events, &roster(), &Policy::default());
        assert_eq!(d.status, ReportStatus::Resolved);
        assert_eq!(d.rejected.len(), 1);
        assert!(d.rejected[0].reason.contains("closed may not be recorded"), "{:?}", d.rejected);
    }

    #[test]
    fn two_handlers_accept_offline_the_first_wins() {
        let mut events = loop_events()[..3].to_vec();
        events.push(ev(4, 3 * H, "handler-2", ReportEventKind::Accepted));
        events.push(ev(5, 3 * H, "handler-1", ReportEventKind::Accepted));
        let d = derive(&facts(), &events, &roster(), &Policy::default());
        assert_eq!(d.accepted_by, Some(u("handler-2")), "same time: the smaller event id first");
        assert_eq!(d.rejected.len(), 1);
        assert!(d.rejected[0].reason.contains("already accepted by handler-2"));
    }

    #[test]
    fn escalation_after_resolution_is_rejected_resolution_after_escalation_counts() {
        let mut a = loop_events();
        a.push(with_target(ev(9, 31 * H, "gao-min", ReportEventKind::Escalated), "street"));
        let d = derive(&facts(), &a, &roster(), &Policy::default());
        assert_eq!((d.status, d.level), (ReportStatus::Resolved, UnitKind::Grid));
        let mut b = loop_events();
        b.push(with_target(ev(9, 29 * H, "gao-min", ReportEventKind::Escalated), "street"));
        let d = derive(&facts(), &b, &roster(), &Policy::default());
        assert_eq!((d.status, d.level), (ReportStatus::Resolved, UnitKind::Street));
    }

    #[test]
    fn a_dispute_after_a_close_reopens_with_a_new_clock() {
        let mut events = loop_events();
        events.push(ev(7, 32 * H, "li-na", ReportEventKind::Closed));
        let mut dispute = ev(8, 40 * H, "reporter", ReportEventKind::Disputed);
        dispute.score = Some(1);
        events.push(dispute);
        let d = derive(&facts(), &events, &roster(), &Policy::default());
        assert_eq!(d.status, ReportStatus::Dispatched);
        assert_eq!((d.reopen_count, d.satisfaction), (1, Some(1)));
        assert_eq!(d.resolve_due, 40 * H + 168 * H);
        assert_eq!(d.closed_at, None);
    }

    #[test]
    fn missed_deadlines_raise_the_due_level() {
        let events = vec![ev(1, 0, "reporter", ReportEventKind::Submitted)];
        let d = derive(&facts(), &events, &roster(), &Policy::default());
        assert_eq!(d.next_due(), Some((Step::Triage, 24 * H)));
        assert_eq!(d.overdue(25 * H), vec![(Step::Triage, H)]);
        assert_eq!(d.due_level(25 * H), UnitKind::Community);
        assert_eq!(d.due_level(73 * H), UnitKind::Street);
        assert_eq!(d.due_level(169 * H), UnitKind::District);
        // A major-difficult report goes to the district at triage.
        let mut t = ev(2, H, "li-na", ReportEventKind::Triaged);
        t.classification = Some(Classification::MajorDifficult);
        let d = derive(&facts(), &[events[0].clone(), t], &roster(), &Policy::default());
        assert_eq!(d.level, UnitKind::District);
    }

    #[test]
    fn a_classification_can_have_its_own_resolution_deadline() {
        let mut policy = Policy::default();
        policy.resolve_ms_by_class.insert(Classification::Complex, 336 * H);
        let mut t = ev(2, H, "li-na", ReportEventKind::Triaged);
        t.classification = Some(Classification::Complex);
        let events = vec![ev(1, 0, "reporter", ReportEventKind::Submitted), t];
        let d = derive(&facts(), &events, &roster(), &policy);
        assert_eq!(d.resolve_due, 336 * H);
        let d = derive(&facts(), &events[..1], &roster(), &policy);
        assert_eq!(d.resolve_due, 168 * H, "unclassified: the category's deadline");
    }

    #[test]
    fn a_worker_of_another_grid_cannot_dispatch() {
        let mut events = loop_events()[..2].to_vec();
        events.push(with_target(ev(3, 2 * H, "zhang-wei", ReportEventKind::Dispatched), "housing"));
        let d = derive(&facts(), &events, &roster(), &Policy::default());
        assert_eq!(d.status, ReportStatus::Triaged);
        assert_eq!(d.assignee, None);
    }
}
