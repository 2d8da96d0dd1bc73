//! Converting the old layout's grid documents into registers and months, on the server.
//!
//! Before schema 7 a grid's households, residents and visits were one `grid/<id>` document. A
//! deployment that ran that layout converts once, on the server (`docs/DATA-MODEL.md`,
//! *Upgrading from grid documents*): every household and resident is copied into the register of
//! its micro-grid (or grid), every visit into the month document of its date, tombstones
//! included. The grid documents stay on the server, whole, as the record of who wrote what; the
//! copies are written by the server's own device, which the directory lists as a device of the
//! admin who started the conversion, so every replica's boundary takes them (an admin's device
//! may record for others and amend closed months). Each record keeps the author it names.
//!
//! Older phones may go on writing their grid document after the conversion: the server converts
//! what they send as it takes it in, from the grid document's heads at its last conversion, so a
//! field an old phone changed reaches the register and a field it did not change leaves the
//! register's newer edit alone. A phone of this version lets its grid document go once the
//! server says it converted it at the heads the phone holds (`Batch::converted`).

use std::collections::BTreeMap;

use rusqlite::OptionalExtension;
use serde_json::{Map, Value};

use super::{decode_heads, encode_heads, Store};
use crate::directory::Role;
use crate::document::{DocId, Touched};
use crate::error::{Error, Result};
use crate::household::{Household, Resident};
use crate::ids::{UnitId, UserId};
use crate::period::Period;
use crate::visit::Visit;

/// What one conversion copied; also the JSON body of `POST /v1/admin/convert-grids`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Converted {
    /// Grid documents that had something new since their last conversion.
    pub grids: usize,
    /// Households written to a register (new ones, changed fields, moves).
    pub households: usize,
    pub residents: usize,
    /// Visits written to a month (new ones and tombstones).
    pub visits: usize,
    /// Records of a grid document that do not parse: they were never shown, and are not copied.
    pub unreadable: usize,
}

impl Converted {
    fn add(&mut self, other: Converted) {
        self.grids += other.grids;
        self.households += other.households;
        self.residents += other.residents;
        self.visits += other.visits;
        self.unreadable += other.unreadable;
    }
}

/// One map record of a grid document: its fields at the last conversion (`None`: new since) and now.
struct MapRecord {
    key: String,
    then: Option<Map<String, Value>>,
    now: Map<String, Value>,
}

impl MapRecord {
    /// The fields that changed since the last conversion (all of them for a new record); a
    /// field that went away is `null`, which deletes it.
    fn changed(&self) -> Map<String, Value> {
        let Some(then) = &self.then else { return self.now.clone() };
        let mut out = Map::new();
        for (k, v) in &self.now {
            if then.get(k) != Some(v) {
                out.insert(k.clone(), v.clone());
            }
        }
        for k in then.keys() {
            if !self.now.contains_key(k) {
                out.insert(k.clone(), Value::Null);
            }
        }
        out
    }
}

/// `base` with `changed` laid over it, field by field (`null` removes a field).
fn overlay(mut base: Map<String, Value>, changed: &Map<String, Value>) -> Map<String, Value> {
    for (k, v) in changed {
        if v.is_null() {
            base.remove(k);
        } else {
            base.insert(k.clone(), v.clone());
        }
    }
    base
}

fn parse<T: serde::de::DeserializeOwned>(fields: Map<String, Value>) -> Option<T> {
    serde_json::from_value(Value::Object(fields)).ok()
}

impl Store {
    /// Converts every grid document this store holds, and every later change to one as it is
    /// taken in, with this store's device recording the copies for `admin` (a user of role
    /// admin): what `POST /v1/admin/convert-grids` and `doorstep convert-grids` run on the
    /// server. Running it again converts only what changed since; it never writes a grid document.
    pub fn convert_grids(&mut self, admin: &UserId) -> Result<Converted> {
        let role: Option<String> = self
            .conn
            .prepare_cached("SELECT role FROM users WHERE id = ?1 AND deleted = 0")?
            .query_row([admin.as_str()], |r| r.get(0))
            .optional()?;
        match role.as_deref().and_then(Role::parse) {
            Some(Role::Admin) => {}
            Some(_) => {
                return Err(Error::invalid("user", "the conversion is recorded for an admin; this user is not one"))
            }
            None => return Err(Error::not_found("user", admin)),
        }
        match self.author_of_actor(&self.actor_id())? {
            Some((_, Role::Admin)) => {}
            Some(_) => {
                return Err(Error::invalid(
                    "device",
                    "this store's device belongs to a user who is not an admin; it cannot record the conversion",
                ))
            }
            None => self.enrol_device(admin, &self.actor_id())?,
        }
        self.conn.execute("UPDATE device SET converts_grids = 1", [])?;
        self.convert_pending()
    }

