//! What the worker's screens read: plain queries over the derived tables, never a document load.

use std::collections::BTreeSet;

use rusqlite::{params_from_iter, types::Value, Connection, OptionalExtension, Row};

use super::Store;
use crate::clock::UnixMillis;
use crate::directory::{Unit, UnitKind};
use crate::document::DocId;
use crate::error::{Db, Error, Result};
use crate::geo::GeoPoint;
use crate::household::{Address, CareTag, Relation, Resident, RiskLevel};
use crate::ids::{CategoryId, HouseholdId, ReportId, ResidentId, UnitId, UserId, VisitId};
use crate::personal::Personal;
use crate::report::ReportStatus;
use crate::visit::{VisitKind, VisitOutcome};

/// Which households a list shows. Every field narrows the list; `Default` lists them all.
#[derive(Clone, Debug, Default)]
pub struct HouseholdFilter {
    pub grid: Option<UnitId>,
    pub micro_grid: Option<UnitId>,
    pub care_tag: Option<CareTag>,
    pub risk: Option<RiskLevel>,
    /// Only households due for a visit by this time, most overdue first.
    pub due_by: Option<UnixMillis>,
    /// At most this many rows (0: no limit).
    pub limit: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct HouseholdSummary {
    pub id: HouseholdId,
    pub grid: UnitId,
    pub micro_grid: Option<UnitId>,
    pub address: Address,
    pub location: Option<GeoPoint>,
    pub care_tags: BTreeSet<CareTag>,
    pub risk: RiskLevel,
    pub notes: String,
    /// The last home visit (bell checks do not count) and when the next one is due.
    pub last_visit_at: Option<UnixMillis>,
    pub next_due_at: UnixMillis,
    /// The last time someone saw the household (any visit or an answered bell).
    pub last_contact_at: Option<UnixMillis>,
    /// When the next bell check is due, for households on a bell schedule.
    pub next_bell_due_at: Option<UnixMillis>,
    /// When the follow-up of an unanswered bell is due (none since it was answered or visited).
    pub follow_up_due_at: Option<UnixMillis>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct VisitSummary {
    pub id: VisitId,
    pub household: HouseholdId,
    pub worker: UserId,
    pub at: UnixMillis,
    pub location: Option<GeoPoint>,
    pub kind: VisitKind,
    pub outcome: VisitOutcome,
    pub notes: String,
    pub follow_up: bool,
    pub photo_count: u32,
}

impl From<crate::visit::Visit> for VisitSummary {
    /// The row a visit's screen line shows, for a visit just recorded.
    fn from(v: crate::visit::Visit) -> Self {
        VisitSummary {
            id: v.id,
            household: v.household,
            worker: v.worker,
            at: v.at,
            location: v.location,
            kind: v.kind,
            outcome: v.outcome,
            notes: v.notes,
            follow_up: v.follow_up,
            photo_count: v.photos.len() as u32,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct ReportFilter {
    pub status: Option<ReportStatus>,
    pub grid: Option<UnitId>,
    pub category: Option<CategoryId>,
    /// Reports within this many metres of a point.
    pub near: Option<(GeoPoint, f64)>,
    pub limit: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ReportSummary {
    pub id: ReportId,
    pub grid: Option<UnitId>,
    pub reporter: UserId,
    pub category: CategoryId,
    pub description: String,
    pub address: Option<String>,
    pub location: Option<GeoPoint>,
    pub created_at: UnixMillis,
    pub status: ReportStatus,
    pub updated_at: UnixMillis,
    pub event_count: u32,
}

/// Every query table's name with its rows rendered as text, sorted (see `Store::dump_query_tables`).
pub type TableDump = Vec<(String, Vec<String>)>;

/// A household or a report whose text matched a search.
#[derive(Clone, Debug, PartialEq)]
pub enum SearchHit {
    Household { id: HouseholdId, address: String },
    Report { id: ReportId, description: String },
}

/// A record in one of this phone's documents that could not be read, so no screen shows it
/// (written by another replica before the boundary checked every change, or by a newer app).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedRecord {
    pub doc: DocId,
    pub collection: String,
    pub record_id: String,
    pub reason: String,
}

pub(crate) const HOUSEHOLD_COLUMNS: &str = "id, grid_id, micro_grid_id, building, unit, room, lat, lon, care_tags,
                                 risk, notes, last_visit_at, next_due_at, last_contact_at, next_bell_due_at,
                                 follow_up_due_at";

/// The one value `sql` selects from its first row; `None` when it selects no row.
pub(crate) fn lookup<T: rusqlite::types::FromSql>(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Option<T>> {
    conn.prepare_cached(sql).db()?.query_row(args, |r| r.get(0)).optional().db()
}

fn location(lat: Option<f64>, lon: Option<f64>) -> Option<GeoPoint> {
    Some(GeoPoint { lat: lat?, lon: lon? })
}

/// Ids and enums in the tables were written by this crate; a row that does not parse means the
/// file was damaged.
fn parsed<T>(v: Option<T>, what: &str) -> rusqlite::Result<T> {
    v.ok_or_else(|| rusqlite::Error::InvalidColumnType(0, what.to_owned(), rusqlite::types::Type::Text))
}

fn id<T>(s: String, f: fn(&str) -> Result<T>) -> rusqlite::Result<T> {
    parsed(f(&s).ok(), "id")
}

pub(crate) fn household_row(r: &Row<'_>) -> rusqlite::Result<HouseholdSummary> {
    Ok(HouseholdSummary {
        id: id(r.get(0)?, HouseholdId::parse)?,
        grid: id(r.get(1)?, UnitId::parse)?,
        micro_grid: r.get::<_, Option<String>>(2)?.map(|s| id(s, UnitId::parse)).transpose()?,
        address: Address { building: r.get(3)?, unit: r.get(4)?, room: r.get(5)? },
        location: location(r.get(6)?, r.get(7)?),
        care_tags: CareTag::from_mask(r.get(8)?),
        risk: parsed(RiskLevel::parse(&r.get::<_, String>(9)?), "risk")?,
        notes: r.get(10)?,
        last_visit_at: r.get(11)?,
        next_due_at: r.get(12)?,
        last_contact_at: r.get(13)?,
        next_bell_due_at: r.get(14)?,
        follow_up_due_at: r.get(15)?,
    })
}

fn report_row(r: &Row<'_>) -> rusqlite::Result<ReportSummary> {
    Ok(ReportSummary {
        id: id(r.get(0)?, ReportId::parse)?,
        grid: r.get::<_, Option<String>>(1)?.map(|s| id(s, UnitId::parse)).transpose()?,
        reporter: id(r.get(2)?, UserId::parse)?,
        category: id(r.get(3)?, CategoryId::parse)?,
        description: r.get(4)?,
        address: r.get(5)?,
        location: location(r.get(6)?, r.get(7)?),
        created_at: r.get(8)?,
        status: parsed(ReportStatus::parse(&r.get::<_, String>(9)?), "status")?,
        updated_at: r.get(10)?,
        event_count: r.get(11)?,
    })
}

// ---- the reads: plain functions over a connection ------------------------------------------

pub(crate) fn households(conn: &Connection, f: &HouseholdFilter) -> Result<Vec<HouseholdSummary>> {
    let mut sql = format!("SELECT {HOUSEHOLD_COLUMNS} FROM households WHERE deleted = 0");
    let mut args: Vec<Value> = Vec::new();
    if let Some(g) = &f.grid {
        sql.push_str(" AND grid_id = ?");
        args.push(g.as_str().to_owned().into());
    }
    if let Some(m) = &f.micro_grid {
        sql.push_str(" AND micro_grid_id = ?");
        args.push(m.as_str().to_owned().into());
    }
    if let Some(t) = f.care_tag {
        sql.push_str(" AND (care_tags & ?) != 0");
        args.push(t.bit().into());
    }
    if let Some(r) = f.risk {
        sql.push_str(" AND risk = ?");
        args.push(r.as_str().to_owned().into());
    }
    if let Some(due) = f.due_by {
        sql.push_str(" AND next_due_at <= ? ORDER BY next_due_at, id");
        args.push(due.into());
    } else {
        sql.push_str(" ORDER BY building, unit, room, id");
    }
    if f.limit > 0 {
        sql.push_str(&format!(" LIMIT {}", f.limit));
    }
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let rows = stmt.query_map(params_from_iter(args), household_row).db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

pub(crate) fn household(conn: &Connection, id: &HouseholdId) -> Result<HouseholdSummary> {
    let sql = format!("SELECT {HOUSEHOLD_COLUMNS} FROM households WHERE id = ?1 AND deleted = 0");
    conn.prepare_cached(&sql)
        .db()?
        .query_row([id.as_str()], household_row)
        .optional()
        .db()?
        .ok_or_else(|| Error::not_found("household", id))
}

pub(crate) fn residents(conn: &Connection, household: &HouseholdId) -> Result<Vec<Resident>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, household_id, name, phone, id_number, birth_year, relation FROM residents
         WHERE household_id = ?1 AND deleted = 0
           AND EXISTS (SELECT 1 FROM households h WHERE h.id = ?1 AND h.deleted = 0)
         ORDER BY id",
        )
        .db()?;
    let rows = stmt
        .query_map([household.as_str()], |r| {
            Ok(Resident {
                id: id(r.get(0)?, ResidentId::parse)?,
                household: id(r.get(1)?, HouseholdId::parse)?,
                name: Personal::new(r.get::<_, String>(2)?),
                phone: Personal::new(r.get::<_, String>(3)?),
                id_number: Personal::new(r.get::<_, String>(4)?),
                birth_year: r.get(5)?,
                relation: parsed(Relation::parse(&r.get::<_, String>(6)?), "relation")?,
                deleted: false,
            })
        })
        .db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

pub(crate) fn visit_history(conn: &Connection, household: &HouseholdId, limit: u32) -> Result<Vec<VisitSummary>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, household_id, worker_id, at, lat, lon, kind, outcome, notes, follow_up, photo_count
         FROM visits WHERE household_id = ?1 AND deleted = 0 ORDER BY at DESC, id DESC LIMIT ?2",
        )
        .db()?;
    let limit = if limit == 0 { i64::MAX } else { limit as i64 };
    let rows = stmt
        .query_map(rusqlite::params![household.as_str(), limit], |r| {
            Ok(VisitSummary {
                id: id(r.get(0)?, VisitId::parse)?,
                household: id(r.get(1)?, HouseholdId::parse)?,
                worker: id(r.get(2)?, UserId::parse)?,
                at: r.get(3)?,
                location: location(r.get(4)?, r.get(5)?),
                kind: parsed(VisitKind::parse(&r.get::<_, String>(6)?), "kind")?,
                outcome: parsed(VisitOutcome::parse(&r.get::<_, String>(7)?), "outcome")?,
                notes: r.get(8)?,
                follow_up: r.get(9)?,
                photo_count: r.get(10)?,
            })
        })
        .db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

pub(crate) fn photos(conn: &Connection, owner_id: &str) -> Result<Vec<crate::photo::PhotoMeta>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT sha256, byte_size, mime, width, height, taken_at, lat, lon FROM photos
         WHERE owner_id = ?1 ORDER BY taken_at, sha256",
        )
        .db()?;
    let rows = stmt
        .query_map([owner_id], |r| {
            Ok(crate::photo::PhotoMeta {
                sha256: r.get(0)?,
                byte_size: r.get::<_, i64>(1)? as u64,
                mime: r.get(2)?,
                width: r.get(3)?,
                height: r.get(4)?,
                taken_at: r.get(5)?,
                location: location(r.get(6)?, r.get(7)?),
            })
        })
        .db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

pub(crate) fn reports(conn: &Connection, f: &ReportFilter) -> Result<Vec<ReportSummary>> {
    let mut sql = String::from(
        "SELECT id, grid_id, reporter_id, category_id, description, address, lat, lon, created_at, status,
                updated_at, event_count FROM reports WHERE 1 = 1",
    );
    let mut args: Vec<Value> = Vec::new();
    if let Some(s) = f.status {
        sql.push_str(" AND status = ?");
        args.push(s.as_str().to_owned().into());
    }
    if let Some(g) = &f.grid {
        sql.push_str(" AND grid_id = ?");
        args.push(g.as_str().to_owned().into());
    }
    if let Some(c) = &f.category {
        sql.push_str(" AND category_id = ?");
        args.push(c.as_str().to_owned().into());
    }
    if let Some((p, radius)) = &f.near {
        p.validate("search point")?;
        if !radius.is_finite() || *radius <= 0.0 || *radius > 100_000.0 {
            return Err(Error::invalid("search radius", "must be between 0 and 100 km"));
        }
        // A bounding box the index can use; the exact distance is checked below.
        let dlat = radius / 111_000.0;
        let dlon = radius / (111_000.0 * p.lat.to_radians().cos().max(0.01));
        sql.push_str(" AND lat BETWEEN ? AND ? AND lon BETWEEN ? AND ?");
        args.extend([p.lat - dlat, p.lat + dlat, p.lon - dlon, p.lon + dlon].map(Value::from));
    }
    sql.push_str(" ORDER BY created_at DESC, id DESC");
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let rows = stmt.query_map(params_from_iter(args), report_row).db()?;
    let limit = if f.limit == 0 { usize::MAX } else { f.limit as usize };
    let mut out = Vec::new();
    for r in rows {
        let r = r.db()?;
        if let (Some((p, radius)), Some(loc)) = (&f.near, &r.location) {
            if p.distance_m(loc) > *radius {
                continue;
            }
        }
        out.push(r);
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

pub(crate) fn rejected_records(conn: &Connection) -> Result<Vec<RejectedRecord>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT doc_id, collection, record_id, reason FROM rejected_records ORDER BY doc_id, collection, record_id",
        )
        .db()?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .db()?
        .collect::<rusqlite::Result<Vec<(String, String, String, String)>>>()
        .db()?;
    rows.into_iter()
        .map(|(doc, collection, record_id, reason)| {
            Ok(RejectedRecord { doc: DocId::parse(&doc)?, collection, record_id, reason })
        })
        .collect()
}

pub(crate) fn search(conn: &Connection, text: &str, limit: u32) -> Result<Vec<SearchHit>> {
    let text = text.trim();
    crate::text::check_required("search text", text, 100)?;
    let limit = if limit == 0 { 50 } else { limit };
    let (filter, arg) = if text.split_whitespace().any(|w| w.chars().count() < 3) {
        // Trigrams need 3 characters: shorter words are matched as a plain substring.
        let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        ("s.body LIKE ?1 ESCAPE '\\'", format!("%{escaped}%"))
    } else {
        // Each word must appear; quoting makes FTS syntax characters plain text.
        let words: Vec<String> = text.split_whitespace().map(|w| format!("\"{}\"", w.replace('"', "\"\""))).collect();
        ("s.body MATCH ?1", words.join(" AND "))
    };
    let mut out = Vec::new();
    let sql = format!(
        "SELECT h.id, h.building, h.unit, h.room FROM household_search s JOIN households h ON h.rowid = s.rowid
         WHERE {filter} AND h.deleted = 0 LIMIT ?2"
    );
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let rows = stmt
        .query_map(rusqlite::params![arg, limit], |r| {
            let a = Address { building: r.get(1)?, unit: r.get(2)?, room: r.get(3)? };
            Ok(SearchHit::Household { id: id(r.get(0)?, HouseholdId::parse)?, address: a.label() })
        })
        .db()?;
    out.extend(rows.collect::<rusqlite::Result<Vec<_>>>().db()?);
    let sql = format!(
        "SELECT r.id, r.description FROM report_search s JOIN reports r ON r.rowid = s.rowid
         WHERE {filter} ORDER BY r.created_at DESC LIMIT ?2"
    );
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let rows = stmt
        .query_map(rusqlite::params![arg, limit], |r| {
            Ok(SearchHit::Report { id: id(r.get(0)?, ReportId::parse)?, description: r.get(1)? })
        })
        .db()?;
    out.extend(rows.collect::<rusqlite::Result<Vec<_>>>().db()?);
    Ok(out)
}

pub(crate) fn units(conn: &Connection, parent: Option<&UnitId>) -> Result<Vec<Unit>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, kind, parent_id, name FROM units WHERE deleted = 0 AND parent_id IS ?1 ORDER BY name, id",
        )
        .db()?;
    let rows = stmt
        .query_map([parent.map(|p| p.as_str())], |r| {
            Ok(Unit {
                id: id(r.get(0)?, UnitId::parse)?,
                kind: parsed(UnitKind::parse(&r.get::<_, String>(1)?), "kind")?,
                parent: r.get::<_, Option<String>>(2)?.map(|s| id(s, UnitId::parse)).transpose()?,
                name: r.get(3)?,
                deleted: false,
            })
        })
        .db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

pub(crate) fn categories(conn: &Connection) -> Result<Vec<crate::directory::Category>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, name, triage_hours, feedback_hours, resolve_hours, class_resolve_hours, duplicate_radius_m,
                duplicate_window_hours
         FROM categories WHERE deleted = 0 ORDER BY name, id",
        )
        .db()?;
    let rows = stmt
        .query_map([], |r| {
            let by_class: String = r.get(5)?;
            Ok(crate::directory::Category {
                id: id(r.get(0)?, crate::ids::CategoryId::parse)?,
                name: r.get(1)?,
                triage_hours: r.get(2)?,
                feedback_hours: r.get(3)?,
                resolve_hours: r.get(4)?,
                resolve_hours_by_class: serde_json::from_str(&by_class).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, Box::new(e))
                })?,
                duplicate_radius_m: r.get(6)?,
                duplicate_window_hours: r.get(7)?,
                deleted: false,
            })
        })
        .db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

