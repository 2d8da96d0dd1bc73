//! Who may hold and who may change which document, decided from the directory (docs/PROTOCOL.md §4, *Access*).
//!
//! The same rules run on the server (authorizing each device's sync) and on phones (offering a
//! peer only what both may hold), read from the directory's query tables so no document has to be
//! loaded to decide.
//!
//! * `directory`: everyone signed in reads it; only admins change it.
//! * `register/<unit>` and `visits/<unit>/<month>`: whoever is assigned to that unit or to a unit
//!   above it — a micro-grid's volunteer holds that micro-grid's only; the grid's workers hold
//!   every micro-grid of the grid (and the grid's own register); community, street and district
//!   supervisors everything below them.
//! * `report/<id>`: its reporter, whoever works in the report's grid (its workers, the volunteers
//!   of its micro-grids, the supervisors above), and a department handler the report was
//!   dispatched to (by user id or department name).
//! * `grid/<id>` (the old layout, every micro-grid's households in one document): whoever holds
//!   the grid itself — its workers and the supervisors above; not its micro-grids' volunteers.
//! * Admins hold and change everything. Deleted and unknown users nothing.

use rusqlite::OptionalExtension;

use super::Store;
use crate::directory::Role;
use crate::document::Collection;
use crate::document::{DocId, HEADER_KEY};
use crate::error::{Db, Result};
use crate::ids::UserId;
use crate::report::Report;
use crate::store::query::lookup;

/// What the directory says about a user, as far as access goes.
struct Member {
    id: String,
    role: Role,
    unit: String,
    department: Option<String>,
}

