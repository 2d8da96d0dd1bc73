//! Converting the old layout's grid documents into registers and months, on the server.
//!
//! Before schema 7 a grid's households, residents and visits were one `grid/<id>` document. A
//! deployment that ran that layout converts once, on the server (`docs/DATA-MODEL.md`,
//! *Upgrading from grid documents*): every household and resident is copied into the register of
//! its micro-grid (or grid), every visit into the month document of its date, tombstones
//! included. The grid documents stay on the server, whole, as the record of who wrote what; the
//! copies are written by the server's own device, which the directory lists as the server's (a
//! device of the admin who started the conversion), so every replica's boundary takes them from
//! the server. Each record keeps the author it names.
//!
//! A grid document is written by phones, so what it holds is checked again before it is copied:
//! a household must stay in its grid's registers and not take the id of another grid's, a
//! resident must be one of its household's register, a visit must be to a household of the grid,
//! and every record must pass the checks of a local write. A record that does not is not copied
//! and is kept as *skipped* (`grid_conversion_skips`, ids only): it is tried again at every run,
//! reported to the admin, and while one remains the server does not tell phones that the grid is
//! converted, so no phone lets go of the only copy it shows.
//!
//! Older phones may go on writing their grid document after the conversion: the server converts
//! what they send as it takes it in, from the grid document's heads at its last conversion, so a
//! field an old phone changed reaches the register and a field it did not change leaves the
//! register's newer edit alone (field by field, nested maps too).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use rusqlite::OptionalExtension;
use serde_json::{Map, Value};

use super::{decode_heads, encode_heads, DocumentRepository, Store};
use crate::directory::Role;
use crate::document::Collection;
use crate::document::{DocId, Touched};
use crate::error::{Db, Error, Result};
use crate::household::{Household, Resident};
use crate::ids::{HouseholdId, UnitId, UserId};
use crate::period::Period;
use crate::store::query::lookup;
use crate::visit::Visit;

/// What one conversion copied; also the JSON body of `POST /v1/admin/convert-grids`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Converted {
    /// Grid documents that had something new (or skipped) since their last conversion.
    pub grids: usize,
    /// Households written to a register (new ones, changed fields, moves).
    pub households: usize,
    pub residents: usize,
    /// Visits written to a month (new ones and tombstones).
    pub visits: usize,
    /// Records not copied, and why (ids only); each is tried again at the next run.
    pub skipped: Vec<Skipped>,
}

/// A record of a grid document the conversion did not copy.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Skipped {
    /// `grid/<id>`.
    pub doc: String,
    pub collection: Collection,
    pub key: String,
    pub reason: String,
}

impl Converted {
    /// Notes a record of `grid/<grid>` not copied, and why.
    fn skip(&mut self, grid: &UnitId, collection: Collection, key: &str, reason: impl Into<String>) {
        self.skipped.push(Skipped {
            doc: DocId::Grid(grid.clone()).to_string(),
            collection,
            key: key.into(),
            reason: reason.into(),
        })
    }

    fn add(&mut self, other: Converted) {
        self.grids += other.grids;
        self.households += other.households;
        self.residents += other.residents;
        self.visits += other.visits;
        self.skipped.extend(other.skipped);
    }
}

/// What became of one record.
enum Copied {
    Written,
    Unchanged,
    Skipped(String),
}

/// One map record of a grid document: its fields at the last conversion (`None`: new since) and now.
struct MapRecord {
    key: String,
    then: Option<Map<String, Value>>,
    now: Map<String, Value>,
}

impl MapRecord {
    /// The fields that changed since the last conversion (all of them for a new record), nested
    /// maps field by field; a field that went away is `null`, which deletes it.
    fn changed(&self) -> Map<String, Value> {
        match &self.then {
            Some(then) => changed_fields(then, &self.now),
            None => self.now.clone(),
        }
    }

    /// What changed and the record as it is now, or what becomes of it instead (nothing
    /// changed; it does not parse as a `what`).
    fn read<T: serde::de::DeserializeOwned>(&self, what: &str) -> std::result::Result<(Map<String, Value>, T), Copied> {
        let changed = self.changed();
        if changed.is_empty() {
            return Err(Copied::Unchanged);
        }
        let now =
            parse::<T>(self.now.clone()).ok_or_else(|| Copied::Skipped(format!("it does not parse as a {what}")))?;
        Ok((changed, now))
    }
}

