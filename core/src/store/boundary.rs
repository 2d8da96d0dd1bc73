//! The boundary: every change that enters this store from another replica (a device syncing
//! with the server, a phone in a stairwell, an admin import) is checked here before it is kept.
//!
//! Automerge merges anything that is a valid change, so the rules of the data model
//! (`docs/DATA-MODEL.md`) are enforced here, in two steps:
//!
//! 1. [`check_changes`], before anything is applied, reads the operations of every change this
//!    store lacks: the root (`doc` and the top-level maps) is never touched after the genesis
//!    change; no record key is deleted or re-created; write-once records (visits, report headers,
//!    events) are one JSON string that parses, passes the same checks as a local write, names
//!    the user of the device whose actor wrote it as its author, and is never overwritten (a
//!    visit's tombstone is the one exception); changes, records and documents stay within their
//!    size limits.
//! 2. [`check_records`], after the changes were applied in memory and before they are kept,
//!    reads every record they touched that is edited field by field (households, residents,
//!    directory entries): it must still parse, keep its id, and stay in its document.
//!
//! Either step refuses the whole message with [`Error::Refused`] and a code from
//! `docs/PROTOCOL.md` §6; the caller drops what was absorbed, so nothing is half-kept. Messages
//! name the document, the collection and the record id, never a record's content (it may hold a
//! resident's name, phone or ID number).

use std::collections::{HashMap, HashSet};

use automerge::legacy::{Key, ObjectId, OpId, OpType};
use automerge::{ActorId, Change, ObjType, ReadDoc, ScalarValue, Value};
use serde::de::DeserializeOwned;

use rusqlite::OptionalExtension;

use super::{DocumentRepository, Store};
use crate::directory::{Category, Device, Role, Unit, User};
use crate::document::Collection;
use crate::document::{genesis_actor, genesis_hash, Doc, DocId, Touched, HEADER_KEY};
use crate::error::{Db, Error, Result};
use crate::household::{Household, Resident};
use crate::report::{Report, ReportEvent};
use crate::store::query::lookup;
use crate::visit::Visit;

/// Largest single change another replica may send (a visit with notes and 20 photos' metadata is
/// a few KB; an honest change is never near this).
pub const MAX_CHANGE_BYTES: usize = 1 << 20;
/// Largest encoded record (one visit, header or event as JSON, or one field of a map record).
pub const MAX_RECORD_BYTES: usize = 64 << 10;

/// Whose word a record's author field is taken on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Authors {
    /// The author a record names must be the user of the device whose actor wrote it (every
    /// change from a device or a peer).
    Verified,
    /// The admin's import of office history (`POST /v1/admin/documents`): records may name the
    /// workers they were recorded for. The one exception, documented in `docs/PROTOCOL.md`.
    OnBehalf,
}

/// How records of one collection are laid out (`docs/DATA-MODEL.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// Written once: one JSON string per key.
    Value(ValueKind),
    /// Edited field by field: one map per key.
    Map,
    /// The directory's visit rules: one integer per key.
    Int,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ValueKind {
    Visit,
    Header,
    Event,
}

fn layout(doc: &DocId, collection: Collection) -> Layout {
    match (doc, collection) {
        (DocId::Visits(..) | DocId::Grid(_), Collection::Visits) => Layout::Value(ValueKind::Visit),
        (DocId::Report(_), Collection::Header) => Layout::Value(ValueKind::Header),
        (DocId::Report(_), Collection::Events) => Layout::Value(ValueKind::Event),
        (DocId::Directory, Collection::VisitRules) => Layout::Int,
        _ => Layout::Map,
    }
}

/// What an operation of this batch left under a record key, for the checks of later operations.
#[derive(Clone)]
enum Written {
    Value(String),
    Map,
}

