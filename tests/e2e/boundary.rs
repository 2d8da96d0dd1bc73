//! Attacks on what a message may change, sent the way another client would build them: real
//! Automerge changes written with the attacker's own (enrolled) actor, carried in valid sync
//! messages to a real server on 127.0.0.1, or to another phone. Each is refused with its code,
//! and nothing of the message is kept (the server's documents and tables are compared).

use automerge::sync::SyncDoc;
use automerge::{transaction::Transactable, AutoCommit, ObjType, ReadDoc, ROOT};
use doorstep_core::sync::{http::ServerClient, wire, PeerResponder};
use doorstep_core::*;
use doorstep_server::RunningServer;
use testkit::*;

struct Phone {
    store: Store,
    client: ServerClient,
    token: String,
}

struct World {
    _dir: tempfile::TempDir,
    server: RunningServer,
    people: District,
    li: Phone,
    volunteer: Phone,
    zhang: Phone,
    courier: Phone,
}

fn world() -> World {
    let (dir, _office, people, server) = served(|_| {});
    let enrol = |name: &str, user: &User| {
        let mut store = Store::open(dir.path().join(format!("{name}.sqlite")), OpenOptions::default()).unwrap();
        let client = ServerClient::new(&server.url()).unwrap();
        let reg = client.register(&enrolment_code(&server, user), &mut store, name).unwrap();
        Phone { store, client: client.with_token(&reg.token), token: reg.token }
    };
    let mut li = enrol("li-na", &people.li_na);
    let mut volunteer = enrol("volunteer", &people.volunteer);
    let mut zhang = enrol("zhang-wei", &people.zhang_wei);
    let mut courier = enrol("courier", &people.courier);
    for p in [&mut li, &mut volunteer, &mut zhang, &mut courier] {
        p.client.sync(&mut p.store).unwrap();
    }
    // Li Na's grid on the server, with a household, a resident and a visit.
    let h = household(&mut li.store, &people, "301", &[CareTag::ElderlyAlone]);
    li.store
        .add_resident(NewResident {
            household: h.id.clone(),
            name: Personal::new("Zhao Guilan"),
            phone: Personal::new("13800138000"),
            id_number: Personal::new("410105194203150028"),
            birth_year: Some(1942),
            relation: Relation::Head,
        })
        .unwrap();
    record_visit(&mut li.store, &h.id, &people.li_na, "Bell check, all well");
    for p in [&mut li, &mut volunteer, &mut zhang, &mut courier] {
        p.client.sync(&mut p.store).unwrap();
    }
    World { _dir: dir, server, people, li, volunteer, zhang, courier }
}

fn post(w: &World, token: &str, batch: &wire::Batch) -> (u16, String, Vec<u8>) {
    let (status, body) = http("POST", &format!("{}/v1/sync", w.server.url()), Some(token), batch.encode());
    let code = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_default();
    (status, code, body)
}

/// The server's copy of `doc`, edited by `edit` with `writer`'s actor, as one sync entry.
fn hostile(w: &World, doc: &DocId, writer: &Store, edit: impl FnOnce(&mut AutoCommit)) -> wire::Batch {
    edited_on_server(&w.server, doc, writer, edit)
}

/// A visit record as a client writes it: JSON under its id in `visits`.
fn visit_json(id: &str, household: &str, worker: &User) -> serde_json::Value {
    serde_json::json!({"id": id, "household": household, "worker": worker.id.as_str(),
        "at": 1_700_000_000_000_i64, "kind": "routine", "outcome": "all_well"})
}

/// The first key of a collection in the server's copy (the household, resident or visit).
fn first_key(w: &World, doc: &DocId, name: &str) -> String {
    let am = AutoCommit::load(&w.server.with_store(|s| s.save_document(doc).unwrap())).unwrap();
    am.keys(collection(&am, name)).next().unwrap()
}

fn refused(w: &World, token: &str, batch: &wire::Batch, status: u16, code: &str) {
    let before = server_state(&w.server);
    let (got, got_code, body) = post(w, token, batch);
    assert_eq!((got, got_code.as_str()), (status, code), "{}", String::from_utf8_lossy(&body));
    let text = String::from_utf8_lossy(&body);
    for personal in ["Zhao Guilan", "13800138000", "410105194203150028"] {
        assert!(!text.contains(personal), "{text}");
    }
    assert_eq!(server_state(&w.server), before, "nothing of a refused message is kept");
}

