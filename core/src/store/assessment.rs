//! Assessment of a worker or a grid over a period, computed from what the documents hold (the
//! visits and report logs, through the query tables), so any phone or the server holding the same
//! documents computes the same figures, and exports them as CSV.
//!
//! Definitions (also in `docs/DATA-MODEL.md`):
//! * a household is *due* in [from, to) if it was registered before `to` and its last home visit
//!   before `from` (bell checks do not count) is missing or older than its visit interval before
//!   `to`; *covered* if it had a home visit in the period. Coverage = covered
//!   due households / due households;
//! * reports *in scope* are those filed in the period in the scope's grids; their on-time rates
//!   compare when each step happened with the deadline the workflow derives;
//! * for a worker, the scope is the grids their unit covers, and visits and reports found are
//!   theirs.

use rusqlite::{params, Connection};

use super::query::{grids_of, require_unit, require_user};
use super::Store;
use crate::clock::{UnixMillis, DAY_MS};
use crate::error::{Db, Error, Result};
use crate::ids::{UnitId, UserId};
use crate::report::ReportStatus;

/// Whom an assessment is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Grid(UnitId),
    Worker(UserId),
}

/// One row of an assessment.
#[derive(Clone, Debug, PartialEq)]
pub struct Assessment {
    /// `grid:<id>` or `worker:<id>`.
    pub scope: String,
    pub from: UnixMillis,
    pub to: UnixMillis,
    pub households_due: u32,
    pub households_covered: u32,
    /// `households_covered / households_due` (1 when nothing was due).
    pub coverage: f64,
    pub visits: u32,
    pub visits_per_day: f64,
    pub reports_found: u32,
    pub reports: u32,
    /// Shares of the reports in scope that met each deadline (of those where it applied).
    pub triage_on_time: Option<f64>,
    pub feedback_on_time: Option<f64>,
    pub resolution_on_time: Option<f64>,
    /// Resolved or closed / reports in scope.
    pub resolution_rate: Option<f64>,
    pub average_satisfaction: Option<f64>,
    /// Reports reopened at least once / reports resolved at least once.
    pub reopen_rate: Option<f64>,
}

impl Store {
    /// The assessment of `scope` over [from, to).
    pub fn assessment(&self, scope: &Scope, from: UnixMillis, to: UnixMillis) -> Result<Assessment> {
        if to <= from {
            return Err(Error::invalid("assessment period", "must end after it starts"));
        }
        // Visits of months that left this phone are not in its tables: such a period would be
        // counted short, so it is refused rather than shown wrong.
        if let Some(first) = self.window().map(|w| w.first_month(self.now())) {
            if from < first.start() {
                return Err(Error::invalid(
                    "assessment period",
                    format!("starts before {first}, the first month this phone keeps; assess it on the office's store"),
                ));
            }
        }
        assessment(&self.conn, scope, from, to)
    }
}

/// [`Store::assessment`] over a connection, for a period the tables hold whole.
pub(crate) fn assessment(conn: &Connection, scope: &Scope, from: UnixMillis, to: UnixMillis) -> Result<Assessment> {
    let (label, grids, worker) = match scope {
        Scope::Grid(g) => {
            require_unit(conn, g, crate::directory::UnitKind::Grid, "grid")?;
            (format!("grid:{g}"), vec![g.as_str().to_string()], None)
        }
        Scope::Worker(u) => {
            require_user(conn, u)?;
            (format!("worker:{u}"), grids_of(conn, u)?, Some(u.as_str().to_string()))
        }
    };
    let mut a = Assessment {
        scope: label,
        from,
        to,
        households_due: 0,
        households_covered: 0,
        coverage: 1.0,
        visits: 0,
        visits_per_day: 0.0,
        reports_found: 0,
        reports: 0,
        triage_on_time: None,
        feedback_on_time: None,
        resolution_on_time: None,
        resolution_rate: None,
        average_satisfaction: None,
        reopen_rate: None,
    };
    for grid in &grids {
        let (due, covered) = coverage_in(conn, grid, from, to)?;
        a.households_due += due;
        a.households_covered += covered;
    }
    if a.households_due > 0 {
        a.coverage = f64::from(a.households_covered) / f64::from(a.households_due);
    }
    // The worker's own visits and reports, or the grid's.
    let (whose, by) = match &worker {
        Some(w) => (w.as_str(), ["worker_id", "reporter_id"]),
        None => (grids[0].as_str(), ["grid_id", "grid_id"]),
    };
    a.visits = count(
        conn,
        &format!("SELECT COUNT(*) FROM visits WHERE {} = ?1 AND deleted = 0 AND at >= ?2 AND at < ?3", by[0]),
        params![whose, from, to],
    )?;
    a.visits_per_day = f64::from(a.visits) / ((to - from) as f64 / DAY_MS as f64);
    a.reports_found = count(
        conn,
        &format!("SELECT COUNT(*) FROM reports WHERE {} = ?1 AND created_at >= ?2 AND created_at < ?3", by[1]),
        params![whose, from, to],
    )?;
    report_figures(conn, &grids, from, to, &mut a)?;
    Ok(a)
}