/// Checks the changes of `doc` that this store lacks (`new`, in any order) before they are
/// applied. An error refuses the whole message, except `too_large` (the document alone).
pub(crate) fn check_changes(store: &mut Store, doc: &DocId, new: &[Change], authors: Authors) -> Result<()> {
    if new.is_empty() {
        return Ok(());
    }
    let genesis = genesis_hash(doc);
    let mut incoming = 0usize;
    for c in new {
        let size = c.raw_bytes().len();
        if size > MAX_CHANGE_BYTES {
            return Err(too_large(format!("a change to {doc} is {size} bytes, over the limit of {MAX_CHANGE_BYTES}")));
        }
        incoming += size;
    }
    let root = Root::of(doc);
    let own = store.actor().clone();
    let mut written: HashMap<(Collection, String), Written> = HashMap::new();
    let mut authors_seen: HashMap<ActorId, Option<(String, Role)>> = HashMap::new();
    let expanded: Vec<automerge::ExpandedChange> =
        new.iter().filter(|c| c.hash() != genesis).map(|c| c.decode()).collect();
    // The maps the incoming changes make: the only objects besides the document's own that
    // their operations may refer to.
    let mut made: HashSet<OpId> = HashSet::new();
    for c in &expanded {
        if c.actor_id == root.actor {
            return Err(Error::refused(
                crate::error::RefusalCode::RootChanged,
                format!("a change to {doc} is written with its genesis actor, which writes nothing after the genesis"),
            ));
        }
        if c.actor_id == own {
            return Err(Error::refused(
                crate::error::RefusalCode::UnsignedChange,
                format!("a change to {doc} claims to be written by this replica, which did not write it"),
            ));
        }
        for (i, op) in c.operations.iter().enumerate() {
            if matches!(op.action, OpType::Make(ObjType::Map)) {
                made.insert(OpId(c.start_op.get() + i as u64, c.actor_id.clone()));
            }
        }
    }
    if let DocId::Visits(_, period) = doc {
        // The change's own time: an honest phone wrote it while the month was open by its clock
        // (it writes a late visit into the current month), whenever it syncs. (The server's
        // conversion of old grid documents writes closed months: a phone takes those changes
        // from the server, which it does not check, and from nowhere else.)
        if expanded.iter().any(|c| c.time.saturating_mul(1000) >= period.closes_at()) {
            return Err(Error::refused(
                crate::error::RefusalCode::PeriodClosed,
                format!("{doc} closed for writing on {}; new visits go to the current month", period.closes_at()),
            ));
        }
    }
    for expanded in &expanded {
        for op in &expanded.operations {
            if op.insert || !op.key.is_map_key() {
                return Err(Error::refused(
                    crate::error::RefusalCode::BadRecord,
                    format!("a change inserts into a list or text of {doc}; no record holds one"),
                ));
            }
            if let ObjectId::Id(id) = &op.obj {
                if root.collection_of(&op.obj).is_none() && !made.contains(id) && !store.holds_map(doc, id)? {
                    return Err(Error::protocol(format!(
                        "a change to {doc} refers to a map the document does not hold"
                    )));
                }
            }
            if op.obj == ObjectId::Root {
                let key = match &op.key {
                    Key::Map(k) => k.to_string(),
                    Key::Seq(_) => "?".into(),
                };
                return Err(Error::refused(
                    crate::error::RefusalCode::RootChanged,
                    format!(
                        "a change touches '{}' at the root of {doc}; its id and top-level maps are fixed",
                        shown_key(&key)
                    ),
                ));
            }
            let Some(collection) = root.collection_of(&op.obj) else {
                check_field_op(doc, &op.action)?;
                continue;
            };
            let Key::Map(key) = &op.key else {
                return Err(bad_record(doc, collection, "?", "its collection is not a map"));
            };
            let key = key.to_string();
            let shown = shown_key(&key);
            let before = match written.get(&(collection, key.clone())) {
                Some(w) => Some(w.clone()),
                None => store.existing_record(doc, collection, &key)?,
            };
            let now = match (layout(doc, collection), &op.action) {
                (_, OpType::Delete) => {
                    return Err(Error::refused(
                        crate::error::RefusalCode::DeletedRecord,
                        format!(
                            "a change deletes {collection} record {shown} of {doc}; records are deleted by a tombstone"
                        ),
                    ))
                }
                (Layout::Value(kind), OpType::Put(ScalarValue::Str(text))) => {
                    if text.len() > MAX_RECORD_BYTES {
                        return Err(too_large(format!(
                            "{collection} record {shown} of {doc} is {} bytes, over the limit of {MAX_RECORD_BYTES}",
                            text.len()
                        )));
                    }
                    let (author, household) = check_value(doc, collection, &key, kind, text)?;
                    if let (DocId::Visits(unit, _), Some(household)) = (doc, household) {
                        if store.register_unit(&household, true)?.is_some_and(|r| &r != unit)
                            && !store.has_been_in(unit, &household)?
                        {
                            return Err(bad_record(
                                doc,
                                collection,
                                &key,
                                "its household is kept in another register than this document's",
                            ));
                        }
                    }
                    match &before {
                        Some(old) => check_rewrite(doc, collection, &key, kind, old, text)?,
                        None if authors == Authors::Verified => {
                            let writer = match authors_seen.get(&expanded.actor_id) {
                                Some(w) => w.clone(),
                                None => {
                                    let w = store.author_of_actor(&expanded.actor_id.to_hex_string())?;
                                    authors_seen.insert(expanded.actor_id.clone(), w.clone());
                                    w
                                }
                            };
                            match writer {
                                Some((user, _)) if user == author => {}
                                Some((_, Role::Admin)) => {}
                                _ => {
                                    return Err(Error::refused(
                                        crate::error::RefusalCode::ForgedAuthor,
                                        format!(
                                            "{collection} record {shown} of {doc} names an author who is not the user \
                                             of the device that wrote it"
                                        ),
                                    ))
                                }
                            }
                        }
                        None => {}
                    }
                    Written::Value(text.to_string())
                }
                (Layout::Map, OpType::Make(ObjType::Map)) => {
                    if before.is_some() {
                        return Err(Error::refused(
                            crate::error::RefusalCode::ReplacedRecord,
                            format!("a change replaces {collection} record {shown} of {doc} with a new one"),
                        ));
                    }
                    // In an old grid document, a household or resident id that a register of another
                    // grid holds would be copied over that grid's record by the server's conversion.
                    if let DocId::Grid(grid) = doc {
                        if let Some(DocId::Register(unit)) = store.register_holding(collection, &key, doc)? {
                            if !store.lies_in(&unit, grid)? {
                                return Err(bad_record(
                                    doc,
                                    collection,
                                    &key,
                                    "its id is a record of another grid's register",
                                ));
                            }
                        }
                    }
                    // A household or resident id another register already holds is a move: only
                    // someone who may write that register too makes one (else a record written
                    // under a neighbour's id would show instead of the neighbour's).
                    if let (DocId::Register(_), Authors::Verified) = (doc, authors) {
                        if let Some(elsewhere) = store.register_holding(collection, &key, doc)? {
                            let writer = store.author_of_actor(&expanded.actor_id.to_hex_string())?;
                            let may = match writer {
                                Some((user, _)) => store.may_write(&crate::ids::UserId::parse(&user)?, &elsewhere)?,
                                None => false,
                            };
                            if !may {
                                return Err(bad_record(
                                    doc,
                                    collection,
                                    &key,
                                    "its id is a record of another register, which its writer may not change",
                                ));
                            }
                        }
                    }
                    Written::Map
                }
                (Layout::Int, OpType::Put(ScalarValue::Int(_) | ScalarValue::Uint(_))) => Written::Map,
                _ => return Err(bad_record(doc, collection, &key, "it is not of the type its collection holds")),
            };
            written.insert((collection, key), now);
        }
    }
    // The document's limit last: a document refused for its size alone takes the rest of the
    // message in, which a change breaking any rule above must not get by being large too.
    let stored = store.stored_document_bytes(doc)?;
    if stored + incoming > super::MAX_DOCUMENT_BYTES {
        return Err(too_large(format!(
            "{doc} would grow to {} bytes, over the document limit of {}",
            stored + incoming,
            super::MAX_DOCUMENT_BYTES
        )));
    }
    Ok(())
}

