//! A deployment that ran the old layout (one `grid/<id>` document per grid) upgrades: its phones,
//! upgraded in place, send their grid documents to the server as before; the admin converts them
//! once; every phone then holds registers and months — each only what its user looks after — and
//! lets its grid document go, no record lost and every record naming the author it named. An
//! older phone that goes on writing its grid document still reaches everyone.

use automerge::transaction::Transactable;
use automerge::{ActorId, ObjType};
use doorstep_core::*;
use doorstep_server::admin::AdminClient;
use doorstep_server::RunningServer;
use testkit::*;

const DAY: i64 = 86_400_000;

/// The current month, and a day of the month `back` months before it.
fn months_ago(back: u32, day: i64) -> UnixMillis {
    Period::of(SystemClock.now_ms()).minus(back).start() + (day - 1) * DAY + 9 * 3_600_000
}

/// Writes a record into an Automerge map field by field, as a client keeps a map record
/// (`null` fields left out, lists as JSON text).
fn put_fields(am: &mut automerge::AutoCommit, obj: &automerge::ObjId, value: &serde_json::Value) {
    for (k, v) in value.as_object().unwrap() {
        match v {
            serde_json::Value::Null => {}
            serde_json::Value::Object(_) => {
                let child = am.put_object(obj, k.as_str(), ObjType::Map).unwrap();
                put_fields(am, &child, v);
            }
            serde_json::Value::Array(_) => am.put(obj, k.as_str(), v.to_string()).unwrap(),
            serde_json::Value::String(s) => am.put(obj, k.as_str(), s.as_str()).unwrap(),
            serde_json::Value::Bool(b) => am.put(obj, k.as_str(), *b).unwrap(),
            serde_json::Value::Number(n) => am.put(obj, k.as_str(), n.as_i64().unwrap()).unwrap(),
        }
    }
}

fn put_household(am: &mut automerge::AutoCommit, h: &Household) {
    let households = collection(am, "households");
    let obj = am.put_object(&households, h.id.as_str(), ObjType::Map).unwrap();
    put_fields(am, &obj, &serde_json::to_value(h).unwrap());
}

fn put_resident(am: &mut automerge::AutoCommit, r: &Resident) {
    let residents = collection(am, "residents");
    let obj = am.put_object(&residents, r.id.as_str(), ObjType::Map).unwrap();
    put_fields(am, &obj, &serde_json::to_value(r).unwrap());
}

fn put_visit(am: &mut automerge::AutoCommit, v: &Visit) {
    let visits = collection(am, "visits");
    am.put(&visits, v.id.as_str(), serde_json::to_string(v).unwrap()).unwrap();
}

fn new_household(p: &District, micro: bool, room: &str) -> Household {
    Household {
        id: HouseholdId::generate(),
        grid: p.grid.id.clone(),
        micro_grid: micro.then(|| p.micro_grid.id.clone()),
        address: Address { building: "3".into(), unit: "2".into(), room: room.into() },
        location: None,
        care_tags: [CareTag::ElderlyAlone].into_iter().collect(),
        risk: RiskLevel::Yellow,
        notes: String::new(),
        created_at: months_ago(11, 1),
        deleted: false,
        moved_to: None,
    }
}

fn new_resident(h: &Household, name: &str) -> Resident {
    Resident {
        id: ResidentId::generate(),
        household: h.id.clone(),
        name: Personal::new(name),
        phone: Personal::new("13800000000"),
        id_number: Personal::default(),
        birth_year: Some(1940),
        relation: Relation::Head,
        deleted: false,
    }
}

fn new_visit(h: &Household, worker: &User, at: UnixMillis) -> Visit {
    Visit {
        id: VisitId::generate(),
        household: h.id.clone(),
        worker: worker.id.clone(),
        at,
        location: None,
        kind: VisitKind::WelfareCheck,
        outcome: VisitOutcome::AllWell,
        notes: "Doing well".into(),
        follow_up: false,
        photos: vec![],
        deleted: false,
    }
}

/// A phone of the old layout (schema 6) holding the office's directory and `grid`, writing
/// with `actor`: what an upgraded app finds on the phone.
fn old_phone(path: &std::path::Path, actor: &ActorId, directory: Vec<u8>, grid: &DocId, bytes: Vec<u8>) {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    doorstep_core::hooks::migrate_to(&mut conn, 6).unwrap();
    conn.execute("INSERT INTO device (id, actor, created_at) VALUES (1, ?1, 0)", [actor.to_bytes()]).unwrap();
    for (doc, bytes) in [(DocId::Directory, directory), (grid.clone(), bytes)] {
        conn.execute(
            "INSERT INTO documents (doc_id, snapshot, compacted_at) VALUES (?1, ?2, 0)",
            rusqlite::params![doc.to_string(), bytes],
        )
        .unwrap();
    }
}