/// A refusal of the batch's documents alone (`forbidden_document`, `too_large`): the request is
/// answered (200), each of its documents is listed in `rejected` with `code`, the answer holds
/// nothing of them, and nothing of them is kept.
fn rejected(w: &World, token: &str, batch: &wire::Batch, code: &str) {
    let before = server_state(&w.server);
    let (status, _, body) = post(w, token, batch);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let answer = wire::Batch::decode(&body).unwrap();
    let named: std::collections::BTreeSet<&str> = batch.docs.iter().map(|e| e.doc.as_str()).collect();
    let refused: std::collections::BTreeSet<&str> = answer.rejected.iter().map(|r| r.doc.as_str()).collect();
    assert_eq!(refused, named, "{:?}", answer.rejected);
    assert!(answer.rejected.iter().all(|r| r.code == code), "{:?}", answer.rejected);
    assert!(answer.docs.iter().all(|e| !named.contains(e.doc.as_str())), "{:?}", answer.docs);
    for personal in ["Zhao Guilan", "13800138000", "410105194203150028"] {
        assert!(!answer.rejected.iter().any(|r| r.message.contains(personal)), "{:?}", answer.rejected);
    }
    assert_eq!(server_state(&w.server), before, "nothing of a refused document is kept");
}

#[test]
fn heads_for_a_document_the_device_may_not_read_are_refused() {
    let mut w = world();
    let grid = register(&w.people);
    let digest = w.server.with_store(|s| {
        let mut am = AutoCommit::load(&s.save_document(&grid).unwrap()).unwrap();
        doorstep_core::hooks::heads_digest(&am.get_heads())
    });
    let heads = |doc: &DocId, data: Vec<u8>| wire::Batch {
        cursor: Some(0),
        docs: vec![wire::Entry::new(doc, wire::Kind::Heads, data)],
        ..Default::default()
    };
    // Zhang Wei works in the other grid; the courier in no grid. Neither an old digest nor the
    // right one gets an answer, and no later change of the grid reaches them.
    for token in [w.zhang.token.clone(), w.courier.token.clone()] {
        rejected(&w, &token, &heads(&grid, vec![0; 16]), "forbidden_document");
        rejected(&w, &token, &heads(&grid, digest.clone()), "forbidden_document");
    }
    // A document the server does not hold at all.
    let unknown = DocId::Report(ReportId::generate());
    rejected(&w, &w.li.token.clone(), &heads(&unknown, vec![0; 16]), "forbidden_document");
    // A new resident arrives in the grid: the courier's next pulls list nothing of it.
    let h = w.li.store.households(&HouseholdFilter::default()).unwrap()[0].id.clone();
    w.li.store
        .add_resident(NewResident {
            household: h,
            name: Personal::new("Zhao Ming"),
            phone: Personal::new("13900139000"),
            id_number: Personal::new("410105197001010011"),
            birth_year: Some(1970),
            relation: Relation::Child,
        })
        .unwrap();
    w.li.client.sync(&mut w.li.store).unwrap();
    let (status, _, body) = post(&w, &w.courier.token.clone(), &wire::Batch { cursor: Some(0), ..Default::default() });
    assert_eq!(status, 200);
    let answer = wire::Batch::decode(&body).unwrap();
    assert!(answer.docs.iter().all(|e| e.doc != grid.to_string()), "{:?}", answer.docs);
    // Li Na herself may announce her grid's heads: the echo is accepted.
    let (status, _, _) = post(&w, &w.li.token.clone(), &heads(&grid, vec![0; 16]));
    assert_eq!(status, 200);
}

