//! One Automerge document per unit of access (docs/DATA-MODEL.md, *Documents*), and the two ways records live in one.
//!
//! * Records that are edited field by field (units, users, households, residents) are Automerge
//!   maps with one key per field ("map records"), so two workers who change different fields of
//!   the same household offline both keep their edit.
//! * Records written once (visits, report headers, workflow events) are one JSON string under
//!   their id ("value records"): one `put` instead of one per field, which is what makes
//!   `record_visit` cheap (see `doorstep bench store`).
//!
//! Every document starts from the same deterministic genesis change, so two phones that create
//! `grid/G1` independently share its root maps instead of hiding each other's under a conflict.
//! This module must never expose Automerge types outside the crate.

use std::collections::BTreeSet;

use automerge::{
    transaction::{CommitOptions, Transactable},
    ActorId, AutoCommit, ChangeHash, ObjId, ObjType, Prop, ReadDoc, ScalarValue, Value, ROOT,
};
use serde::{de::DeserializeOwned, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::ids::{ReportId, UnitId};
use crate::period::Period;

/// Which document (docs/DATA-MODEL.md, *Documents*).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DocId {
    /// `directory`: the hierarchy, users, devices, categories and visit rules.
    Directory,
    /// `register/<unit>`: the households (and their residents) of one micro-grid, or of a grid
    /// for households in none of its micro-grids.
    Register(UnitId),
    /// `visits/<unit>/<YYYY-MM>`: the visits to the households of one register, one month.
    Visits(UnitId, Period),
    /// `report/<id>`: one citizen report and its event log.
    Report(ReportId),
    /// `grid/<id>`: the layout before registers and periods, one document for a whole grid's
    /// households, residents and visits. Read (and taken from older phones) but never written by
    /// this version; the server converts it (`Store::convert_grids`).
    Grid(UnitId),
}

impl DocId {
    pub fn parse(s: &str) -> Result<DocId> {
        let bad = || {
            Error::invalid(
                "document id",
                "must be 'directory', 'register/<unit>', 'visits/<unit>/<YYYY-MM>', 'report/<id>' or 'grid/<id>'",
            )
        };
        match s.split_once('/') {
            None if s == "directory" => Ok(DocId::Directory),
            Some(("register", id)) => Ok(DocId::Register(UnitId::parse(id)?)),
            Some(("visits", rest)) => {
                let (unit, period) = rest.split_once('/').ok_or_else(bad)?;
                Ok(DocId::Visits(UnitId::parse(unit)?, Period::parse(period)?))
            }
            Some(("report", id)) => Ok(DocId::Report(ReportId::parse(id)?)),
            Some(("grid", id)) => Ok(DocId::Grid(UnitId::parse(id)?)),
            _ => Err(bad()),
        }
    }

    /// The top-level maps every document of this kind holds from its genesis.
    pub fn collections(&self) -> &'static [Collection] {
        use Collection::*;
        match self {
            DocId::Directory => &[Units, Users, Devices, Categories, VisitRules],
            DocId::Register(_) => &[Households, Residents],
            DocId::Visits(..) => &[Visits],
            DocId::Report(_) => &[Header, Events],
            DocId::Grid(_) => &[Households, Residents, Visits],
        }
    }

    /// The unit whose people hold this document: a register's or a period's unit, a grid.
    pub fn unit(&self) -> Option<&UnitId> {
        match self {
            DocId::Register(u) | DocId::Visits(u, _) | DocId::Grid(u) => Some(u),
            DocId::Directory | DocId::Report(_) => None,
        }
    }
}

impl std::fmt::Display for DocId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DocId::Directory => f.write_str("directory"),
            DocId::Register(id) => write!(f, "register/{id}"),
            DocId::Visits(id, period) => write!(f, "visits/{id}/{period}"),
            DocId::Report(id) => write!(f, "report/{id}"),
            DocId::Grid(id) => write!(f, "grid/{id}"),
        }
    }
}

/// A top-level map of a document: which kind of record it holds (DATA-MODEL.md, *Documents*).
/// Every document holds the collections of its kind from its genesis ([`DocId::collections`]),
/// and no other: the boundary refuses any change to the root.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Collection {
    Units,
    Users,
    Devices,
    Categories,
    VisitRules,
    Households,
    Residents,
    Visits,
    Header,
    Events,
}