/// The old grid: four households (three in the micro-grid, one deleted; one in the grid's own
/// register), three residents, and visits over eleven months, one of them a tombstone.
struct OldGrid {
    doc: DocId,
    h1: Household,
    h2: Household,
    h3: Household,
    h4: Household,
    residents: Vec<Resident>,
    /// Visits to h1: nine months ago, and this month.
    h1_old: Visit,
    h1_now: Visit,
    /// A visit to h2 last month, deleted by a tombstone.
    h2_deleted: Visit,
    /// The one visit to h4, five months ago: only the earlier clocks carry it to a new phone.
    h4_old: Visit,
}

/// Li Na's upgraded phone, the upgraded phone of the supervisor, whose own visit is in her copy
/// of the grid document only, and what the grid holds.
struct Deployment {
    dir: tempfile::TempDir,
    p: District,
    server: RunningServer,
    admin: AdminClient,
    li: Store,
    li_client: sync::http::ServerClient,
    li_token: String,
    sup: Store,
    sup_client: sync::http::ServerClient,
    /// The supervisor's device token, for what an older app on it sends by hand.
    sup_token: String,
    grid: OldGrid,
    /// The supervisor's visit to h2 last month.
    sup_visit: Visit,
}

fn deployment() -> Deployment {
    let (dir, mut office, p, server) = served(|_| {});
    let doc = DocId::Grid(p.grid.id.clone());
    let (li_actor, sup_actor) = (ActorId::random(), ActorId::random());
    let mut am = genesis(&doc).with_actor(li_actor.clone());
    let (h1, h2, h3, h4) = (
        new_household(&p, true, "301"),
        new_household(&p, false, "302"),
        new_household(&p, true, "303"),
        new_household(&p, true, "304"),
    );
    for h in [&h1, &h2, &h3, &h4] {
        put_household(&mut am, h);
    }
    let residents =
        vec![new_resident(&h1, "Zhao Shulan"), new_resident(&h1, "Wang Jianguo"), new_resident(&h2, "Sun Li")];
    for r in &residents {
        put_resident(&mut am, r);
    }
    am.commit();
    let h1_old = new_visit(&h1, &p.li_na, months_ago(9, 3));
    let h1_now = new_visit(&h1, &p.li_na, SystemClock.now_ms() - 3_600_000);
    let mut h2_deleted = new_visit(&h2, &p.li_na, months_ago(1, 4));
    let h4_old = new_visit(&h4, &p.li_na, months_ago(5, 6));
    for v in [&h1_old, &h1_now, &h2_deleted, &h4_old] {
        put_visit(&mut am, v);
    }
    am.commit();
    h2_deleted.deleted = true;
    put_visit(&mut am, &h2_deleted);
    let mut h3_gone = h3.clone();
    h3_gone.deleted = true;
    let households = collection(&am, "households");
    let (_, h3_obj) = automerge::ReadDoc::get(&am, &households, h3.id.as_str()).unwrap().unwrap();
    am.put(&h3_obj, "deleted", true).unwrap();
    am.commit();
    let li_bytes = am.save();
    // The supervisor's phone took Li Na's copy in a stairwell, then recorded a visit of its own.
    am.set_actor(sup_actor.clone());
    let sup_visit = new_visit(&h2, &p.supervisor, months_ago(1, 8));
    put_visit(&mut am, &sup_visit);
    am.commit();
    // And a note from a phone that was lost before it ever reached the server, made beside it.
    let mut lost = automerge::AutoCommit::load(&li_bytes).unwrap().with_actor(ActorId::random());
    let (_, h4_obj) = automerge::ReadDoc::get(&lost, collection(&lost, "households"), h4.id.as_str()).unwrap().unwrap();
    lost.put(&h4_obj, "notes", "Lives with a cat").unwrap();
    lost.commit();
    am.merge(&mut lost).unwrap();
    let sup_bytes = am.save();

    let directory = office.save_document(&DocId::Directory).unwrap();
    old_phone(&dir.path().join("li.sqlite"), &li_actor, directory.clone(), &doc, li_bytes);
    old_phone(&dir.path().join("sup.sqlite"), &sup_actor, directory, &doc, sup_bytes);
    // The app is upgraded: the stores open at today's schema, and enrol (the old layout's
    // devices enrolled the same way).
    let enrol = |name: &str, user: &User| {
        let mut store = Store::open(dir.path().join(format!("{name}.sqlite")), OpenOptions::default()).unwrap();
        let client = sync::http::ServerClient::new(&server.url()).unwrap();
        let token = client.register(&enrolment_code(&server, user), &mut store, name).unwrap().token;
        (store, client.with_token(token.clone()), token)
    };
    let (li, li_client, li_token) = enrol("li", &p.li_na);
    let (sup, sup_client, sup_token) = enrol("sup", &p.supervisor);
    let grid = OldGrid { doc, h1, h2, h3: h3_gone, h4, residents, h1_old, h1_now, h2_deleted, h4_old };
    let admin = AdminClient::new(&server.url(), ADMIN_TOKEN);
    Deployment { dir, p, server, admin, li, li_client, li_token, sup, sup_client, sup_token, grid, sup_visit }
}

