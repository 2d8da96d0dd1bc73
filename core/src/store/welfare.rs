//! The welfare-visit screens: who needs a home visit (overdue, due today, never visited), a bell
//! check, or the follow-up of an unanswered bell, for a grid, a micro-grid or a worker; and the
//! unanswered bells whose follow-up time passed, which the supervisors above see (the follow-up
//! is escalated to them).
//!
//! The clocks themselves are kept in the `households` table by the projections
//! (`projection/clocks.rs`), from the directory's visit rules (`directory::VisitRules`). The
//! reads are plain functions over a connection; `Store`'s methods call them with its own.

use rusqlite::{params_from_iter, Connection};

use super::query::{
    grids_of, household_row, require_unit, require_user, unit_kind, HouseholdSummary, HOUSEHOLD_COLUMNS,
};
use super::Store;
use crate::clock::UnixMillis;
use crate::directory::UnitKind;
use crate::error::{Db, Result};
use crate::ids::{UnitId, UserId};

/// Whose households.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Area {
    Grid(UnitId),
    MicroGrid(UnitId),
    /// A volunteer's micro-grid, or every grid a worker's or supervisor's unit covers.
    Worker(UserId),
}

/// What a worker's welfare screen shows, each list most urgent first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Welfare {
    /// The home visit is overdue (due before `now`).
    pub visits_overdue: Vec<HouseholdSummary>,
    /// The home visit falls due between `now` and the end of the day.
    pub visits_due_today: Vec<HouseholdSummary>,
    /// No home visit ever.
    pub never_visited: Vec<HouseholdSummary>,
    /// On a bell schedule and due by the end of the day.
    pub bell_checks_due: Vec<HouseholdSummary>,
    /// A bell went unanswered and nobody has seen them since.
    pub follow_ups: Vec<HouseholdSummary>,
}

/// [`Store::welfare`] over a connection.
pub(crate) fn welfare(conn: &Connection, area: &Area, now: UnixMillis, day_end: UnixMillis) -> Result<Welfare> {
    let (filter, args) = area_filter(conn, area)?;
    let list = |condition: &str, order: &str, extra: &[i64]| -> Result<Vec<HouseholdSummary>> {
        let sql = format!(
            "SELECT {HOUSEHOLD_COLUMNS} FROM households WHERE deleted = 0 AND {filter} AND {condition} ORDER BY {order}, id"
        );
        let mut values: Vec<rusqlite::types::Value> = args.iter().cloned().map(Into::into).collect();
        values.extend(extra.iter().map(|v| rusqlite::types::Value::from(*v)));
        let mut stmt = conn.prepare_cached(&sql).db()?;
        let rows = stmt.query_map(params_from_iter(values), household_row).db()?;
        rows.collect::<rusqlite::Result<_>>().db()
    };
    let n = args.len();
    Ok(Welfare {
        visits_overdue: list(&format!("next_due_at < ?{}", n + 1), "next_due_at", &[now])?,
        visits_due_today: list(
            &format!("next_due_at >= ?{} AND next_due_at < ?{}", n + 1, n + 2),
            "next_due_at",
            &[now, day_end],
        )?,
        never_visited: list("last_visit_at IS NULL", "created_at", &[])?,
        bell_checks_due: list(&format!("next_bell_due_at < ?{}", n + 1), "next_bell_due_at", &[day_end])?,
        follow_ups: list("follow_up_due_at IS NOT NULL", "follow_up_due_at", &[])?,
    })
}

/// [`Store::missed_follow_ups`] over a connection.
pub(crate) fn missed_follow_ups(conn: &Connection, area: &UnitId, now: UnixMillis) -> Result<Vec<HouseholdSummary>> {
    unit_kind(conn, area)?;
    let sql = format!(
        "WITH RECURSIVE sub(id) AS (
             SELECT ?1 UNION ALL SELECT u.id FROM units u JOIN sub s ON u.parent_id = s.id WHERE u.deleted = 0
         )
         SELECT {HOUSEHOLD_COLUMNS} FROM households
         WHERE deleted = 0 AND grid_id IN (SELECT id FROM sub) AND follow_up_due_at < ?2
         ORDER BY follow_up_due_at, id"
    );
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let rows = stmt.query_map(rusqlite::params![area.as_str(), now], household_row).db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

/// The SQL condition (with its arguments) that selects an area's households.
fn area_filter(conn: &Connection, area: &Area) -> Result<(String, Vec<String>)> {
    Ok(match area {
        Area::Grid(g) => {
            require_unit(conn, g, UnitKind::Grid, "grid")?;
            ("grid_id = ?1".into(), vec![g.to_string()])
        }
        Area::MicroGrid(m) => {
            require_unit(conn, m, UnitKind::MicroGrid, "micro-grid")?;
            ("micro_grid_id = ?1".into(), vec![m.to_string()])
        }
        Area::Worker(u) => {
            require_user(conn, u)?;
            let unit: String =
                conn.query_row("SELECT unit_id FROM users WHERE id = ?1", [u.as_str()], |r| r.get(0)).db()?;
            let unit = UnitId::parse(&unit)?;
            if unit_kind(conn, &unit)? == UnitKind::MicroGrid {
                ("micro_grid_id = ?1".into(), vec![unit.to_string()])
            } else {
                let grids = grids_of(conn, u)?;
                if grids.is_empty() {
                    ("0".into(), Vec::new())
                } else {
                    let marks: Vec<String> = (1..=grids.len()).map(|i| format!("?{i}")).collect();
                    (format!("grid_id IN ({})", marks.join(", ")), grids)
                }
            }
        }
    })
}

impl Store {
    /// The welfare screen of `area` at `now`; "today" ends at `day_end` (the phone's local
    /// midnight).
    pub fn welfare(&self, area: &Area, now: UnixMillis, day_end: UnixMillis) -> Result<Welfare> {
        welfare(&self.conn, area, now, day_end)
    }

    /// Households in the grids under `area` whose unanswered bell was not followed up in time:
    /// what the supervisors of that area are alerted to, longest waiting first.
    pub fn missed_follow_ups(&self, area: &UnitId, now: UnixMillis) -> Result<Vec<HouseholdSummary>> {
        missed_follow_ups(&self.conn, area, now)
    }
}