pub(crate) fn users(conn: &Connection) -> Result<Vec<crate::directory::User>> {
    let mut stmt = conn
        .prepare_cached("SELECT id, name, role, unit_id, department FROM users WHERE deleted = 0 ORDER BY id")
        .db()?;
    let rows = stmt
        .query_map([], |r| {
            Ok(crate::directory::User {
                id: id(r.get(0)?, UserId::parse)?,
                name: Personal::new(r.get::<_, String>(1)?),
                role: parsed(crate::directory::Role::parse(&r.get::<_, String>(2)?), "role")?,
                unit: id(r.get(3)?, UnitId::parse)?,
                department: r.get(4)?,
                deleted: false,
            })
        })
        .db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

/// The kind of a unit that is not deleted; `NotFound` otherwise.
pub(crate) fn unit_kind(conn: &Connection, id: &UnitId) -> Result<UnitKind> {
    let kind: Option<String> = lookup(conn, "SELECT kind FROM units WHERE id = ?1 AND deleted = 0", [id.as_str()])?;
    kind.and_then(|k| UnitKind::parse(&k)).ok_or_else(|| Error::not_found("unit", id))
}

/// That `id` is a unit of `kind` (`what` names it in the error).
pub(crate) fn require_unit(conn: &Connection, id: &UnitId, kind: UnitKind, what: &'static str) -> Result<()> {
    match unit_kind(conn, id) {
        Ok(k) if k == kind => Ok(()),
        Ok(_) => Err(Error::invalid(what, format!("unit {id} is not a {}", kind.as_str()))),
        Err(_) => Err(Error::not_found(what, id)),
    }
}

/// The grids a user's unit covers: their grid, the grid of their micro-grid, or every grid
/// under the unit they work in.
pub(crate) fn grids_of(conn: &Connection, user: &UserId) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare_cached(
            "WITH RECURSIVE area(id, kind) AS (
             SELECT u.id, u.kind FROM units u JOIN users p ON p.unit_id = u.id WHERE p.id = ?1
             UNION ALL SELECT c.id, c.kind FROM units c JOIN area a ON c.parent_id = a.id WHERE c.deleted = 0
         )
         SELECT id FROM area WHERE kind = 'grid'
         UNION SELECT parent_id FROM units WHERE id IN (SELECT id FROM area WHERE kind = 'micro_grid')
         ORDER BY 1",
        )
        .db()?;
    let rows = stmt.query_map([user.as_str()], |r| r.get::<_, String>(0)).db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