impl Collection {
    pub const ALL: [Collection; 10] = [
        Collection::Units,
        Collection::Users,
        Collection::Devices,
        Collection::Categories,
        Collection::VisitRules,
        Collection::Households,
        Collection::Residents,
        Collection::Visits,
        Collection::Header,
        Collection::Events,
    ];

    /// The map's key at the document's root.
    pub fn as_str(self) -> &'static str {
        match self {
            Collection::Units => "units",
            Collection::Users => "users",
            Collection::Devices => "devices",
            Collection::Categories => "categories",
            Collection::VisitRules => "visit_rules",
            Collection::Households => "households",
            Collection::Residents => "residents",
            Collection::Visits => "visits",
            Collection::Header => "header",
            Collection::Events => "events",
        }
    }

    pub fn parse(s: &str) -> Option<Collection> {
        Collection::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl std::fmt::Display for Collection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Key under which a report document keeps its single header record.
pub(crate) const HEADER_KEY: &str = "report";

/// A loaded document and what the store needs to persist its next change.
pub(crate) struct Doc {
    pub id: DocId,
    pub am: AutoCommit,
    /// Whether the `documents` row exists yet.
    pub persisted: bool,
    /// Change rows appended since the last snapshot.
    pub change_rows: usize,
    /// Sequence number of the next change row.
    pub next_seq: i64,
    /// Bytes the document takes on disk (snapshot and change rows): what the document limit
    /// counts for local writes.
    pub stored_bytes: usize,
    /// When the store last used this document (a counter, for the cache's LRU eviction).
    pub last_used: u64,
    /// The top-level collection maps, looked up once (see [`Doc::index_collections`]).
    collections: Vec<(Collection, ObjId)>,
}

/// The first change of every document, identical on every device (same actor, time and ops).
pub(crate) fn genesis(id: &DocId) -> AutoCommit {
    let mut am = AutoCommit::new().with_actor(genesis_actor(id));
    am.put(ROOT, "doc", id.to_string()).expect("put on a new document");
    for c in id.collections() {
        am.put_object(ROOT, c.as_str(), ObjType::Map).expect("put on a new document");
    }
    am.commit_with(CommitOptions::default().with_time(0));
    am
}

/// The actor of a document's genesis change: the first 16 bytes of SHA-256 over
/// `"doorstep genesis\0" + id`. Its operations make the root and the collection maps.
pub(crate) fn genesis_actor(id: &DocId) -> ActorId {
    let digest = Sha256::digest(format!("doorstep genesis\0{id}").as_bytes());
    ActorId::from(&digest[..16])
}

/// The hash of a document's genesis change: the one change every device may hold without having
/// written it (the server accepts it from any device).
pub(crate) fn genesis_hash(id: &DocId) -> automerge::ChangeHash {
    genesis(id).get_heads()[0]
}

impl Doc {
    pub fn new(id: DocId, actor: ActorId) -> Doc {
        let mut am = genesis(&id);
        am.set_actor(actor);
        Doc::from_parts(id, am, false, 0, 1)
    }

    pub fn from_parts(id: DocId, am: AutoCommit, persisted: bool, change_rows: usize, next_seq: i64) -> Doc {
        let mut doc =
            Doc { id, am, persisted, change_rows, next_seq, stored_bytes: 0, last_used: 0, collections: Vec::new() };
        doc.index_collections();
        doc
    }

    /// Looks up the collection maps again; needed after a merge, which may have replaced one.
    pub fn index_collections(&mut self) {
        self.collections = self
            .id
            .collections()
            .iter()
            .filter_map(|c| match self.am.get(ROOT, c.as_str()) {
                Ok(Some((Value::Object(ObjType::Map), obj))) => Some((*c, obj)),
                _ => None,
            })
            .collect();
    }

    /// Checks that the bytes we loaded are the document they claim to be.
    pub fn check_identity(am: &AutoCommit, id: &DocId) -> Result<()> {
        let claimed = match am.get(ROOT, "doc") {
            Ok(Some((Value::Scalar(s), _))) => match s.as_ref() {
                ScalarValue::Str(s) => s.to_string(),
                _ => String::new(),
            },
            _ => String::new(),
        };
        if claimed != id.to_string() {
            return Err(Error::WrongDocument {
                doc: id.to_string(),
                reason: "the bytes belong to another document".into(),
            });
        }
        Ok(())
    }

    /// Checks that the document still has the shape every Doorstep document has: its own id at
    /// the root and each top-level collection a map. A peer that replaced a collection with
    /// something else would hide every record in it, so such a merge is refused.
    pub fn check_shape(&self) -> Result<()> {
        Doc::check_identity(&self.am, &self.id)?;
        for c in self.id.collections() {
            self.collection(*c)?;
        }
        Ok(())
    }

    /// The map object of a top-level collection (`visits`, `households`, …).
    pub fn collection(&self, name: Collection) -> Result<ObjId> {
        match self.collections.iter().find(|(n, _)| *n == name) {
            Some((_, obj)) => Ok(obj.clone()),
            None => {
                Err(Error::CorruptDocument { doc: self.id.to_string(), reason: format!("its '{name}' map is missing") })
            }
        }
    }

    pub fn keys(&self, collection: Collection) -> Result<Vec<String>> {
        let obj = self.collection(collection)?;
        Ok(self.am.keys(&obj).collect())
    }

    pub fn has_key(&self, collection: Collection, key: &str) -> Result<bool> {
        let obj = self.collection(collection)?;
        Ok(matches!(self.am.get(&obj, key), Ok(Some(_))))
    }

    /// A plain integer under a key (the directory's visit rules).
    pub fn get_int(&self, collection: Collection, key: &str) -> Option<i64> {
        let obj = self.collection(collection).ok()?;
        match self.am.get(&obj, key) {
            Ok(Some((Value::Scalar(s), _))) => match s.as_ref() {
                ScalarValue::Int(i) => Some(*i),
                ScalarValue::Uint(u) => i64::try_from(*u).ok(),
                _ => None,
            },
            _ => None,
        }
    }

    pub fn put_int(&mut self, collection: Collection, key: &str, value: i64) -> Result<()> {
        let obj = self.collection(collection)?;
        if self.get_int(collection, key) != Some(value) {
            self.am.put(&obj, key, value).map_err(|e| internal(&self.id, e))?;
        }
        Ok(())
    }

    // ---- value records -------------------------------------------------------------------

    pub fn put_value<T: Serialize>(&mut self, collection: Collection, key: &str, record: &T) -> Result<()> {
        let obj = self.collection(collection)?;
        let json = serde_json::to_string(record).map_err(|e| internal(&self.id, e))?;
        self.am.put(&obj, key, json).map_err(|e| internal(&self.id, e))
    }

    /// Reads a value record. Concurrent writes of one key are resolved so that a tombstone wins:
    /// a record deleted on one phone stays deleted whatever another phone wrote meanwhile.
    /// `Ok(None)`: no such key. `Err`: the value is not a record of this type.
    pub fn get_value<T: DeserializeOwned + Tombstone>(&self, collection: Collection, key: &str) -> Result<Option<T>> {
        let obj = self.collection(collection)?;
        let all = self.am.get_all(&obj, key).map_err(|e| internal(&self.id, e))?;
        let mut chosen: Option<T> = None;
        // `get_all` lists conflicting values with the winner last.
        for (value, _) in all {
            let Value::Scalar(s) = value else { continue };
            let ScalarValue::Str(text) = s.as_ref() else {
                continue;
            };
            let Ok(record) = serde_json::from_str::<T>(text) else {
                continue;
            };
            if chosen.as_ref().is_some_and(|c| c.is_deleted()) && !record.is_deleted() {
                continue;
            }
            chosen = Some(record);
        }
        match chosen {
            Some(r) => Ok(Some(r)),
            None if self.has_key(collection, key)? => Err(Error::CorruptDocument {
                doc: self.id.to_string(),
                reason: format!("{collection} record {key} is not readable"),
            }),
            None => Ok(None),
        }
    }

    // ---- map records ---------------------------------------------------------------------

    /// Whether the record under `key` is a map holding only what map records hold: plain
    /// values (text, numbers, booleans) and maps of them, nothing Automerge-specific (texts,
    /// lists, counters, timestamps, bytes), at any of its conflicting values.
    pub fn is_plain_map_record(&self, collection: Collection, key: &str) -> Result<bool> {
        let coll = self.collection(collection)?;
        match self.am.get_all(&coll, key) {
            Ok(all) => Ok(all
                .iter()
                .all(|(v, obj)| matches!(v, Value::Object(ObjType::Map)) && plain_fields(&self.am, obj, 0))),
            Err(_) => Ok(false),
        }
    }

    /// Writes a map record, touching only the fields whose value changed (so concurrent edits of
    /// other fields survive). `null` deletes a field; fields this version does not know are kept.
    pub fn put_map<T: Serialize>(&mut self, collection: Collection, key: &str, record: &T) -> Result<()> {
        let coll = self.collection(collection)?;
        let serde_json::Value::Object(fields) = serde_json::to_value(record).map_err(|e| internal(&self.id, e))? else {
            return Err(internal(&self.id, "map record is not an object"));
        };
        let obj = match self.am.get(&coll, key) {
            Ok(Some((Value::Object(ObjType::Map), obj))) => obj,
            _ => self.am.put_object(&coll, key, ObjType::Map).map_err(|e| internal(&self.id, e))?,
        };
        write_fields(&mut self.am, &obj, &fields).map_err(|e| internal(&self.id, e))
    }

    pub fn get_map<T: DeserializeOwned>(&self, collection: Collection, key: &str) -> Result<Option<T>> {
        let coll = self.collection(collection)?;
        match self.am.get(&coll, key) {
            Ok(Some((Value::Object(ObjType::Map), obj))) => {
                let fields = read_fields(&self.am, &obj, None);
                serde_json::from_value(serde_json::Value::Object(fields)).map(Some).map_err(|_| {
                    Error::CorruptDocument {
                        doc: self.id.to_string(),
                        reason: format!("{collection} record {key} is not readable"),
                    }
                })
            }
            Ok(None) => Ok(None),
            _ => Err(Error::CorruptDocument {
                doc: self.id.to_string(),
                reason: format!("{collection} record {key} is not a map"),
            }),
        }
    }
}

impl Doc {
    /// The document's heads: what it holds, for a later [`Doc::touched_since`].
    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.am.get_heads()
    }

    /// The records changed since `heads` (every record when `heads` is empty), from Automerge's
    /// patches rather than by reading every record.
    pub fn touched_since(&mut self, heads: &[ChangeHash]) -> BTreeSet<Touched> {
        let now = self.am.get_heads();
        touched_records(&self.am.diff(heads, &now))
    }

    /// A map record's fields as JSON, now or at `at` (`None`: no such record then).
    pub fn map_fields(
        &self,
        collection: Collection,
        key: &str,
        at: Option<&[ChangeHash]>,
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>> {
        let coll = self.collection(collection)?;
        let found = match at {
            Some(heads) => self.am.get_at(&coll, key, heads),
            None => self.am.get(&coll, key),
        };
        Ok(match found {
            Ok(Some((Value::Object(ObjType::Map), obj))) => Some(read_fields(&self.am, &obj, at)),
            _ => None,
        })
    }
}

/// A record that can be deleted by a tombstone field.
pub(crate) trait Tombstone {
    fn is_deleted(&self) -> bool;
}

fn internal(doc: &DocId, e: impl std::fmt::Display) -> Error {
    Error::CorruptDocument { doc: doc.to_string(), reason: format!("could not be changed: {e}") }
}

fn to_scalar(v: &serde_json::Value) -> Option<ScalarValue> {
    Some(match v {
        serde_json::Value::Bool(b) => ScalarValue::Boolean(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => ScalarValue::Int(i),
            None => ScalarValue::F64(n.as_f64()?),
        },
        serde_json::Value::String(s) => ScalarValue::Str(s.as_str().into()),
        _ => return None,
    })
}

fn from_scalar(s: &ScalarValue) -> Option<serde_json::Value> {
    Some(match s {
        ScalarValue::Boolean(b) => serde_json::Value::Bool(*b),
        ScalarValue::Int(i) => (*i).into(),
        ScalarValue::Uint(u) => (*u).into(),
        ScalarValue::F64(f) => serde_json::Number::from_f64(*f)?.into(),
        ScalarValue::Str(s) => serde_json::Value::String(s.to_string()),
        ScalarValue::Timestamp(t) => (*t).into(),
        ScalarValue::Counter(c) => i64::from(c).into(),
        _ => return None,
    })
}

fn write_fields(
    am: &mut AutoCommit,
    obj: &ObjId,
    fields: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), automerge::AutomergeError> {
    for (k, v) in fields {
        let current = am.get(obj, k.as_str())?;
        match v {
            serde_json::Value::Null => {
                if current.is_some() {
                    am.delete(obj, k.as_str())?;
                }
            }
            serde_json::Value::Object(inner) => {
                let child = match current {
                    Some((Value::Object(ObjType::Map), id)) => id,
                    _ => am.put_object(obj, k.as_str(), ObjType::Map)?,
                };
                write_fields(am, &child, inner)?;
            }
            serde_json::Value::Array(_) => {
                // Map records hold no lists (sets are maps of flags); store the JSON text.
                let text = v.to_string();
                am.put(obj, k.as_str(), text)?;
            }
            scalar => {
                let new = to_scalar(scalar).expect("scalar json value");
                let same = matches!(&current, Some((Value::Scalar(s), _)) if s.as_ref() == &new);
                if !same {
                    am.put(obj, k.as_str(), new)?;
                }
            }
        }
    }
    Ok(())
}

/// Whether every field of the map `obj`, at every conflicting value, is a plain value or a map of
/// them (at most four levels deep).
fn plain_fields(am: &AutoCommit, obj: &ObjId, depth: usize) -> bool {
    if depth > 4 {
        return false;
    }
    am.keys(obj).all(|k| match am.get_all(obj, k.as_str()) {
        Ok(all) => all.iter().all(|(v, child)| match v {
            Value::Scalar(s) => matches!(
                s.as_ref(),
                ScalarValue::Str(_)
                    | ScalarValue::Int(_)
                    | ScalarValue::Uint(_)
                    | ScalarValue::F64(_)
                    | ScalarValue::Boolean(_)
                    | ScalarValue::Null
            ),
            Value::Object(ObjType::Map) => plain_fields(am, child, depth + 1),
            Value::Object(_) => false,
        }),
        Err(_) => false,
    })
}

/// A map record's fields as JSON, as the document holds them now or, with `at`, at those heads.
fn read_fields(am: &AutoCommit, obj: &ObjId, at: Option<&[ChangeHash]>) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    let keys: Vec<String> = match at {
        Some(heads) => am.keys_at(obj, heads).collect(),
        None => am.keys(obj).collect(),
    };
    for k in keys {
        let value = match at {
            Some(heads) => am.get_at(obj, k.as_str(), heads),
            None => am.get(obj, k.as_str()),
        };
        match value {
            Ok(Some((Value::Scalar(s), _))) => {
                if let Some(v) = from_scalar(s.as_ref()) {
                    out.insert(k, v);
                }
            }
            Ok(Some((Value::Object(ObjType::Map), child))) => {
                out.insert(k, serde_json::Value::Object(read_fields(am, &child, at)));
            }
            _ => {}
        }
    }
    out
}

