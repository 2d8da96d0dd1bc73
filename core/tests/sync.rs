//! Sync sessions between stores, with the bytes carried in memory: phone to phone, and phone to
//! the server's responder (the same code `doorstep serve` runs behind HTTP).

use doorstep_core::sync::{
    wire::{Batch, Entry},
    PeerResponder, ServerResponder, Session,
};
use doorstep_core::*;
use tempfile::TempDir;
use testkit::*;

/// Carries a session's messages to a phone responder until the session is done.
fn pump_peer(a: &mut Store, b: &mut Store) -> Result<Session> {
    let mut session = Session::with_peer(a)?;
    let mut responder = PeerResponder::new(b)?;
    while let Some(msg) = session.next_message(a)? {
        let reply = responder.respond(b, &msg)?;
        session.receive(a, &reply)?;
    }
    Ok(session)
}

/// A report of the other grid filed by `reporter`: Li Na may not hold it unless she filed it,
/// the volunteer unless she did.
fn report_elsewhere(f: &District, reporter: &UserId, text: &str) -> NewReport {
    let mut r = report(f, text);
    r.reporter = reporter.clone();
    r.grid = Some(f.other_grid.id.clone());
    r
}

fn server_responder(server: &Store, phone: &Store) -> ServerResponder {
    let actor = phone.actor_id();
    let user = server.user_of_actor(&actor).unwrap().expect("phone registered");
    ServerResponder::for_device(&actor, user, std::sync::Arc::new(deployment())).unwrap()
}

fn pump_server(phone: &mut Store, server: &mut Store) -> Result<Session> {
    let mut session = Session::with_server(phone)?;
    while let Some(msg) = session.next_message(phone)? {
        let mut responder = server_responder(server, phone);
        let reply = responder.respond(server, &msg)?;
        session.receive(phone, &reply)?;
    }
    Ok(session)
}

/// The office (acting as server) and two phones registered to the worker and the volunteer.
fn world(dir: &TempDir) -> (Store, District, Store, Store) {
    let (mut office, f) = district(&dir.path().join("office.db"));
    let mut phones = Vec::new();
    for (name, user) in [("li-na", &f.li_na), ("volunteer", &f.volunteer)] {
        let mut p = open(&dir.path().join(format!("{name}.db")), &f.clock);
        enrol(&mut office, &mut p, &user.id);
        phones.push(p);
    }
    let dir_bytes = office.save_document(&DocId::Directory).unwrap();
    for p in &mut phones {
        p.merge_document(&DocId::Directory, &dir_bytes).unwrap();
    }
    let b = phones.pop().unwrap();
    let a = phones.pop().unwrap();
    (office, f, a, b)
}

#[test]
fn two_phones_exchange_what_the_other_lacks() {
    let dir = TempDir::new().unwrap();
    let (_office, f, mut li, mut vol) = world(&dir);
    let h = household(&mut li, &f, "301", &[CareTag::ElderlyAlone]);
    li.record_visit(visit(&h.id, &f.li_na.id, VisitKind::BellCheckAnswered)).unwrap();
    let r = vol.file_report(report(&f, "Fire exit blocked by bicycles")).unwrap();

    let s = pump_peer(&mut li, &mut vol).unwrap();
    assert!(s.is_done());
    assert_eq!(li.dump_query_tables().unwrap(), vol.dump_query_tables().unwrap());
    assert_eq!(vol.visit_history(&h.id, 10).unwrap().len(), 1);
    assert_eq!(li.reports(&ReportFilter::default()).unwrap()[0].id, r.id);

    // Nothing changed since: the handshake's round trip and the hellos', about a kilobyte (the
    // two certificates are most of it).
    let s = pump_peer(&mut li, &mut vol).unwrap();
    let p = s.progress();
    assert_eq!(p.round, 2, "{p:?}");
    assert!(p.bytes_sent + p.bytes_received < 1_100, "{p:?}");

    // Both write offline again, then meet: each gets the other's new work.
    li.record_visit(visit(&h.id, &f.li_na.id, VisitKind::WelfareCheck)).unwrap();
    vol.record_visit(visit(&h.id, &f.volunteer.id, VisitKind::BellCheckNoAnswer)).unwrap();
    pump_peer(&mut vol, &mut li).unwrap();
    assert_eq!(li.visit_history(&h.id, 10).unwrap().len(), 3);
    assert_eq!(li.dump_query_tables().unwrap(), vol.dump_query_tables().unwrap());
}

#[test]
fn a_phone_is_offered_only_what_both_may_hold() {
    let dir = TempDir::new().unwrap();
    let (mut office, f, mut li, _vol) = world(&dir);
    let other = f.zhang_wei.clone();
    let mut zhang = open(&dir.path().join("zhang.db"), &f.clock);
    enrol(&mut office, &mut zhang, &other.id);
    let directory = office.save_document(&DocId::Directory).unwrap();
    zhang.merge_document(&DocId::Directory, &directory).unwrap();
    li.merge_document(&DocId::Directory, &directory).unwrap();

    let h = household(&mut li, &f, "301", &[]);
    li.record_visit(visit(&h.id, &f.li_na.id, VisitKind::WelfareCheck)).unwrap();
    pump_peer(&mut zhang, &mut li).unwrap();
    assert!(zhang.household(&h.id).is_err(), "Zhang Wei works in another grid");

    // A phone without a certificate (never synced with the server) can neither start nor answer.
    let mut stranger = open(&dir.path().join("stranger.db"), &f.clock);
    stranger.merge_document(&DocId::Directory, &directory).unwrap();
    stranger.register_device(&other.id).unwrap(); // claims to be Zhang Wei's, only in its own copy
    for err in [Session::with_peer(&mut stranger).err().unwrap(), PeerResponder::new(&stranger).err().unwrap()] {
        assert!(matches!(&err, Error::Refused { code, .. } if code == "bad_certificate"), "{err}");
        assert!(err.to_string().contains("sync with the server once"), "{err}");
    }
    // A certified phone the directory does not know yet (enrolled after Li Na's last server sync)
    // is refused, and learns why.
    let mut late = open(&dir.path().join("late.db"), &f.clock);
    late.merge_document(&DocId::Directory, &directory).unwrap();
    late.register_device(&other.id).unwrap();
    certify(&mut late, &other.id);
    let err = pump_peer(&mut late, &mut li).err().unwrap();
    assert!(matches!(&err, Error::Refused { code, .. } if code == "unknown_peer"), "{err}");
    let mut session = Session::with_peer(&mut late).unwrap();
    let mut responder = PeerResponder::new(&li).unwrap();
    let proof = responder.respond(&mut li, &session.next_message(&mut late).unwrap().unwrap()).unwrap();
    session.receive(&mut late, &proof).unwrap();
    let err = responder.respond(&mut li, &session.next_message(&mut late).unwrap().unwrap()).unwrap_err();
    assert!(matches!(&err, Error::Refused { code, .. } if code == "unknown_peer"), "{err}");
    let err = session.receive(&mut late, &responder.refusal(&li, &err)).unwrap_err();
    assert!(matches!(&err, Error::Refused { code, .. } if code == "unknown_peer"), "{err}");
    assert!(!late.document_ids().unwrap().contains(&register(&f)));
    assert!(!zhang.document_ids().unwrap().contains(&register(&f)));
}

