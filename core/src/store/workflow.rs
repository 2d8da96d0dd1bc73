//! The store's side of the report workflow: each report's row carries what
//! [`crate::workflow::derive`] makes of its log, recomputed from the `reports` and
//! `report_events` tables whenever the log or the directory changes; the supervisor's overdue
//! view; recording escalations for reports whose deadlines passed.

use std::collections::BTreeSet;

use rusqlite::{params, Connection, OptionalExtension};

use super::access::covers;
use super::Store;
use crate::clock::UnixMillis;
use crate::directory::{Role, UnitKind};
use crate::error::{Db, Error, Result};
use crate::household::RiskLevel;
use crate::ids::{EventId, ReportId, UnitId, UserId};
use crate::report::{NewReportEvent, ReportEvent, ReportEventKind};
use crate::workflow::{derive, Classification, Derived, Facts, Person, Policy, Rejected, Roster, Step};

/// "Overdue in my area": the grids under a unit (`?1`), and their reports whose earliest open
/// deadline passed before `?2`, most overdue first. Public so that `doorstep bench workflow`
/// runs the very same query on plain SQLite.
pub(crate) const OVERDUE_SQL: &str = "WITH RECURSIVE area(id) AS (
         SELECT ?1 UNION ALL SELECT u.id FROM units u JOIN area a ON u.parent_id = a.id WHERE u.deleted = 0
     )
     SELECT r.id, r.grid_id, r.category_id, r.description, r.status, r.next_due_step, r.next_due_at, r.level,
            r.assignee
     FROM reports r WHERE r.grid_id IN (SELECT id FROM area) AND r.next_due_at IS NOT NULL AND r.next_due_at < ?2
     ORDER BY r.next_due_at, r.id";

/// A report whose deadline passed, for the supervisor's view.
#[derive(Clone, Debug, PartialEq)]
pub struct OverdueReport {
    pub id: ReportId,
    pub grid: Option<UnitId>,
    pub category: String,
    pub description: String,
    pub status: crate::report::ReportStatus,
    /// The earliest deadline missed.
    pub step: Step,
    pub due_at: UnixMillis,
    /// How long ago that deadline passed.
    pub overdue_ms: i64,
    pub level: UnitKind,
    pub assignee: Option<String>,
}

/// Re-derives one report's row from its log (already in `report_events`).
pub(crate) fn derive_report(conn: &Connection, id: &str) -> Result<()> {
    let Some((facts, grid, category)) = facts_of(conn, id)? else { return Ok(()) };
    let events = events_of(conn, id)?;
    let roster = roster_for(conn, &events, grid.as_deref())?;
    let d = derive(&facts, &events, &roster, &policy_for(conn, &category)?);
    let next = d.next_due();
    conn.prepare_cached(
        "UPDATE reports SET status = ?2, classification = ?3, risk = ?4, assignee = ?5, accepted_by = ?6, level = ?7,
             next_due_step = ?8, next_due_at = ?9, triaged_at = ?10, first_feedback_at = ?11, resolved_at = ?12,
             closed_at = ?13, satisfaction = ?14, reopen_count = ?15, duplicate_of = ?16, rejected_count = ?17,
             triage_due_at = ?18, feedback_due_at = ?19, resolve_due_at = ?20
         WHERE id = ?1",
    )
    .db()?
    .execute(params![
        id,
        d.status.as_str(),
        d.classification.map(|c| c.as_str()),
        d.risk.map(|r| r.as_str()),
        d.assignee,
        d.accepted_by.as_ref().map(|u| u.as_str()),
        d.level.as_str(),
        next.map(|(s, _)| s.as_str()),
        next.map(|(_, at)| at),
        d.triaged_at,
        d.first_feedback_at,
        d.resolved_at,
        d.closed_at,
        d.satisfaction,
        d.reopen_count,
        d.duplicate_of,
        d.rejected.len() as i64,
        d.triage_due,
        d.feedback_due,
        d.resolve_due,
    ])
    .db()?;
    conn.prepare_cached("DELETE FROM report_rejections WHERE report_id = ?1").db()?.execute([id]).db()?;
    for r in &d.rejected {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO report_rejections (event_id, report_id, reason) VALUES (?1, ?2, ?3)",
        )
        .db()?
        .execute(params![r.event.as_str(), id, r.reason])
        .db()?;
    }
    Ok(())
}

/// Re-derives every report (the directory changed: roles, units or deadlines).
pub(crate) fn derive_all_reports(conn: &Connection) -> Result<()> {
    let mut stmt = conn.prepare("SELECT id FROM reports").db()?;
    let ids = stmt.query_map([], |r| r.get::<_, String>(0)).db()?.collect::<rusqlite::Result<Vec<_>>>().db()?;
    ids.iter().try_for_each(|id| derive_report(conn, id))
}

