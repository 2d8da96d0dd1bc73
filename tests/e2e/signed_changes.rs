//! Signed changes (PROTOCOL.md §10) against a real server on 127.0.0.1 and real phone stores:
//! any phone carries another's changes, and no replica takes a change its own device did not
//! sign. The attacks are built the way a modified app with a genuine key would build them.

use automerge::AutoCommit;
use doorstep_core::sync::{self, wire};
use doorstep_core::*;
use testkit::*;

fn stairwell(a: &mut Store, b: &mut Store) -> Result<sync::Progress> {
    let mut session = sync::Session::with_peer(a)?;
    let mut responder = sync::PeerResponder::new(b)?;
    while let Some(msg) = session.next_message(a)? {
        let reply = responder.respond(b, &msg).unwrap_or_else(|e| responder.refusal(b, &e));
        session.receive(a, &reply)?;
    }
    Ok(session.progress())
}

fn post(server: &doorstep_server::RunningServer, token: &str, batch: &wire::Batch) -> (u16, String) {
    let (status, body) = http("POST", &format!("{}/v1/sync", server.url()), Some(token), batch.encode());
    let code = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_default();
    (status, code)
}

/// The admin revokes `phone`'s device, its id looked up in the server's table.
fn revoke(server: &doorstep_server::RunningServer, dir: &std::path::Path, phone: &Store) {
    let id: String = rusqlite::Connection::open(dir.join("server.sqlite"))
        .unwrap()
        .query_row("SELECT id FROM server_devices WHERE actor = ?1", [phone.actor_id()], |r| r.get(0))
        .unwrap();
    let (status, _) = http("DELETE", &format!("{}/v1/admin/devices/{id}", server.url()), Some(ADMIN_TOKEN), vec![]);
    assert_eq!(status, 204);
}

/// Li Na, the volunteer and the supervisor, each enrolled through the server, then each synced
/// again so that every directory names every device's key.
struct Stairwell {
    dir: tempfile::TempDir,
    people: District,
    server: doorstep_server::RunningServer,
    li: (Store, sync::http::ServerClient),
    vol: (Store, sync::http::ServerClient),
    sup: (Store, sync::http::ServerClient),
    vol_token: String,
}

fn enrolled(
    server: &doorstep_server::RunningServer,
    dir: &std::path::Path,
    name: &str,
    user: &User,
) -> (Store, sync::http::ServerClient, String) {
    let mut store = Store::open(dir.join(format!("{name}.sqlite")), OpenOptions::default()).unwrap();
    let client = sync::http::ServerClient::new(&server.url()).unwrap();
    let reg = client.register(&enrolment_code(server, user), &mut store, name).unwrap();
    (store, client.with_token(reg.token.clone()), reg.token)
}

fn stairwell_world() -> Stairwell {
    let (dir, _office, people, server) = served(|_| {});
    let (li, li_client, _) = enrolled(&server, dir.path(), "li-na", &people.li_na);
    let (vol, vol_client, vol_token) = enrolled(&server, dir.path(), "volunteer", &people.volunteer);
    let (sup, sup_client, _) = enrolled(&server, dir.path(), "supervisor", &people.supervisor);
    let mut w = Stairwell {
        dir,
        people,
        server,
        li: (li, li_client),
        vol: (vol, vol_client),
        sup: (sup, sup_client),
        vol_token,
    };
    for (store, client) in [&mut w.li, &mut w.vol, &mut w.sup] {
        client.sync(store).unwrap();
    }
    w
}