    /// Whether this store converts grid documents ([`Store::convert_grids`] ran on it).
    pub fn converts_grids(&self) -> Result<bool> {
        Ok(self.conn.prepare_cached("SELECT converts_grids FROM device")?.query_row([], |r| r.get(0))?)
    }

    /// Converts what changed in any grid document since its last conversion, if this store
    /// converts at all: after taking changes in, and when the server starts (a conversion a
    /// crash cut short carries on).
    pub fn convert_pending(&mut self) -> Result<Converted> {
        let mut total = Converted::default();
        if !self.converts_grids()? {
            return Ok(total);
        }
        for doc in self.document_ids()? {
            if let DocId::Grid(grid) = doc {
                total.add(self.convert_grid(&grid)?);
            }
        }
        if total.grids > 0 {
            tracing::info!(
                grids = total.grids,
                households = total.households,
                residents = total.residents,
                visits = total.visits,
                unreadable = total.unreadable,
                "grid documents converted"
            );
        }
        Ok(total)
    }

    /// Converts what another replica just brought into `grid/<grid>`, if this store converts.
    pub(crate) fn convert_taken(&mut self, grid: &UnitId) -> Result<Converted> {
        if !self.converts_grids()? || !self.has_document(&DocId::Grid(grid.clone()))? {
            return Ok(Converted::default());
        }
        self.convert_grid(grid)
    }

