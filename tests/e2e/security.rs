//! Requests the server must refuse, each with the right status and error code, and with nothing
//! stored: the server's documents and query tables are compared before and after.

use automerge::sync::SyncDoc;
use automerge::{transaction::Transactable, AutoCommit, ROOT};
use doorstep_core::sync::{http::runtime, wire, Session};
use doorstep_core::*;
use doorstep_server::RunningServer;
use testkit::*;

struct World {
    _dir: tempfile::TempDir,
    server: RunningServer,
    people: District,
    li: Store,
    li_token: String,
    volunteer_token: String,
    zhang_token: String,
    courier_token: String,
}

fn world() -> World {
    let (dir, _office, people, server) = served(|c| c.max_body_bytes = 256 * 1024);
    let mut tokens = Vec::new();
    let mut li = None;
    for (name, user) in [
        ("li-na", &people.li_na),
        ("volunteer", &people.volunteer),
        ("zhang-wei", &people.zhang_wei),
        ("courier", &people.courier),
    ] {
        let mut store = Store::open(dir.path().join(format!("{name}.sqlite")), OpenOptions::default()).unwrap();
        let client = doorstep_core::sync::http::ServerClient::new(&server.url()).unwrap();
        let reg = client.register(&enrolment_code(&server, user), &mut store, name).unwrap();
        tokens.push(reg.token);
        if name == "li-na" {
            let mut store = store;
            client.with_token(tokens[0].clone()).sync(&mut store).unwrap();
            li = Some(store);
        }
    }
    let courier_token = tokens.pop().unwrap();
    let zhang_token = tokens.pop().unwrap();
    let volunteer_token = tokens.pop().unwrap();
    let li_token = tokens.pop().unwrap();
    World { _dir: dir, server, people, li: li.unwrap(), li_token, volunteer_token, zhang_token, courier_token }
}

/// The status and the refusal code: the JSON error's, or, in an answer (200), the code of the
/// documents of the request the server refused alone (one code for all of them).
fn post_sync(w: &World, token: Option<&str>, request: Vec<u8>) -> (u16, String) {
    let named: std::collections::BTreeSet<String> =
        wire::Batch::decode(&request).map(|b| b.docs.into_iter().map(|e| e.doc).collect()).unwrap_or_default();
    let (status, body) = http("POST", &format!("{}/v1/sync", w.server.url()), token, request);
    if status == 200 {
        let answer = wire::Batch::decode(&body).unwrap();
        let refused: std::collections::BTreeSet<String> = answer.rejected.iter().map(|r| r.doc.clone()).collect();
        if refused.is_empty() {
            return (status, String::new());
        }
        assert!(refused.is_subset(&named), "only documents of the request are refused: {refused:?}");
        assert!(answer.docs.iter().all(|e| !refused.contains(&e.doc)), "nothing of a refused document is answered");
        let codes: std::collections::BTreeSet<String> = answer.rejected.into_iter().map(|r| r.code).collect();
        assert_eq!(codes.len(), 1, "{codes:?}");
        return (status, codes.into_iter().next().unwrap());
    }
    let code = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_default();
    (status, code)
}

/// The message of Li Na's phone that carries a new household and visit, carried by hand: rounds
/// before it (the server has never seen the grid, so the first one only compares heads) are
/// answered for real.
fn li_changes(w: &mut World) -> Vec<u8> {
    let h = household(&mut w.li, &w.people, "301", &[CareTag::ElderlyAlone]);
    record_visit(&mut w.li, &h.id, &w.people.li_na, "all well");
    let mut session = Session::with_server(&mut w.li).unwrap();
    let client = doorstep_core::sync::http::ServerClient::new(&w.server.url()).unwrap().with_token(&w.li_token);
    loop {
        let msg = session.next_message(&mut w.li).unwrap().expect("a message with the changes");
        let batch = wire::Batch::decode(&msg).unwrap();
        if batch
            .docs
            .iter()
            .any(|e| (e.doc.starts_with("register/") || e.doc.starts_with("visits/")) && e.data.len() > 200)
        {
            return msg;
        }
        let answer = runtime().block_on(client.exchange(msg)).unwrap();
        session.receive(&mut w.li, &answer).unwrap();
    }
}