/// The volunteer files a report and meets Li Na in a stairwell; Li Na triages it; the
/// volunteer's phone is then destroyed before it ever syncs. Li Na's next sync brings the
/// report, signed by the volunteer's phone, and her triage to the server: nothing is left
/// pending, and the supervisor's phone gets both.
#[test]
fn the_stairwell_relay_brings_her_report_and_his_triage_to_the_server_after_her_phone_is_destroyed() {
    let mut w = stairwell_world();
    let r = file_report(&mut w.vol.0, &w.people, &w.people.volunteer, "Bicycles chained to the fire exit");
    stairwell(&mut w.vol.0, &mut w.li.0).unwrap();
    w.li.0
        .add_report_event(NewReportEvent::new(r.id.clone(), w.people.li_na.id.clone(), ReportEventKind::Triaged))
        .unwrap();
    // Her phone is destroyed: its files are gone.
    w.vol.0 = Store::open(w.dir.path().join("new-phone.sqlite"), OpenOptions::default()).unwrap();
    for f in std::fs::read_dir(w.dir.path()).unwrap() {
        let path = f.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("volunteer.sqlite") {
            std::fs::remove_file(&path).unwrap();
        }
    }

    w.li.1.sync(&mut w.li.0).unwrap();
    let status = w.li.0.sync_status().unwrap();
    assert_eq!((status.pending_documents, status.pending_changes), (0, 0), "{status:?}");
    assert!(status.refused_documents.is_empty(), "{:?}", status.refused_documents);
    let on_server = w.server.with_store(|s| s.report(&r.id).unwrap());
    assert_eq!(on_server.0.reporter, w.people.volunteer.id, "the report is hers, whoever carried it");
    assert_eq!(
        on_server.1.iter().map(|e| (e.author.clone(), e.kind)).collect::<Vec<_>>(),
        vec![
            (w.people.volunteer.id.clone(), ReportEventKind::Submitted),
            (w.people.li_na.id.clone(), ReportEventKind::Triaged)
        ]
    );
    w.sup.1.sync(&mut w.sup.0).unwrap();
    assert_eq!(w.sup.0.report_state(&r.id).unwrap().status, ReportStatus::Triaged);
}

/// A message of the volunteer's phone to the server that carries her new visit, as her app
/// sends it (signed).
fn her_visit_message(w: &mut Stairwell) -> wire::Batch {
    let h = household(&mut w.li.0, &w.people, "301", &[CareTag::ElderlyAlone]);
    w.li.1.sync(&mut w.li.0).unwrap();
    w.vol.1.sync(&mut w.vol.0).unwrap();
    record_visit(&mut w.vol.0, &h.id, &w.people.volunteer, "Brought her medicine");
    let mut session = sync::Session::with_server(&mut w.vol.0).unwrap();
    let client = sync::http::ServerClient::new(&w.server.url()).unwrap().with_token(&w.vol_token);
    loop {
        let msg = session.next_message(&mut w.vol.0).unwrap().expect("the visit goes");
        let batch = wire::Batch::decode(&msg).unwrap();
        if batch.docs.iter().any(|e| e.doc.starts_with("visits/") && !e.vouchers.is_empty()) {
            return batch;
        }
        let answer = sync::http::runtime().block_on(client.exchange(msg)).unwrap();
        session.receive(&mut w.vol.0, &answer).unwrap();
    }
}

/// The same batch with `damage` done to its signed entry (the month's visits).
fn damaged(batch: &wire::Batch, damage: impl Fn(&mut wire::Entry)) -> wire::Batch {
    let mut b = batch.clone();
    let e = b.docs.iter_mut().find(|e| e.doc.starts_with("visits/")).unwrap();
    damage(e);
    b
}

/// Her visit's change, rewritten: its operations as they were but the visit's notes changed,
/// the same actor and sequence number (so a new hash).
fn altered_change(entry: &mut wire::Entry) {
    let mut msg = automerge::sync::Message::decode(&entry.data).unwrap();
    let changes: Vec<Vec<u8>> = msg
        .changes
        .iter()
        .map(|bytes| {
            let mut expanded = automerge::Change::from_bytes(bytes.to_vec()).unwrap().decode();
            expanded.hash = None;
            for op in &mut expanded.operations {
                if let automerge::legacy::OpType::Put(automerge::ScalarValue::Str(s)) = &op.action {
                    let text = s.replace("Brought her medicine", "Nobody home, did not visit");
                    op.action = automerge::legacy::OpType::Put(automerge::ScalarValue::Str(text.into()));
                }
            }
            automerge::Change::from(expanded).raw_bytes().to_vec()
        })
        .collect();
    msg.changes = changes.into();
    entry.data = msg.encode();
}

