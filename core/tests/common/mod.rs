//! A small district shared by the store tests: one street, one community, two grids (the first
//! with a micro-grid), a grid worker, a volunteer and the default report categories.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use doorstep_core::*;

pub const DAY: i64 = 86_400_000;
/// 2026-11-23 08:00 in Zhengzhou.
pub const MORNING: i64 = 1_795_392_000_000;

pub struct Fixture {
    pub district: Unit,
    pub street: Unit,
    pub community: Unit,
    pub grid: Unit,
    pub other_grid: Unit,
    pub micro_grid: Unit,
    pub worker: User,
    pub volunteer: User,
    pub clock: Arc<FixedClock>,
}

pub fn open(path: &Path, clock: &Arc<FixedClock>) -> Store {
    Store::open(path, OpenOptions { clock: clock.clone(), ..OpenOptions::default() }).expect("open store")
}

pub fn district(path: &Path) -> (Store, Fixture) {
    let clock = Arc::new(FixedClock::new(MORNING));
    let mut s = open(path, &clock);
    let district =
        s.add_unit(NewUnit { kind: UnitKind::District, parent: None, name: "Jinshui District".into() }).unwrap();
    let street = s
        .add_unit(NewUnit { kind: UnitKind::Street, parent: Some(district.id.clone()), name: "Wenhua Road".into() })
        .unwrap();
    let community = s
        .add_unit(NewUnit { kind: UnitKind::Community, parent: Some(street.id.clone()), name: "Weilai".into() })
        .unwrap();
    let grid = s
        .add_unit(NewUnit { kind: UnitKind::Grid, parent: Some(community.id.clone()), name: "Weilai Grid 1".into() })
        .unwrap();
    let other_grid = s
        .add_unit(NewUnit { kind: UnitKind::Grid, parent: Some(community.id.clone()), name: "Weilai Grid 2".into() })
        .unwrap();
    let micro_grid = s
        .add_unit(NewUnit { kind: UnitKind::MicroGrid, parent: Some(grid.id.clone()), name: "Building 3".into() })
        .unwrap();
    for c in NewCategory::defaults() {
        s.set_category(c).unwrap();
    }
    let worker = s
        .add_user(NewUser {
            name: Personal::new("Li Na"),
            role: Role::GridWorker,
            unit: grid.id.clone(),
            department: None,
        })
        .unwrap();
    let volunteer = s
        .add_user(NewUser {
            name: Personal::new("Wang Guiying"),
            role: Role::MicroGridVolunteer,
            unit: micro_grid.id.clone(),
            department: None,
        })
        .unwrap();
    (s, Fixture { district, street, community, grid, other_grid, micro_grid, worker, volunteer, clock })
}

/// The register document of the fixture's micro-grid, where [`household`] puts households.
pub fn register(f: &Fixture) -> DocId {
    DocId::Register(f.micro_grid.id.clone())
}

/// The visits document of the fixture's micro-grid for the month the clock is in.
pub fn month_visits(f: &Fixture) -> DocId {
    DocId::Visits(f.micro_grid.id.clone(), Period::of(f.clock.now_ms()))
}

pub fn household(s: &mut Store, f: &Fixture, room: &str, tags: &[CareTag]) -> Household {
    s.add_household(
        &f.grid.id,
        NewHousehold {
            micro_grid: Some(f.micro_grid.id.clone()),
            address: Address { building: "3".into(), unit: "2".into(), room: room.into() },
            location: Some(GeoPoint::new(34.7561, 113.6532).unwrap()),
            care_tags: tags.iter().copied().collect(),
            risk: Some(RiskLevel::Blue),
            notes: String::new(),
        },
    )
    .unwrap()
}

pub fn visit(household: &HouseholdId, worker: &UserId, kind: VisitKind) -> NewVisit {
    NewVisit {
        household: household.clone(),
        worker: worker.clone(),
        at: None,
        location: Some(GeoPoint::new(34.7561, 113.6532).unwrap()),
        kind,
        outcome: VisitOutcome::AllWell,
        notes: "Resident in good spirits.".into(),
        follow_up: false,
        photos: vec![],
    }
}