fn facts_of(conn: &Connection, id: &str) -> Result<Option<(Facts, Option<String>, String)>> {
    let row: Option<(String, Option<String>, String, i64)> = conn
        .prepare_cached("SELECT reporter_id, grid_id, category_id, created_at FROM reports WHERE id = ?1")
        .db()?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()
        .db()?;
    let Some((reporter, grid, category, created_at)) = row else { return Ok(None) };
    let facts = Facts { id: ReportId::parse(id)?, reporter: UserId::parse(&reporter)?, created_at };
    Ok(Some((facts, grid, category)))
}

fn events_of(conn: &Connection, id: &str) -> Result<Vec<ReportEvent>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, at, author_id, kind, note, target, score, classification, risk FROM report_events
         WHERE report_id = ?1",
        )
        .db()?;
    let rows = stmt
        .query_map([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, Option<u8>>(6)?,
                r.get::<_, Option<String>>(7)?,
                r.get::<_, Option<String>>(8)?,
            ))
        })
        .db()?;
    let mut out = Vec::new();
    for row in rows {
        let (eid, at, author, kind, note, target, score, class, risk) = row.db()?;
        // Rows come from validated records; one that no longer parses is left out of the fold.
        let (Ok(eid), Ok(author), Some(kind)) =
            (EventId::parse(&eid), UserId::parse(&author), ReportEventKind::parse(&kind))
        else {
            continue;
        };
        out.push(ReportEvent {
            id: eid,
            at,
            author,
            kind,
            note,
            target,
            score,
            photos: Vec::new(),
            classification: class.as_deref().and_then(Classification::parse),
            risk: risk.as_deref().and_then(RiskLevel::parse),
        });
    }
    Ok(out)
}