/// Every way of passing off a change without its device's signature, to the server and to Li
/// Na's phone in a stairwell: refused whole, with the code, and nothing of either is changed.
#[test]
fn forged_altered_and_unsigned_changes_are_refused_by_the_server_and_by_phones() {
    let mut w = stairwell_world();
    let honest = her_visit_message(&mut w);
    let li_actor = w.li.0.actor_id();
    let other_deployment = doorstep_core::identity::DeploymentSigner::generate().unwrap();
    let attacks: Vec<(&str, wire::Batch)> = vec![
        ("unsigned_change", damaged(&honest, |e| e.vouchers.clear())),
        ("bad_signature", damaged(&honest, |e| e.vouchers[0].signature[7] ^= 1)),
        ("bad_signature", damaged(&honest, |e| e.vouchers[0].seq += 1)),
        ("bad_signature", damaged(&honest, |e| e.vouchers[0].heads[0].0[0] ^= 1)),
        // Her signature presented as Li Na's.
        ("bad_signature", damaged(&honest, |e| e.vouchers[0].by = li_actor.clone())),
        ("unsigned_change", damaged(&honest, altered_change)),
        // Vouched for by a deployment key nobody here trusts.
        (
            "unsigned_change",
            damaged(&honest, |e| {
                let doc = DocId::parse(&e.doc).unwrap();
                let msg = automerge::sync::Message::decode(&e.data).unwrap();
                let heads: Vec<_> =
                    msg.changes.iter().map(|c| automerge::Change::from_bytes(c.to_vec()).unwrap().hash()).collect();
                e.vouchers = vec![other_deployment.vouch(&doc, &heads, 1)];
            }),
        ),
    ];
    let vol_token = w.vol_token.clone();
    for (code, batch) in &attacks {
        let before = server_state(&w.server);
        assert_eq!(post(&w.server, &vol_token, batch), (403, code.to_string()), "{code}");
        assert_eq!(server_state(&w.server), before, "{code}: the server keeps nothing");

        let before = w.li.0.dump_query_tables().unwrap();
        let mut responder = sync::PeerResponder::new(&w.li.0).unwrap();
        let mut hand = introduced(&w.vol.0, &mut responder, &mut w.li.0);
        let peer_batch = wire::Batch { docs: batch.docs.clone(), ..Default::default() };
        match send(&mut hand, &w.vol.0, &mut responder, &mut w.li.0, &peer_batch) {
            Err(Error::Refused { code: c, .. }) => assert_eq!(c.as_str(), *code),
            other => panic!("{code}: {other:?}"),
        }
        assert_eq!(w.li.0.dump_query_tables().unwrap(), before, "{code}: Li Na's phone keeps nothing");
    }
    // A change in Li Na's name, with a signature the volunteer's key made claiming to be Li Na's
    // phone's.
    let month = register(&w.people);
    let base = w.server.with_store(|s| s.save_document(&month).unwrap());
    let mut am = AutoCommit::load(&base).unwrap().with_actor(actor(&w.li.0));
    automerge::transaction::Transactable::put(&mut am, automerge::ROOT, "x", 1).unwrap();
    am.commit();
    let mut entry = signed(&w.vol.0, &month, wire::Kind::Save, am.save());
    assert!(entry.vouchers.is_empty(), "none of the changes is the volunteer's");
    let latest = am.get_last_local_change().unwrap();
    let mut forged = w.vol.0.vouch_for_tests(&month, &latest).unwrap();
    forged.by = li_actor.clone();
    entry.vouchers = vec![forged];
    let before = server_state(&w.server);
    let batch = wire::Batch { docs: vec![entry], ..Default::default() };
    assert_eq!(post(&w.server, &vol_token, &batch), (403, "bad_signature".into()));
    assert_eq!(server_state(&w.server), before);

    // The honest message still goes, and the visit is hers.
    assert_eq!(post(&w.server, &vol_token, &honest).0, 200);
    w.li.1.sync(&mut w.li.0).unwrap();
    let h = w.li.0.households(&HouseholdFilter::default()).unwrap()[0].id.clone();
    let history = w.li.0.visit_history(&h, 10).unwrap();
    assert_eq!(history.iter().map(|v| v.worker.clone()).collect::<Vec<_>>(), vec![w.people.volunteer.id.clone()]);
}