#[test]
fn a_phone_syncs_with_the_server_and_the_next_sync_is_one_small_round_trip() {
    let dir = TempDir::new().unwrap();
    let (mut server, f, mut li, mut vol) = world(&dir);
    let h = household(&mut li, &f, "301", &[CareTag::ElderlyAlone]);
    let v = li.record_visit(visit(&h.id, &f.li_na.id, VisitKind::BellCheckAnswered)).unwrap();
    assert!(!li.reached_server(&RecordRef::Visit(v.id.clone())).unwrap());
    assert_eq!(li.sync_status().unwrap().pending_changes, 2);

    pump_server(&mut li, &mut server).unwrap();
    assert!(li.reached_server(&RecordRef::Visit(v.id.clone())).unwrap());
    let status = li.sync_status().unwrap();
    assert_eq!(status.pending_changes, 0, "{status:?}");
    assert_eq!(status.last_sync_at, Some(MORNING));
    assert_eq!(server.visit_history(&h.id, 10).unwrap().len(), 1);

    // The volunteer's phone pulls the grid it works in.
    pump_server(&mut vol, &mut server).unwrap();
    assert_eq!(vol.visit_history(&h.id, 10).unwrap().len(), 1);

    // Nothing changed: one round trip, tiny.
    let s = pump_server(&mut li, &mut server).unwrap();
    let p = s.progress();
    assert_eq!(p.round, 1, "{p:?}");
    assert!(p.bytes_sent + p.bytes_received < 100, "{p:?}");
}

#[test]
fn an_interrupted_sync_continues_where_it_stopped() {
    let dir = TempDir::new().unwrap();
    let (mut server, f, _li, mut vol) = world(&dir);
    // 300 reports: more documents than one round starts.
    for i in 0..300 {
        vol.file_report(report(&f, &format!("Bin {i} overflowing"))).unwrap();
    }
    let mut session = Session::with_server(&mut vol).unwrap();
    let total = session.progress().documents_waiting;
    assert_eq!(total, 301, "the reports and the directory");
    for _ in 0..2 {
        let msg = session.next_message(&mut vol).unwrap().unwrap();
        let answer = server_responder(&server, &vol).respond(&mut server, &msg).unwrap();
        session.receive(&mut vol, &answer).unwrap();
    }
    let p = session.progress();
    assert!(p.documents_waiting > 0 && p.documents + p.documents_waiting >= total, "{p:?}");
    // The connection drops here. What the server confirmed is not sent again.
    drop(session);
    let mut session = Session::with_server(&mut vol).unwrap();
    let waiting = session.progress().documents_waiting;
    assert!(waiting > 0 && waiting < total / 2, "{waiting} documents left to sync");
    let msg = session.next_message(&mut vol).unwrap().unwrap();
    assert_eq!(Batch::decode(&msg).unwrap().docs.len(), waiting);
    let answer = server_responder(&server, &vol).respond(&mut server, &msg).unwrap();
    session.receive(&mut vol, &answer).unwrap();
    while let Some(msg) = session.next_message(&mut vol).unwrap() {
        let answer = server_responder(&server, &vol).respond(&mut server, &msg).unwrap();
        session.receive(&mut vol, &answer).unwrap();
    }
    assert_eq!(server.reports(&ReportFilter::default()).unwrap().len(), 300);
    assert_eq!(vol.sync_status().unwrap().pending_documents, 0);
}

#[test]
fn the_server_takes_another_devices_changes_only_with_their_signatures() {
    let dir = TempDir::new().unwrap();
    let (mut server, f, mut li, mut vol) = world(&dir);
    let h = household(&mut li, &f, "301", &[]);
    li.record_visit(visit(&h.id, &f.li_na.id, VisitKind::WelfareCheck)).unwrap();
    // Li Na's phone sends, but the server is told it is the volunteer's device.
    let mut session = Session::with_server(&mut li).unwrap();
    let msg = session.next_message(&mut li).unwrap().unwrap();
    let before = server.dump_query_tables().unwrap();
    let mut as_volunteer = server_responder(&server, &vol);
    // First round carries no changes yet (the server has never seen this grid): answer it,
    // then the second round carries Li Na's changes.
    let reply = as_volunteer.respond(&mut server, &msg).unwrap();
    session.receive(&mut li, &reply).unwrap();
    let msg = session.next_message(&mut li).unwrap().unwrap();
    // Without the signatures of Li Na's phone, nothing of the message is taken.
    let mut bare = Batch::decode(&msg).unwrap();
    assert!(bare.docs.iter().any(|e| !e.vouchers.is_empty()), "the changes go signed");
    bare.docs.iter_mut().for_each(|e| e.vouchers.clear());
    let err = server_responder(&server, &vol).respond(&mut server, &bare.encode()).unwrap_err();
    assert!(matches!(&err, Error::Refused { code, .. } if code == "unsigned_change"), "{err}");
    assert_eq!(server.dump_query_tables().unwrap(), before);
    // With them, the changes are Li Na's whoever carries them (the volunteer may write this
    // micro-grid): the server takes them from the volunteer's device as it would from hers.
    server_responder(&server, &vol).respond(&mut server, &msg).unwrap();
    assert_eq!(server.visit_history(&h.id, 10).unwrap().len(), 1);
    assert_eq!(server.visit_history(&h.id, 10).unwrap()[0].worker, f.li_na.id);
    pump_server(&mut li, &mut server).unwrap();
    assert_eq!(li.sync_status().unwrap().pending_changes, 0);
    let _ = &mut vol;
}

#[test]
fn damaged_messages_end_the_session_with_a_typed_error() {
    let dir = TempDir::new().unwrap();
    let (mut server, f, mut li, _vol) = world(&dir);
    let h = household(&mut li, &f, "301", &[]);
    li.record_visit(visit(&h.id, &f.li_na.id, VisitKind::WelfareCheck)).unwrap();
    let mut session = Session::with_server(&mut li).unwrap();
    let msg = session.next_message(&mut li).unwrap().unwrap();
    let before = server.dump_query_tables().unwrap();
    for cut in [0, 3, msg.len() / 2, msg.len() - 1] {
        let err = server_responder(&server, &li).respond(&mut server, &msg[..cut]).unwrap_err();
        assert!(matches!(err, Error::Protocol(_)), "{err}");
    }
    assert_eq!(server.dump_query_tables().unwrap(), before);
    let reply = server_responder(&server, &li).respond(&mut server, &msg).unwrap();
    let err = session.receive(&mut li, &reply[..reply.len() - 1]).unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err}");
    assert!(li.sync_status().unwrap().last_error.is_some());
    assert!(Batch::decode(&reply).is_ok());
}

