//! A small district served by a real `doorstep-server` on 127.0.0.1, with phones that enrol
//! through its HTTP API like the app does.
#![allow(dead_code)]

use std::path::Path;

use doorstep_core::sync::http::{runtime, ServerClient};
use doorstep_core::*;
use doorstep_server::{Config, RunningServer};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

pub struct People {
    pub grid: Unit,
    pub other_grid: Unit,
    pub micro_grid: Unit,
    pub li_na: User,
    pub volunteer: User,
    pub zhang_wei: User,
    pub courier: User,
    pub supervisor: User,
    pub admin: User,
}

/// The office's store with the directory of a small district.
pub fn office(path: &Path) -> (Store, People) {
    let mut s = Store::open(path, OpenOptions::default()).unwrap();
    let unit = |s: &mut Store, kind, parent: Option<&Unit>, name: &str| {
        s.add_unit(NewUnit { kind, parent: parent.map(|p| p.id.clone()), name: name.into() }).unwrap()
    };
    let district = unit(&mut s, UnitKind::District, None, "Jinshui District");
    let street = unit(&mut s, UnitKind::Street, Some(&district), "Wenhua Road");
    let community = unit(&mut s, UnitKind::Community, Some(&street), "Weilai");
    let grid = unit(&mut s, UnitKind::Grid, Some(&community), "Weilai Grid 1");
    let other_grid = unit(&mut s, UnitKind::Grid, Some(&community), "Weilai Grid 2");
    let micro_grid = unit(&mut s, UnitKind::MicroGrid, Some(&grid), "Building 3");
    for c in NewCategory::defaults() {
        s.set_category(c).unwrap();
    }
    let mut user = |name: &str, role, unit: &Unit| {
        s.add_user(NewUser { name: Personal::new(name), role, unit: unit.id.clone(), department: None }).unwrap()
    };
    let li_na = user("Li Na", Role::GridWorker, &grid);
    let volunteer = user("Wang Guiying", Role::MicroGridVolunteer, &micro_grid);
    let zhang_wei = user("Zhang Wei", Role::GridWorker, &other_grid);
    let courier = user("Chen Jie", Role::FlowingReporter, &community);
    let supervisor = user("Liu Min", Role::Supervisor, &community);
    let admin = user("Office admin", Role::Admin, &district);
    (s, People { grid, other_grid, micro_grid, li_na, volunteer, zhang_wei, courier, supervisor, admin })
}

pub fn start_server(dir: &Path, tweak: impl FnOnce(&mut Config)) -> RunningServer {
    let mut config = Config {
        listen: "127.0.0.1:0".into(),
        database: dir.join("server.sqlite"),
        admin_token: Some(ADMIN_TOKEN.into()),
        ..Config::default()
    };
    tweak(&mut config);
    RunningServer::start(config).unwrap()
}

/// A temporary folder with the office's store and a server in it, configured by `tweak`, seeded
/// with the office's directory.
pub fn served(tweak: impl FnOnce(&mut Config)) -> (tempfile::TempDir, Store, People, RunningServer) {
    let dir = tempfile::tempdir().unwrap();
    let (mut office, people) = office(&dir.path().join("office.sqlite"));
    let server = start_server(dir.path(), tweak);
    seed(&server, &mut office);
    (dir, office, people, server)
}

/// One HTTP call with reqwest: (status, body).
pub fn http(method: &str, url: &str, token: Option<&str>, body: Vec<u8>) -> (u16, Vec<u8>) {
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let mut req = client.request(method.parse().unwrap(), url).body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if url.contains("/admin/enrolments") || url.ends_with("/v1/devices") {
            req = req.header("content-type", "application/json");
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
    })
}