#[test]
fn a_record_naming_another_user_as_its_author_is_refused() {
    let mut w = world();
    let grid = register(&w.people);
    let visits = month_visits(&w.people);
    let household = first_key(&w, &grid, "households");
    // The volunteer's phone writes a visit "by Li Na".
    let forged_visit = visit_json("01JFORGEDVISIT0000000000AA", &household, &w.people.li_na);
    let batch = hostile(&w, &visits, &w.volunteer.store, |am| {
        let visits = collection(am, "visits");
        am.put(&visits, "01JFORGEDVISIT0000000000AA", forged_visit.to_string()).unwrap();
    });
    refused(&w, &w.volunteer.token.clone(), &batch, 403, "forged_author");

    // The volunteer files a report of her own, then writes a "triaged" event as Li Na.
    let r = file_report(&mut w.volunteer.store, &w.people, &w.people.volunteer, "Bicycles chained to the fire exit");
    w.volunteer.client.sync(&mut w.volunteer.store).unwrap();
    let doc = DocId::Report(r.id.clone());
    let event = serde_json::json!({"id": "01JFORGEDEVENT0000000000AA", "at": 1_700_000_000_000_i64,
        "author": w.people.li_na.id.as_str(), "kind": "triaged", "classification": "simple", "risk": "blue"});
    let batch = hostile(&w, &doc, &w.volunteer.store, |am| {
        let events = collection(am, "events");
        am.put(&events, "01JFORGEDEVENT0000000000AA", event.to_string()).unwrap();
    });
    refused(&w, &w.volunteer.token.clone(), &batch, 403, "forged_author");
    assert_eq!(w.server.with_store(|s| s.report_state(&r.id).unwrap().status), ReportStatus::Open);

    // A courier files a report naming Li Na as its reporter.
    let id = ReportId::generate();
    let header = serde_json::json!({"id": id.as_str(), "reporter": w.people.li_na.id.as_str(),
        "category": "safety-hazard", "description": "Manhole cover missing", "address": "Gate 2",
        "grid": w.people.grid.id.as_str(), "created_at": 1_700_000_000_000_i64});
    let doc = DocId::Report(id);
    let mut am = genesis(&doc).with_actor(actor(&w.courier.store));
    let header_map = collection(&am, "header");
    am.put(&header_map, "report", header.to_string()).unwrap();
    am.commit();
    let batch =
        wire::Batch { docs: vec![signed(&w.courier.store, &doc, wire::Kind::Save, am.save())], ..Default::default() };
    refused(&w, &w.courier.token.clone(), &batch, 403, "forged_author");
}

/// A new report the device's user may not file (it has no header: no reporter, no grid) is
/// refused after it was applied in memory, alone: the honest report beside it is kept.
#[test]
fn a_new_report_the_device_may_not_file_is_refused_alone() {
    let mut w = world();
    let headless = DocId::Report(ReportId::generate());
    let mut am = genesis(&headless).with_actor(actor(&w.courier.store));
    let event = serde_json::json!({"id": "01JEVENT000000000000000000", "at": 1_700_000_000_000_i64,
        "author": w.people.courier.id.as_str(), "kind": "comment", "note": "no header"});
    let events = collection(&am, "events");
    am.put(&events, "01JEVENT000000000000000000", event.to_string()).unwrap();
    am.commit();
    let honest = file_report(&mut w.courier.store, &w.people, &w.people.courier, "Manhole cover missing by gate 2");
    let honest_doc = DocId::Report(honest.id.clone());
    let save = |w: &World, doc: &DocId, data: Vec<u8>| signed(&w.courier.store, doc, wire::Kind::Save, data);
    // The same changes as a sync message, the way a client starting the report would send them.
    let mut msg = am.sync().generate_sync_message(&mut automerge::sync::State::new()).unwrap();
    msg.changes = am.get_changes(&[]).iter().map(|c| c.raw_bytes().to_vec()).collect::<Vec<_>>().into();
    let synced = signed(&w.courier.store, &headless, wire::Kind::Sync, msg.encode());
    let honest_bytes = w.courier.store.save_document(&honest_doc).unwrap();
    for entry in [save(&w, &headless, am.save()), synced] {
        let batch =
            wire::Batch { docs: vec![entry, save(&w, &honest_doc, honest_bytes.clone())], ..Default::default() };
        let (status, _, body) = post(&w, &w.courier.token.clone(), &batch);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let answer = wire::Batch::decode(&body).unwrap();
        let refused: Vec<_> = answer.rejected.iter().map(|r| (r.doc.as_str(), r.code.as_str())).collect();
        assert_eq!(refused, vec![(headless.to_string().as_str(), "forbidden_document")]);
        assert!(answer.docs.iter().all(|e| e.doc != headless.to_string()), "{:?}", answer.docs);
        assert!(w.server.with_store(|s| !s.document_ids().unwrap().contains(&headless)), "nothing of it is kept");
        assert!(w.server.with_store(|s| s.report_state(&honest.id).is_ok()), "the honest report is");
    }
}