pub fn photo() -> PhotoMeta {
    PhotoMeta {
        sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        byte_size: 48_213,
        mime: "image/jpeg".into(),
        width: 1280,
        height: 960,
        taken_at: Some(MORNING),
        location: None,
    }
}

pub fn report(f: &Fixture, text: &str) -> NewReport {
    NewReport {
        reporter: f.volunteer.id.clone(),
        category: CategoryId::parse("safety-hazard").unwrap(),
        description: text.into(),
        location: Some(GeoPoint::new(34.7565, 113.6540).unwrap()),
        address: Some("Building 3, Unit 2".into()),
        grid: Some(f.grid.id.clone()),
        photos: vec![],
    }
}

/// A database as an older version of the app left it: schema `version`, this device's actor
/// `00112233…eeff`, and `docs` stored as snapshots with no query rows yet.
/// A store as version `version` of the app left it, holding `docs`. Its query tables are empty:
/// an upgrade from it must rebuild them (every version up to `newest_rebuilding_upgrade`); for a
/// later version, [`old_query_rows`] fills them in as that version had them.
pub fn old_store(path: &Path, version: i64, docs: &[(DocId, Vec<u8>)]) {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    doorstep_core::store::schema::migrate_to(&mut conn, version).unwrap();
    conn.execute("INSERT INTO device (id, actor, created_at) VALUES (1, x'00112233445566778899aabbccddeeff', 0)", [])
        .unwrap();
    for (d, bytes) in docs {
        conn.execute(
            "INSERT INTO documents (doc_id, snapshot, compacted_at) VALUES (?1, ?2, 0)",
            rusqlite::params![d.to_string(), bytes],
        )
        .unwrap();
    }
}

/// Copies the query rows and document heads of the current store `from` into the old store at
/// `path`: an old version after the newest upgrade that rebuilds had the same query tables (a
/// migration that changes them rebuilds) and kept them, and its documents' heads, filled in.
pub fn old_query_rows(path: &Path, from: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute("ATTACH DATABASE ?1 AS current", [from.to_str().unwrap()]).unwrap();
    for table in doorstep_core::store::schema::DERIVED_TABLES.iter().chain(&["document_heads"]) {
        conn.execute(&format!("INSERT INTO main.{table} SELECT * FROM current.{table}"), []).unwrap();
    }
}

/// Writes a JSON object into an Automerge map field by field, as map records are kept.
pub fn put_json(am: &mut automerge::AutoCommit, obj: &automerge::ObjId, value: &serde_json::Value) {
    use automerge::transaction::Transactable;
    for (k, v) in value.as_object().unwrap() {
        match v {
            serde_json::Value::Object(_) => {
                let child = am.put_object(obj, k.as_str(), automerge::ObjType::Map).unwrap();
                put_json(am, &child, v);
            }
            serde_json::Value::String(s) => am.put(obj, k.as_str(), s.as_str()).unwrap(),
            serde_json::Value::Bool(b) => am.put(obj, k.as_str(), *b).unwrap(),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => am.put(obj, k.as_str(), i).unwrap(),
                None => am.put(obj, k.as_str(), n.as_f64().unwrap()).unwrap(),
            },
            _ => {}
        }
    }
}

/// A document's genesis change as another client builds it (PROTOCOL.md §1), then `actor` for
/// what follows: for documents written here by hand, past the store's own write path.
pub fn genesis_by_hand(doc: &DocId, collections: &[&str], actor: automerge::ActorId) -> automerge::AutoCommit {
    use automerge::transaction::{CommitOptions, Transactable};
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("doorstep genesis\0{doc}").as_bytes());
    let mut am = automerge::AutoCommit::new().with_actor(automerge::ActorId::from(&digest[..16]));
    am.put(automerge::ROOT, "doc", doc.to_string()).unwrap();
    for c in collections {
        am.put_object(automerge::ROOT, *c, automerge::ObjType::Map).unwrap();
    }
    am.commit_with(CommitOptions::default().with_time(0));
    am.set_actor(actor);
    am
}