mod hostile {
    use super::*;
    use doorstep_core::hooks::{HandPeer, Identity};
    use doorstep_core::sync::wire::Kind;
    use proptest::prelude::*;

    /// A message from Li Na's phone to the volunteer's that carries her new household and visits
    /// (the register and the month, whole), as the plain batch her modified app seals next.
    fn li_message(dir: &TempDir) -> (Store, Store, PeerResponder, HandPeer, Vec<u8>) {
        let (_office, f, mut li, mut vol) = world(dir);
        let h = household(&mut li, &f, "301", &[CareTag::ElderlyAlone]);
        for _ in 0..3 {
            li.record_visit(visit(&h.id, &f.li_na.id, VisitKind::WelfareCheck)).unwrap();
        }
        let mut responder = PeerResponder::new(&vol).unwrap();
        let hand = introduced(&li, &mut responder, &mut vol);
        let docs = [register(&f), month_visits(&f)]
            .iter()
            .map(|d| {
                let bytes = li.save_document(d).unwrap();
                signed(&li, d, Kind::Save, bytes)
            })
            .collect();
        let msg = Batch { docs, ..Batch::default() }.encode();
        (li, vol, responder, hand, msg)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

        /// Damaged messages, in the frame or inside an entry's Automerge bytes, never panic; a
        /// refused one leaves the receiving phone as it was, and its tables always equal a
        /// rebuild from its documents.
        #[test]
        fn damaged_sync_messages_never_panic_or_half_apply(
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            inside in any::<bool>(),
            cut in prop::option::of(any::<prop::sample::Index>()),
        ) {
            let dir = TempDir::new().unwrap();
            let (li, mut vol, mut responder, mut hand, msg) = li_message(&dir);
            let damaged = if inside {
                let mut batch = Batch::decode(&msg).unwrap();
                let entry = batch.docs.iter_mut().max_by_key(|e| e.data.len()).unwrap();
                for (at, v) in &flips {
                    let i = at.index(entry.data.len());
                    entry.data[i] ^= v | 1;
                }
                if let Some(c) = cut {
                    let n = c.index(entry.data.len());
                    entry.data.truncate(n);
                }
                batch.encode()
            } else {
                let mut m = msg.clone();
                for (at, v) in &flips {
                    let i = at.index(m.len());
                    m[i] ^= v | 1;
                }
                if let Some(c) = cut {
                    m.truncate(c.index(m.len()));
                }
                m
            };
            let tables = vol.dump_query_tables().unwrap();
            let docs = vol.document_ids().unwrap();
            let sealed = hand.seal(&Identity::Store(&li), &damaged).unwrap();
            if responder.respond(&mut vol, &sealed).is_err() {
                prop_assert_eq!(vol.dump_query_tables().unwrap(), tables);
                prop_assert_eq!(vol.document_ids().unwrap(), docs);
            }
            let now = vol.dump_query_tables().unwrap();
            vol.rebuild_indexes().unwrap();
            prop_assert_eq!(vol.dump_query_tables().unwrap(), now, "tables match the documents");
        }

        #[test]
        fn random_bytes_end_a_session_with_a_typed_error(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let dir = TempDir::new().unwrap();
            let (mut server, _f, mut li, _vol) = world(&dir);
            let before = server.dump_query_tables().unwrap();
            let err = server_responder(&server, &li).respond(&mut server, &bytes).unwrap_err();
            prop_assert!(matches!(err, Error::Protocol(_)), "{}", err);
            prop_assert_eq!(server.dump_query_tables().unwrap(), before);
            let mut session = Session::with_server(&mut li).unwrap();
            session.next_message(&mut li).unwrap();
            let err = session.receive(&mut li, &bytes).unwrap_err();
            prop_assert!(matches!(err, Error::Protocol(_)), "{}", err);
        }
    }
}

/// Li Na triages a report she got from the volunteer's phone in a stairwell; her next sync
/// carries the report (signed by the volunteer's phone) and her events to the server, before
/// the volunteer's phone ever syncs. A department handler then works on the report through the
/// server.
#[test]
fn events_on_a_report_from_another_phone_reach_the_server_and_the_handler() {
    let dir = TempDir::new().unwrap();
    let (mut server, f, mut li, mut vol) = world(&dir);
    let handler_user = server
        .add_user(NewUser {
            name: Personal::new("Sun Hao"),
            role: Role::DepartmentHandler,
            unit: f.district.id.clone(),
            department: Some("Fire safety".into()),
        })
        .unwrap();
    let mut handler = open(&dir.path().join("handler.db"), &f.clock);
    enrol(&mut server, &mut handler, &handler_user.id);
    for p in [&mut li, &mut vol, &mut handler] {
        pump_server(p, &mut server).unwrap();
    }
    let r = vol.file_report(report(&f, "Bicycles chained to the fire exit")).unwrap();
    pump_peer(&mut vol, &mut li).unwrap();
    let mut dispatch = NewReportEvent::new(r.id.clone(), f.li_na.id.clone(), ReportEventKind::Dispatched);
    dispatch.target = Some("Fire safety".into());
    li.add_report_event(NewReportEvent::new(r.id.clone(), f.li_na.id.clone(), ReportEventKind::Triaged)).unwrap();
    li.add_report_event(dispatch).unwrap();

    pump_server(&mut li, &mut server).unwrap();
    assert_eq!(li.sync_status().unwrap().pending_changes, 0, "the relayed report went with her events");
    assert_ne!(server.report_state(&r.id).unwrap().status, ReportStatus::Open, "with Li Na's triage");
    pump_server(&mut vol, &mut server).unwrap();
    pump_server(&mut li, &mut server).unwrap();
    assert_eq!(li.sync_status().unwrap().pending_changes, 0);
    assert_eq!(server.report_state(&r.id).unwrap().status, ReportStatus::Dispatched);

    pump_server(&mut handler, &mut server).unwrap();
    for kind in [ReportEventKind::Accepted, ReportEventKind::Resolved] {
        handler.add_report_event(NewReportEvent::new(r.id.clone(), handler_user.id.clone(), kind)).unwrap();
    }
    pump_server(&mut handler, &mut server).unwrap();
    assert_eq!(server.report_state(&r.id).unwrap().status, ReportStatus::Resolved);
    assert_eq!(handler.sync_status().unwrap().pending_changes, 0);
}