#[test]
fn a_report_header_once_filed_is_never_rewritten() {
    let mut w = world();
    let r = file_report(&mut w.courier.store, &w.people, &w.people.courier, "Manhole cover missing by gate 2");
    w.courier.client.sync(&mut w.courier.store).unwrap();
    let doc = DocId::Report(r.id.clone());
    let mut header = serde_json::to_value(&r).unwrap();
    header["reporter"] = w.people.li_na.id.as_str().into();
    header["grid"] = w.people.other_grid.id.as_str().into();
    let batch = hostile(&w, &doc, &w.courier.store, |am| {
        let map = collection(am, "header");
        am.put(&map, "report", header.to_string()).unwrap();
    });
    refused(&w, &w.courier.token.clone(), &batch, 403, "immutable_record");
    // Nor a visit, once written (Li Na rewriting her own visit's notes).
    let visits = month_visits(&w.people);
    let v = w.li.store.visit_history(&w.li.store.households(&HouseholdFilter::default()).unwrap()[0].id, 1).unwrap()[0]
        .clone();
    let visit_id = v.id.as_str().to_string();
    let mut full = w.server.with_store(|s| {
        let am = AutoCommit::load(&s.save_document(&visits).unwrap()).unwrap();
        let (value, _) = am.get(collection(&am, "visits"), visit_id.as_str()).unwrap().unwrap();
        serde_json::from_str::<serde_json::Value>(&value.into_string().unwrap()).unwrap()
    });
    full["notes"] = "nobody came".into();
    let batch = hostile(&w, &visits, &w.li.store, |am| {
        let visits = collection(am, "visits");
        am.put(&visits, visit_id.as_str(), full.to_string()).unwrap();
    });
    refused(&w, &w.li.token.clone(), &batch, 403, "immutable_record");
    // Its tombstone is the one rewrite there is.
    w.li.store.delete_visit(&v.id).unwrap();
    w.li.client.sync(&mut w.li.store).unwrap();
    assert!(w.server.with_store(|s| s.visit_history(&v.household, 10).unwrap().is_empty()));
}

#[test]
fn replacing_a_collection_or_deleting_records_is_refused() {
    let w = world();
    let grid = register(&w.people);
    let visits = month_visits(&w.people);
    let token = w.volunteer.token.clone();
    let doc_of = |name: &str| if name == "visits" { &visits } else { &grid };
    for name in ["households", "residents", "visits"] {
        let batch = hostile(&w, doc_of(name), &w.volunteer.store, |am| {
            am.put_object(ROOT, name, ObjType::Map).unwrap();
        });
        refused(&w, &token, &batch, 403, "root_changed");
    }
    let batch = hostile(&w, &grid, &w.volunteer.store, |am| am.delete(ROOT, "doc").unwrap());
    refused(&w, &token, &batch, 403, "root_changed");
    for name in ["households", "residents", "visits"] {
        let key = first_key(&w, doc_of(name), name);
        let batch = hostile(&w, doc_of(name), &w.volunteer.store, |am| {
            let map = collection(am, name);
            am.delete(&map, key.as_str()).unwrap();
        });
        refused(&w, &token, &batch, 403, "deleted_record");
    }
    let key = first_key(&w, &grid, "residents");
    let batch = hostile(&w, &grid, &w.volunteer.store, |am| {
        let map = collection(am, "residents");
        am.put_object(&map, key.as_str(), ObjType::Map).unwrap();
    });
    refused(&w, &token, &batch, 403, "replaced_record");
}