/// A record (or a whole collection) that a set of patches touched.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Touched {
    pub collection: Collection,
    /// `None`: the collection object itself was replaced, so every record in it is re-read.
    pub key: Option<String>,
}

/// Which records a merge changed, read from Automerge's patches rather than by rescanning.
pub(crate) fn touched_records(patches: &[automerge::Patch]) -> BTreeSet<Touched> {
    let mut out = BTreeSet::new();
    for p in patches {
        let action_key = match &p.action {
            automerge::PatchAction::PutMap { key, .. } | automerge::PatchAction::DeleteMap { key } => Some(key.clone()),
            automerge::PatchAction::Conflict { prop: Prop::Map(key) } => Some(key.clone()),
            _ => None,
        };
        let mut path = p.path.iter().map(|(_, prop)| match prop {
            Prop::Map(k) => Some(k.clone()),
            Prop::Seq(_) => None,
        });
        // A key at the root that is no collection (`doc`, or one a hostile replica added: the
        // boundary refuses changes to the root before they are applied) holds no records.
        let collection = |name: String| Collection::parse(&name);
        match (path.next(), path.next()) {
            (None, _) => {
                if let Some(c) = action_key.and_then(collection) {
                    out.insert(Touched { collection: c, key: None });
                }
            }
            (Some(Some(coll)), None) => {
                if let Some(c) = collection(coll) {
                    out.insert(Touched { collection: c, key: action_key });
                }
            }
            (Some(Some(coll)), Some(Some(rec))) => {
                if let Some(c) = collection(coll) {
                    out.insert(Touched { collection: c, key: Some(rec) });
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_device_makes_the_same_genesis_for_a_document() {
        let grid = DocId::Grid(UnitId::parse("G1").unwrap());
        assert_eq!(genesis(&grid).save(), genesis(&grid).save());
        assert_ne!(genesis(&grid).save(), genesis(&DocId::Grid(UnitId::parse("G2").unwrap())).save());
        let a = Doc::new(grid.clone(), ActorId::random());
        assert_eq!(a.keys(Collection::Visits).unwrap(), Vec::<String>::new());
    }

    /// A collection's name is one string everywhere: the root key of the genesis, the JSON of a
    /// conversion's skipped record, the query tables' `collection` column.
    #[test]
    fn a_collection_has_one_name() {
        for c in Collection::ALL {
            assert_eq!(Collection::parse(c.as_str()), Some(c));
            assert_eq!(serde_json::to_value(c).unwrap(), serde_json::json!(c.as_str()));
        }
        assert_eq!(Collection::parse("doc"), None);
        let all: BTreeSet<Collection> = [
            DocId::Directory,
            DocId::Register(UnitId::parse("M1").unwrap()),
            DocId::Report(ReportId::parse("01J0000000000000000000000Z").unwrap()),
            DocId::Grid(UnitId::parse("G1").unwrap()),
        ]
        .iter()
        .flat_map(|d| d.collections().iter().copied())
        .collect();
        assert_eq!(all.len(), Collection::ALL.len(), "every collection is some document's");
    }

    #[test]
    fn doc_ids_round_trip_through_text() {
        for s in ["directory", "register/M-1", "visits/M-1/2026-12", "report/01J0000000000000000000000Z", "grid/G-1"] {
            assert_eq!(DocId::parse(s).unwrap().to_string(), s);
        }
        for bad in [
            "",
            "grid",
            "grid/",
            "report/a b",
            "visits/x",
            "visits/M1/2026-13",
            "visits/M1/2026-12/x",
            "register/",
            "directory/x",
        ] {
            assert!(DocId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn patches_name_the_records_they_touched() {
        let id = DocId::Grid(UnitId::parse("G1").unwrap());
        let mut doc = Doc::new(id, ActorId::random());
        let before = doc.am.get_heads();
        doc.put_value(Collection::Visits, "V1", &serde_json::json!({"x": 1})).unwrap();
        doc.put_map(Collection::Households, "H1", &serde_json::json!({"risk": "red", "address": {"room": "401"}}))
            .unwrap();
        doc.am.commit();
        let after = doc.am.get_heads();
        let touched = touched_records(&doc.am.diff(&before, &after));
        let expected: BTreeSet<_> = [(Collection::Households, "H1"), (Collection::Visits, "V1")]
            .into_iter()
            .map(|(c, k)| Touched { collection: c, key: Some(k.into()) })
            .collect();
        assert_eq!(touched, expected);
    }

    #[test]
    fn map_records_only_write_fields_that_changed() {
        let id = DocId::Grid(UnitId::parse("G1").unwrap());
        let mut doc = Doc::new(id, ActorId::random());
        let rec = serde_json::json!({"risk": "red", "notes": "x", "flags": {"a": true, "b": false}});
        doc.put_map(Collection::Households, "H1", &rec).unwrap();
        doc.am.commit();
        doc.put_map(Collection::Households, "H1", &rec).unwrap();
        assert!(doc.am.commit().is_none(), "rewriting the same values makes no change");
        let read: serde_json::Value = doc.get_map(Collection::Households, "H1").unwrap().unwrap();
        assert_eq!(read, rec);
    }
}