/// That `id` is a user who is not deleted.
pub(crate) fn require_user(conn: &Connection, id: &UserId) -> Result<()> {
    let exists: bool = conn
        .prepare_cached("SELECT EXISTS(SELECT 1 FROM users WHERE id = ?1 AND deleted = 0)")
        .db()?
        .query_row([id.as_str()], |r| r.get(0))
        .db()?;
    if exists {
        Ok(())
    } else {
        Err(Error::not_found("user", id))
    }
}

pub(crate) fn dump_query_tables(conn: &Connection) -> Result<TableDump> {
    let mut out = Vec::new();
    for t in super::schema::DERIVED_TABLES {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {t}")).db()?;
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                let mut cols = Vec::with_capacity(n);
                for i in 0..n {
                    cols.push(format!("{:?}", r.get_ref(i)?));
                }
                Ok(cols.join("|"))
            })
            .db()?;
        let mut rows = rows.collect::<rusqlite::Result<Vec<_>>>().db()?;
        rows.sort();
        out.push((t.to_string(), rows));
    }
    Ok(out)
}

/// The facade: each read above, over the store's own connection.
impl Store {
    /// Households matching a filter: by address, or most overdue first when `due_by` is set.
    pub fn households(&self, f: &HouseholdFilter) -> Result<Vec<HouseholdSummary>> {
        households(&self.conn, f)
    }