#[test]
fn records_that_do_not_parse_are_refused_naming_the_record() {
    let w = world();
    let grid = register(&w.people);
    let visits = month_visits(&w.people);
    let household = first_key(&w, &grid, "households");
    let token = w.volunteer.token.clone();
    let good = visit_json("01JBADVISIT000000000000000", &household, &w.people.volunteer);
    let as_text = hostile(&w, &visits, &w.volunteer.store, |am| {
        let visits = collection(am, "visits");
        let t = am.put_object(&visits, "01JBADVISIT000000000000000", ObjType::Text).unwrap();
        am.splice_text(&t, 0, 0, &good.to_string()).unwrap();
    });
    let mut wrong_type = good.clone();
    wrong_type["at"] = "yesterday".into();
    let mut unknown_kind = good.clone();
    unknown_kind["kind"] = "teleport".into();
    for (name, batch) in [
        ("a Text object", as_text),
        ("a field of the wrong type", put_visit(&w, &visits, &wrong_type)),
        ("an unknown enum value", put_visit(&w, &visits, &unknown_kind)),
    ] {
        let before = server_state(&w.server);
        let (status, code, body) = post(&w, &token, &batch);
        assert_eq!((status, code.as_str()), (400, "bad_record"), "{name}");
        let message =
            serde_json::from_slice::<serde_json::Value>(&body).unwrap()["message"].as_str().unwrap().to_string();
        assert!(message.contains("01JBADVISIT000000000000000") && message.contains("visits"), "{name}: {message}");
        assert!(message.contains(&visits.to_string()), "{message}");
        assert_eq!(server_state(&w.server), before);
    }
    // A value the server cannot take is never repeated in the refusal (it may be personal).
    let mut personal = good.clone();
    personal["kind"] = "Zhao Guilan 13800138000".into();
    refused(&w, &token, &put_visit(&w, &visits, &personal), 400, "bad_record");
    personal["kind"] = "routine".into();
    personal["at"] = "410105194203150028".into();
    refused(&w, &token, &put_visit(&w, &visits, &personal), 400, "bad_record");
    // A household whose risk colour is not one there is, and one moved to another grid.
    let batch = hostile(&w, &grid, &w.volunteer.store, |am| {
        let households = collection(am, "households");
        let (_, h) = am.get(&households, household.as_str()).unwrap().unwrap();
        am.put(&h, "risk", "purple").unwrap();
    });
    refused(&w, &token, &batch, 400, "bad_record");
    let other = w.people.other_grid.id.as_str().to_string();
    let batch = hostile(&w, &grid, &w.volunteer.store, |am| {
        let households = collection(am, "households");
        let (_, h) = am.get(&households, household.as_str()).unwrap().unwrap();
        am.put(&h, "grid", other.as_str()).unwrap();
    });
    refused(&w, &token, &batch, 400, "bad_record");
}

fn put_visit(w: &World, grid: &DocId, visit: &serde_json::Value) -> wire::Batch {
    let id = visit["id"].as_str().unwrap().to_string();
    hostile(w, grid, &w.volunteer.store, |am| {
        let visits = collection(am, "visits");
        am.put(&visits, id.as_str(), visit.to_string()).unwrap();
    })
}