/// The genesis objects of a document: the root and its collection maps, by operation id.
struct Root {
    actor: ActorId,
    collections: &'static [Collection],
}

impl Root {
    fn of(doc: &DocId) -> Root {
        Root { actor: genesis_actor(doc), collections: doc.collections() }
    }

    /// The collection whose map `obj` is; `None` for the root and for any other object (a
    /// field map inside a record).
    fn collection_of(&self, obj: &ObjectId) -> Option<Collection> {
        match obj {
            ObjectId::Id(OpId(counter, actor)) if actor == &self.actor => {
                // The genesis change puts `doc` (op 1), then one map per collection (ops 2, 3, …).
                counter.checked_sub(2).and_then(|i| self.collections.get(i as usize)).copied()
            }
            _ => None,
        }
    }
}

/// An operation inside a map record: plain values, nested maps and deleted fields only.
fn check_field_op(doc: &DocId, action: &OpType) -> Result<()> {
    match action {
        OpType::Put(ScalarValue::Str(s)) if s.len() > MAX_RECORD_BYTES => {
            Err(too_large(format!("a field of a record of {doc} is over the limit of {MAX_RECORD_BYTES} bytes")))
        }
        OpType::Put(
            ScalarValue::Str(_)
            | ScalarValue::Int(_)
            | ScalarValue::Uint(_)
            | ScalarValue::F64(_)
            | ScalarValue::Boolean(_)
            | ScalarValue::Null,
        )
        | OpType::Make(ObjType::Map)
        | OpType::Delete => Ok(()),
        _ => Err(Error::refused(
            crate::error::RefusalCode::BadRecord,
            format!("a change writes a value of a type no record of {doc} holds (a text, list, counter or mark)"),
        )),
    }
}