    pub fn household(&self, id: &HouseholdId) -> Result<HouseholdSummary> {
        household(&self.conn, id)
    }

    /// The people living in a household (personal data: for the screen only).
    pub fn residents(&self, household: &HouseholdId) -> Result<Vec<Resident>> {
        residents(&self.conn, household)
    }

    /// A household's visits, newest first.
    pub fn visit_history(&self, household: &HouseholdId, limit: u32) -> Result<Vec<VisitSummary>> {
        visit_history(&self.conn, household, limit)
    }

    /// The photos of a visit, a report or a workflow event (metadata; the file is at
    /// `Store::photo_path`).
    pub fn photos(&self, owner_id: &str) -> Result<Vec<crate::photo::PhotoMeta>> {
        photos(&self.conn, owner_id)
    }

    /// Reports by status, grid, category and place, newest first.
    pub fn reports(&self, f: &ReportFilter) -> Result<Vec<ReportSummary>> {
        reports(&self.conn, f)
    }

    /// The records of this phone's documents left out of every screen because they could not be
    /// read, by document, collection and id (never their content).
    pub fn rejected_records(&self) -> Result<Vec<RejectedRecord>> {
        rejected_records(&self.conn)
    }

    /// Full-text search over household addresses and report text. Matches any part of a word,
    /// Chinese included; queries shorter than 3 characters match by substring.
    pub fn search(&self, text: &str, limit: u32) -> Result<Vec<SearchHit>> {
        search(&self.conn, text, limit)
    }