fn residents_held(s: &Store) -> usize {
    s.households(&HouseholdFilter::default()).unwrap().iter().map(|h| s.residents(&h.id).unwrap().len()).sum()
}

fn workers(s: &Store, h: &HouseholdId) -> Vec<(VisitId, UserId)> {
    let mut v: Vec<_> = s.visit_history(h, 0).unwrap().into_iter().map(|v| (v.id, v.worker)).collect();
    v.sort();
    v
}

#[test]
fn a_deployment_of_grid_documents_converts_once_and_every_record_keeps_its_author() {
    let Deployment { dir, p, server, admin, mut li, li_client, mut sup, sup_client, grid: g, sup_visit, .. } =
        deployment();
    // Both phones send their own changes of the grid document, as phones of the old layout did.
    li_client.sync(&mut li).unwrap();
    sup_client.sync(&mut sup).unwrap();
    let on_server = server.with_store(|s| s.document_ids().unwrap());
    assert!(on_server.contains(&g.doc) && !on_server.iter().any(|d| matches!(d, DocId::Register(_))));
    // Not converted yet: Li Na's phone keeps its grid document, whatever the number of syncs; a
    // new phone of hers does not take it (the registers will hold what she needs).
    li_client.sync(&mut li).unwrap();
    li_client.sync(&mut li).unwrap();
    assert!(li.document_ids().unwrap().contains(&g.doc), "nothing is let go of before the server converted it");
    let (mut li2, li2_client) = phone(&server, dir.path(), "li-2", &p.li_na);
    assert_eq!(li2.document_ids().unwrap(), vec![DocId::Directory], "no grid document is taken by this version");

    // The conversion: refused for a user who is not an admin, then run for the office's admin.
    let err = admin.convert_grids(&p.li_na.id).unwrap_err();
    assert!(matches!(&err, Error::Refused { code, .. } if code == "bad_request"), "{err}");
    // The call's own input: no `as`, one that is no user id, a user the directory does not know.
    let convert = |query: &str| {
        let (status, body) =
            http("POST", &format!("{}/v1/admin/convert-grids{query}", server.url()), Some(ADMIN_TOKEN), vec![]);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        (status, v["error"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(convert(""), (400, "bad_request".to_string()));
    assert_eq!(convert("?as=not%20an%20id"), (400, "bad_request".to_string()));
    assert_eq!(convert("?as=01JNOBODY000000000000000000"), (404, "unknown_user".to_string()));
    let converted = admin.convert_grids(&p.admin.id).unwrap();
    assert_eq!(
        converted,
        Converted { grids: 1, households: 4, residents: 3, visits: 5, skipped: vec![] },
        "every record, tombstones included"
    );
    assert_eq!(admin.convert_grids(&p.admin.id).unwrap(), Converted::default(), "once");
    // A grid document the office finds later (an old phone's file) is converted as it is imported.
    let other = DocId::Grid(p.other_grid.id.clone());
    let mut found = genesis(&other).with_actor(ActorId::random());
    put_household(
        &mut found,
        &Household { grid: p.other_grid.id.clone(), micro_grid: None, ..new_household(&p, false, "101") },
    );
    found.commit();
    admin.import(&other, found.save()).unwrap();
    assert!(server.with_store(|s| s.document_ids().unwrap()).contains(&DocId::Register(p.other_grid.id.clone())));
    server.with_store(|s| {
        assert_eq!(
            s.user_of_actor(&s.actor_id()).unwrap(),
            Some(p.admin.id.clone()),
            "the server's device is the admin's"
        );
        assert!(s.document_ids().unwrap().contains(&g.doc), "the grid document stays on the server, whole");
        // Every visit sits in the month of its date, naming the worker it named.
        for (h, expected) in [(&g.h1, vec![&g.h1_old, &g.h1_now]), (&g.h2, vec![&sup_visit]), (&g.h4, vec![&g.h4_old])]
        {
            let mut want: Vec<_> = expected.iter().map(|v| (v.id.clone(), v.worker.clone())).collect();
            want.sort();
            assert_eq!(workers(s, &h.id), want);
        }
        let month = DocId::Visits(p.micro_grid.id.clone(), Period::of(g.h1_old.at));
        assert!(s.document_ids().unwrap().contains(&month));
        assert!(s.household(&g.h3.id).is_err(), "the tombstone came along");
    });

    // Li Na's phone: its grid document was in step with the server when the session began, so
    // it goes now; the registers and the months of its window show instead.
    let progress = li_client.sync(&mut li).unwrap();
    assert!(progress.documents_released >= 1, "{progress:?}");
    let held = li.document_ids().unwrap();
    assert!(!held.contains(&g.doc), "{held:?}");
    assert!(
        held.contains(&DocId::Register(p.micro_grid.id.clone())) && held.contains(&DocId::Register(p.grid.id.clone()))
    );
    let shown: Vec<_> = li.households(&HouseholdFilter::default()).unwrap().into_iter().map(|h| h.id).collect();
    assert_eq!(shown.len(), 3, "h1, h2, h4: the deleted one stays deleted");
    assert_eq!(residents_held(&li), 3);
    assert_eq!(workers(&li, &g.h1.id), vec![(g.h1_now.id.clone(), p.li_na.id.clone())], "this month's visit");
    assert_eq!(
        li.household(&g.h4.id).unwrap().last_visit_at,
        Some(g.h4_old.at),
        "the clock of a visit before the window stays"
    );
    // Older history on demand, as the server keeps it.
    let old = li_client.fetch_visits(&li, &g.h1.id, Period::of(g.h1_old.at), Period::of(g.h1_old.at)).unwrap();
    assert_eq!(old.iter().map(|v| (&v.id, &v.worker)).collect::<Vec<_>>(), vec![(&g.h1_old.id, &p.li_na.id)]);

    // The supervisor's copy holds the lost phone's change, which the server never had: it stays,
    // however often she syncs. Her own visit reached the server.
    for _ in 0..2 {
        sup_client.sync(&mut sup).unwrap();
    }
    assert!(sup.document_ids().unwrap().contains(&g.doc), "a copy with changes the server lacks stays");
    assert_eq!(workers(&li, &g.h2.id), vec![(sup_visit.id.clone(), p.supervisor.id.clone())]);

    // A new phone of the volunteer holds her micro-grid only; a store that keeps everything (the
    // office's, a supervisor's laptop) takes every month, closed ones included.
    let (vol, _) = phone(&server, dir.path(), "volunteer", &p.volunteer);
    assert_eq!(residents_held(&vol), 2, "h1's two residents; h2 is in the grid's own register");
    let vol_docs = vol.document_ids().unwrap();
    assert!(!vol_docs.contains(&g.doc) && !vol_docs.contains(&DocId::Register(p.grid.id.clone())), "{vol_docs:?}");
    let (mut all, all_client) = phone_with(
        &server,
        dir.path(),
        "laptop",
        &p.supervisor,
        OpenOptions { window: None, ..OpenOptions::default() },
    );
    let progress = all_client.sync(&mut all).unwrap();
    assert!(progress.refused.is_empty(), "{progress:?}");
    assert!(all.document_ids().unwrap().contains(&DocId::Visits(p.micro_grid.id.clone(), Period::of(g.h1_old.at))));
    assert!(!all.document_ids().unwrap().contains(&g.doc), "a grid document is never taken by this version");
    assert_eq!(workers(&all, &g.h1.id).len(), 2);
    // A closed month the conversion wrote comes from the server alone: handed from one phone to
    // another as a file it is refused like any change written after the close. Her phone's
    // window does not take it from the server; the history on demand shows it.
    let closed = DocId::Visits(p.micro_grid.id.clone(), Period::of(g.h1_old.at));
    let file = all.save_document(&closed).unwrap();
    li2_client.sync(&mut li2).unwrap();
    let err = li2.import_document(&closed, &file).unwrap_err();
    assert!(matches!(&err, Error::Refused { code, .. } if code == "period_closed"), "{err}");
    assert_eq!(workers(&li2, &g.h1.id).len(), 1, "this month's visit only");
    let _ = (g.h2_deleted, g.residents);
}

/// After the conversion an older app (on the supervisor's phone) still writes the grid document:
/// the server converts what it sends as it takes it in. A field it changed reaches the register
/// and one it did not change keeps Li Na's newer edit there; a micro-grid it set moves the
/// household; its visit reaches everyone who looks after the household.
#[test]
fn an_older_phone_that_goes_on_writing_its_grid_document_reaches_the_registers() {
    use automerge::ReadDoc;
    let Deployment {
        dir, p, server, admin, mut li, li_client, mut sup, sup_client, sup_token, grid: g, sup_visit, ..
    } = deployment();
    li_client.sync(&mut li).unwrap();
    sup_client.sync(&mut sup).unwrap();
    admin.convert_grids(&p.admin.id).unwrap();
    li_client.sync(&mut li).unwrap();
    let address = Address { room: "301A".into(), ..g.h1.address.clone() };
    let edit = HouseholdUpdate { risk: Some(RiskLevel::Red), address: Some(address), ..Default::default() };
    li.update_household(&g.h1.id, edit).unwrap();
    li_client.sync(&mut li).unwrap();
    let (vol, vol_client) = phone(&server, dir.path(), "volunteer", &p.volunteer);
    assert_eq!(residents_held(&vol), 2);

    let late = new_visit(&g.h1, &p.supervisor, SystemClock.now_ms() - 60_000);
    // This month's visit to h1 was a mistake: the older app deletes it by a tombstone.
    let mistake = Visit { deleted: true, ..g.h1_now.clone() };
    assert!(workers(&li, &g.h1.id).contains(&(g.h1_now.id.clone(), p.li_na.id.clone())));
    let (h1, h2) = (g.h1.id.to_string(), g.h2.id.to_string());
    let batch = edited_on_server(&server, &g.doc, &sup, |am| {
        let households = collection(am, "households");
        let (_, h1_obj) = am.get(&households, h1.as_str()).unwrap().unwrap();
        am.put(&h1_obj, "notes", "Daughter visits on Sundays").unwrap();
        let (_, address) = am.get(&h1_obj, "address").unwrap().unwrap();
        am.put(&address, "building", "3B").unwrap();
        let (_, h2_obj) = am.get(&households, h2.as_str()).unwrap().unwrap();
        am.put(&h2_obj, "micro_grid", p.micro_grid.id.as_str()).unwrap();
        put_visit(am, &late);
        put_visit(am, &mistake);
        // h2 moves, and its visit of last month (kept in the grid register's month) is deleted.
        put_visit(am, &Visit { deleted: true, ..sup_visit.clone() });
    });
    let (status, body) = http("POST", &format!("{}/v1/sync", server.url()), Some(&sup_token), batch.encode());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(sync::wire::Batch::decode(&body).unwrap().rejected.is_empty());

    li_client.sync(&mut li).unwrap();
    let h1_now = li.household(&g.h1.id).unwrap();
    assert_eq!((h1_now.risk, h1_now.notes.as_str()), (RiskLevel::Red, "Daughter visits on Sundays"), "both edits");
    assert_eq!((h1_now.address.building.as_str(), h1_now.address.room.as_str()), ("3B", "301A"), "field by field");
    assert_eq!(li.household(&g.h2.id).unwrap().micro_grid, Some(p.micro_grid.id.clone()), "moved");
    assert!(workers(&li, &g.h2.id).is_empty(), "its deleted visit stays deleted, in the month that holds it");
    assert_eq!(workers(&li, &g.h1.id), vec![(late.id.clone(), p.supervisor.id.clone())], "the tombstone too");
    // The volunteer now looks after h2 too, with its resident.
    let mut vol = vol;
    vol_client.sync(&mut vol).unwrap();
    assert_eq!(residents_held(&vol), 3);
    assert!(workers(&vol, &g.h1.id).contains(&(late.id.clone(), p.supervisor.id.clone())));
    server.with_store(|s| {
        let register = DocId::Register(p.grid.id.clone());
        let old = s.save_document(&register).unwrap();
        let am = automerge::AutoCommit::load(&old).unwrap();
        let households = collection(&am, "households");
        let (_, h2_obj) = am.get(&households, h2.as_str()).unwrap().unwrap();
        let moved_to = am.get(&h2_obj, "moved_to").unwrap().map(|(v, _)| v.to_string());
        assert_eq!(
            moved_to,
            Some(format!("\"{}\"", p.micro_grid.id)),
            "the grid's register keeps a tombstone naming where it went"
        );
    });
}

/// Whether a grid document was converted is told only to a device that may read it, and a
/// request asks about a bounded number of them.
#[test]
fn the_conversion_is_told_only_to_those_who_may_read_the_grid() {
    let Deployment { dir, p, server, admin, mut li, li_client, .. } = deployment();
    li_client.sync(&mut li).unwrap();
    admin.convert_grids(&p.admin.id).unwrap();
    let mut vol = Store::open(dir.path().join("vol.sqlite"), OpenOptions::default()).unwrap();
    let token = sync::http::ServerClient::new(&server.url())
        .unwrap()
        .register(&enrolment_code(&server, &p.volunteer), &mut vol, "vol")
        .unwrap()
        .token;
    let ask = |token: &str, grids: Vec<String>| {
        let batch = sync::wire::Batch { cursor: Some(0), converted: grids, ..Default::default() };
        http("POST", &format!("{}/v1/sync", server.url()), Some(token), batch.encode())
    };
    let grid = DocId::Grid(p.grid.id.clone()).to_string();
    let (status, body) = ask(&token, vec![grid.clone(), "grid/not a unit".into(), grid.clone()]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(sync::wire::Batch::decode(&body).unwrap().converted.is_empty(), "the volunteer may not read the grid");
    let (status, _) = ask(&token, (0..33).map(|i| format!("grid/G{i}")).collect());
    assert_eq!(status, 400, "at most 32 asks");
}

/// A conversion a crash cut short (an older phone's change to the grid document was kept, its
/// copy not written yet) carries on when the server starts again.
#[test]
fn a_conversion_cut_short_carries_on_when_the_server_starts() {
    let Deployment { dir, p, server, admin, mut li, li_client, li_token, sup, grid: g, .. } = deployment();
    li_client.sync(&mut li).unwrap();
    admin.convert_grids(&p.admin.id).unwrap();
    li_client.sync(&mut li).unwrap();
    let late = new_visit(&g.h1, &p.supervisor, SystemClock.now_ms() - 60_000);
    let base = server.with_store(|s| s.save_document(&g.doc).unwrap());
    let mut am = automerge::AutoCommit::load(&base).unwrap().with_actor(actor(&sup));
    put_visit(&mut am, &late);
    am.commit();
    server.stop();
    // The change is kept as the server kept it before it died, the conversion not run.
    let mut stopped =
        Store::open(dir.path().join("server.sqlite"), OpenOptions { window: None, ..OpenOptions::default() }).unwrap();
    stopped.merge_document(&g.doc, &am.save()).unwrap();
    drop(stopped);
    let server = start_server(dir.path(), |_| {});
    let client = sync::http::ServerClient::new(&server.url()).unwrap().with_token(li_token);
    client.sync(&mut li).unwrap();
    assert!(workers(&li, &g.h1.id).contains(&(late.id.clone(), p.supervisor.id.clone())));
}

/// A grid document is written by phones: what it holds is checked again before it is copied
/// with the server's rights. A household placed in another grid's micro-grid is not copied (and
/// kept as skipped, so no phone lets go of the grid document that shows it); one that takes the
/// id of another grid's household is refused when it arrives; a resident under an id of another
/// register is not copied.
#[test]
fn a_grid_document_cannot_reach_into_another_grids_registers() {
    let Deployment { dir, p, server, admin, mut li, li_client, li_token, grid: g, .. } = deployment();
    li_client.sync(&mut li).unwrap();
    admin.convert_grids(&p.admin.id).unwrap();
    li_client.sync(&mut li).unwrap();
    // Zhang Wei keeps a household of the other grid; a micro-grid of it exists too.
    let (mut zhang, zhang_client) = phone(&server, dir.path(), "zhang", &p.zhang_wei);
    let theirs = zhang
        .add_household(
            &p.other_grid.id,
            NewHousehold {
                address: Address { building: "8".into(), unit: "1".into(), room: "101".into() },
                ..Default::default()
            },
        )
        .unwrap();
    zhang_client.sync(&mut zhang).unwrap();
    let their_micro = server.with_store(|s| {
        s.add_unit(NewUnit {
            kind: UnitKind::MicroGrid,
            parent: Some(p.other_grid.id.clone()),
            name: "Building 8".into(),
        })
        .unwrap()
    });
    let before = server.with_store(|s| s.save_document(&DocId::Register(p.other_grid.id.clone())).unwrap());
    let told = || {
        let ask = sync::wire::Batch { cursor: Some(0), converted: vec![g.doc.to_string()], ..Default::default() };
        let (status, body) = http("POST", &format!("{}/v1/sync", server.url()), Some(&li_token), ask.encode());
        assert_eq!(status, 200);
        sync::wire::Batch::decode(&body).unwrap().converted
    };
    assert_eq!(told(), vec![g.doc.to_string()]);
    let twice = sync::wire::Batch { cursor: Some(0), converted: vec![g.doc.to_string(); 2], ..Default::default() };
    let (_, body) = http("POST", &format!("{}/v1/sync", server.url()), Some(&li_token), twice.encode());
    assert_eq!(sync::wire::Batch::decode(&body).unwrap().converted, vec![g.doc.to_string()], "named once");
    let send = |batch: sync::wire::Batch| {
        let (status, body) = http("POST", &format!("{}/v1/sync", server.url()), Some(&li_token), batch.encode());
        let code = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_default();
        (status, code)
    };

    // Under the id of Zhang Wei's household: refused whole, nothing kept.
    let key = theirs.id.to_string();
    let stolen = Household { id: theirs.id.clone(), ..new_household(&p, true, "999") };
    let batch = edited_on_server(&server, &g.doc, &li, |am| {
        let households = collection(am, "households");
        let obj = am.put_object(&households, key.as_str(), ObjType::Map).unwrap();
        put_fields(am, &obj, &serde_json::to_value(&stolen).unwrap());
    });
    assert_eq!(send(batch), (400, "bad_record".to_string()));

    // In a micro-grid of the other grid, with a resident under the id of one of h1's: neither is
    // copied, both are reported, and Li Na's phone is not told the grid is converted.
    let intruder = Household { micro_grid: Some(their_micro.id.clone()), ..new_household(&p, true, "998") };
    let twin = Resident { household: g.h2.id.clone(), ..g.residents[0].clone() };
    let batch = edited_on_server(&server, &g.doc, &li, |am| {
        put_household(am, &intruder);
        let residents = collection(am, "residents");
        let (_, r) = automerge::ReadDoc::get(am, &residents, twin.id.as_str()).unwrap().unwrap();
        am.put(&r, "household", twin.household.as_str()).unwrap();
    });
    assert_eq!(send(batch).0, 200);
    let documents = server.with_store(|s| s.document_ids().unwrap());
    assert!(!documents.contains(&DocId::Register(their_micro.id.clone())), "{documents:?}");
    assert_eq!(server.with_store(|s| s.save_document(&DocId::Register(p.other_grid.id.clone())).unwrap()), before);
    let again = admin.convert_grids(&p.admin.id).unwrap();
    let skipped: Vec<_> = again.skipped.iter().map(|s| (s.collection.as_str(), s.key.as_str())).collect();
    assert_eq!(skipped, vec![("households", intruder.id.as_str()), ("residents", twin.id.as_str())], "{again:?}");
    assert_eq!(li.residents(&g.h1.id).unwrap().len(), 2, "h1 keeps its residents");
    assert!(told().is_empty(), "while records are skipped, no phone lets go of its grid document");

    // A visit under the id of one of Zhang Wei's, as its tombstone: not copied into his month.
    let his = record_visit(&mut zhang, &theirs.id, &p.zhang_wei, "Checked the boiler");
    zhang_client.sync(&mut zhang).unwrap();
    let forged = Visit { household: g.h1.id.clone(), worker: p.li_na.id.clone(), deleted: true, ..his.clone() };
    assert_eq!(send(edited_on_server(&server, &g.doc, &li, |am| put_visit(am, &forged))).0, 200);
    zhang_client.sync(&mut zhang).unwrap();
    assert_eq!(zhang.visit_history(&theirs.id, 0).unwrap().len(), 1, "his visit stands");
    let again = admin.convert_grids(&p.admin.id).unwrap();
    assert!(again.skipped.iter().any(|s| s.key == his.id.as_str() && s.reason.contains("another grid")), "{again:?}");

    // A visit Li Na's phone recorded into this month, "deleted" through the grid document under
    // other contents: a visit is written once, so it is not copied; hers stands.
    let mine = record_visit(&mut li, &g.h4.id, &p.li_na, "Brought the medicine");
    li_client.sync(&mut li).unwrap();
    let altered = Visit { notes: "nothing happened".into(), deleted: true, ..mine.clone() };
    assert_eq!(send(edited_on_server(&server, &g.doc, &li, |am| put_visit(am, &altered))).0, 200);
    li_client.sync(&mut li).unwrap();
    assert_eq!(li.visit_history(&g.h4.id, 1).unwrap()[0].notes, "Brought the medicine");

    // h1 set into the other grid's micro-grid by an older phone is skipped; Li Na edits its notes
    // in the register meanwhile; the older phone sets it back. Tried again from its last copy,
    // it changes nothing, and her notes stay.
    let h1 = g.h1.id.to_string();
    let to = |li: &Store, micro: &str| {
        let micro = micro.to_string();
        let h1 = h1.clone();
        edited_on_server(&server, &g.doc, li, move |am| {
            let households = collection(am, "households");
            let (_, obj) = automerge::ReadDoc::get(am, &households, h1.as_str()).unwrap().unwrap();
            am.put(&obj, "micro_grid", micro.as_str()).unwrap();
        })
    };
    assert_eq!(send(to(&li, their_micro.id.as_str())).0, 200);
    li_client.sync(&mut li).unwrap();
    assert_eq!(li.household(&g.h1.id).unwrap().micro_grid, Some(p.micro_grid.id.clone()), "not moved");
    li.update_household(
        &g.h1.id,
        HouseholdUpdate { notes: Some("Key with the neighbour".into()), ..Default::default() },
    )
    .unwrap();
    li_client.sync(&mut li).unwrap();
    assert_eq!(send(to(&li, p.micro_grid.id.as_str())).0, 200);
    li_client.sync(&mut li).unwrap();
    assert_eq!(li.household(&g.h1.id).unwrap().notes, "Key with the neighbour");
}

/// The server's device is the server's alone: no phone enrols with its actor id, or with one
/// another user's device writes with (a revoked one included); what it wrote travels between
/// phones like anything else.
#[test]
fn the_servers_device_is_the_servers_alone() {
    use doorstep_core::sync::{PeerResponder, Session};
    let Deployment { dir, p, server, admin, mut li, li_client, grid: g, .. } = deployment();
    li_client.sync(&mut li).unwrap();
    let enrol_as = |actor: &str| {
        let body = device_request(&enrolment_code(&server, &p.volunteer), actor).to_string();
        let (status, body) = http("POST", &format!("{}/v1/devices", server.url()), None, body.into_bytes());
        (status, String::from_utf8_lossy(&body).into_owned())
    };
    // Before the conversion made it a device of the directory, too.
    let server_actor = server.with_store(|s| s.actor_id());
    let (status, body) = enrol_as(&server_actor);
    assert_eq!(status, 409, "{body}");
    admin.convert_grids(&p.admin.id).unwrap();
    li_client.sync(&mut li).unwrap();
    let (status, body) = enrol_as(&server_actor);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("actor_taken"), "{body}");
    let (status, body) = enrol_as(&li.actor_id());
    assert_eq!(status, 409, "{body}");
    assert!(server.with_store(|s| s.user_of_actor(&server_actor).unwrap()) == Some(p.admin.id.clone()));
    // The directory itself does not hand a device to another user.
    let err = server.with_store(|s| s.enrol_device(&p.volunteer.id, &li.actor_id(), None).unwrap_err());
    assert!(matches!(&err, Error::Refused { code, .. } if code == "actor_taken"), "{err}");

    // The registers and months the server wrote travel between phones in a stairwell like any
    // other (who wrote a change is proven by signatures, not yet; see docs/PROTOCOL.md §4).
    let mut fresh = Store::open(dir.path().join("fresh.sqlite"), OpenOptions::default()).unwrap();
    let code = enrolment_code(&server, &p.supervisor);
    sync::http::ServerClient::new(&server.url()).unwrap().register(&code, &mut fresh, "fresh").unwrap();
    let directory = server.with_store(|s| s.save_document(&DocId::Directory).unwrap());
    fresh.merge_document(&DocId::Directory, &directory).unwrap();
    li.merge_document(&DocId::Directory, &directory).unwrap();
    let mut responder = PeerResponder::new(&li).unwrap();
    let mut session = Session::with_peer(&mut fresh).unwrap();
    while let Some(msg) = session.next_message(&mut fresh).unwrap() {
        let reply = responder.respond(&mut li, &msg).unwrap_or_else(|e| responder.refusal(&li, &e));
        session.receive(&mut fresh, &reply).unwrap();
    }
    assert!(responder.refused().is_empty(), "{:?}", responder.refused());
    assert_eq!(fresh.household(&g.h1.id).unwrap().micro_grid, Some(p.micro_grid.id.clone()));
    assert_eq!(workers(&fresh, &g.h1.id), vec![(g.h1_now.id.clone(), p.li_na.id.clone())]);
    // A revoked device stays revoked: enrolling its actor again, even for its own user, is refused.
    let err = server.with_store(|s| {
        s.revoke_device(&li.actor_id()).unwrap();
        s.enrol_device(&p.li_na.id, &li.actor_id(), None).unwrap_err()
    });
    assert!(matches!(&err, Error::Refused { code, .. } if code == "actor_taken"), "{err}");
}