#[test]
fn changes_records_and_documents_over_their_limits_are_refused() {
    let w = world();
    let grid = register(&w.people);
    let visits = month_visits(&w.people);
    let household = first_key(&w, &grid, "households");
    let token = w.volunteer.token.clone();
    // Notes far past the 4,000-character limit of a visit.
    let mut long = visit_json("01JLONGVISIT00000000000000", &household, &w.people.volunteer);
    long["notes"] = "x".repeat(5_000).into();
    let batch = put_visit(&w, &visits, &long);
    let (status, code, _) = post(&w, &token, &batch);
    assert_eq!((status, code.as_str()), (400, "bad_record"));
    // A household field of 100 KB, and a visit of 100 KB: over the record limit (64 KiB), within
    // the change limit.
    let batch = hostile(&w, &grid, &w.volunteer.store, |am| {
        let households = collection(am, "households");
        let (_, h) = am.get(&households, household.as_str()).unwrap().unwrap();
        am.put(&h, "notes", "y".repeat(100_000)).unwrap();
    });
    rejected(&w, &token, &batch, "too_large");
    // The refused grid's other entries are left out too: a `heads` entry beside it gets nothing.
    let mut with_heads = batch.clone();
    with_heads.docs.insert(
        0,
        wire::Entry { doc: grid.to_string(), kind: wire::Kind::Heads, data: vec![0; 16], vouchers: Vec::new() },
    );
    rejected(&w, &token, &with_heads, "too_large");
    let mut huge = long.clone();
    huge["id"] = "01JHUGEVISIT00000000000000".into();
    huge["notes"] = "z".repeat(100_000).into();
    rejected(&w, &token, &put_visit(&w, &visits, &huge), "too_large");
    // Under a key that is someone's name and phone number: the refusal does not repeat the key.
    let batch = hostile(&w, &visits, &w.volunteer.store, |am| {
        let visits = collection(am, "visits");
        am.put(&visits, "Zhao Guilan 13800138000", "z".repeat(100_000)).unwrap();
    });
    rejected(&w, &token, &batch, "too_large");
    // Many fields of 60 KB in one change: over the change limit.
    let batch = hostile(&w, &grid, &w.volunteer.store, |am| {
        let households = collection(am, "households");
        let (_, h) = am.get(&households, household.as_str()).unwrap().unwrap();
        for i in 0..40 {
            let filler: String = (0..60_000).map(|j| char::from(b'a' + ((i * 7 + j) % 26) as u8)).collect();
            am.put(&h, format!("extra_{i}").as_str(), filler).unwrap();
        }
    });
    rejected(&w, &token, &batch, "too_large");
}

#[test]
fn a_thousand_wants_for_one_grid_are_answered_once() {
    let w = world();
    let grid = register(&w.people);
    let want = wire::Entry { doc: grid.to_string(), kind: wire::Kind::Want, data: vec![], vouchers: Vec::new() };
    let batch = wire::Batch { docs: vec![want; 1_000], ..Default::default() };
    let (status, _, body) = post(&w, &w.li.token.clone(), &batch);
    assert_eq!(status, 200);
    let answer = wire::Batch::decode(&body).unwrap();
    assert_eq!(answer.docs.len(), 1, "one copy of the grid");
    let request = batch.encode().len();
    let saved = w.server.with_store(|s| s.save_document(&grid).unwrap().len());
    assert!(body.len() < saved * 2 + request, "{} bytes out for {request} in", body.len());
}

#[test]
fn a_phone_refuses_forged_and_destructive_changes_from_another_phone() {
    let mut w = world();
    let grid = register(&w.people);
    let visits = month_visits(&w.people);
    // The volunteer's phone holds the grid after its sync.
    assert!(!w.volunteer.store.households(&HouseholdFilter::default()).unwrap().is_empty());
    let household = first_key(&w, &grid, "households");
    let household_key = household.clone();
    let base = w.volunteer.store.save_document(&grid).unwrap();
    let visits_base = w.volunteer.store.save_document(&visits).unwrap();
    let forged = visit_json("01JPEERFORGED0000000000000", &household_key, &w.people.li_na);
    type Edit = Box<dyn Fn(&mut AutoCommit)>;
    let li_actor = actor(&w.li.store);
    let genesis_actor = genesis(&grid).get_actor().clone();
    let attacks: Vec<(&str, Edit)> = vec![
        (
            // A change in Li Na's own name, which her phone would then upload as its own: the
            // volunteer's phone cannot sign it with Li Na's key.
            "unsigned_change",
            Box::new(move |am| {
                am.set_actor(li_actor.clone());
                let households = collection(am, "households");
                let (_, h) = am.get(&households, household.as_str()).unwrap().unwrap();
                am.put(&h, "notes", "written in Li Na's name").unwrap();
            }),
        ),
        (
            // The genesis actor writes nothing after the genesis change (and no device holds a
            // key for it; the boundary would refuse it as `root_changed` too).
            "unsigned_change",
            Box::new(move |am| {
                am.set_actor(genesis_actor.clone());
                let residents = collection(am, "residents");
                am.delete(&residents, "nobody").ok();
                am.put(&residents, "R-genesis", "x").unwrap();
            }),
        ),
        (
            "forged_author",
            Box::new(move |am| {
                let visits = collection(am, "visits");
                am.put(&visits, "01JPEERFORGED0000000000000", forged.to_string()).unwrap();
            }),
        ),
        (
            "root_changed",
            Box::new(|am| {
                am.put_object(ROOT, "residents", ObjType::Map).unwrap();
            }),
        ),
    ];
    for (code, edit) in attacks {
        // The volunteer's phone, running a modified app that writes with its own actor, meets
        // Li Na's phone in the stairwell and sends the register (or the month's visits) whole.
        let (grid, base) = if code == "forged_author" { (&visits, &visits_base) } else { (&grid, &base) };
        let mut am = AutoCommit::load(base).unwrap().with_actor(actor(&w.volunteer.store));
        edit(&mut am);
        am.commit();
        let before = w.li.store.dump_query_tables().unwrap();
        let saved = w.li.store.save_document(grid).unwrap();
        let mut responder = PeerResponder::new(&w.li.store).unwrap();
        let mut hand = introduced(&w.volunteer.store, &mut responder, &mut w.li.store);
        // Instead of the session's own next message, the modified app sends the hostile grid.
        let batch = wire::Batch {
            docs: vec![signed(&w.volunteer.store, grid, wire::Kind::Save, am.save())],
            ..Default::default()
        };
        match send(&mut hand, &w.volunteer.store, &mut responder, &mut w.li.store, &batch) {
            Err(Error::Refused { code: c, .. }) => assert_eq!(c, code),
            other => panic!("{code}: {other:?}"),
        }
        assert_eq!(w.li.store.dump_query_tables().unwrap(), before);
        assert_eq!(w.li.store.save_document(grid).unwrap(), saved);
    }
}