/// A lost phone is revoked: once the directory that says so reaches the other phones, they
/// refuse it as a peer, in either direction, and what it wrote before stays its user's.
#[test]
fn a_revoked_phone_is_refused_as_a_peer() {
    let dir = TempDir::new().unwrap();
    let (mut office, f, mut li, mut vol) = world(&dir);
    let h = household(&mut li, &f, "301", &[]);
    li.record_visit(visit(&h.id, &f.li_na.id, VisitKind::WelfareCheck)).unwrap();
    pump_peer(&mut vol, &mut li).unwrap();
    assert_eq!(vol.visit_history(&h.id, 0).unwrap().len(), 1, "before the revocation they sync");

    office.revoke_device(&vol.actor_id()).unwrap();
    office.revoke_device(&vol.actor_id()).unwrap(); // twice is once
    let directory = office.save_document(&DocId::Directory).unwrap();
    li.merge_document(&DocId::Directory, &directory).unwrap();
    assert_eq!(li.user_of_actor(&vol.actor_id()).unwrap(), None);
    li.record_visit(visit(&h.id, &f.li_na.id, VisitKind::Routine)).unwrap();
    let err = pump_peer(&mut vol, &mut li).err().expect("the revoked phone is refused");
    assert!(matches!(&err, Error::Refused { code, .. } if code == "unknown_peer"), "{err}");
    // The revoked phone answering: Li Na's phone will not start a session with it either.
    let mut session = Session::with_peer(&mut li).unwrap();
    let mut responder = PeerResponder::new(&vol).unwrap();
    let proof = responder.respond(&mut vol, &session.next_message(&mut li).unwrap().unwrap()).unwrap();
    session.receive(&mut li, &proof).unwrap();
    let reply = responder.respond(&mut vol, &session.next_message(&mut li).unwrap().unwrap()).unwrap();
    let err = session.receive(&mut li, &reply).unwrap_err();
    assert!(matches!(&err, Error::Refused { code, .. } if code == "unknown_peer"), "{err}");
    assert_eq!(vol.visit_history(&h.id, 0).unwrap().len(), 1, "nothing new reached the revoked phone");
    assert!(matches!(office.revoke_device("00ff"), Err(Error::NotFound { .. })));
}

/// A phone answers a document's sync entry only with what the other phone may read: a
/// volunteer's modified app asking about a report of another grid that Li Na filed gets nothing
/// of it back.
#[test]
fn a_phone_answers_nothing_about_a_document_the_other_may_not_read() {
    use automerge::sync::SyncDoc;
    let dir = TempDir::new().unwrap();
    let (_office, f, mut li, vol) = world(&dir);
    let r = li.file_report(report_elsewhere(&f, &f.li_na.id, "Fire door propped open in the other grid")).unwrap();
    let doc = DocId::Report(r.id.clone());
    assert!(!vol.may_read(&f.volunteer.id, &doc).unwrap());

    let mut responder = PeerResponder::new(&li).unwrap();
    let mut hand = introduced(&vol, &mut responder, &mut li);
    // The first sync message of an empty replica: "I have nothing, send me everything".
    let mut empty = automerge::AutoCommit::new();
    let msg = empty.sync().generate_sync_message(&mut automerge::sync::State::new()).unwrap();
    let ask = Batch {
        docs: vec![doorstep_core::sync::wire::Entry {
            doc: doc.to_string(),
            kind: doorstep_core::sync::wire::Kind::Sync,
            data: msg.encode(),
            vouchers: Vec::new(),
        }],
        ..Batch::default()
    };
    let reply = send(&mut hand, &vol, &mut responder, &mut li, &ask).unwrap();
    assert!(reply.docs.iter().all(|e| e.doc != doc.to_string()), "{:?}", reply.docs);
}

/// Two phones whose directories disagree (the volunteer's phone already knows she moved to the
/// other grid, Li Na's does not): the volunteer's phone refuses the grid alone, Li Na's session
/// lists the refusal and still takes the volunteer's new report.
#[test]
fn a_peer_refuses_one_document_and_the_session_goes_on() {
    let dir = TempDir::new().unwrap();
    let (mut office, f, mut li, mut vol) = world(&dir);
    let h = household(&mut li, &f, "301", &[]);
    pump_peer(&mut li, &mut vol).unwrap();
    li.record_visit(visit(&h.id, &f.li_na.id, VisitKind::Routine)).unwrap();
    office.move_user(&f.volunteer.id, &f.other_grid.id).unwrap();
    vol.merge_document(&DocId::Directory, &office.save_document(&DocId::Directory).unwrap()).unwrap();
    let mut note = report(&f, "Bicycles block the fire exit");
    note.reporter = f.volunteer.id.clone();
    let r = vol.file_report(note).unwrap();

    let session = pump_peer(&mut li, &mut vol).expect("the session goes on without the grid");
    assert!(session.is_done());
    let refused = session.progress().refused;
    // Her micro-grid's register and its visits of the month: neither is hers any more.
    let refused: Vec<_> = refused.iter().map(|r| (r.doc.clone(), r.code.as_str())).collect();
    assert_eq!(refused, vec![(register(&f), "forbidden_document"), (month_visits(&f), "forbidden_document")]);
    assert!(li.report_state(&r.id).is_ok(), "the volunteer's report arrived");
    assert_eq!(vol.visit_history(&h.id, 10).unwrap().len(), 0, "the grid's new visit did not go to her");
    assert_eq!(li.sync_status().unwrap().refused_documents, vec![], "a peer's refusal is not the server's");

    // The other way round: Li Na's phone offers the grid whole, the volunteer's refuses it and
    // says so in a last message, which Li Na's app can show.
    let mut session = Session::with_peer(&mut vol).unwrap();
    let mut responder = PeerResponder::new(&li).unwrap();
    while let Some(msg) = session.next_message(&mut vol).unwrap() {
        let reply = responder.respond(&mut li, &msg).unwrap();
        session.receive(&mut vol, &reply).unwrap();
    }
    assert!(session.progress().refused.is_empty());
    let told: Vec<_> = responder.refused().iter().map(|r| (r.doc.clone(), r.code.clone())).collect();
    assert_eq!(
        told,
        vec![(register(&f), "forbidden_document".to_string()), (month_visits(&f), "forbidden_document".to_string())]
    );
    assert_eq!(vol.visit_history(&h.id, 10).unwrap().len(), 0);
}

/// What another phone says it refused is taken only for documents this phone sent it in its last
/// answer, with a code that refuses one document, once, and cut short.
#[test]
fn a_peer_cannot_fill_or_fake_the_refusals_a_phone_shows() {
    use doorstep_core::sync::wire::{Kind, Rejection};
    let dir = TempDir::new().unwrap();
    let (_office, f, mut li, vol) = world(&dir);
    household(&mut li, &f, "301", &[]);
    let grid = register(&f);
    let mut responder = PeerResponder::new(&li).unwrap();
    let mut hand = introduced(&vol, &mut responder, &mut li);
    let rejection =
        |doc: &DocId, code: &str, message: String| Rejection { doc: doc.to_string(), code: code.into(), message };
    let other = DocId::Report(ReportId::generate());
    let fake = |extra: Vec<Rejection>| {
        let mut r = vec![
            rejection(&grid, "forged_author", "not a code for one document".into()),
            rejection(&other, "too_large", "never sent".into()),
        ];
        r.extend(extra);
        r
    };
    // Before any answer of Li Na's phone offered the grid, nothing is taken.
    let inventory = Batch { inventory: true, rejected: fake(vec![]), ..Batch::default() };
    let reply = send(&mut hand, &vol, &mut responder, &mut li, &inventory).unwrap();
    assert!(responder.refused().is_empty(), "{:?}", responder.refused());
    assert!(reply.docs.iter().any(|e| e.doc == grid.to_string() && e.kind == Kind::Save), "the grid is offered whole");
    // After it, the grid's refusal counts, once, and its text is cut to 300 characters.
    let told = Batch {
        rejected: fake(vec![
            rejection(&grid, "forbidden_document", "ä".repeat(10_000)),
            rejection(&grid, "forbidden_document", "again".into()),
        ]),
        ..Batch::default()
    };
    send(&mut hand, &vol, &mut responder, &mut li, &told).unwrap();
    let refused = responder.refused();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!((&refused[0].doc, refused[0].code.as_str()), (&grid, "forbidden_document"));
    assert_eq!(refused[0].message.chars().count(), 300);
}