/// Parses a write-once record as its collection holds it and checks it as a local write would;
/// returns the user it names as its author (and, for a visit, its household).
fn check_value(
    doc: &DocId,
    collection: Collection,
    key: &str,
    kind: ValueKind,
    text: &str,
) -> Result<(String, Option<crate::ids::HouseholdId>)> {
    let bad = |why: String| bad_record(doc, collection, key, &why);
    match kind {
        ValueKind::Visit => {
            let v: Visit = parse(text).map_err(bad)?;
            if v.id.as_str() != key {
                return Err(bad("its id is not its key".into()));
            }
            v.validate().map_err(|e| bad(e.to_string()))?;
            Ok((v.worker.as_str().to_string(), Some(v.household)))
        }
        ValueKind::Header => {
            let r: Report = parse(text).map_err(bad)?;
            if key != HEADER_KEY || !matches!(doc, DocId::Report(id) if id == &r.id) {
                return Err(bad("it is not the header of this report".into()));
            }
            r.validate().map_err(|e| bad(e.to_string()))?;
            Ok((r.reporter.as_str().to_string(), None))
        }
        ValueKind::Event => {
            let e: ReportEvent = parse(text).map_err(bad)?;
            if e.id.as_str() != key {
                return Err(bad("its id is not its key".into()));
            }
            e.validate().map_err(|e| bad(e.to_string()))?;
            Ok((e.author.as_str().to_string(), None))
        }
    }
}