/// (households due, households covered) in one grid over [from, to).
fn coverage_in(conn: &Connection, grid: &str, from: UnixMillis, to: UnixMillis) -> Result<(u32, u32)> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT
             (SELECT MAX(at) FROM (
                  SELECT MAX(v.at) AS at FROM visits v WHERE v.household_id = h.id AND v.deleted = 0
                      AND v.kind NOT IN ('bell_check_no_answer', 'bell_check_answered') AND v.at < ?2
                  UNION ALL SELECT e.last_visit_at FROM earlier_visits e
                      WHERE e.household_id = h.id AND e.last_visit_at < ?2)),
             h.visit_interval_ms,
             EXISTS (SELECT 1 FROM visits v WHERE v.household_id = h.id AND v.deleted = 0
                  AND v.kind NOT IN ('bell_check_no_answer', 'bell_check_answered') AND v.at >= ?2 AND v.at < ?3)
         FROM households h WHERE h.grid_id = ?1 AND h.deleted = 0 AND h.created_at < ?3",
        )
        .db()?;
    let rows = stmt
        .query_map(params![grid, from, to], |r| {
            Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, i64>(1)?, r.get::<_, bool>(2)?))
        })
        .db()?;
    let (mut due, mut covered) = (0, 0);
    for row in rows {
        let (last, interval, seen) = row.db()?;
        if last.is_none_or(|l| l + interval <= to) {
            due += 1;
            covered += u32::from(seen);
        }
    }
    Ok((due, covered))
}