    /// Whether this store converted `grid/<grid>` at the heads it holds now: what the server tells
    /// a phone that asks whether it may let its copy go.
    pub(crate) fn converted_now(&self, grid: &UnitId) -> Result<bool> {
        let row: Option<(Vec<u8>, Option<Vec<u8>>)> = self
            .conn
            .prepare_cached(
                "SELECT c.heads, h.heads FROM grid_conversions c LEFT JOIN document_heads h
                     ON h.doc_id = 'grid/' || c.grid_id WHERE c.grid_id = ?1",
            )?
            .query_row([grid.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(row.is_some_and(|(converted, held)| held.is_some_and(|h| h == converted)))
    }

    /// Converts what changed in `grid/<grid>` since its last conversion.
    fn convert_grid(&mut self, grid: &UnitId) -> Result<Converted> {
        let id = DocId::Grid(grid.clone());
        let from: Vec<automerge::ChangeHash> = self
            .conn
            .prepare_cached("SELECT heads FROM grid_conversions WHERE grid_id = ?1")?
            .query_row([grid.as_str()], |r| r.get::<_, Vec<u8>>(0))
            .optional()?
            .map(|h| decode_heads(&h))
            .transpose()?
            .unwrap_or_default();
        self.ensure_loaded(&id)?;
        let doc = self.docs.get_mut(&id).expect("loaded above");
        let heads = doc.heads();
        if encode_heads(&heads) == encode_heads(&from) {
            return Ok(Converted::default());
        }
        let touched: Vec<Touched> = if from.is_empty() {
            let mut all = Vec::new();
            for collection in ["households", "residents", "visits"] {
                for key in doc.keys(collection)? {
                    all.push(Touched { collection: collection.into(), key: Some(key) });
                }
            }
            all
        } else {
            doc.touched_since(&from).into_iter().collect()
        };
        let mut out = Converted { grids: 1, ..Converted::default() };
        let (mut households, mut residents, mut visits) = (Vec::new(), Vec::new(), Vec::new());
        for t in touched {
            // A collection replaced whole cannot happen (the boundary refuses it); its records
            // would be read again from the keys, as a first conversion does.
            let Some(key) = t.key else { continue };
            match t.collection.as_str() {
                "households" | "residents" => {
                    let Some(now) = doc.map_fields(&t.collection, &key, None)? else { continue };
                    let then = if from.is_empty() { None } else { doc.map_fields(&t.collection, &key, Some(&from))? };
                    let record = MapRecord { key, then, now };
                    if t.collection == "households" {
                        households.push(record)
                    } else {
                        residents.push(record)
                    }
                }
                "visits" => match doc.get_value::<Visit>("visits", &key) {
                    Ok(Some(v)) if v.id.as_str() == key => visits.push(v),
                    Ok(None) => {}
                    _ => out.unreadable += 1,
                },
                _ => {}
            }
        }
        for h in households {
            match self.convert_household(&h)? {
                Some(true) => out.households += 1,
                Some(false) => {}
                None => out.unreadable += 1,
            }
        }
        for r in residents {
            match self.convert_resident(&r)? {
                Some(true) => out.residents += 1,
                Some(false) => {}
                None => out.unreadable += 1,
            }
        }
        out.visits += self.convert_visits(grid, visits)?;
        self.conn
            .prepare_cached(
                "INSERT INTO grid_conversions (grid_id, heads) VALUES (?1, ?2)
                 ON CONFLICT(grid_id) DO UPDATE SET heads = excluded.heads",
            )?
            .execute(rusqlite::params![grid.as_str(), encode_heads(&heads)])?;
        Ok(out)
    }

    /// The register a household or resident id is kept in now, if any register holds it.
    fn live_register(&self, table: &'static str, id: &str) -> Result<Option<DocId>> {
        let doc: Option<String> = self
            .conn
            .prepare_cached(&format!("SELECT doc_id FROM {table} WHERE id = ?1 AND doc_id LIKE 'register/%'"))?
            .query_row([id], |r| r.get(0))
            .optional()?;
        doc.map(|d| DocId::parse(&d)).transpose()
    }

    /// Copies what changed of one household into its register: `Some(true)` when something was
    /// written, `None` when the record does not parse.
    fn convert_household(&mut self, h: &MapRecord) -> Result<Option<bool>> {
        let changed = h.changed();
        if changed.is_empty() {
            return Ok(Some(false));
        }
        let Some(now) = parse::<Household>(h.now.clone()) else { return Ok(None) };
        let live = self.live_register("households", &h.key)?;
        // A micro-grid the old phone changed moves the household; otherwise it stays where it
        // lives now (a register's own move included).
        let target = match &live {
            Some(DocId::Register(unit)) if !changed.contains_key("micro_grid") => unit.clone(),
            _ => now.register().clone(),
        };
        let target_doc = DocId::Register(target.clone());
        let base = match &live {
            Some(doc) => self.doc(doc)?.map_fields("households", &h.key, None)?,
            None => None,
        };
        let merged = match base {
            Some(base) => overlay(base, &changed),
            None => h.now.clone(),
        };
        let Some(mut merged) = parse::<Household>(merged) else { return Ok(None) };
        if merged.register() != &target {
            merged.micro_grid = now.micro_grid.clone();
            merged.grid = now.grid.clone();
        }
        if merged.validate().is_err() {
            return Ok(None);
        }
        match live {
            Some(from) if from != target_doc => {
                let old = self
                    .doc(&from)?
                    .get_map::<Household>("households", &h.key)?
                    .ok_or_else(|| Error::not_found("household", &h.key))?;
                self.move_household(old, &merged)?;
            }
            _ => self.write(
                &target_doc,
                |d| d.put_map("households", merged.id.as_str(), &merged),
                |ix, d| ix.household(&d.id, &merged),
            )?,
        }
        Ok(Some(true))
    }

    /// Copies what changed of one resident into its household's register.
    fn convert_resident(&mut self, r: &MapRecord) -> Result<Option<bool>> {
        let changed = r.changed();
        if changed.is_empty() {
            return Ok(Some(false));
        }
        let Some(now) = parse::<Resident>(r.now.clone()) else { return Ok(None) };
        let Some(unit) = self.register_unit(&now.household, true)? else { return Ok(None) };
        let target = DocId::Register(unit);
        let base = self.doc(&target)?.map_fields("residents", &r.key, None)?;
        let merged = match base {
            Some(base) => overlay(base, &changed),
            None => r.now.clone(),
        };
        let Some(merged) = parse::<Resident>(merged) else { return Ok(None) };
        if merged.household != now.household || !self.doc(&target)?.has_key("households", now.household.as_str())? {
            return Ok(None);
        }
        self.write_resident(target, merged)?;
        Ok(Some(true))
    }

    /// Copies visits into the month documents of their dates, each into the register its
    /// household is kept in now; one write per month. Returns how many were written.
    fn convert_visits(&mut self, grid: &UnitId, visits: Vec<Visit>) -> Result<usize> {
        let now = self.now();
        let mut months: BTreeMap<DocId, Vec<Visit>> = BTreeMap::new();
        for v in visits {
            let unit = self.register_unit(&v.household, true)?.unwrap_or_else(|| grid.clone());
            months.entry(DocId::Visits(unit, Period::of(v.at.min(now)))).or_default().push(v);
        }
        let mut written = 0;
        for (month, visits) in months {
            let doc = self.doc(&month)?;
            let mut new = Vec::new();
            for v in visits {
                let kept = doc.get_value::<Visit>("visits", v.id.as_str()).ok().flatten();
                if kept.as_ref().is_none_or(|k| v.deleted && !k.deleted) {
                    new.push(v);
                }
            }
            if new.is_empty() {
                continue;
            }
            let unit = month.unit().expect("a month belongs to a unit").to_string();
            self.write(
                &month,
                |d| new.iter().try_for_each(|v| d.put_value("visits", v.id.as_str(), v)),
                |ix, d| new.iter().try_for_each(|v| ix.visit(&d.id, &unit, v, false)),
            )?;
            written += new.len();
        }
        Ok(written)
    }
}