fn changed_fields(then: &Map<String, Value>, now: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in now {
        match (then.get(k), v) {
            (Some(Value::Object(a)), Value::Object(b)) => {
                let inner = changed_fields(a, b);
                if !inner.is_empty() {
                    out.insert(k.clone(), Value::Object(inner));
                }
            }
            (old, _) if old != Some(v) => {
                out.insert(k.clone(), v.clone());
            }
            _ => {}
        }
    }
    for k in then.keys() {
        if !now.contains_key(k) {
            out.insert(k.clone(), Value::Null);
        }
    }
    out
}

/// `base` with `changed` laid over it, field by field and into nested maps (`null` removes).
fn overlay(mut base: Map<String, Value>, changed: &Map<String, Value>) -> Map<String, Value> {
    for (k, v) in changed {
        match (base.get_mut(k), v) {
            (_, Value::Null) => {
                base.remove(k);
            }
            (Some(Value::Object(inner)), Value::Object(more)) => {
                let merged = overlay(std::mem::take(inner), more);
                *inner = merged;
            }
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
    base
}

fn parse<T: serde::de::DeserializeOwned>(fields: Map<String, Value>) -> Option<T> {
    serde_json::from_value(Value::Object(fields)).ok()
}

/// A storage failure stops a run (nothing is recorded as converted, the next run tries again);
/// any other error of one record's write skips that record.
fn skip_or_stop(e: Error) -> Result<Copied> {
    match e {
        e @ Error::Storage { .. } => Err(e),
        e => Ok(Copied::Skipped(format!("it could not be written: {e}"))),
    }
}

impl Store {
    /// Converts every grid document this store holds, and every later change to one as it is
    /// taken in, with this store's device recording the copies as the server's device of `admin`
    /// (a user of role admin): what `POST /v1/admin/convert-grids` runs on the server. Running it
    /// again converts only what changed since, and tries the skipped records again; it never
    /// writes a grid document.
    pub fn convert_grids(&mut self, admin: &UserId) -> Result<Converted> {
        let role: Option<String> =
            lookup(&self.conn, "SELECT role FROM users WHERE id = ?1 AND deleted = 0", [admin.as_str()])?;
        match role.as_deref().and_then(Role::parse) {
            Some(Role::Admin) => {}
            Some(_) => {
                return Err(Error::invalid("user", "the conversion is recorded for an admin; this user is not one"))
            }
            None => return Err(Error::not_found("user", admin)),
        }
        let own = self.actor_id();
        match self.author_of_actor(&own)? {
            Some((_, Role::Admin)) if self.is_server_device(&own)? => {}
            Some(_) => {
                return Err(Error::invalid(
                    "device",
                    "this store's device is already another device of the directory; it cannot record the conversion",
                ))
            }
            None => self.enrol_as_server(admin)?,
        }
        self.conn.execute("UPDATE device SET converts_grids = 1", []).db()?;
        self.convert_pending()
    }

    /// Whether this store converts grid documents ([`Store::convert_grids`] ran on it).
    pub fn converts_grids(&self) -> Result<bool> {
        self.conn.prepare_cached("SELECT converts_grids FROM device").db()?.query_row([], |r| r.get(0)).db()
    }

    /// Converts what changed in any grid document since its last conversion, and the records
    /// skipped before, if this store converts at all: when the admin asks, after an import, and
    /// when the server starts (a conversion a crash cut short carries on). A grid whose run
    /// fails is logged and left for the next run; the others go on.
    pub fn convert_pending(&mut self) -> Result<Converted> {
        let mut total = Converted::default();
        if !self.converts_grids()? {
            return Ok(total);
        }
        // Found from the stored heads, without loading a document that has nothing new.
        let converted: HashMap<String, Vec<u8>> = {
            let mut stmt = self.conn.prepare("SELECT grid_id, heads FROM grid_conversions").db()?;
            let rows =
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).db()?.collect::<rusqlite::Result<_>>().db()?;
            rows
        };
        let skipped: HashSet<String> = {
            let mut stmt = self.conn.prepare("SELECT DISTINCT grid_id FROM grid_conversion_skips").db()?;
            let rows = stmt.query_map([], |r| r.get(0)).db()?.collect::<rusqlite::Result<_>>().db()?;
            rows
        };
        let pending: Vec<UnitId> = self
            .repository()
            .all_heads("grid/")?
            .into_iter()
            .filter_map(|(id, heads)| match id {
                DocId::Grid(grid)
                    if skipped.contains(grid.as_str()) || converted.get(grid.as_str()).is_none_or(|c| !heads.is(c)) =>
                {
                    Some(grid)
                }
                _ => None,
            })
            .collect();
        for grid in pending {
            match self.convert_grid(&grid) {
                Ok(c) => total.add(c),
                Err(e) => {
                    tracing::error!(grid = %grid, error = %e, "converting a grid document failed; tried again at the next run")
                }
            }
        }
        if total.grids > 0 {
            tracing::info!(
                grids = total.grids,
                households = total.households,
                residents = total.residents,
                visits = total.visits,
                skipped = total.skipped.len(),
                "grid documents converted"
            );
        }
        Ok(total)
    }

    /// Converts what another replica (a phone's sync, an admin's import) just brought into
    /// `grid/<grid>`, if this store converts.
    pub fn convert_taken(&mut self, grid: &UnitId) -> Result<Converted> {
        if !self.converts_grids()? || !self.has_document(&DocId::Grid(grid.clone()))? {
            return Ok(Converted::default());
        }
        self.convert_grid(grid)
    }

    /// Whether this store converted every record of `grid/<grid>` at the heads it holds now:
    /// what the server tells a phone that asks whether it may let its copy go.
    pub(crate) fn converted_now(&self, doc: &DocId) -> Result<bool> {
        let DocId::Grid(grid) = doc else { return Ok(false) };
        let Some(held) = self.repository().heads(doc)? else { return Ok(false) };
        let row: Option<(Vec<u8>, bool)> = self
            .conn
            .prepare_cached(
                "SELECT c.heads, EXISTS(SELECT 1 FROM grid_conversion_skips s WHERE s.grid_id = c.grid_id)
                 FROM grid_conversions c WHERE c.grid_id = ?1",
            )
            .db()?
            .query_row([grid.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .db()?;
        Ok(row.is_some_and(|(converted, skipped)| !skipped && converted == encode_heads(&held)))
    }

    /// Converts what changed in `grid/<grid>` since its last conversion, and what was skipped.
    fn convert_grid(&mut self, grid: &UnitId) -> Result<Converted> {
        let id = DocId::Grid(grid.clone());
        let from: Vec<automerge::ChangeHash> = self
            .conn
            .prepare_cached("SELECT heads FROM grid_conversions WHERE grid_id = ?1")
            .db()?
            .query_row([grid.as_str()], |r| r.get::<_, Vec<u8>>(0))
            .optional()
            .db()?
            .map(|h| decode_heads(&h))
            .transpose()?
            .unwrap_or_default();
        // Each skipped record with the heads its last copy was made at (empty: it never reached
        // a register), from which it is diffed when it is tried again.
        let skipped_before: BTreeMap<(Collection, String), Vec<automerge::ChangeHash>> = {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT collection, key, since FROM grid_conversion_skips WHERE grid_id = ?1")
                .db()?;
            let rows = stmt
                .query_map([grid.as_str()], |r| {
                    Ok(((r.get::<_, String>(0)?, r.get::<_, String>(1)?), r.get::<_, Vec<u8>>(2)?))
                })
                .db()?
                .collect::<rusqlite::Result<Vec<_>>>()
                .db()?;
            // A row naming no collection holds no record to try again; the rows are written anew
            // below, without it.
            rows.into_iter()
                .filter_map(|((collection, key), since)| Some((Collection::parse(&collection)?, key, since)))
                .map(|(collection, key, since)| Ok(((collection, key), decode_heads(&since)?)))
                .collect::<Result<_>>()?
        };
        self.ensure_loaded(&id)?;
        let doc = self.docs.get_mut(&id).expect("loaded above");
        let heads = doc.heads();
        let mut touched: BTreeSet<(Collection, String)> = if from.is_empty() {
            let mut all = BTreeSet::new();
            for &collection in id.collections() {
                for key in doc.keys(collection)? {
                    all.insert((collection, key));
                }
            }
            all
        } else {
            doc.touched_since(&from)
                .into_iter()
                .filter_map(|Touched { collection, key }| Some((collection, key?)))
                .collect()
        };
        touched.extend(skipped_before.keys().cloned());
        let mut out = Converted { grids: 1, ..Converted::default() };
        let (mut households, mut residents, mut visits) = (Vec::new(), Vec::new(), Vec::new());
        for (collection, key) in touched {
            match collection {
                Collection::Households | Collection::Residents => {
                    let Some(now) = doc.map_fields(collection, &key, None)? else {
                        if doc.has_key(collection, &key)? {
                            out.skip(grid, collection, &key, "it is not a map record");
                        }
                        continue;
                    };
                    // Diffed from its last copy: the run's start, or for a record skipped before,
                    // the heads of its last copy (none: it is copied whole).
                    let since = skipped_before.get(&(collection, key.clone())).unwrap_or(&from);
                    let then = if since.is_empty() { None } else { doc.map_fields(collection, &key, Some(since))? };
                    let record = MapRecord { key, then, now };
                    if collection == Collection::Households {
                        households.push(record)
                    } else {
                        residents.push(record)
                    }
                }
                Collection::Visits => match doc.get_value::<Visit>(Collection::Visits, &key) {
                    Ok(Some(v)) if v.id.as_str() == key => visits.push(v),
                    Ok(None) => {}
                    _ => out.skip(grid, Collection::Visits, &key, "it does not parse as a visit"),
                },
                _ => {}
            }
        }
        for h in households {
            match self.convert_household(grid, &h).or_else(skip_or_stop)? {
                Copied::Written => out.households += 1,
                Copied::Unchanged => {}
                Copied::Skipped(why) => out.skip(grid, Collection::Households, &h.key, why),
            }
        }
        for r in residents {
            match self.convert_resident(grid, &r).or_else(skip_or_stop)? {
                Copied::Written => out.residents += 1,
                Copied::Unchanged => {}
                Copied::Skipped(why) => out.skip(grid, Collection::Residents, &r.key, why),
            }
        }
        self.convert_visits(grid, visits, &mut out)?;
        let tx = self.conn.transaction().db()?;
        tx.execute("DELETE FROM grid_conversion_skips WHERE grid_id = ?1", [grid.as_str()]).db()?;
        for s in &mut out.skipped {
            let known = skipped_before.get(&(s.collection, s.key.clone()));
            tx.execute(
                "INSERT OR REPLACE INTO grid_conversion_skips (grid_id, collection, key, reason, since)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![
                    grid.as_str(),
                    s.collection.as_str(),
                    s.key,
                    s.reason,
                    encode_heads(known.unwrap_or(&from))
                ],
            )
            .db()?;
            // Keys of old grid documents were never checked: one that is not an id is not shown.
            s.key = super::boundary::shown_key(&s.key).to_string();
            if known.is_none() {
                tracing::warn!(doc = %s.doc, collection = %s.collection, key = %s.key, reason = %s.reason, "a record of a grid document was not converted");
            }
        }
        tx.execute(
            "INSERT INTO grid_conversions (grid_id, heads) VALUES (?1, ?2)
             ON CONFLICT(grid_id) DO UPDATE SET heads = excluded.heads",
            rusqlite::params![grid.as_str(), encode_heads(&heads)],
        )
        .db()?;
        tx.commit().db()?;
        Ok(out)
    }

    /// The register a household or resident id is kept in now, if any register holds it.
    fn live_register(&self, table: &'static str, id: &str) -> Result<Option<UnitId>> {
        let doc: Option<String> = lookup(
            &self.conn,
            &format!("SELECT doc_id FROM {table} WHERE id = ?1 AND doc_id LIKE 'register/%'"),
            [id],
        )?;
        Ok(match doc.map(|d| DocId::parse(&d)).transpose()? {
            Some(DocId::Register(unit)) => Some(unit),
            _ => None,
        })
    }

    /// Whether `unit` is `grid` or one of its micro-grids, as the directory says.
    fn unit_in_grid(&self, unit: &UnitId, grid: &UnitId) -> Result<bool> {
        if unit == grid {
            return Ok(true);
        }
        self.conn
            .prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM units WHERE id = ?1 AND kind = 'micro_grid' AND parent_id = ?2)",
            )
            .db()?
            .query_row([unit.as_str(), grid.as_str()], |r| r.get(0))
            .db()
    }

    /// The register of this grid that holds a household now, the grid's document aside.
    fn household_register_in(&self, household: &HouseholdId, grid: &UnitId) -> Result<Option<UnitId>> {
        match self.live_register("households", household.as_str())? {
            Some(unit) if self.unit_in_grid(&unit, grid)? => Ok(Some(unit)),
            _ => Ok(None),
        }
    }

    /// Copies what changed of one household of `grid` into its register.
    fn convert_household(&mut self, grid: &UnitId, h: &MapRecord) -> Result<Copied> {
        let (changed, now) = match h.read::<Household>("household") {
            Ok(read) => read,
            Err(copied) => return Ok(copied),
        };
        if &now.grid != grid || now.id.as_str() != h.key {
            return Ok(Copied::Skipped("its id or grid is not the one of this grid document".into()));
        }
        let live = self.live_register("households", &h.key)?;
        if let Some(unit) = &live {
            if !self.unit_in_grid(unit, grid)? {
                return Ok(Copied::Skipped("its id is a household of another grid".into()));
            }
        }
        // A micro-grid the old phone changed moves the household; otherwise it stays where it
        // lives now (a register's own move included).
        let target = match &live {
            Some(unit) if !changed.contains_key("micro_grid") => unit.clone(),
            _ => now.register().clone(),
        };
        if !self.unit_in_grid(&target, grid)? {
            return Ok(Copied::Skipped("its micro-grid is not one of this grid".into()));
        }
        let base = match &live {
            Some(unit) => self.doc(&DocId::Register(unit.clone()))?.map_fields(Collection::Households, &h.key, None)?,
            None => None,
        };
        let merged = match base {
            Some(base) => overlay(base, &changed),
            None => h.now.clone(),
        };
        let Some(mut merged) = parse::<Household>(merged) else {
            return Ok(Copied::Skipped("merged with its register's copy, it does not parse".into()));
        };
        if merged.register() != &target || merged.grid != *grid {
            merged.micro_grid = now.micro_grid.clone();
            merged.grid = grid.clone();
        }
        if let Err(e) = merged.validate() {
            return Ok(Copied::Skipped(format!("it breaks a rule of the register: {e}")));
        }
        match live {
            Some(from) if from != target => {
                let from = DocId::Register(from);
                let old = self
                    .doc(&from)?
                    .get_map::<Household>(Collection::Households, &h.key)?
                    .ok_or_else(|| Error::not_found("household", &h.key))?;
                self.move_household(old, &merged)?;
            }
            _ => self.write(
                &DocId::Register(target),
                |d| d.put_map(Collection::Households, merged.id.as_str(), &merged),
                |ix, d| ix.household(&d.id, &merged),
            )?,
        }
        Ok(Copied::Written)
    }

    /// Copies what changed of one resident into its household's register.
    fn convert_resident(&mut self, grid: &UnitId, r: &MapRecord) -> Result<Copied> {
        let (changed, now) = match r.read::<Resident>("resident") {
            Ok(read) => read,
            Err(copied) => return Ok(copied),
        };
        let Some(unit) = self.household_register_in(&now.household, grid)? else {
            return Ok(Copied::Skipped("its household is not in a register of this grid".into()));
        };
        if self.live_register("residents", &r.key)?.is_some_and(|u| u != unit) {
            return Ok(Copied::Skipped("its id is a resident of another register".into()));
        }
        let target = DocId::Register(unit);
        let base = self.doc(&target)?.map_fields(Collection::Residents, &r.key, None)?;
        let merged = match base {
            Some(base) => overlay(base, &changed),
            None => r.now.clone(),
        };
        let Some(merged) = parse::<Resident>(merged) else {
            return Ok(Copied::Skipped("merged with its register's copy, it does not parse".into()));
        };
        if merged.household != now.household || merged.id.as_str() != r.key {
            return Ok(Copied::Skipped("its id or household is not the one of its register's copy".into()));
        }
        if let Err(e) = merged.validate(super::year_of(self.now())) {
            return Ok(Copied::Skipped(format!("it breaks a rule of the register: {e}")));
        }
        self.write_resident(target, merged)?;
        Ok(Copied::Written)
    }

    /// Copies visits to households of `grid`: a visit the months already hold into the month
    /// that holds it (its tombstone), a new one into the month of its date in the register its
    /// household is kept in now; one write per month.
    fn convert_visits(&mut self, grid: &UnitId, visits: Vec<Visit>, out: &mut Converted) -> Result<()> {
        let now = self.now();
        let mut months: BTreeMap<DocId, Vec<Visit>> = BTreeMap::new();
        for v in visits {
            if let Err(e) = v.validate() {
                out.skip(grid, Collection::Visits, v.id.as_str(), format!("it breaks a rule of a visit: {e}"));
                continue;
            }
            let month = match self.visit_document(v.id.as_str()) {
                Ok(DocId::Visits(unit, _)) if !self.unit_in_grid(&unit, grid)? => {
                    out.skip(grid, Collection::Visits, v.id.as_str(), "its id is a visit of another grid");
                    continue;
                }
                Ok(month @ DocId::Visits(..)) => month,
                _ => match self.household_register_in(&v.household, grid)? {
                    Some(unit) => DocId::Visits(unit, Period::of(v.at.min(now))),
                    None => {
                        out.skip(
                            grid,
                            Collection::Visits,
                            v.id.as_str(),
                            "its household is not in a register of this grid",
                        );
                        continue;
                    }
                },
            };
            months.entry(month).or_default().push(v);
        }
        for (month, visits) in months {
            let doc = self.doc(&month)?;
            let mut new = Vec::new();
            let mut rewrites = Vec::new();
            for v in visits {
                match doc.get_value::<Visit>(Collection::Visits, v.id.as_str()).ok().flatten() {
                    None => new.push(v),
                    // A visit is written once: what the month holds changes only to its tombstone.
                    Some(k) if v.deleted && !k.deleted && Visit { deleted: false, ..v.clone() } == k => new.push(v),
                    Some(k) if Visit { deleted: k.deleted, ..v.clone() } == k || k.deleted => {}
                    Some(_) => rewrites.push(v.id.clone()),
                }
            }
            for id in rewrites {
                out.skip(grid, Collection::Visits, id.as_str(), "it rewrites a visit its month holds");
            }
            if new.is_empty() {
                continue;
            }
            let unit = month.unit().expect("a month belongs to a unit").to_string();
            let written = self.write(
                &month,
                |d| new.iter().try_for_each(|v| d.put_value(Collection::Visits, v.id.as_str(), v)),
                |ix, d| new.iter().try_for_each(|v| ix.visit(&d.id, &unit, v, false)),
            );
            match written {
                Ok(()) => out.visits += new.len(),
                Err(e @ Error::Storage { .. }) => return Err(e),
                Err(e) => {
                    for v in &new {
                        out.skip(
                            grid,
                            Collection::Visits,
                            v.id.as_str(),
                            format!("its month could not be written: {e}"),
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::{NewUnit, NewUser, UnitKind};
    use crate::personal::Personal;
    use crate::store::OpenOptions;

    /// What an older phone changed since the last copy is laid over the register's record field
    /// by field, into nested maps; a field it removed goes, fields it did not touch stay.
    #[test]
    fn changes_since_the_last_copy_are_laid_over_the_registers_record() {
        let obj = |v: serde_json::Value| v.as_object().unwrap().clone();
        let record = MapRecord {
            key: "H1".into(),
            then: Some(obj(serde_json::json!({"a": 1, "b": {"x": 1, "y": 2}, "keep": true}))),
            now: obj(serde_json::json!({"b": {"x": 1, "y": 3}, "c": 5, "keep": true})),
        };
        let changed = record.changed();
        assert_eq!(Value::Object(changed.clone()), serde_json::json!({"a": null, "b": {"y": 3}, "c": 5}));
        let register = obj(serde_json::json!({"a": 9, "b": {"x": 7, "y": 0, "z": 1}, "d": 4, "keep": false}));
        assert_eq!(
            Value::Object(overlay(register, &changed)),
            serde_json::json!({"b": {"x": 7, "y": 3, "z": 1}, "c": 5, "d": 4, "keep": false})
        );
        assert_eq!(MapRecord { then: None, ..record }.changed().len(), 3, "a new record is copied whole");
    }

    /// The conversion is recorded for an admin by this store's own device: refused for a user who
    /// is not an admin, an unknown one, or when this store's actor is already another user's
    /// device (it would record the copies in that user's name).
    #[test]
    fn the_conversion_is_recorded_for_an_admin_by_a_device_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path().join("server.sqlite"), OpenOptions::default()).unwrap();
        let district = s.add_unit(NewUnit { kind: UnitKind::District, parent: None, name: "Jinshui".into() }).unwrap();
        let user = |s: &mut Store, role| {
            s.add_user(NewUser { name: Personal::new("Office"), role, unit: district.id.clone(), department: None })
                .unwrap()
                .id
        };
        let (admin, worker) = (user(&mut s, Role::Admin), user(&mut s, Role::GridWorker));
        let e = s.convert_grids(&worker).unwrap_err();
        assert!(matches!(e, Error::InvalidInput { field: "user", .. }), "{e}");
        let e = s.convert_grids(&UserId::parse("nobody").unwrap()).unwrap_err();
        assert!(matches!(e, Error::NotFound { .. }), "{e}");
        let own = s.actor_id();
        s.enrol_device(&worker, &own, None).unwrap();
        let e = s.convert_grids(&admin).unwrap_err();
        assert!(matches!(e, Error::InvalidInput { field: "device", .. }), "{e}");
        assert!(!s.converts_grids().unwrap(), "nothing was started");
    }

    /// A server store with a district down to one grid, an admin of the district, and the
    /// grid's old-layout document (its genesis only).
    fn old_layout_grid(s: &mut Store) -> (UnitId, UserId) {
        let unit = |s: &mut Store, kind, parent: Option<&UnitId>| {
            s.add_unit(NewUnit { kind, parent: parent.cloned(), name: "Weilai".into() }).unwrap().id
        };
        let district = unit(s, UnitKind::District, None);
        let street = unit(s, UnitKind::Street, Some(&district));
        let community = unit(s, UnitKind::Community, Some(&street));
        let grid = unit(s, UnitKind::Grid, Some(&community));
        let admin = s
            .add_user(NewUser { name: Personal::new("Office"), role: Role::Admin, unit: district, department: None })
            .unwrap()
            .id;
        let doc = DocId::Grid(grid.clone());
        s.merge_document(&doc, &crate::document::genesis(&doc).save()).unwrap();
        (grid, admin)
    }

    /// A grid document that changed after its conversion (an old phone synced late) is found
    /// from its stored heads and converted again at the next run; one that did not is left.
    #[test]
    fn a_grid_changed_since_its_conversion_is_converted_at_the_next_run() {
        use crate::household::{Address, RiskLevel};
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path().join("server.sqlite"), OpenOptions::default()).unwrap();
        let (grid, admin) = old_layout_grid(&mut s);
        let doc = DocId::Grid(grid.clone());
        s.convert_grids(&admin).unwrap();
        assert!(s.converted_now(&doc).unwrap());
        assert_eq!(s.convert_pending().unwrap(), Converted::default(), "nothing changed since");

        let mut old_phone = crate::document::Doc::new(doc.clone(), automerge::ActorId::random());
        let id = HouseholdId::generate();
        let household = Household {
            id: id.clone(),
            grid: grid.clone(),
            micro_grid: None,
            address: Address { building: "3".into(), unit: "2".into(), room: "401".into() },
            location: None,
            care_tags: Default::default(),
            risk: RiskLevel::Blue,
            notes: String::new(),
            created_at: 1_768_035_600_000,
            deleted: false,
            moved_to: None,
        };
        old_phone.put_map(Collection::Households, id.as_str(), &household).unwrap();
        s.merge_document(&doc, &old_phone.am.save()).unwrap();
        assert!(!s.converted_now(&doc).unwrap(), "the grid changed after its conversion");

        let again = s.convert_pending().unwrap();
        assert_eq!((again.grids, again.households), (1, 1), "{again:?}");
        assert!(s.converted_now(&doc).unwrap());
        assert!(s.households(&Default::default()).unwrap().iter().any(|h| h.id == id));
    }

    /// A skipped-record row naming no collection (a damaged table) holds nothing to retry: the
    /// grid is converted all the same and the row is gone.
    #[test]
    fn a_skipped_row_naming_no_collection_does_not_stop_its_grid() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path().join("server.sqlite"), OpenOptions::default()).unwrap();
        let (grid, admin) = old_layout_grid(&mut s);
        s.conn
            .execute(
                "INSERT INTO grid_conversion_skips (grid_id, collection, key, reason, since) VALUES (?1, 'bogus', 'H1', 'x', x'')",
                [grid.as_str()],
            )
            .unwrap();
        s.convert_grids(&admin).unwrap();
        let left: i64 = s.conn.query_row("SELECT COUNT(*) FROM grid_conversion_skips", [], |r| r.get(0)).unwrap();
        assert_eq!(left, 0);
    }
}