/// A new report another phone sends that this phone's user may not hold (another reporter,
/// another grid) is refused alone once applied in memory, and its other entries get nothing:
/// no `want` for it goes back.
#[test]
fn a_report_a_phone_may_not_hold_gets_nothing_back() {
    use doorstep_core::hooks::heads_digest;
    use doorstep_core::sync::wire::Kind;
    let dir = TempDir::new().unwrap();
    let (_office, f, mut li, mut vol) = world(&dir);
    let r = vol.file_report(report_elsewhere(&f, &f.volunteer.id, "Broken lamp in Grid 2")).unwrap();
    let doc = DocId::Report(r.id.clone());
    let bytes = vol.save_document(&doc).unwrap();
    let digest = heads_digest(&automerge::AutoCommit::load(&bytes).unwrap().get_heads());
    let mut responder = PeerResponder::new(&li).unwrap();
    let mut hand = introduced(&vol, &mut responder, &mut li);
    let batch = Batch {
        docs: vec![Entry::new(&doc, Kind::Heads, digest), signed(&vol, &doc, Kind::Save, bytes)],
        ..Batch::default()
    };
    let reply = send(&mut hand, &vol, &mut responder, &mut li, &batch).unwrap();
    let refused: Vec<_> = reply.rejected.iter().map(|r| (r.doc.clone(), r.code.clone())).collect();
    assert_eq!(refused, vec![(doc.to_string(), "forbidden_document".to_string())]);
    assert!(reply.docs.iter().all(|e| e.doc != doc.to_string()), "{:?}", reply.docs);
    assert!(li.report_state(&r.id).is_err(), "nothing of it is kept");
}

/// A document grown to its limit by changes each within theirs (900 KB, from another phone)
/// takes no more: its entry in the message that would carry it past 64 MiB is refused
/// (`too_large`, naming the document) while the message's other documents are taken in, and the
/// phones' other documents still sync.
#[test]
fn a_document_at_its_limit_refuses_more_and_only_that_document() {
    use automerge::sync::SyncDoc;
    use automerge::{transaction::Transactable, AutoCommit, ReadDoc, ROOT};
    use doorstep_core::sync::wire::Kind;
    let dir = TempDir::new().unwrap();
    let (mut office, f, mut li, mut vol) = world(&dir);
    let h = household(&mut li, &f, "301", &[]);
    let grid = register(&f);
    // The volunteer's second phone (enrolled, so its changes pass), with a modified app, talks
    // to Li Na's through her first phone's session.
    let vol_actor = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
    let seed = [0x5a; 32];
    let key = doorstep_core::hooks::device_public_key_of(&seed).unwrap();
    office.enrol_device(&f.volunteer.id, vol_actor, Some(&key)).unwrap();
    let directory = office.save_document(&DocId::Directory).unwrap();
    li.merge_document(&DocId::Directory, &directory).unwrap();
    vol.merge_document(&DocId::Directory, &directory).unwrap();
    let mut attacker =
        AutoCommit::load(&li.save_document(&grid).unwrap()).unwrap().with_actor(automerge::ActorId::from(
            (0..16).map(|i| u8::from_str_radix(&vol_actor[2 * i..2 * i + 2], 16).unwrap()).collect::<Vec<_>>(),
        ));
    let mut responder = PeerResponder::new(&li).unwrap();
    let mut hand = introduced(&vol, &mut responder, &mut li);
    let mut state = automerge::sync::State::new();
    let mut refused = None;
    for round in 0..90 {
        let (_, households) = attacker.get(ROOT, "households").unwrap().unwrap();
        let (_, record) = attacker.get(&households, h.id.as_str()).unwrap().unwrap();
        for i in 0..15 {
            let filler: String =
                (0..60_000).map(|j| char::from(b'a' + ((round * 31 + i * 7 + j) % 26) as u8)).collect();
            attacker.put(&record, format!("extra_{i}").as_str(), filler).unwrap();
        }
        attacker.commit();
        // Sync until Li Na's phone has this round's change (or refuses it).
        for _ in 0..4 {
            let Some(msg) = attacker.sync().generate_sync_message(&mut state) else { break };
            let batch = Batch {
                docs: vec![signed_with_seed(&seed, vol_actor, &grid, Kind::Sync, msg.encode())],
                ..Batch::default()
            };
            let reply = send(&mut hand, &vol, &mut responder, &mut li, &batch).unwrap();
            if let Some(r) = reply.rejected.first() {
                refused = Some((round, r.clone(), batch));
                break;
            }
            for e in reply.docs {
                if e.kind == Kind::Sync {
                    let m = automerge::sync::Message::decode(&e.data).unwrap();
                    attacker.sync().receive_sync_message(&mut state, m).unwrap();
                }
            }
        }
        if refused.is_some() {
            break;
        }
    }
    let (round, rejection, mut batch) = refused.expect("the document stops growing");
    assert!(round >= 60, "refused after {round} changes of 900 KB");
    assert_eq!((rejection.doc.as_str(), rejection.code.as_str()), (grid.to_string().as_str(), "too_large"));
    assert!(rejection.message.contains(&grid.to_string()), "{}", rejection.message);
    // The same message again, now with the volunteer's new report: the grid is refused alone,
    // the report is taken in.
    let mut note = report(&f, "Bicycles block the fire exit");
    note.reporter = f.volunteer.id.clone();
    let filed = vol.file_report(note).unwrap();
    let report_doc = DocId::Report(filed.id.clone());
    let bytes = vol.save_document(&report_doc).unwrap();
    batch.docs.push(signed(&vol, &report_doc, Kind::Save, bytes));
    let reply = send(&mut hand, &vol, &mut responder, &mut li, &batch).unwrap();
    assert_eq!(reply.rejected.iter().map(|r| r.doc.as_str()).collect::<Vec<_>>(), vec![grid.to_string().as_str()]);
    assert!(reply.docs.iter().all(|e| e.doc != grid.to_string()), "nothing is answered for the refused grid");
    assert!(li.report_state(&filed.id).is_ok(), "the report came with the refused grid");
    // A change over the limit that also breaks a rule is refused for the rule, with its message:
    // being large does not make it a refusal of the document alone.
    let (_, residents) = attacker.get(ROOT, "residents").unwrap().unwrap();
    attacker.put(&residents, "01JNOTARESIDENT00000000000", "x".repeat(60_000)).unwrap();
    attacker.commit();
    let mut msg = attacker.sync().generate_sync_message(&mut automerge::sync::State::new()).unwrap();
    let li_heads = AutoCommit::load(&li.save_document(&grid).unwrap()).unwrap().get_heads();
    msg.changes = attacker.get_changes(&li_heads).iter().map(|c| c.raw_bytes().to_vec()).collect::<Vec<_>>().into();
    let bad =
        Batch { docs: vec![signed_with_seed(&seed, vol_actor, &grid, Kind::Sync, msg.encode())], ..Batch::default() };
    let err = send(&mut hand, &vol, &mut responder, &mut li, &bad).unwrap_err();
    assert!(matches!(&err, Error::Refused { code, .. } if code == "bad_record"), "{err}");
    // The grid is still there as it was.
    assert_eq!(li.households(&HouseholdFilter::default()).unwrap().len(), 1);
    // Li Na's own edits fill what room is left, then are refused too (the server would refuse
    // them), with the register as it was.
    let mut written = 0;
    let full = loop {
        let notes = format!("{written} {}", "探访记录 ".repeat(300));
        match li.update_household(&h.id, HouseholdUpdate { notes: Some(notes), ..Default::default() }) {
            Ok(_) => written += 1,
            Err(e) => break e,
        }
        assert!(written < 1_000, "the register never filled up");
    };
    assert!(matches!(&full, Error::InvalidInput { field: "document", .. }), "{full}");
    assert!(li.household(&h.id).unwrap().notes.starts_with(&format!("{} ", written - 1)));
    let mut light = report(&f, "Streetlight out at gate 2");
    light.reporter = f.li_na.id.clone();
    let r = li.file_report(light).unwrap();
    drop(hand);
    pump_peer(&mut vol, &mut li).unwrap();
    assert!(vol.report_state(&r.id).is_ok(), "the report reached the volunteer's phone");
}