/// A write-once record written again: only the same record, or (for a visit) its tombstone.
fn check_rewrite(
    doc: &DocId,
    collection: Collection,
    key: &str,
    kind: ValueKind,
    old: &Written,
    new: &str,
) -> Result<()> {
    let immutable = || {
        Error::refused(
            crate::error::RefusalCode::ImmutableRecord,
            format!(
                "a change rewrites {collection} record {} of {doc}, which is written once; corrections are new events",
                shown_key(key)
            ),
        )
    };
    let Written::Value(old) = old else { return Err(immutable()) };
    if old == new {
        return Ok(());
    }
    if kind == ValueKind::Visit {
        if let (Ok(mut before), Ok(after)) = (parse::<Visit>(old), parse::<Visit>(new)) {
            before.deleted = true;
            if before == after {
                return Ok(());
            }
        }
    }
    Err(immutable())
}

/// Parses a record's JSON. The reason names the field, never its value: serde_json's own
/// messages quote the value they could not take (a resident's name, a worker's notes).
fn parse<T: DeserializeOwned>(text: &str) -> std::result::Result<T, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed: std::result::Result<T, _> = serde_path_to_error::deserialize(&mut de);
    let e = match parsed.map(|v| de.end().map(|()| v)) {
        Ok(Ok(v)) => return Ok(v),
        Ok(Err(_)) => return Err("it does not parse (text after the record)".into()),
        Err(e) => e,
    };
    let field = e.path().to_string();
    Err(match e.inner().classify() {
        serde_json::error::Category::Data if field != "." => {
            format!("it does not parse (field '{field}' is missing, of the wrong type or of an unknown value)")
        }
        serde_json::error::Category::Data => "it does not parse (a field is missing or of the wrong type)".into(),
        _ => "it does not parse (it is not JSON)".into(),
    })
}

/// Checks every record edited field by field that `touched` names, as it stands in `doc` after
/// the other replica's changes were applied in memory.
pub(crate) fn check_records<'a>(
    store: &Store,
    doc: &Doc,
    touched: impl IntoIterator<Item = &'a Touched>,
) -> Result<()> {
    for t in touched {
        let collection = t.collection;
        if !doc.id.collections().contains(&collection) || layout(&doc.id, collection) != Layout::Map {
            continue;
        }
        let keys = match &t.key {
            Some(k) => vec![k.clone()],
            None => doc.keys(collection)?,
        };
        for key in keys {
            check_map_record(store, doc, collection, &key)?;
        }
    }
    Ok(())
}

fn check_map_record(store: &Store, doc: &Doc, collection: Collection, key: &str) -> Result<()> {
    let bad = |why: &str| bad_record(&doc.id, collection, key, why);
    if !doc.has_key(collection, key)? {
        return Ok(()); // nothing there (a deletion was refused before it was applied)
    }
    if !doc.is_plain_map_record(collection, key)? {
        return Err(bad("it holds a value of a type no record holds"));
    }
    let parsed = |e: Error| match e {
        Error::CorruptDocument { .. } => bad("it does not parse"),
        e => e,
    };
    match (&doc.id, collection) {
        (DocId::Register(unit), Collection::Households) => {
            let h: Household = doc.get_map(collection, key).map_err(parsed)?.ok_or_else(|| bad("it is gone"))?;
            if h.id.as_str() != key || h.register() != unit || !store.lies_in(unit, &h.grid)? {
                return Err(bad("its id, grid or micro-grid is not the one of this register"));
            }
            h.validate().map_err(|e| bad(&e.to_string()))
        }
        (DocId::Grid(grid), Collection::Households) => {
            let h: Household = doc.get_map(collection, key).map_err(parsed)?.ok_or_else(|| bad("it is gone"))?;
            if h.id.as_str() != key || &h.grid != grid {
                return Err(bad("its id or grid is not the one it was created with"));
            }
            h.validate().map_err(|e| bad(&e.to_string()))
        }
        (DocId::Register(_) | DocId::Grid(_), Collection::Residents) => {
            let r: Resident = doc.get_map(collection, key).map_err(parsed)?.ok_or_else(|| bad("it is gone"))?;
            if r.id.as_str() != key || !doc.has_key(Collection::Households, r.household.as_str())? {
                return Err(bad("its id or household is not one of this register"));
            }
            r.validate(super::year_of(store.now())).map_err(|e| bad(&e.to_string()))
        }
        (DocId::Directory, Collection::Units) => {
            let u: Unit = doc.get_map(collection, key).map_err(parsed)?.ok_or_else(|| bad("it is gone"))?;
            (u.id.as_str() == key).then_some(()).ok_or_else(|| bad("its id is not its key"))
        }
        (DocId::Directory, Collection::Users) => {
            let u: User = doc.get_map(collection, key).map_err(parsed)?.ok_or_else(|| bad("it is gone"))?;
            (u.id.as_str() == key).then_some(()).ok_or_else(|| bad("its id is not its key"))
        }
        (DocId::Directory, Collection::Devices) => {
            let d: Device = doc.get_map(collection, key).map_err(parsed)?.ok_or_else(|| bad("it is gone"))?;
            (d.id == key && d.actor == key).then_some(()).ok_or_else(|| bad("its id is not its actor"))
        }
        (DocId::Directory, Collection::Categories) => {
            let c: Category = doc.get_map(collection, key).map_err(parsed)?.ok_or_else(|| bad("it is gone"))?;
            (c.id.as_str() == key).then_some(()).ok_or_else(|| bad("its id is not its key"))
        }
        _ => Ok(()),
    }
}