#[test]
fn a_request_naming_more_documents_than_a_session_sends_is_refused() {
    let w = world();
    let docs = |n: usize| wire::Batch {
        docs: (0..n)
            .map(|_| wire::Entry {
                doc: DocId::Report(ReportId::generate()).to_string(),
                kind: wire::Kind::Want,
                data: vec![],
                vouchers: Vec::new(),
            })
            .collect(),
        ..Default::default()
    };
    let (status, code, _) = post(&w, &w.li.token.clone(), &docs(257));
    assert_eq!((status, code.as_str()), (400, "bad_message"));
    let (status, _, body) = post(&w, &w.li.token.clone(), &docs(256));
    assert_eq!(status, 200, "256 are read, and refused for what they ask");
    let answer = wire::Batch::decode(&body).unwrap();
    assert_eq!(answer.rejected.len(), 256);
    assert!(answer.rejected.iter().all(|r| r.code == "forbidden_document"));
}

#[test]
fn changes_whose_dependencies_are_held_back_are_not_kept_in_memory() {
    let w = world();
    let grid = register(&w.people);
    let visits = month_visits(&w.people);
    let household = first_key(&w, &grid, "households");
    let grid = visits;
    let base = w.server.with_store(|s| s.save_document(&grid).unwrap());
    let mut am = AutoCommit::load(&base).unwrap().with_actor(actor(&w.li.store));
    let heads = am.get_heads();
    let visits = collection(&am, "visits");
    // Twenty visits of Li Na's, each change depending on the one before: all but the first are sent.
    let mut changes = Vec::new();
    for i in 0..20 {
        let mut v = visit_json(&format!("01JHELDBACK{i:015}"), &household, &w.people.li_na);
        v["notes"] = "n".repeat(3_000).into();
        am.put(&visits, format!("01JHELDBACK{i:015}").as_str(), v.to_string()).unwrap();
        am.commit();
    }
    for c in am.get_changes(&heads).into_iter().skip(1) {
        changes.push(c.raw_bytes().to_vec());
    }
    let mut theirs = AutoCommit::load(&base).unwrap();
    let (mut their_state, mut my_state) = (automerge::sync::State::new(), automerge::sync::State::new());
    let hello = theirs.sync().generate_sync_message(&mut their_state).unwrap();
    am.sync().receive_sync_message(&mut my_state, hello).unwrap();
    let mut msg = am.sync().generate_sync_message(&mut my_state).unwrap();
    msg.changes = changes.into();
    let batch =
        wire::Batch { docs: vec![signed(&w.li.store, &grid, wire::Kind::Sync, msg.encode())], ..Default::default() };
    let before = server_state(&w.server);
    let (status, _, _) = post(&w, &w.li.token.clone(), &batch);
    assert_eq!(status, 200, "the answer asks for what is missing");
    assert_eq!(w.server.with_store(|s| s.queued_changes_for_tests(&grid)), 0, "nothing unstored stays in memory");
    assert_eq!(server_state(&w.server), before);
}