#[test]
fn no_token_or_a_bad_token_is_401() {
    let mut w = world();
    let msg = li_changes(&mut w);
    let before = server_state(&w.server);
    assert_eq!(post_sync(&w, None, msg.clone()), (401, "unauthorized".into()));
    assert_eq!(post_sync(&w, Some("0123456789abcdef"), msg.clone()), (401, "unauthorized".into()));
    assert_eq!(server_state(&w.server), before);
}

#[test]
fn another_device_may_carry_signed_changes_but_not_without_their_signature() {
    let mut w = world();
    let msg = li_changes(&mut w);
    let before = server_state(&w.server);
    let token = w.volunteer_token.clone();
    // Without the signatures of Li Na's phone, the volunteer's token cannot carry her changes.
    let mut bare = wire::Batch::decode(&msg).unwrap();
    bare.docs.iter_mut().for_each(|e| e.vouchers.clear());
    assert_eq!(post_sync(&w, Some(&token), bare.encode()), (403, "unsigned_change".into()));
    assert_eq!(server_state(&w.server), before);
    // With them, the volunteer (who may write this micro-grid) carries them, as a phone that met
    // Li Na's in a stairwell would: they are Li Na's, whoever uploads them.
    assert_eq!(post_sync(&w, Some(&token), msg).0, 200);
    assert_ne!(server_state(&w.server), before);
}

#[test]
fn a_forged_actor_id_refuses_the_whole_message() {
    let mut w = world();
    // A change to the grid written with an actor id no device registered, put beside an honest
    // entry in the same message: nothing of the message is kept.
    let grid = DocId::Register(w.people.micro_grid.id.clone());
    let honest = li_changes(&mut w);
    let mut batch = wire::Batch::decode(&honest).unwrap();
    let mut forged = AutoCommit::new().with_actor(automerge::ActorId::random());
    forged.put(ROOT, "doc", grid.to_string()).unwrap();
    let report = DocId::Report(ReportId::generate());
    // Tell the forging doc the server has nothing, so the message carries its changes.
    let (mut state, mut empty) = (automerge::sync::State::new(), automerge::sync::State::new());
    let hello = AutoCommit::new().sync().generate_sync_message(&mut empty).unwrap();
    forged.sync().receive_sync_message(&mut state, hello).unwrap();
    let msg = forged.sync().generate_sync_message(&mut state).unwrap();
    batch.docs.push(wire::Entry::new(&report, wire::Kind::Sync, msg.encode()));
    let before = server_state(&w.server);
    let token = w.li_token.clone();
    assert_eq!(post_sync(&w, Some(&token), batch.encode()), (403, "unsigned_change".into()));
    assert_eq!(server_state(&w.server), before, "not even the honest entry was kept");
}

#[test]
fn documents_the_user_may_not_read_or_write_are_refused() {
    let mut w = world();
    let grid = DocId::Register(w.people.micro_grid.id.clone());
    let msg = li_changes(&mut w);
    let before = server_state(&w.server);
    // Zhang Wei works in the other grid: he may not ask for this one...
    let want = wire::Batch {
        docs: vec![wire::Entry { doc: grid.to_string(), kind: wire::Kind::Want, data: vec![], vouchers: Vec::new() }],
        ..Default::default()
    };
    let zhang = w.zhang_token.clone();
    assert_eq!(post_sync(&w, Some(&zhang), want.encode()), (200, "forbidden_document".into()));
    // ...nor write it (his own actor, so the access check is what refuses).
    let courier = w.courier_token.clone();
    assert_eq!(post_sync(&w, Some(&courier), msg.clone()), (200, "forbidden_document".into()));
    // A non-admin may not change the directory.
    let mut dir_doc = AutoCommit::load(&w.server.with_store(|s| s.save_document(&DocId::Directory).unwrap())).unwrap();
    let li_actor = automerge::ActorId::from(hex(&w.li.actor_id()));
    dir_doc.set_actor(li_actor);
    dir_doc.put(ROOT, "note", "promote me").unwrap();
    let save = wire::Batch {
        docs: vec![signed(&w.li, &DocId::Directory, wire::Kind::Save, dir_doc.save())],
        ..Default::default()
    };
    let li = w.li_token.clone();
    assert_eq!(post_sync(&w, Some(&li), save.encode()), (200, "forbidden_document".into()));
    // The same change signed with another phone's actor refuses the whole message: being also
    // a document she may not change does not make it a refusal of that document alone.
    let mut foreign = AutoCommit::load(&w.server.with_store(|s| s.save_document(&DocId::Directory).unwrap())).unwrap();
    foreign.set_actor(automerge::ActorId::from([0x5a; 16]));
    foreign.put(ROOT, "note", "promote me").unwrap();
    let save = wire::Batch {
        docs: vec![wire::Entry::new(&DocId::Directory, wire::Kind::Save, foreign.save())],
        ..Default::default()
    };
    assert_eq!(post_sync(&w, Some(&li), save.encode()), (403, "unsigned_change".into()));
    assert_eq!(server_state(&w.server), before);
    // A cursor pull by Zhang Wei lists nothing of grid 1.
    let pull = wire::Batch { cursor: Some(0), ..Default::default() };
    let (status, body) = http("POST", &format!("{}/v1/sync", w.server.url()), Some(&zhang), pull.encode());
    assert_eq!(status, 200);
    let answer = wire::Batch::decode(&body).unwrap();
    assert!(answer.docs.iter().all(|e| e.doc != grid.to_string()), "{:?}", answer.docs);
}