    /// Units directly below `parent` (the districts when `None`).
    pub fn units(&self, parent: Option<&UnitId>) -> Result<Vec<Unit>> {
        units(&self.conn, parent)
    }

    /// The report categories of the directory, by name: the report form's picker.
    pub fn categories(&self) -> Result<Vec<crate::directory::Category>> {
        categories(&self.conn)
    }

    /// Every user of the directory, for pickers (the names are for the screen only).
    pub fn users(&self) -> Result<Vec<crate::directory::User>> {
        users(&self.conn)
    }

    /// Every derived table's rows, sorted: what `rebuild_indexes` must reproduce exactly.
    /// For tests and for checking a store after a repair.
    pub fn dump_query_tables(&self) -> Result<TableDump> {
        dump_query_tables(&self.conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::{NewUnit, NewUser, Role};
    use crate::household::NewHousehold;
    use crate::store::assessment::{assessment, Scope};
    use crate::store::welfare::{missed_follow_ups, welfare, Area};

    /// The reads are plain functions over a connection and never write: every one of them runs
    /// over a read-only connection to a store's file while the store is open.
    #[test]
    fn every_read_runs_over_a_read_only_connection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("phone.sqlite");
        let mut s = Store::open(&path, crate::store::OpenOptions::default()).unwrap();
        let unit = |s: &mut Store, kind, parent: Option<&Unit>, name: &str| {
            s.add_unit(NewUnit { kind, parent: parent.map(|p| p.id.clone()), name: name.into() }).unwrap()
        };
        let district = unit(&mut s, UnitKind::District, None, "Jinshui District");
        let street = unit(&mut s, UnitKind::Street, Some(&district), "Wenhua Road");
        let community = unit(&mut s, UnitKind::Community, Some(&street), "Weilai");
        let grid = unit(&mut s, UnitKind::Grid, Some(&community), "Weilai Grid 1");
        let h = s
            .add_household(
                &grid.id,
                NewHousehold {
                    micro_grid: None,
                    address: Address { building: "3".into(), unit: "2".into(), room: "401".into() },
                    location: None,
                    care_tags: Default::default(),
                    risk: Some(RiskLevel::Blue),
                    notes: String::new(),
                },
            )
            .unwrap();
        let ro = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        assert_eq!(households(&ro, &HouseholdFilter::default()).unwrap().len(), 1);
        assert_eq!(
            households(&ro, &HouseholdFilter { due_by: Some(i64::MAX), limit: 50, ..Default::default() })
                .unwrap()
                .len(),
            1
        );
        assert_eq!(household(&ro, &h.id).unwrap().id, h.id);
        assert!(residents(&ro, &h.id).unwrap().is_empty());
        assert!(visit_history(&ro, &h.id, 10).unwrap().is_empty());
        assert!(photos(&ro, h.id.as_str()).unwrap().is_empty());
        assert!(reports(&ro, &ReportFilter::default()).unwrap().is_empty());
        assert!(rejected_records(&ro).unwrap().is_empty());
        assert_eq!(search(&ro, "401", 10).unwrap().len(), 1);
        assert_eq!(units(&ro, None).unwrap().len(), 1, "the district, at the top");
        assert_eq!(units(&ro, Some(&community.id)).unwrap()[0].id, grid.id);
        assert!(categories(&ro).unwrap().is_empty());
        assert!(users(&ro).unwrap().is_empty());
        let worker = s
            .add_user(NewUser {
                name: Personal::new("Li Na"),
                role: Role::GridWorker,
                unit: grid.id.clone(),
                department: None,
            })
            .unwrap();
        assert_eq!(grids_of(&ro, &worker.id).unwrap(), vec![grid.id.to_string()]);
        assert_eq!(unit_kind(&ro, &grid.id).unwrap(), UnitKind::Grid);
        let now = household(&ro, &h.id).unwrap().next_due_at + 1;
        for area in [Area::Grid(grid.id.clone()), Area::Worker(worker.id.clone())] {
            let w = welfare(&ro, &area, now, now + 1).unwrap();
            assert_eq!((w.visits_overdue.len(), w.never_visited.len()), (1, 1), "{area:?}");
        }
        assert!(missed_follow_ups(&ro, &district.id, now).unwrap().is_empty());
        for scope in [Scope::Grid(grid.id.clone()), Scope::Worker(worker.id.clone())] {
            assert_eq!(assessment(&ro, &scope, 0, now).unwrap().households_due, 1, "{scope:?}");
        }
        assert_eq!(dump_query_tables(&ro).unwrap(), s.dump_query_tables().unwrap());
    }
}