/// The volunteer's phone is lost and revoked. What it wrote before and the server held still
/// travels between phones (the server vouches for it); what only Li Na's phone carries, from a
/// stairwell before the loss, is refused by the server for that report alone, with the reason,
/// while the rest of her sync goes in; and another phone refuses it from hers too.
#[test]
fn a_revoked_devices_changes_the_server_never_had_are_refused_everywhere_for_that_document_alone() {
    let mut w = stairwell_world();
    let synced = file_report(&mut w.vol.0, &w.people, &w.people.volunteer, "Stairwell light out on floor 3");
    w.vol.1.sync(&mut w.vol.0).unwrap();
    let carried = file_report(&mut w.vol.0, &w.people, &w.people.volunteer, "Bicycles chained to the fire exit");
    w.li.1.sync(&mut w.li.0).unwrap();
    stairwell(&mut w.vol.0, &mut w.li.0).unwrap();
    assert!(w.li.0.report_state(&carried.id).is_ok());

    revoke(&w.server, w.dir.path(), &w.vol.0);
    let h = household(&mut w.li.0, &w.people, "302", &[]);
    w.li.1.sync(&mut w.li.0).unwrap();
    let carried_doc = DocId::Report(carried.id.clone());
    let refused = w.li.0.sync_status().unwrap().refused_documents;
    assert_eq!(
        refused.iter().map(|r| (r.doc.clone(), r.code.as_str())).collect::<Vec<_>>(),
        vec![(carried_doc.clone(), "revoked_author")]
    );
    assert!(w.server.with_store(|s| s.report_state(&carried.id)).is_err(), "the server did not take it");
    assert!(w.server.with_store(|s| s.household(&h.id)).is_ok(), "the rest of her sync went in");
    // Her next sync knows the revocation and does not send it again.
    w.li.1.sync(&mut w.li.0).unwrap();

    // The supervisor's phone, which knows of the revocation, gets the report the server held
    // from Li Na's phone, and refuses the one it did not, that document alone.
    w.sup.1.sync(&mut w.sup.0).unwrap();
    assert!(w.sup.0.report_state(&synced.id).is_ok(), "from the server");
    let mut responder = sync::PeerResponder::new(&w.sup.0).unwrap();
    let mut hand = introduced(&w.li.0, &mut responder, &mut w.sup.0);
    let carried_bytes = w.li.0.save_document(&carried_doc).unwrap();
    let mut entry = wire::Entry::new(&carried_doc, wire::Kind::Save, carried_bytes);
    entry.vouchers = w.li.0.vouchers_for_tests(&carried_doc).unwrap();
    assert!(!entry.vouchers.is_empty(), "Li Na's phone holds the volunteer's signature");
    let reply = send(
        &mut hand,
        &w.li.0,
        &mut responder,
        &mut w.sup.0,
        &wire::Batch { docs: vec![entry], ..Default::default() },
    )
    .unwrap();
    assert_eq!(
        reply.rejected.iter().map(|r| (r.doc.as_str(), r.code.as_str())).collect::<Vec<_>>(),
        vec![(carried_doc.to_string().as_str(), "revoked_author")]
    );
    assert!(w.sup.0.report_state(&carried.id).is_err());
}

/// History the server held from before signatures (an office import, written by no device)
/// reaches a phone with the deployment's signature, and that phone carries it on to one that
/// never synced since: the other phone takes it on the deployment's word.
#[test]
fn history_from_before_signatures_travels_between_phones_under_the_deployment_key() {
    let mut w = stairwell_world();
    // The office writes a household into the micro-grid's register with its own store (its actor
    // is no device's) and imports the register into the server.
    let mut office = Store::open(w.dir.path().join("office-2.sqlite"), OpenOptions::default()).unwrap();
    let directory = w.server.with_store(|s| s.save_document(&DocId::Directory).unwrap());
    office.merge_document(&DocId::Directory, &directory).unwrap();
    let h = household(&mut office, &w.people, "501", &[CareTag::ElderlyAlone]);
    let register = register(&w.people);
    let bytes = office.save_document(&register).unwrap();
    let url = format!("{}/v1/admin/documents?doc={register}", w.server.url());
    let (status, body) = http("POST", &url, Some(ADMIN_TOKEN), bytes);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    w.li.1.sync(&mut w.li.0).unwrap();
    assert!(w.li.0.household(&h.id).is_ok());
    assert!(w.vol.0.household(&h.id).is_err(), "the volunteer has not synced since");
    stairwell(&mut w.li.0, &mut w.vol.0).unwrap();
    assert!(w.vol.0.household(&h.id).is_ok(), "carried by Li Na's phone under the deployment's signature");
}