#[test]
fn oversized_and_malformed_bodies_are_refused() {
    let w = world();
    let before = server_state(&w.server);
    let token = w.li_token.clone();
    assert_eq!(post_sync(&w, Some(&token), vec![0x44; 300 * 1024]), (413, "too_large".into()));
    assert_eq!(post_sync(&w, Some(&token), b"hello".to_vec()), (400, "bad_message".into()));
    let truncated = wire::Batch { cursor: Some(0), ..Default::default() }.encode();
    assert_eq!(post_sync(&w, Some(&token), truncated[..truncated.len() - 1].to_vec()), (400, "bad_message".into()));
    assert_eq!(server_state(&w.server), before);
}

#[test]
fn a_revoked_device_is_signed_out_and_enrolment_needs_the_admin() {
    let w = world();
    let url = w.server.url();
    // Enrolment codes are only for the admin.
    let body = serde_json::json!({ "user_id": w.people.li_na.id.as_str() }).to_string().into_bytes();
    assert_eq!(http("POST", &format!("{url}/v1/admin/enrolments"), Some(&w.li_token), body).0, 401);
    // A used or unknown code does not register a device.
    let body = device_request("AAAA-BBBB-CCCC", "00112233445566778899aabbccddeeff");
    assert_eq!(http("POST", &format!("{url}/v1/devices"), None, body.to_string().into_bytes()).0, 403);
    // A lost phone is revoked: its token stops working.
    let pull = wire::Batch { cursor: Some(0), ..Default::default() }.encode();
    assert_eq!(post_sync(&w, Some(&w.courier_token), pull.clone()).0, 200);
    let id = courier_device_id(&w);
    let actor = courier_actor(&w);
    assert!(w.server.with_store(|s| s.user_of_actor(&actor).unwrap()).is_some());
    assert_eq!(http("DELETE", &format!("{url}/v1/admin/devices/{id}"), Some(ADMIN_TOKEN), vec![]).0, 204);
    assert_eq!(post_sync(&w, Some(&w.courier_token), pull), (401, "revoked".into()));
    // The directory says so too, so that phones refuse the lost phone as a peer; revoking
    // again is harmless.
    assert_eq!(w.server.with_store(|s| s.user_of_actor(&actor).unwrap()), None);
    assert_eq!(http("DELETE", &format!("{url}/v1/admin/devices/{id}"), Some(ADMIN_TOKEN), vec![]).0, 204);
    assert_eq!(http("DELETE", &format!("{url}/v1/admin/devices/NOPE"), Some(ADMIN_TOKEN), vec![]).0, 404);
}

fn courier_device_id(w: &World) -> String {
    let conn = rusqlite::Connection::open(w._dir.path().join("server.sqlite")).unwrap();
    conn.query_row("SELECT id FROM server_devices WHERE name = 'courier'", [], |r| r.get(0)).unwrap()
}

fn courier_actor(w: &World) -> String {
    let conn = rusqlite::Connection::open(w._dir.path().join("server.sqlite")).unwrap();
    conn.query_row("SELECT actor FROM server_devices WHERE name = 'courier'", [], |r| r.get(0)).unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
}