impl Store {
    /// Whether `user` may hold (read) `doc`.
    pub fn may_read(&self, user: &UserId, doc: &DocId) -> Result<bool> {
        let Some(m) = self.member(user)? else { return Ok(false) };
        if m.role == Role::Admin {
            return Ok(true);
        }
        match doc {
            DocId::Directory => Ok(true),
            // An old grid document holds every micro-grid's households: only whoever holds the
            // grid itself (its workers, supervisors above), never a micro-grid's volunteer.
            DocId::Register(unit) | DocId::Visits(unit, _) | DocId::Grid(unit) => {
                holds(&self.conn, m.role, &m.unit, unit.as_str())
            }
            DocId::Report(report) => {
                let row: Option<(String, Option<String>)> = self
                    .conn
                    .prepare_cached("SELECT reporter_id, grid_id FROM reports WHERE id = ?1")
                    .db()?
                    .query_row([report.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
                    .db()?;
                let Some((reporter, grid)) = row else { return Ok(false) };
                if reporter == m.id {
                    return Ok(true);
                }
                if let Some(grid) = grid {
                    if self.covers(&m, &grid)? {
                        return Ok(true);
                    }
                }
                self.dispatched_to(&m, report.as_str())
            }
        }
    }

    /// Whether `user` may change `doc`. A report this store does not know yet may be filed by
    /// any signed-in user; whether it is really theirs is checked on its header by
    /// [`Store::may_file`] once its bytes are in.
    pub fn may_write(&self, user: &UserId, doc: &DocId) -> Result<bool> {
        let Some(m) = self.member(user)? else { return Ok(false) };
        match doc {
            DocId::Directory => Ok(m.role == Role::Admin),
            DocId::Register(_) | DocId::Visits(..) | DocId::Grid(_) => self.may_read(user, doc),
            DocId::Report(report) => {
                let known: bool = self
                    .conn
                    .prepare_cached("SELECT EXISTS(SELECT 1 FROM reports WHERE id = ?1)")
                    .db()?
                    .query_row([report.as_str()], |r| r.get(0))
                    .db()?;
                if known {
                    self.may_read(user, doc)
                } else {
                    Ok(true)
                }
            }
        }
    }

    /// Whether a report document, as it stands in memory, may come from `user`: they are its
    /// reporter or may hold its grid. Checked by the server before it keeps a new report.
    pub(crate) fn may_file(&mut self, user: &UserId, doc: &DocId) -> Result<bool> {
        let DocId::Report(_) = doc else { return Ok(true) };
        let Some(m) = self.member(user)? else { return Ok(false) };
        if m.role == Role::Admin {
            return Ok(true);
        }
        let header = self.doc(doc)?.get_value::<Report>(Collection::Header, HEADER_KEY);
        let Ok(Some(header)) = header else { return Ok(false) };
        if header.reporter.as_str() == m.id {
            return Ok(true);
        }
        match &header.grid {
            Some(grid) => self.covers(&m, grid.as_str()),
            None => Ok(false),
        }
    }

    /// The user this phone is registered to in the directory (`register_device`).
    pub fn device_user(&self) -> Result<Option<UserId>> {
        self.user_of_actor(&self.actor_id())
    }

    /// The user a device's actor id (hex) is registered to in the directory; `None` for an
    /// unknown, deleted or revoked device (which no phone accepts as a peer).
    pub fn user_of_actor(&self, actor: &str) -> Result<Option<UserId>> {
        let user: Option<String> = lookup(
            &self.conn,
            "SELECT user_id FROM devices WHERE actor = ?1 AND deleted = 0 AND revoked_at IS NULL",
            [actor],
        )?;
        user.map(|u| UserId::parse(&u)).transpose()
    }

    /// What this device's user may read rests on, by the directory: their role, unit and
    /// department (`None`: not registered). A sync that sees it change lists every document again.
    pub(crate) fn device_access(&self) -> Result<Option<String>> {
        let Some(me) = self.device_user()? else { return Ok(None) };
        Ok(self.member(&me)?.map(|m| format!("{}/{}/{}", m.role.as_str(), m.unit, m.department.unwrap_or_default())))
    }

    fn member(&self, user: &UserId) -> Result<Option<Member>> {
        let row: Option<(String, String, Option<String>)> = self
            .conn
            .prepare_cached("SELECT role, unit_id, department FROM users WHERE id = ?1 AND deleted = 0")
            .db()?
            .query_row([user.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()
            .db()?;
        Ok(row.and_then(|(role, unit, department)| {
            Some(Member { id: user.as_str().to_string(), role: Role::parse(&role)?, unit, department })
        }))
    }

    fn covers(&self, m: &Member, grid: &str) -> Result<bool> {
        covers(&self.conn, m.role, &m.unit, grid)
    }

    fn dispatched_to(&self, m: &Member, report: &str) -> Result<bool> {
        if m.role != Role::DepartmentHandler {
            return Ok(false);
        }
        let department = m.department.clone().unwrap_or_default();
        self.conn
            .prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM report_events WHERE report_id = ?1 AND kind = 'dispatched'
                 AND (target = ?2 OR target = ?3))",
            )
            .db()?
            .query_row(rusqlite::params![report, m.id, department], |r| r.get(0))
            .db()
    }
}

/// Whether someone with `role` assigned to `unit` holds the register (and visits) of `target`:
/// `unit` is `target` or a unit above it (flowing reporters and department handlers hold none).
fn holds(conn: &rusqlite::Connection, role: Role, unit: &str, target: &str) -> Result<bool> {
    match role {
        Role::Admin => return Ok(true),
        Role::FlowingReporter | Role::DepartmentHandler => return Ok(false),
        Role::GridWorker | Role::MicroGridVolunteer | Role::Supervisor => {}
    }
    // At most district → street → community → grid → micro-grid.
    let mut at = Some(target.to_string());
    for _ in 0..8 {
        match at {
            Some(u) if u == unit => return Ok(true),
            Some(u) => at = parent_of(conn, &u)?,
            None => break,
        }
    }
    Ok(false)
}

fn parent_of(conn: &rusqlite::Connection, id: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT parent_id FROM units WHERE id = ?1 AND deleted = 0")
        .db()?
        .query_row([id], |r| r.get::<_, Option<String>>(0))
        .optional()
        .db()?
        .flatten())
}

/// Whether someone with `role` working in `unit` works in `grid`, in one of its micro-grids, or
/// in a unit above it (flowing reporters and department handlers work in no grid): who may hold
/// the grid's reports.
pub(crate) fn covers(conn: &rusqlite::Connection, role: Role, unit: &str, grid: &str) -> Result<bool> {
    match role {
        Role::Admin => return Ok(true),
        Role::FlowingReporter | Role::DepartmentHandler => return Ok(false),
        Role::GridWorker | Role::MicroGridVolunteer | Role::Supervisor => {}
    }
    // Their micro-grid lies in the grid, or they hold the grid's register.
    Ok(parent_of(conn, unit)?.as_deref() == Some(grid) || holds(conn, role, unit, grid)?)
}