#[test]
fn orphan_changes_and_operations_on_objects_that_do_not_exist_are_refused() {
    let mut w = world();
    let grid = register(&w.people);
    let household = first_key(&w, &grid, "households");
    // A new report, saved whole with an extra change whose dependency is held back: Automerge
    // would queue it unchecked and apply it once the dependency came.
    let r = file_report(&mut w.courier.store, &w.people, &w.people.courier, "Manhole cover missing by gate 2");
    let doc = DocId::Report(r.id.clone());
    let mut am = AutoCommit::load(&w.courier.store.save_document(&doc).unwrap()).unwrap();
    let honest = am.save();
    let heads = am.get_heads();
    let header = collection(&am, "header");
    am.put(&header, "held-back", "x").unwrap();
    am.commit();
    am.put(ROOT, "doc", "taken over").unwrap();
    am.commit();
    let orphan = am.get_changes(&heads)[1].raw_bytes().to_vec();
    let batch = wire::Batch {
        docs: vec![signed(&w.courier.store, &doc, wire::Kind::Save, [honest, orphan].concat())],
        ..Default::default()
    };
    refused(&w, &w.courier.token.clone(), &batch, 400, "bad_document");

    // A change of Li Na's whose operation names a map no document holds.
    let base = w.server.with_store(|s| s.save_document(&grid).unwrap());
    let mut mine = AutoCommit::load(&base).unwrap().with_actor(actor(&w.li.store));
    let before = mine.get_heads();
    let households = collection(&mine, "households");
    let (_, h) = mine.get(&households, household.as_str()).unwrap().unwrap();
    mine.put(&h, "notes", "hello").unwrap();
    mine.commit();
    let mut expanded = mine.get_changes(&before)[0].decode();
    expanded.hash = None;
    let li_actor = actor(&w.li.store);
    expanded.operations[0].obj = automerge::legacy::ObjectId::Id(automerge::legacy::OpId(9_999, li_actor));
    let forged: automerge::Change = expanded.into();
    let mut their_state = automerge::sync::State::new();
    let mut msg = AutoCommit::load(&base).unwrap().sync().generate_sync_message(&mut their_state).unwrap();
    msg.changes = vec![forged.raw_bytes().to_vec()].into();
    let batch = wire::Batch {
        docs: vec![signed(&w.li.store, &grid, wire::Kind::Sync, msg.clone().encode())],
        ..Default::default()
    };
    refused(&w, &w.li.token.clone(), &batch, 400, "bad_message");
    // The same change as an insert into a sequence: no record holds one.
    let mut expanded = mine.get_changes(&before)[0].decode();
    expanded.hash = None;
    expanded.operations[0].insert = true;
    let inserting: automerge::Change = expanded.into();
    msg.changes = vec![inserting.raw_bytes().to_vec()].into();
    let batch =
        wire::Batch { docs: vec![signed(&w.li.store, &grid, wire::Kind::Sync, msg.encode())], ..Default::default() };
    refused(&w, &w.li.token.clone(), &batch, 400, "bad_record");
    // Two entries carrying changes to one document in one message.
    let honest = hostile(&w, &grid, &w.li.store, |am| {
        let households = collection(am, "households");
        let (_, h) = am.get(&households, household.as_str()).unwrap().unwrap();
        am.put(&h, "notes", "twice").unwrap();
    });
    let twice = wire::Batch { docs: [honest.docs.clone(), honest.docs].concat(), ..Default::default() };
    refused(&w, &w.li.token.clone(), &twice, 400, "bad_message");
    // The server is unharmed: Li Na's honest sync goes through.
    record_visit(&mut w.li.store, &HouseholdId::parse(&household).unwrap(), &w.people.li_na, "after");
    w.li.client.sync(&mut w.li.store).unwrap();
    assert_eq!(w.li.store.sync_status().unwrap().pending_changes, 0);
}