/// The admin seeds the server with the office's directory.
pub fn seed(server: &RunningServer, office: &mut Store) {
    let bytes = office.save_document(&DocId::Directory).unwrap();
    let (status, body) =
        http("POST", &format!("{}/v1/admin/documents?doc=directory", server.url()), Some(ADMIN_TOKEN), bytes);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

/// An enrolment code for `user`, from the admin API.
pub fn enrolment_code(server: &RunningServer, user: &User) -> String {
    let body = serde_json::json!({ "user_id": user.id.as_str() }).to_string().into_bytes();
    let (status, body) = http("POST", &format!("{}/v1/admin/enrolments", server.url()), Some(ADMIN_TOKEN), body);
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["code"].as_str().unwrap().to_string()
}

/// A new phone for `user`: a fresh store, enrolled, with its first sync done.
pub fn phone(server: &RunningServer, dir: &Path, name: &str, user: &User) -> (Store, ServerClient) {
    phone_with(server, dir, name, user, OpenOptions::default())
}

/// [`phone`], with its store opened with `options` (a clock of the test's, a window).
pub fn phone_with(
    server: &RunningServer,
    dir: &Path,
    name: &str,
    user: &User,
    options: OpenOptions,
) -> (Store, ServerClient) {
    let mut store = Store::open(dir.join(format!("{name}.sqlite")), options).unwrap();
    let client = ServerClient::new(&server.url()).unwrap();
    let reg = client.register(&enrolment_code(server, user), &store, name).unwrap();
    assert_eq!(reg.user_id, user.id.as_str());
    let client = client.with_token(reg.token);
    client.sync(&mut store).unwrap();
    (store, client)
}

/// The register of the micro-grid [`household`] puts households in.
pub fn register(p: &People) -> DocId {
    DocId::Register(p.micro_grid.id.clone())
}

/// That micro-grid's visits of the current month (the servers and phones of these tests run on
/// the system clock).
pub fn month_visits(p: &People) -> DocId {
    DocId::Visits(p.micro_grid.id.clone(), Period::of(SystemClock.now_ms()))
}

pub fn household(s: &mut Store, p: &People, room: &str) -> Household {
    s.add_household(
        &p.grid.id,
        NewHousehold {
            micro_grid: Some(p.micro_grid.id.clone()),
            address: Address { building: "3".into(), unit: "2".into(), room: room.into() },
            location: Some(GeoPoint::new(34.7561, 113.6532).unwrap()),
            care_tags: [CareTag::ElderlyAlone].into_iter().collect(),
            risk: Some(RiskLevel::Yellow),
            notes: String::new(),
        },
    )
    .unwrap()
}

pub fn visit(s: &mut Store, household: &HouseholdId, worker: &User, notes: &str) -> Visit {
    s.record_visit(NewVisit {
        household: household.clone(),
        worker: worker.id.clone(),
        at: None,
        location: Some(GeoPoint::new(34.7561, 113.6532).unwrap()),
        kind: VisitKind::WelfareCheck,
        outcome: VisitOutcome::AllWell,
        notes: notes.into(),
        follow_up: false,
        photos: vec![],
    })
    .unwrap()
}

pub fn report(s: &mut Store, p: &People, reporter: &User, text: &str) -> Report {
    s.file_report(NewReport {
        reporter: reporter.id.clone(),
        category: CategoryId::parse("safety-hazard").unwrap(),
        description: text.into(),
        location: Some(GeoPoint::new(34.7565, 113.6540).unwrap()),
        address: Some("Building 3, Unit 2".into()),
        grid: Some(p.grid.id.clone()),
        photos: vec![],
    })
    .unwrap()
}

/// Everything the server holds that a refused request must not change: each document's bytes
/// and every query table.
pub fn server_state(server: &RunningServer) -> (Vec<(DocId, Vec<u8>)>, store::query::TableDump) {
    server.with_store(|s| {
        let docs = s.document_ids().unwrap().into_iter().map(|d| (d.clone(), s.save_document(&d).unwrap())).collect();
        (docs, s.dump_query_tables().unwrap())
    })
}

/// A device's actor id, as another client would write with it.
pub fn actor(store: &Store) -> automerge::ActorId {
    let hex = store.actor_id();
    automerge::ActorId::from(
        (0..hex.len() / 2).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()).collect::<Vec<_>>(),
    )
}

/// The server's copy of `doc`, edited by `edit` with `writer`'s actor, carried as one sync entry
/// with exactly the new changes (the server's heads are known to whoever sends it).
pub fn edited_on_server(
    server: &RunningServer,
    doc: &DocId,
    writer: &Store,
    edit: impl FnOnce(&mut automerge::AutoCommit),
) -> sync::wire::Batch {
    use automerge::sync::SyncDoc;
    let base = server.with_store(|s| s.save_document(doc).unwrap());
    let mut theirs = automerge::AutoCommit::load(&base).unwrap();
    let mut mine = automerge::AutoCommit::load(&base).unwrap().with_actor(actor(writer));
    edit(&mut mine);
    mine.commit();
    let (mut their_state, mut my_state) = (automerge::sync::State::new(), automerge::sync::State::new());
    let hello = theirs.sync().generate_sync_message(&mut their_state).unwrap();
    mine.sync().receive_sync_message(&mut my_state, hello).unwrap();
    let mut msg = mine.sync().generate_sync_message(&mut my_state).unwrap();
    // Exactly the new changes (Automerge's Bloom filter may leave one out by chance).
    msg.changes =
        mine.get_changes(&theirs.get_heads()).iter().map(|c| c.raw_bytes().to_vec()).collect::<Vec<_>>().into();
    assert!(!msg.changes.is_empty(), "the message carries the edit");
    sync::wire::Batch {
        docs: vec![sync::wire::Entry { doc: doc.to_string(), kind: sync::wire::Kind::Sync, data: msg.encode() }],
        ..Default::default()
    }
}

/// A top-level collection map of a document.
pub fn collection(am: &automerge::AutoCommit, name: &str) -> automerge::ObjId {
    automerge::ReadDoc::get(am, automerge::ROOT, name).unwrap().unwrap().1
}

/// The genesis change every replica makes for a document (PROTOCOL.md §1), as another client
/// would write it.
pub fn doorstep_genesis(doc: &DocId) -> automerge::AutoCommit {
    use automerge::transaction::Transactable;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("doorstep genesis\0{doc}").as_bytes());
    let mut am = automerge::AutoCommit::new().with_actor(automerge::ActorId::from(&digest[..16]));
    am.put(automerge::ROOT, "doc", doc.to_string()).unwrap();
    let names: &[&str] = match doc {
        DocId::Directory => &["units", "users", "devices", "categories", "visit_rules"],
        DocId::Register(_) => &["households", "residents"],
        DocId::Visits(..) => &["visits"],
        DocId::Report(_) => &["header", "events"],
        DocId::Grid(_) => &["households", "residents", "visits"],
    };
    for name in names {
        am.put_object(automerge::ROOT, *name, automerge::ObjType::Map).unwrap();
    }
    am.commit_with(automerge::transaction::CommitOptions::default().with_time(0));
    am
}