/// What one message from another phone may make a phone do is bounded: its inventory once per
/// session, any other message at most a round's documents.
#[test]
fn a_phone_takes_one_inventory_per_session_and_a_rounds_worth_of_documents_per_message() {
    use doorstep_core::sync::wire::Kind;
    let dir = TempDir::new().unwrap();
    let (_office, _f, mut li, vol) = world(&dir);
    let mut responder = PeerResponder::new(&li).unwrap();
    let mut hand = introduced(&vol, &mut responder, &mut li);
    let inventory = Batch { inventory: true, ..Batch::default() };
    send(&mut hand, &vol, &mut responder, &mut li, &inventory).unwrap();
    let err = send(&mut hand, &vol, &mut responder, &mut li, &inventory).unwrap_err();
    assert!(matches!(&err, Error::Protocol(m) if m.contains("inventory twice")), "{err}");
    let many = Batch {
        docs: (0..257).map(|_| Entry::new(DocId::Report(ReportId::generate()), Kind::Want, vec![])).collect(),
        ..Batch::default()
    };
    // A refused message ends the session: the next is refused whatever it holds.
    let err = send(&mut hand, &vol, &mut responder, &mut li, &Batch::default()).unwrap_err();
    assert!(matches!(&err, Error::Protocol(m) if m.contains("already failed")), "{err}");
    let mut responder = PeerResponder::new(&li).unwrap();
    let mut hand = introduced(&vol, &mut responder, &mut li);
    let err = send(&mut hand, &vol, &mut responder, &mut li, &many).unwrap_err();
    assert!(matches!(&err, Error::Protocol(m) if m.contains("at most 256")), "{err}");
}

/// One answer of the server stays within a round's budget of entry data (about 8 MiB): a phone
/// behind on three grids of 5 MB each gets what fits and asks again for the rest.
#[test]
fn a_server_answer_stays_within_the_round_budget_and_the_phone_asks_again() {
    use doorstep_core::sync::wire::Kind;
    use doorstep_core::sync::ROUND_BUDGET_BYTES;
    let dir = TempDir::new().unwrap();
    let (mut office, f, _li, _vol) = world(&dir);
    let supervisor = f.supervisor.clone();
    let mut phone = open(&dir.path().join("supervisor.db"), &f.clock);
    enrol(&mut office, &mut phone, &supervisor.id);
    let third = office
        .add_unit(NewUnit { kind: UnitKind::Grid, parent: Some(f.community.id.clone()), name: "Weilai Grid 3".into() })
        .unwrap();
    let grids = [f.grid.id.clone(), f.other_grid.id.clone(), third.id.clone()];
    let households: Vec<HouseholdId> = grids
        .iter()
        .map(|g| {
            let new = NewHousehold {
                micro_grid: None,
                address: Address { building: "1".into(), unit: "1".into(), room: "101".into() },
                location: None,
                care_tags: Default::default(),
                risk: None,
                notes: String::new(),
            };
            office.add_household(g, new).unwrap().id
        })
        .collect();
    let month = Period::of(f.clock.now_ms());
    let docs: Vec<DocId> = grids.iter().map(|g| DocId::Visits(g.clone(), month)).collect();
    let data = |b: &Batch| b.docs.iter().map(|e| e.data.len()).sum::<usize>();
    // Whole documents: the first always goes, the next only while the answer stays in budget.
    // Notes that do not compress (Automerge deflates the documents it sends).
    let mut seed = 7u64;
    let mut notes = || -> String {
        (0..4_000)
            .map(|_| {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                char::from(b'a' + (seed >> 59) as u8 % 26)
            })
            .collect()
    };
    let mut fill = |office: &mut Store| {
        for h in &households {
            for _ in 0..1_299 {
                let mut v = visit(h, &f.li_na.id, VisitKind::Routine);
                v.notes = notes();
                office.record_visit(v).unwrap();
            }
        }
    };
    // The phone holds the three grids' month while it is small, then falls behind by 5 MB on each.
    for h in &households {
        office.record_visit(visit(h, &f.li_na.id, VisitKind::Routine)).unwrap();
    }
    pump_server(&mut phone, &mut office).unwrap();
    fill(&mut office);
    let wants = Batch { docs: docs.iter().map(|d| Entry::new(d, Kind::Want, vec![])).collect(), ..Batch::default() };
    let answer = server_responder(&office, &phone).respond(&mut office, &wants.encode()).unwrap();
    assert_eq!(Batch::decode(&answer).unwrap().docs.len(), 1, "5 MB and 5 MB more would pass 8 MiB");
    // The phone's session catches up; no answer carries more than the budget and one document.
    let mut session = Session::with_server(&mut phone).unwrap();
    let mut answers = Vec::new();
    while let Some(msg) = session.next_message(&mut phone).unwrap() {
        let reply = server_responder(&office, &phone).respond(&mut office, &msg).unwrap();
        let batch = Batch::decode(&reply).unwrap();
        answers.push((batch.docs.iter().filter(|e| !e.data.is_empty() && e.kind != Kind::Heads).count(), data(&batch)));
        session.receive(&mut phone, &reply).unwrap();
    }
    assert!(answers.iter().all(|(docs, n)| *docs <= 1 || *n <= ROUND_BUDGET_BYTES), "{answers:?}");
    assert!(answers.iter().any(|(docs, _)| *docs >= 2), "several documents share an answer: {answers:?}");
    for h in &households {
        assert_eq!(phone.visit_history(h, 0).unwrap().len(), 1_300);
    }
}