fn bad_record(doc: &DocId, collection: Collection, key: &str, why: &str) -> Error {
    Error::refused(
        crate::error::RefusalCode::BadRecord,
        format!("{collection} record {} of {doc} is refused: {why}", shown_key(key)),
    )
}

/// A record key as a refusal message names it: the key itself when it has the form of an id
/// (every key an honest replica writes does), else a placeholder, so that a message never
/// carries what a hostile change put in a key (a long text, or someone's name).
pub(crate) fn shown_key(key: &str) -> &str {
    let id_like = !key.is_empty()
        && key.len() <= 64
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if id_like {
        key
    } else {
        "(a key that is not an id)"
    }
}

fn too_large(message: String) -> Error {
    Error::refused(crate::error::RefusalCode::TooLarge, message)
}

impl Store {
    /// The changes among `changes` that this store does not hold for `doc` (the genesis change
    /// every replica makes for itself is never new).
    pub(crate) fn lacking_changes(&mut self, doc: &DocId, changes: Vec<Change>) -> Result<Vec<Change>> {
        if !self.has_document(doc)? {
            let genesis = genesis_hash(doc);
            return Ok(changes.into_iter().filter(|c| c.hash() != genesis).collect());
        }
        self.with_am(doc, |am| {
            changes.into_iter().filter(|c| am.get_change_meta_by_hash(&c.hash()).is_none()).collect()
        })
    }

    /// What the document holds under a record key now (for the write-once and re-creation
    /// rules): the value of a write-once record, a map for the others.
    fn existing_record(&mut self, id: &DocId, collection: Collection, key: &str) -> Result<Option<Written>> {
        if !self.has_document(id)? {
            return Ok(None);
        }
        self.ensure_loaded(id)?;
        let doc = self.docs.get(id).expect("loaded above");
        let obj = doc.collection(collection)?;
        let all = doc
            .am
            .get_all(&obj, key)
            .map_err(|e| Error::CorruptDocument { doc: id.to_string(), reason: e.to_string() })?;
        // With concurrent values, a string wins the comparison: a rewrite must match one of them.
        let mut out = None;
        for (value, _) in all {
            out = Some(match value {
                Value::Scalar(s) => match s.as_ref() {
                    ScalarValue::Str(text) => Written::Value(text.to_string()),
                    _ => Written::Map,
                },
                Value::Object(_) => Written::Map,
            });
        }
        Ok(out)
    }