/// The workflow figures, from the derived columns of the report rows (the fold already ran
/// when each log changed).
fn report_figures(
    conn: &Connection,
    grids: &[String],
    from: UnixMillis,
    to: UnixMillis,
    a: &mut Assessment,
) -> Result<()> {
    let (mut triage, mut feedback, mut resolution) = (Ratio::default(), Ratio::default(), Ratio::default());
    let (mut considered, mut resolved, mut ever_resolved, mut reopened) = (0u32, 0u32, 0u32, 0u32);
    let mut scores = Vec::new();
    for g in grids {
        let mut stmt = conn
            .prepare_cached(
                "SELECT status, triaged_at, triage_due_at, first_feedback_at, feedback_due_at,
                    COALESCE(resolved_at, closed_at), resolve_due_at, satisfaction, reopen_count
             FROM reports WHERE grid_id = ?1 AND created_at >= ?2 AND created_at < ?3",
            )
            .db()?;
        let rows = stmt
            .query_map(params![g, from, to], |r| {
                Ok(ReportRow {
                    status: r.get(0)?,
                    triaged_at: r.get(1)?,
                    triage_due: r.get(2)?,
                    feedback_at: r.get(3)?,
                    feedback_due: r.get(4)?,
                    resolved_at: r.get(5)?,
                    resolve_due: r.get(6)?,
                    satisfaction: r.get(7)?,
                    reopen_count: r.get(8)?,
                })
            })
            .db()?;
        for row in rows {
            let d = row.db()?;
            a.reports += 1;
            let status = ReportStatus::parse(&d.status)
                .ok_or_else(|| Error::storage("a report row is damaged; rebuild the indexes"))?;
            if status == ReportStatus::Duplicate {
                continue; // counted with the report it duplicates
            }
            considered += 1;
            triage.add(d.triaged_at.map(|t| t <= d.triage_due), to > d.triage_due);
            feedback.add(d.feedback_at.map(|t| t <= d.feedback_due), to > d.feedback_due);
            resolution.add(d.resolved_at.map(|t| t <= d.resolve_due), to > d.resolve_due);
            let done = matches!(status, ReportStatus::Resolved | ReportStatus::Closed);
            resolved += u32::from(done);
            // Reopening needs a resolution first: these were all resolved at least once.
            ever_resolved += u32::from(done || d.reopen_count > 0);
            reopened += u32::from(d.reopen_count > 0);
            scores.extend(d.satisfaction.map(f64::from));
        }
    }
    a.triage_on_time = triage.rate();
    a.feedback_on_time = feedback.rate();
    a.resolution_on_time = resolution.rate();
    a.resolution_rate = (considered > 0).then(|| f64::from(resolved) / f64::from(considered));
    a.reopen_rate = (ever_resolved > 0).then(|| f64::from(reopened) / f64::from(ever_resolved));
    a.average_satisfaction = (!scores.is_empty()).then(|| scores.iter().sum::<f64>() / scores.len() as f64);
    Ok(())
}

fn count(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> Result<u32> {
    conn.prepare_cached(sql).db()?.query_row(args, |r| r.get(0)).db()
}

/// What the assessment reads of a report row.
struct ReportRow {
    status: String,
    triaged_at: Option<i64>,
    triage_due: i64,
    feedback_at: Option<i64>,
    feedback_due: i64,
    resolved_at: Option<i64>,
    resolve_due: i64,
    satisfaction: Option<u8>,
    reopen_count: u32,
}

/// On time / counted, for one step.
#[derive(Default)]
struct Ratio {
    on_time: u32,
    counted: u32,
}

impl Ratio {
    /// `done`: whether the step happened in time (`None`: not yet); `passed`: whether its
    /// deadline passed within the period (a step not done by a passed deadline is late).
    fn add(&mut self, done: Option<bool>, passed: bool) {
        match done {
            Some(on_time) => {
                self.counted += 1;
                self.on_time += u32::from(on_time);
            }
            None if passed => self.counted += 1,
            None => {}
        }
    }

    fn rate(&self) -> Option<f64> {
        (self.counted > 0).then(|| f64::from(self.on_time) / f64::from(self.counted))
    }
}

/// Assessments as CSV (RFC 4180): one header line, one line per assessment, times in ms since the
/// epoch, rates from 0 to 1 with four decimals, empty where a rate does not apply.
pub fn assessment_csv(rows: &[Assessment]) -> String {
    let rate = |r: Option<f64>| r.map_or(String::new(), |r| format!("{r:.4}"));
    let mut out = String::from(
        "scope,from,to,households_due,households_covered,coverage,visits,visits_per_day,reports_found,reports,\
         triage_on_time,feedback_on_time,resolution_on_time,resolution_rate,average_satisfaction,reopen_rate\n",
    );
    for a in rows {
        out.push_str(&format!(
            "{},{},{},{},{},{:.4},{},{:.4},{},{},{},{},{},{},{},{}\n",
            a.scope,
            a.from,
            a.to,
            a.households_due,
            a.households_covered,
            a.coverage,
            a.visits,
            a.visits_per_day,
            a.reports_found,
            a.reports,
            rate(a.triage_on_time),
            rate(a.feedback_on_time),
            rate(a.resolution_on_time),
            rate(a.resolution_rate),
            rate(a.average_satisfaction),
            rate(a.reopen_rate),
        ));
    }
    out
}