// ---- the document layout: registers by micro-grid, visits by month -----------------------------

/// The grid of the layout tests, recorded on Li Na's phone and synced to the office: three
/// households of the volunteer's micro-grid, four of the next building's (a micro-grid the office
/// adds) and two in no micro-grid, two residents and a visit each.
fn busy_grid(office: &mut Store, li: &mut Store, f: &District) -> (Unit, Vec<Household>) {
    let next_door = office
        .add_unit(NewUnit { kind: UnitKind::MicroGrid, parent: Some(f.grid.id.clone()), name: "Building 4".into() })
        .unwrap();
    pump_server(li, office).unwrap();
    let phone = &mut *li;
    let mut all = Vec::new();
    for (micro, n) in [(Some(&f.micro_grid.id), 3), (Some(&next_door.id), 4), (None, 2)] {
        for i in 0..n {
            let new = NewHousehold {
                micro_grid: micro.cloned(),
                address: Address { building: "3".into(), unit: "1".into(), room: format!("{}0{i}", all.len()) },
                ..Default::default()
            };
            let h = phone.add_household(&f.grid.id, new).unwrap();
            for (name, relation) in [("Zhao Guilan", Relation::Head), ("Zhao Ming", Relation::Child)] {
                phone
                    .add_resident(NewResident {
                        household: h.id.clone(),
                        name: Personal::new(name),
                        phone: Personal::new("13800138000"),
                        id_number: Personal::new("410105194203150028"),
                        birth_year: Some(1950),
                        relation,
                    })
                    .unwrap();
            }
            phone.record_visit(visit(&h.id, &f.li_na.id, VisitKind::Routine)).unwrap();
            all.push(h);
        }
    }
    pump_server(li, office).unwrap();
    (next_door, all)
}

/// Residents in a phone's query tables, counted in the file itself (hidden rows included).
fn residents_on(phone: &Store) -> usize {
    phone.households(&HouseholdFilter::default()).unwrap().iter().map(|h| phone.residents(&h.id).unwrap().len()).sum()
}

/// A micro-grid volunteer holds exactly her micro-grid's households and residents, from the
/// server and from the grid worker's phone; the grid worker holds every register of the grid.
#[test]
fn a_volunteer_holds_only_her_micro_grid() {
    let dir = TempDir::new().unwrap();
    let (mut office, f, mut li, mut vol) = world(&dir);
    let (next_door, all) = busy_grid(&mut office, &mut li, &f);
    pump_server(&mut vol, &mut office).unwrap();
    assert_eq!(residents_on(&li), 18);
    assert_eq!(li.households(&HouseholdFilter::default()).unwrap().len(), 9);
    assert_eq!(residents_on(&vol), 6, "her micro-grid's three households, two residents each");
    let month = Period::of(f.clock.now_ms());
    assert_eq!(
        vol.document_ids().unwrap(),
        vec![DocId::Directory, register(&f), DocId::Visits(f.micro_grid.id.clone(), month)],
        "no other register or month reached her phone"
    );
    assert!(vol.household(&all[3].id).is_err() && vol.visit_history(&all[3].id, 0).unwrap().is_empty());
    let rows: i64 = rusqlite::Connection::open(dir.path().join("volunteer.db"))
        .unwrap()
        .query_row("SELECT COUNT(*) FROM residents", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 6, "not even a hidden row of another micro-grid");
    // A grid document of the old layout holds every micro-grid: hers is not to hold.
    let old_grid = DocId::Grid(f.grid.id.clone());
    assert!(!office.may_read(&f.volunteer.id, &old_grid).unwrap());
    assert!(office.may_read(&f.li_na.id, &old_grid).unwrap());
    // The grid worker's phone offers her the same, and nothing more.
    let mut second = open(&dir.path().join("volunteer-2.db"), &f.clock);
    enrol(&mut office, &mut second, &f.volunteer.id);
    let directory = office.save_document(&DocId::Directory).unwrap();
    for p in [&mut li, &mut second] {
        p.merge_document(&DocId::Directory, &directory).unwrap();
    }
    pump_peer(&mut second, &mut li).unwrap();
    assert_eq!(residents_on(&second), 6);
    assert!(!second.document_ids().unwrap().contains(&DocId::Register(next_door.id.clone())));
    assert!(!second.document_ids().unwrap().contains(&DocId::Register(f.grid.id.clone())));
}

/// A month's document takes visits during the month and a week after; later visits go to the
/// current month whatever their date, and another phone's change written after the close is
/// refused alone.
#[test]
fn a_month_closes_for_writing_a_week_after_it_ends() {
    use doorstep_core::sync::wire::Kind;
    let dir = TempDir::new().unwrap();
    let (_office, f, mut li, mut vol) = world(&dir);
    let h = household(&mut li, &f, "301", &[]);
    let november = Period::of(f.clock.now_ms());
    let last_evening = november.end() - 3_600_000;
    let on_the_30th = |s: &mut Store, worker: &UserId| {
        let mut v = visit(&h.id, worker, VisitKind::Routine);
        v.at = Some(last_evening);
        s.record_visit(v).unwrap()
    };
    // In the grace week a visit of the 30th still goes to November.
    f.clock.set(november.closes_at() - 60_000);
    let in_grace = on_the_30th(&mut li, &f.li_na.id);
    let nov_doc = DocId::Visits(f.micro_grid.id.clone(), november);
    let dec_doc = DocId::Visits(f.micro_grid.id.clone(), november.next());
    assert_eq!(li.document_ids().unwrap(), vec![DocId::Directory, register(&f), nov_doc.clone()]);
    pump_peer(&mut vol, &mut li).unwrap();
    // Closed: the same visit, entered now, goes to December, keeping its date.
    f.clock.set(november.closes_at());
    let late = on_the_30th(&mut li, &f.li_na.id);
    assert!(li.document_ids().unwrap().contains(&dec_doc));
    let shown: Vec<i64> = li.visit_history(&h.id, 0).unwrap().iter().map(|v| v.at).collect();
    assert_eq!(shown, vec![last_evening, last_evening]);
    assert_ne!(in_grace.id, late.id);
    let err = li.delete_visit(&in_grace.id).unwrap_err();
    assert!(matches!(&err, Error::InvalidInput { field: "visit", .. }), "{err}");
    li.delete_visit(&late.id).unwrap();

    // The volunteer's phone with a modified app writes into November after it closed, and sends
    // it beside a report: November is refused alone, the report is taken.
    let mut am = automerge::AutoCommit::load(&vol.save_document(&nov_doc).unwrap())
        .unwrap()
        .with_actor(automerge::ActorId::from(hex(&vol.actor_id())));
    let (_, visits) = automerge::ReadDoc::get(&am, automerge::ROOT, "visits").unwrap().unwrap();
    let backdated = serde_json::json!({"id": "01JBACKDATED00000000000000", "household": h.id.as_str(),
        "worker": f.volunteer.id.as_str(), "at": last_evening, "kind": "routine", "outcome": "all_well"});
    automerge::transaction::Transactable::put(&mut am, &visits, "01JBACKDATED00000000000000", backdated.to_string())
        .unwrap();
    am.commit_with(automerge::transaction::CommitOptions::default().with_time(november.closes_at() / 1000 + 60));
    let mut note = report(&f, "Bicycles block the fire exit");
    note.reporter = f.volunteer.id.clone();
    let filed = vol.file_report(note).unwrap();
    let report_doc = DocId::Report(filed.id.clone());
    let before = li.save_document(&nov_doc).unwrap();
    let report_bytes = vol.save_document(&report_doc).unwrap();
    let mut responder = PeerResponder::new(&li).unwrap();
    let mut hand = introduced(&vol, &mut responder, &mut li);
    let batch = Batch {
        docs: vec![signed(&vol, &nov_doc, Kind::Save, am.save()), signed(&vol, &report_doc, Kind::Save, report_bytes)],
        ..Batch::default()
    };
    let reply = send(&mut hand, &vol, &mut responder, &mut li, &batch).unwrap();
    let refused: Vec<_> = reply.rejected.iter().map(|r| (r.doc.as_str(), r.code.as_str())).collect();
    assert_eq!(refused, vec![(nov_doc.to_string().as_str(), "period_closed")]);
    assert_eq!(li.save_document(&nov_doc).unwrap(), before, "nothing of it was kept");
    assert!(li.report_state(&filed.id).is_ok(), "the report came in");
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
}