    /// Whether the document holds a map made by the operation `id` (an object a change from
    /// elsewhere may edit).
    fn holds_map(&mut self, doc: &DocId, id: &OpId) -> Result<bool> {
        if !self.has_document(doc)? {
            return Ok(false);
        }
        let name = format!("{}@{}", id.counter(), id.actor().to_hex_string());
        self.with_am(doc, |am| matches!(am.import(&name), Ok((_, ObjType::Map))))
    }

    /// The user (and role) of the device writing with `actor` (hex), revoked devices and
    /// deleted users included: authorship of what a device wrote before stays its user's.
    pub(crate) fn author_of_actor(&self, actor: &str) -> Result<Option<(String, Role)>> {
        let row: Option<(String, Option<String>)> = self
            .conn
            .prepare_cached(
                "SELECT d.user_id, u.role FROM devices d LEFT JOIN users u ON u.id = d.user_id WHERE d.actor = ?1",
            )
            .db()?
            .query_row([actor], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .db()?;
        Ok(row.and_then(|(user, role)| Some((user, Role::parse(&role?)?))))
    }

    /// Whether `actor` (hex) is the sync server's own device in the directory (not revoked).
    pub(crate) fn is_server_device(&self, actor: &str) -> Result<bool> {
        self.conn
            .prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM devices WHERE actor = ?1 AND server = 1 AND revoked_at IS NULL)",
            )
            .db()?
            .query_row([actor], |r| r.get(0))
            .db()
    }

    /// Bytes a stored document takes (snapshot and change rows): what the document limit counts.
    /// A document in memory knows it; otherwise the rows are summed, without loading it.
    /// The other register whose row of `collection` (households or residents) has the id `key`.
    fn register_holding(&self, collection: Collection, key: &str, doc: &DocId) -> Result<Option<DocId>> {
        let table = match collection {
            Collection::Households => "households",
            Collection::Residents => "residents",
            _ => return Ok(None),
        };
        let row: Option<String> = lookup(
            &self.conn,
            &format!("SELECT doc_id FROM {table} WHERE id = ?1 AND doc_id LIKE 'register/%' AND doc_id != ?2"),
            rusqlite::params![key, doc.to_string()],
        )?;
        row.map(|d| DocId::parse(&d)).transpose()
    }

    /// Whether the register of `unit` holds (or, after a move, keeps the tombstone of) a household:
    /// a visit recorded there before the phone heard of the move still belongs there.
    fn has_been_in(&mut self, unit: &crate::ids::UnitId, household: &crate::ids::HouseholdId) -> Result<bool> {
        let register = DocId::Register(unit.clone());
        if !self.has_document(&register)? {
            return Ok(false);
        }
        self.doc(&register)?.has_key(Collection::Households, household.as_str())
    }

    /// Whether the register unit `unit` lies in `grid` as the directory says (the grid itself or
    /// one of its micro-grids). A unit this store's directory does not know yet passes.
    fn lies_in(&self, unit: &crate::ids::UnitId, grid: &crate::ids::UnitId) -> Result<bool> {
        let row: Option<(String, Option<String>)> = self
            .conn
            .prepare_cached("SELECT kind, parent_id FROM units WHERE id = ?1")
            .db()?
            .query_row([unit.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .db()?;
        Ok(match row {
            None => true,
            Some((kind, _)) if kind == "grid" => unit == grid,
            Some((kind, parent)) if kind == "micro_grid" => parent.as_deref() == Some(grid.as_str()),
            Some(_) => false,
        })
    }

    pub(crate) fn stored_document_bytes(&self, id: &DocId) -> Result<usize> {
        if let Some(doc) = self.docs.get(id).filter(|d| d.persisted) {
            return Ok(doc.stored_bytes);
        }
        Ok(self.repository().stored_bytes(id)? as usize)
    }
}