fn roster_for(conn: &Connection, events: &[ReportEvent], grid: Option<&str>) -> Result<Roster> {
    let authors: BTreeSet<&UserId> = events.iter().map(|e| &e.author).collect();
    let mut roster = Roster::new();
    for a in authors {
        let row: Option<(String, String, Option<String>)> = conn
            .prepare_cached("SELECT role, unit_id, department FROM users WHERE id = ?1 AND deleted = 0")
            .db()?
            .query_row([a.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()
            .db()?;
        let Some((role, unit, department)) = row else { continue };
        let Some(role) = Role::parse(&role) else { continue };
        let covers_grid = match grid {
            Some(g) => covers(conn, role, &unit, g)?,
            None => role == Role::Admin,
        };
        roster.insert(a.clone(), Person { role, covers_grid, department });
    }
    Ok(roster)
}

fn policy_for(conn: &Connection, category: &str) -> Result<Policy> {
    let row: Option<(u32, u32, u32, String)> = conn
        .prepare_cached(
            "SELECT triage_hours, feedback_hours, resolve_hours, class_resolve_hours FROM categories WHERE id = ?1",
        )
        .db()?
        .query_row([category], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()
        .db()?;
    let Some((t, f, r, by_class)) = row else { return Ok(Policy::default()) };
    let mut policy = Policy::from_hours(t, f, r);
    let by_class: std::collections::BTreeMap<Classification, u32> = serde_json::from_str(&by_class).unwrap_or_default();
    policy.resolve_ms_by_class = by_class.into_iter().map(|(c, h)| (c, i64::from(h) * crate::clock::HOUR_MS)).collect();
    Ok(policy)
}

impl Store {
    /// Where a report stands: its derived state, including the events the fold refused.
    pub fn report_state(&self, id: &ReportId) -> Result<Derived> {
        let (facts, grid, category) =
            facts_of(&self.conn, id.as_str())?.ok_or_else(|| Error::not_found("report", id))?;
        let events = events_of(&self.conn, id.as_str())?;
        let roster = roster_for(&self.conn, &events, grid.as_deref())?;
        Ok(derive(&facts, &events, &roster, &policy_for(&self.conn, &category)?))
    }

    /// Why the workflow would refuse `event` on report `id` as things stand here (`None`: it
    /// would apply). Used to refuse such events when they are written, with a message the app can
    /// show; events that arrive from other phones are judged by the fold as they merge.
    pub(crate) fn refusal_of(&self, id: &ReportId, event: &ReportEvent) -> Result<Option<String>> {
        let (facts, grid, category) =
            facts_of(&self.conn, id.as_str())?.ok_or_else(|| Error::not_found("report", id))?;
        let mut events = events_of(&self.conn, id.as_str())?;
        events.push(event.clone());
        let roster = roster_for(&self.conn, &events, grid.as_deref())?;
        let d = derive(&facts, &events, &roster, &policy_for(&self.conn, &category)?);
        Ok(d.rejected.into_iter().find(|r| r.event == event.id).map(|r| r.reason))
    }

    /// The events of a report the workflow refused, with why, in the order the fold met them
    /// (by time, then id), as `report_state(..).rejected` lists them.
    pub fn rejected_events(&self, id: &ReportId) -> Result<Vec<Rejected>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT r.event_id, r.reason FROM report_rejections r LEFT JOIN report_events e ON e.id = r.event_id
             WHERE r.report_id = ?1 ORDER BY e.at, r.event_id",
            )
            .db()?;
        let rows = stmt.query_map([id.as_str()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).db()?;
        let mut out = Vec::new();
        for row in rows {
            let (event, reason) = row.db()?;
            out.push(Rejected { event: EventId::parse(&event)?, reason });
        }
        Ok(out)
    }

    /// Reports that may be the same problem as `id`: same category, filed within the category's
    /// time window of it and within its distance (directory, `categories`), not already merged
    /// as duplicates. Nearest first.
    pub fn possible_duplicates(&self, id: &ReportId) -> Result<Vec<crate::store::query::ReportSummary>> {
        struct Row {
            category: String,
            lat: Option<f64>,
            lon: Option<f64>,
            at: i64,
            radius: u32,
            window_h: u32,
        }
        let row = self
            .conn
            .query_row(
                "SELECT r.category_id, r.lat, r.lon, r.created_at, COALESCE(c.duplicate_radius_m, 100),
                        COALESCE(c.duplicate_window_hours, 72)
                 FROM reports r LEFT JOIN categories c ON c.id = r.category_id WHERE r.id = ?1",
                [id.as_str()],
                |r| {
                    Ok(Row {
                        category: r.get(0)?,
                        lat: r.get(1)?,
                        lon: r.get(2)?,
                        at: r.get(3)?,
                        radius: r.get(4)?,
                        window_h: r.get(5)?,
                    })
                },
            )
            .optional()
            .db()?;
        let Row { category, lat, lon, at, radius, window_h } = row.ok_or_else(|| Error::not_found("report", id))?;
        let (Some(lat), Some(lon)) = (lat, lon) else { return Ok(Vec::new()) };
        let here = crate::geo::GeoPoint::new(lat, lon)?;
        let window = i64::from(window_h) * crate::clock::HOUR_MS;
        let mut near = self.reports(&crate::store::query::ReportFilter {
            category: Some(crate::ids::CategoryId::parse(&category)?),
            near: Some((here, f64::from(radius.max(1)))),
            ..Default::default()
        })?;
        near.retain(|r| {
            &r.id != id && (r.created_at - at).abs() <= window && r.status != crate::report::ReportStatus::Duplicate
        });
        near.sort_by(|a, b| {
            let d = |r: &crate::store::query::ReportSummary| r.location.map_or(f64::MAX, |p| here.distance_m(&p));
            d(a).total_cmp(&d(b)).then(a.id.cmp(&b.id))
        });
        Ok(near)
    }

    /// "Overdue in my area, by how long": reports in the grids under `area` (a grid, community,
    /// street or district) whose earliest open deadline passed before `now`, most overdue first.
    pub fn overdue_reports(&self, area: &UnitId, now: UnixMillis) -> Result<Vec<OverdueReport>> {
        self.unit_kind(area)?;
        let mut stmt = self.conn.prepare_cached(OVERDUE_SQL).db()?;
        let rows = stmt
            .query_map(params![area.as_str(), now], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, Option<String>>(8)?,
                ))
            })
            .db()?;
        let mut out = Vec::new();
        for row in rows {
            let (id, grid, category, description, status, step, due_at, level, assignee) = row.db()?;
            let bad = || Error::storage("a report row is damaged; rebuild the indexes");
            out.push(OverdueReport {
                id: ReportId::parse(&id)?,
                grid: grid.map(|g| UnitId::parse(&g)).transpose()?,
                category,
                description,
                status: crate::report::ReportStatus::parse(&status).ok_or_else(bad)?,
                step: Step::parse(&step).ok_or_else(bad)?,
                due_at,
                overdue_ms: now - due_at,
                level: UnitKind::parse(&level).ok_or_else(bad)?,
                assignee,
            });
        }
        Ok(out)
    }

    /// Escalates, as `author`, every report in `area` that is overdue and below the level its
    /// missed deadlines call for (one level up per missed deadline: community, street, district).
    /// Reports the author may not escalate are left alone. Returns the reports escalated.
    pub fn escalate_overdue(&mut self, author: &UserId, area: &UnitId) -> Result<Vec<ReportId>> {
        let now = self.now();
        let mut escalated = Vec::new();
        for r in self.overdue_reports(area, now)? {
            let state = self.report_state(&r.id)?;
            let target = state.due_level(now);
            if crate::workflow::level_rank(target) <= crate::workflow::level_rank(state.level) {
                continue;
            }
            let missed: Vec<String> = state
                .overdue(now)
                .iter()
                .map(|(s, by)| format!("{} deadline missed by {} h", s.as_str(), by / crate::clock::HOUR_MS))
                .collect();
            let mut e = NewReportEvent::new(r.id.clone(), author.clone(), ReportEventKind::Escalated);
            e.target = Some(target.as_str().to_string());
            e.note = missed.join("; ");
            match self.add_report_event(e) {
                Ok(_) => escalated.push(r.id),
                // Not theirs to escalate (another grid, or a role without the right).
                Err(Error::InvalidInput { field: "report event", .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(escalated)
    }
}