/// A household moved to the next building's micro-grid goes with its residents: its new
/// register shows it on every phone, whichever of the two registers a phone merges first, and
/// its old volunteer no longer holds it.
#[test]
fn a_moved_household_shows_in_its_new_micro_grid_whatever_the_merge_order() {
    let dir = TempDir::new().unwrap();
    let (mut office, f, mut li, mut vol) = world(&dir);
    let (next_door, all) = busy_grid(&mut office, &mut li, &f);
    pump_server(&mut vol, &mut office).unwrap();
    let moved = &all[0];
    assert!(vol.household(&moved.id).is_ok());
    // Her phone may not move a household out of her micro-grid (the server would keep only the
    // tombstone): it takes someone who looks after both.
    let away = HouseholdUpdate { micro_grid: Some(Some(next_door.id.clone())), ..Default::default() };
    let err = vol.update_household(&all[1].id, away).unwrap_err();
    assert!(matches!(&err, Error::InvalidInput { field: "micro-grid", .. }), "{err}");
    // Offline, she visits the household the office is about to move.
    let offline = vol.record_visit(visit(&moved.id, &f.volunteer.id, VisitKind::Routine)).unwrap();
    let update = HouseholdUpdate { micro_grid: Some(Some(next_door.id.clone())), ..Default::default() };
    office.update_household(&moved.id, update).unwrap();
    assert_eq!(office.household(&moved.id).unwrap().micro_grid, Some(next_door.id.clone()));
    assert_eq!(office.residents(&moved.id).unwrap().len(), 2);
    let (old, new) = (register(&f), DocId::Register(next_door.id.clone()));
    let directory = office.save_document(&DocId::Directory).unwrap();
    let docs = [old.clone(), new.clone()].map(|d| (d.clone(), office.save_document(&d).unwrap()));
    let mut tables = Vec::new();
    for (name, order) in [("old-first", [0, 1]), ("new-first", [1, 0])] {
        let mut p = open(&dir.path().join(format!("{name}.db")), &f.clock);
        p.merge_document(&DocId::Directory, &directory).unwrap();
        for i in order {
            p.merge_document(&docs[i].0, &docs[i].1).unwrap();
        }
        assert_eq!(p.household(&moved.id).unwrap().micro_grid, Some(next_door.id.clone()), "{name}");
        assert_eq!(p.residents(&moved.id).unwrap().len(), 2, "{name}");
        let dump = p.dump_query_tables().unwrap();
        p.rebuild_indexes().unwrap();
        assert_eq!(p.dump_query_tables().unwrap(), dump, "{name}: the tables equal a rebuild");
        tables.push(dump);
    }
    assert_eq!(tables[0], tables[1]);
    // Edits go to the new register.
    let edit = HouseholdUpdate { notes: Some("Moved to Building 4".into()), ..Default::default() };
    office.update_household(&moved.id, edit).unwrap();
    assert!(office.save_document(&new).unwrap().len() > docs[1].1.len());
    // Her phone keeps the tombstone and shows the household no more; her visit from before she
    // heard of the move is taken (it belongs to her micro-grid's month).
    pump_server(&mut vol, &mut office).unwrap();
    assert!(office.visit_history(&moved.id, 0).unwrap().iter().any(|v| v.id == offline.id));
    assert!(vol.household(&moved.id).is_err());
    assert_eq!(residents_on(&vol), 4);
}

/// A household id is bound to the register that holds it: a volunteer's modified app writing a
/// record under a neighbouring micro-grid's household id into her own register (so that her copy
/// would show instead, on the grid worker's phone and the server) is refused whole.
#[test]
fn a_record_under_another_registers_id_is_refused() {
    use automerge::{transaction::Transactable, AutoCommit, ObjType, ReadDoc, ROOT};
    use doorstep_core::sync::wire::Kind;
    let dir = TempDir::new().unwrap();
    let (mut office, f, mut li, mut vol) = world(&dir);
    let (_next_door, all) = busy_grid(&mut office, &mut li, &f);
    pump_server(&mut vol, &mut office).unwrap();
    let neighbour = &all[3]; // in the next building's micro-grid
    let mut am = AutoCommit::load(&vol.save_document(&register(&f)).unwrap())
        .unwrap()
        .with_actor(automerge::ActorId::from(hex(&vol.actor_id())));
    let (_, households) = am.get(ROOT, "households").unwrap().unwrap();
    let record = am.put_object(&households, neighbour.id.as_str(), ObjType::Map).unwrap();
    let mut copy = neighbour.clone();
    copy.micro_grid = Some(f.micro_grid.id.clone());
    copy.notes = "moved out, do not visit".into();
    put_json(&mut am, &record, &serde_json::to_value(&copy).unwrap());
    am.commit();
    let batch = Batch { docs: vec![signed(&vol, &register(&f), Kind::Save, am.save())], ..Batch::default() };
    let before = office.dump_query_tables().unwrap();
    let err = server_responder(&office, &vol).respond(&mut office, &batch.encode()).unwrap_err();
    assert!(
        matches!(&err, Error::Refused { code, message } if code == "bad_record" && message.contains("another register")),
        "{err}"
    );
    assert_eq!(office.dump_query_tables().unwrap(), before);
    assert_eq!(office.household(&neighbour.id).unwrap().micro_grid, neighbour.micro_grid);
}
