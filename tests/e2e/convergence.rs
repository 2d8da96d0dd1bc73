//! Convergence under a hostile network: five phones and the server (six replicas) make random
//! edits, sync in random pairings (phone to phone, phone to server) while messages are lost,
//! duplicated, replayed out of order and cut short, and the server restarts mid-session. After
//! the network heals, every replica holds identical documents and identical query tables, and
//! every record any phone wrote (and did not delete) is everywhere.
//!
//! Among the honest steps, phones running a modified app send hostile messages built from valid
//! Automerge changes on their own actor (forged authors, replaced collections, deleted record
//! keys, oversized values, records of the wrong type, rewritten report headers) to the server or
//! to another phone: every one is refused, the replica it reached is left exactly as it was, and
//! no replica ever shows a forged record.
//!
//! Days pass between steps, so that visits fall into several months' documents and a month closes
//! (a phone offline across the month's end sends its visits after; a visit of a closed month can
//! no longer be deleted) while the replicas keep converging.
//!
//! The server side is core's `Responder` over the server's store file, the same code
//! `doorstep serve` runs behind HTTP; the HTTP layer itself is covered by `http_sync.rs`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use doorstep_core::sync::{wire, PeerResponder, ServerResponder, Session};
use doorstep_core::*;
use proptest::prelude::*;
use testkit::{enrol, introduced, office, send, District};

const PHONES: usize = 5;

#[derive(Clone, Debug)]
enum Edit {
    AddHousehold,
    Visit(usize),
    Notes(usize, u8),
    DeleteVisit(usize),
    FileReport,
    Comment(usize),
}

/// What a modified app on a phone sends instead of an honest message.
#[derive(Clone, Copy, Debug)]
enum Attack {
    /// A visit naming another user as its worker.
    ForgedVisit,
    /// A comment on a report naming another user as its author.
    ForgedEvent,
    /// A top-level map replaced by a new, empty one.
    ReplaceMap(usize),
    /// A household or resident key deleted.
    DeleteRecord,
    /// A household field of 100 KB.
    Oversized,
    /// A visit written as a number instead of its JSON.
    WrongType,
    /// A report header rewritten to name another reporter and grid.
    RewriteHeader,
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    Deliver,
    /// The request never arrives.
    LoseRequest,
    /// The request is handled, the answer never arrives.
    LoseAnswer,
    /// The request arrives twice.
    Duplicate,
    /// An earlier request of the session arrives again first.
    Replay,
    /// Only the first half of the request arrives.
    Truncate,
    /// The server restarts before handling the request.
    Restart,
}

#[derive(Clone, Debug)]
enum Step {
    Edit(usize, Edit),
    PeerSync(usize, usize, Vec<Fault>),
    ServerSync(usize, Vec<Fault>),
    /// Phone `.0` attacks the server (`None`) or another phone.
    Attack(usize, Option<usize>, Attack),
    /// Days pass: visits go into the next month's document, a month closes after its grace week.
    Days(u8),
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        6 => Just(Fault::Deliver),
        1 => Just(Fault::LoseRequest),
        1 => Just(Fault::LoseAnswer),
        1 => Just(Fault::Duplicate),
        1 => Just(Fault::Replay),
        1 => Just(Fault::Truncate),
        1 => Just(Fault::Restart),
    ]
}

fn attack() -> impl Strategy<Value = Attack> {
    prop_oneof![
        Just(Attack::ForgedVisit),
        Just(Attack::ForgedEvent),
        (0..3usize).prop_map(Attack::ReplaceMap),
        Just(Attack::DeleteRecord),
        Just(Attack::Oversized),
        Just(Attack::WrongType),
        Just(Attack::RewriteHeader),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let edit = prop_oneof![
        Just(Edit::AddHousehold),
        any::<usize>().prop_map(Edit::Visit),
        any::<usize>().prop_map(Edit::Visit),
        (any::<usize>(), any::<u8>()).prop_map(|(i, n)| Edit::Notes(i, n)),
        any::<usize>().prop_map(Edit::DeleteVisit),
        Just(Edit::FileReport),
        any::<usize>().prop_map(Edit::Comment),
    ];
    prop_oneof![
        3 => (0..PHONES, edit).prop_map(|(p, e)| Step::Edit(p, e)),
        1 => (0..PHONES, 0..PHONES, prop::collection::vec(fault(), 1..6))
            .prop_filter("two phones", |(a, b, _)| a != b)
            .prop_map(|(a, b, f)| Step::PeerSync(a, b, f)),
        1 => (0..PHONES, prop::collection::vec(fault(), 1..6)).prop_map(|(p, f)| Step::ServerSync(p, f)),
        1 => (0..PHONES, prop::option::of(0..PHONES), attack())
            .prop_filter("another phone", |(a, b, _)| Some(*a) != *b)
            .prop_map(|(a, b, k)| Step::Attack(a, b, k)),
        1 => (1..=15u8).prop_map(Step::Days),
    ]
}

struct Phone {
    store: Store,
    user: User,
}

struct World {
    _dir: tempfile::TempDir,
    server_path: PathBuf,
    server: Option<Store>,
    clock: Arc<FixedClock>,
    phones: Vec<Phone>,
    people: District,
    /// Records written and not deleted: they must end up on every replica.
    households: BTreeSet<HouseholdId>,
    visits: BTreeSet<VisitId>,
    reports: BTreeSet<ReportId>,
    deleted_visits: BTreeSet<VisitId>,
    /// Ids of the forged records sent: no replica may ever show one.
    forged: BTreeSet<String>,
    /// Attacks that reached a replica (and were refused).
    attacks: usize,
}

fn open(path: &std::path::Path, clock: &Arc<FixedClock>) -> Store {
    Store::open(path, OpenOptions { clock: clock.clone(), ..OpenOptions::default() }).unwrap()
}

/// The server's store: it keeps every document (no window).
fn open_server(path: &std::path::Path, clock: &Arc<FixedClock>) -> Store {
    Store::open(path, OpenOptions { clock: clock.clone(), window: None, ..OpenOptions::default() }).unwrap()
}

/// 2026-11-29 12:00 UTC: two days or more cross into December; ten or more close November.
const START: i64 = 1_795_953_600_000;
/// Days a run may move on in all: within the phones' three-month window, so that every
/// replica still holds every document at the end.
const MAX_DAYS: i64 = 60;

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::new(START));
    let (mut office, people) = office(&dir.path().join("office.sqlite"));
    let extra = office
        .add_user(NewUser {
            name: Personal::new("Zhao Lei"),
            role: Role::GridWorker,
            unit: people.grid.id.clone(),
            department: None,
        })
        .unwrap();
    let users = [&people.li_na, &people.volunteer, &people.supervisor, &extra, &people.li_na];
    let mut phones = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let mut store = open(&dir.path().join(format!("phone{i}.sqlite")), &clock);
        enrol(&mut office, &mut store, &user.id);
        phones.push(Phone { store, user: (*user).clone() });
    }
    let server_path = dir.path().join("server.sqlite");
    let mut server = open_server(&server_path, &clock);
    server.merge_document(&DocId::Directory, &office.save_document(&DocId::Directory).unwrap()).unwrap();
    let mut w = World {
        _dir: dir,
        server_path,
        server: Some(server),
        clock,
        phones,
        people,
        households: BTreeSet::new(),
        visits: BTreeSet::new(),
        reports: BTreeSet::new(),
        deleted_visits: BTreeSet::new(),
        forged: BTreeSet::new(),
        attacks: 0,
    };
    for p in 0..PHONES {
        w.server_sync(p, &[Fault::Deliver]).unwrap();
    }
    w
}

impl World {
    fn edit(&mut self, p: usize, e: &Edit) {
        self.clock.advance(60_000);
        let grid = self.people.grid.id.clone();
        let micro = self.people.micro_grid.id.clone();
        let phone = &mut self.phones[p];
        let households = phone.store.households(&HouseholdFilter::default()).unwrap();
        let reports = phone.store.reports(&ReportFilter::default()).unwrap();
        let pick = |n: usize, len: usize| n % len.max(1);
        match e {
            Edit::AddHousehold => {
                let h = phone
                    .store
                    .add_household(
                        &grid,
                        NewHousehold {
                            micro_grid: Some(micro),
                            address: Address { building: "3".into(), unit: "1".into(), room: format!("{}", 100 + p) },
                            location: None,
                            care_tags: Default::default(),
                            risk: None,
                            notes: String::new(),
                        },
                    )
                    .unwrap();
                self.households.insert(h.id);
            }
            Edit::Visit(i) if !households.is_empty() => {
                let h = &households[pick(*i, households.len())];
                let v = phone
                    .store
                    .record_visit(NewVisit {
                        household: h.id.clone(),
                        worker: phone.user.id.clone(),
                        at: None,
                        location: None,
                        kind: VisitKind::Routine,
                        outcome: VisitOutcome::AllWell,
                        notes: format!("visit by phone {p}"),
                        follow_up: false,
                        photos: vec![],
                    })
                    .unwrap();
                self.visits.insert(v.id);
            }
            Edit::Notes(i, n) if !households.is_empty() => {
                let h = &households[pick(*i, households.len())];
                let update = HouseholdUpdate { notes: Some(format!("note {n} from phone {p}")), ..Default::default() };
                phone.store.update_household(&h.id, update).unwrap();
            }
            Edit::DeleteVisit(i) if !households.is_empty() => {
                let h = &households[pick(*i, households.len())];
                if let Some(v) = phone.store.visit_history(&h.id, 100).unwrap().first() {
                    // A visit of a closed month stays as it is.
                    match phone.store.delete_visit(&v.id) {
                        Ok(()) => {
                            self.deleted_visits.insert(v.id.clone());
                        }
                        Err(Error::InvalidInput { reason, .. }) if reason.contains("is closed") => {}
                        Err(e) => panic!("deleting a visit: {e}"),
                    }
                }
            }
            Edit::FileReport => {
                let r = phone
                    .store
                    .file_report(NewReport {
                        reporter: phone.user.id.clone(),
                        category: CategoryId::parse("environment").unwrap(),
                        description: format!("rubbish piling up, seen by phone {p}"),
                        location: None,
                        address: Some("Building 3 bin store".into()),
                        grid: Some(grid),
                        photos: vec![],
                    })
                    .unwrap();
                self.reports.insert(r.id);
            }
            Edit::Comment(i) if !reports.is_empty() => {
                let r = &reports[pick(*i, reports.len())];
                phone
                    .store
                    .add_report_event(NewReportEvent {
                        report: r.id.clone(),
                        author: phone.user.id.clone(),
                        kind: ReportEventKind::Comment,
                        note: format!("comment from phone {p}"),
                        target: None,
                        score: None,
                        photos: vec![],
                        classification: None,
                        risk: None,
                    })
                    .unwrap();
            }
            _ => {}
        }
    }

    fn restart_server(&mut self) {
        self.server = None;
        self.server = Some(open_server(&self.server_path, &self.clock));
    }

    /// One session of phone `p` with the server; `Err` when a fault ended it.
    fn server_sync(&mut self, p: usize, faults: &[Fault]) -> std::result::Result<(), String> {
        let phone = &mut self.phones[p].store;
        let actor = phone.actor_id();
        let mut session = Session::with_server(phone).map_err(|e| e.to_string())?;
        let mut sent: Vec<Vec<u8>> = Vec::new();
        let mut i = 0;
        while let Some(msg) = self.phones[p].store_next(&mut session)? {
            let fault = faults[i % faults.len()];
            i += 1;
            if let Fault::Restart = fault {
                self.restart_server();
            }
            let server = self.server.as_mut().unwrap();
            let user = server.user_of_actor(&actor).unwrap().unwrap();
            let mut respond = |bytes: &[u8]| {
                ServerResponder::for_device(&actor, user.clone(), std::sync::Arc::new(testkit::deployment()))
                    .unwrap()
                    .respond(server, bytes)
            };
            let answer = match fault {
                Fault::LoseRequest => return Err("request lost".into()),
                Fault::Truncate => {
                    assert!(respond(&msg[..msg.len() / 2]).is_err(), "a cut message is refused");
                    return Err("request cut short".into());
                }
                Fault::Replay => {
                    if let Some(old) = sent.last() {
                        let _ = respond(old);
                    }
                    respond(&msg)
                }
                Fault::Duplicate => {
                    let _ = respond(&msg);
                    respond(&msg)
                }
                Fault::LoseAnswer => {
                    let _ = respond(&msg);
                    return Err("answer lost".into());
                }
                Fault::Deliver | Fault::Restart => respond(&msg),
            }
            .map_err(|e| e.to_string())?;
            sent.push(msg);
            session.receive(&mut self.phones[p].store, &answer).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// One session started by phone `a` with phone `b`.
    fn peer_sync(&mut self, a: usize, b: usize, faults: &[Fault]) -> std::result::Result<(), String> {
        let (first, second) = if a < b { self.phones.split_at_mut(b) } else { self.phones.split_at_mut(a) };
        let (pa, pb) = if a < b { (&mut first[a], &mut second[0]) } else { (&mut second[0], &mut first[b]) };
        let mut session = Session::with_peer(&mut pa.store).map_err(|e| e.to_string())?;
        let mut responder = PeerResponder::new(&pb.store).map_err(|e| e.to_string())?;
        let mut sent: Vec<Vec<u8>> = Vec::new();
        let mut i = 0;
        while let Some(msg) = session.next_message(&mut pa.store).map_err(|e| e.to_string())? {
            let fault = faults[i % faults.len()];
            i += 1;
            let answer = match fault {
                Fault::LoseRequest => return Err("request lost".into()),
                Fault::Truncate => {
                    assert!(responder.respond(&mut pb.store, &msg[..msg.len() / 2]).is_err());
                    return Err("request cut short".into());
                }
                Fault::Replay => {
                    if let Some(old) = sent.last() {
                        let _ = responder.respond(&mut pb.store, old);
                    }
                    responder.respond(&mut pb.store, &msg)
                }
                Fault::Duplicate => {
                    let _ = responder.respond(&mut pb.store, &msg);
                    responder.respond(&mut pb.store, &msg)
                }
                Fault::LoseAnswer => {
                    let _ = responder.respond(&mut pb.store, &msg);
                    return Err("answer lost".into());
                }
                Fault::Deliver | Fault::Restart => responder.respond(&mut pb.store, &msg),
            }
            .map_err(|e| e.to_string())?;
            sent.push(msg);
            session.receive(&mut pa.store, &answer).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Phone `p`'s modified app builds `attack` on its own copy of a document (never stored on
    /// the phone) and sends it whole to the server or to phone `target`. The message must be
    /// refused, and the replica that got it must hold exactly what it held before.
    fn attack(&mut self, p: usize, target: Option<usize>, attack: Attack) {
        use automerge::{transaction::Transactable, ObjType, ReadDoc, ROOT};
        let other_user = self.phones[(p + 1) % PHONES].user.id.clone();
        let other_user =
            if other_user == self.phones[p].user.id { self.people.supervisor.id.clone() } else { other_user };
        let register = DocId::Register(self.people.micro_grid.id.clone());
        let visits = DocId::Visits(self.people.micro_grid.id.clone(), Period::of(self.clock.now_ms()));
        let phone = &mut self.phones[p].store;
        let actor = automerge::ActorId::from(hex(&phone.actor_id()));
        let reports = phone.reports(&ReportFilter::default()).unwrap();
        let doc = match attack {
            Attack::ForgedEvent | Attack::RewriteHeader => match reports.first() {
                Some(r) => DocId::Report(r.id.clone()),
                None => return,
            },
            Attack::ForgedVisit | Attack::WrongType | Attack::ReplaceMap(2) => visits.clone(),
            _ => register.clone(),
        };
        let Ok(bytes) = phone.save_document(&doc) else { return };
        let mut am = automerge::AutoCommit::load(&bytes).unwrap().with_actor(actor);
        let map = |am: &automerge::AutoCommit, name: &str| am.get(ROOT, name).unwrap().unwrap().1;
        let first = |am: &automerge::AutoCommit, name: &str| am.keys(map(am, name)).next();
        let forged_id = VisitId::generate().as_str().to_string();
        let expected = match attack {
            Attack::ForgedVisit => {
                let Some(h) = phone.households(&HouseholdFilter::default()).unwrap().first().map(|h| h.id.to_string())
                else {
                    return;
                };
                let v = serde_json::json!({"id": forged_id, "household": h, "worker": other_user.as_str(),
                    "at": self.clock.now_ms(), "kind": "routine", "outcome": "all_well"});
                am.put(map(&am, "visits"), forged_id.as_str(), v.to_string()).unwrap();
                self.forged.insert(forged_id.clone());
                "forged_author"
            }
            Attack::ForgedEvent => {
                let e = serde_json::json!({"id": forged_id, "at": self.clock.now_ms(), "author": other_user.as_str(),
                    "kind": "comment", "note": "forged"});
                am.put(map(&am, "events"), forged_id.as_str(), e.to_string()).unwrap();
                self.forged.insert(forged_id.clone());
                "forged_author"
            }
            Attack::ReplaceMap(i) => {
                am.put_object(ROOT, ["households", "residents", "visits"][i], ObjType::Map).unwrap();
                "root_changed"
            }
            Attack::DeleteRecord => {
                let Some(h) = first(&am, "households") else { return };
                am.delete(map(&am, "households"), h.as_str()).unwrap();
                "deleted_record"
            }
            Attack::Oversized => {
                let Some(h) = first(&am, "households") else { return };
                let (_, record) = am.get(map(&am, "households"), h.as_str()).unwrap().unwrap();
                am.put(&record, "notes", "x".repeat(100_000)).unwrap();
                "too_large"
            }
            Attack::WrongType => {
                am.put(map(&am, "visits"), forged_id.as_str(), 42).unwrap();
                self.forged.insert(forged_id.clone());
                "bad_record"
            }
            Attack::RewriteHeader => {
                let (value, _) = am.get(map(&am, "header"), "report").unwrap().unwrap();
                let mut header: serde_json::Value = serde_json::from_str(&value.into_string().unwrap()).unwrap();
                header["reporter"] = other_user.as_str().into();
                header["grid"] = self.people.other_grid.id.as_str().into();
                am.put(map(&am, "header"), "report", header.to_string()).unwrap();
                "immutable_record"
            }
        };
        am.commit();
        // Signed with the phone's own key, beside the signatures it holds of others' changes,
        // as its modified app would send it: what is refused is the attack itself.
        let mut entry = testkit::signed(&self.phones[p].store, &doc, wire::Kind::Save, am.save());
        entry.vouchers.extend(self.phones[p].store.vouchers_for_tests(&doc).unwrap());
        let batch = wire::Batch { docs: vec![entry], ..Default::default() };
        let phone_actor = self.phones[p].store.actor_id();
        let (result, before, after) = match target {
            None => {
                let server = self.server.as_mut().unwrap();
                let before = (documents(server), server.dump_query_tables().unwrap());
                let user = server.user_of_actor(&phone_actor).unwrap().unwrap();
                let result =
                    ServerResponder::for_device(&phone_actor, user, std::sync::Arc::new(testkit::deployment()))
                        .unwrap()
                        .respond(server, &batch.encode())
                        .map(|reply| wire::Batch::decode(&reply).unwrap());
                (result, before, (documents(server), server.dump_query_tables().unwrap()))
            }
            Some(t) => {
                let (first, second) = if p < t { self.phones.split_at_mut(t) } else { self.phones.split_at_mut(p) };
                let (pa, pb) = if p < t { (&mut first[p], &mut second[0]) } else { (&mut second[0], &mut first[t]) };
                let before = (documents(&mut pb.store), pb.store.dump_query_tables().unwrap());
                let mut responder = PeerResponder::new(&pb.store).unwrap();
                let mut hand = introduced(&pa.store, &mut responder, &mut pb.store);
                let result = send(&mut hand, &pa.store, &mut responder, &mut pb.store, &batch);
                (result, before, (documents(&mut pb.store), pb.store.dump_query_tables().unwrap()))
            }
        };
        // A document over a limit is refused alone, in the answer's `rejected` (the rest of the
        // message would be taken); every other attack refuses the whole message.
        let alone = |reply: &wire::Batch| reply.rejected.iter().find(|r| r.doc == doc.to_string()).cloned();
        match result {
            // The server may see first that the copy carries other phones' changes it lacks.
            Err(Error::Refused { code, .. }) if code == expected && expected != "too_large" => {}
            Ok(reply) if expected == "too_large" && alone(&reply).is_some_and(|r| r.code == expected) => {}
            other => panic!("{attack:?} from phone {p} to {target:?}: {other:?}"),
        }
        assert!(before == after, "{attack:?} from phone {p} to {target:?} changed what the replica holds");
        self.attacks += 1;
    }

    /// The network heals: every phone syncs with the server, pass after pass, until no phone
    /// has changes the server lacks and a last pass has brought everyone everything. (A change
    /// that depends on another phone's change goes to the server after that one.)
    fn heal(&mut self) {
        for _ in 0..10 {
            for p in 0..PHONES {
                self.server_sync(p, &[Fault::Deliver]).expect("a clean sync succeeds");
            }
            if self.phones.iter_mut().all(|p| p.store.sync_status().unwrap().pending_documents == 0) {
                // Everything reached the server; one more pass brings it to every phone.
                for p in 0..PHONES {
                    self.server_sync(p, &[Fault::Deliver]).expect("a clean sync succeeds");
                }
                return;
            }
        }
        panic!("changes still pending after ten passes");
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
}

impl Phone {
    fn store_next(&mut self, session: &mut Session) -> std::result::Result<Option<Vec<u8>>, String> {
        session.next_message(&mut self.store).map_err(|e| e.to_string())
    }
}

fn documents(s: &mut Store) -> Vec<(DocId, Vec<u8>)> {
    // Compare document *content*: the same changes, whatever order they arrived in.
    s.document_ids()
        .unwrap()
        .into_iter()
        .map(|d| {
            let bytes = s.save_document(&d).unwrap();
            let mut am = automerge::AutoCommit::load(&bytes).unwrap();
            let mut heads = am.get_heads();
            heads.sort();
            (d, heads.iter().flat_map(|h| h.0).collect())
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, max_shrink_iters: 50, ..ProptestConfig::default() })]

    #[test]
    fn six_replicas_converge_through_a_hostile_network(steps in prop::collection::vec(step(), 10..40)) {
        let mut w = world();
        for s in &steps {
            match s {
                Step::Edit(p, e) => w.edit(*p, e),
                Step::PeerSync(a, b, f) => { let _ = w.peer_sync(*a, *b, f); }
                Step::ServerSync(p, f) => { let _ = w.server_sync(*p, f); }
                Step::Attack(p, t, a) => w.attack(*p, *t, *a),
                Step::Days(n) => {
                    if w.clock.now_ms() + i64::from(*n) * 86_400_000 < START + MAX_DAYS * 86_400_000 {
                        w.clock.advance(i64::from(*n) * 86_400_000);
                    }
                }
            }
        }
        w.heal();
        let mut server = w.server.take().unwrap();
        let expected_docs = documents(&mut server);
        let expected_tables = server.dump_query_tables().unwrap();
        for (i, phone) in w.phones.iter_mut().enumerate() {
            prop_assert_eq!(&documents(&mut phone.store), &expected_docs, "documents of phone {}", i);
            prop_assert_eq!(&phone.store.dump_query_tables().unwrap(), &expected_tables, "tables of phone {}", i);
            let status = phone.store.sync_status().unwrap();
            prop_assert_eq!(status.pending_changes, 0, "phone {} has unacknowledged changes", i);
        }
        for h in &w.households {
            prop_assert!(server.household(h).is_ok(), "household {} was lost", h);
        }
        let grid = w.people.grid.id.clone();
        let all_visits: BTreeSet<VisitId> = server
            .households(&HouseholdFilter { grid: Some(grid), ..Default::default() })
            .unwrap()
            .iter()
            .flat_map(|h| server.visit_history(&h.id, 10_000).unwrap())
            .map(|v| v.id)
            .collect();
        for v in w.visits.difference(&w.deleted_visits) {
            prop_assert!(all_visits.contains(v), "visit {} was lost", v);
        }
        for v in &w.deleted_visits {
            prop_assert!(!all_visits.contains(v), "deleted visit {} came back", v);
        }
        // Each visit sits in the document of the month it was made in (these visits are recorded
        // as they are made), the same on every replica (the documents are equal above).
        for id in server.document_ids().unwrap() {
            let DocId::Visits(_, month) = &id else { continue };
            use automerge::ReadDoc;
            let am = automerge::AutoCommit::load(&server.save_document(&id).unwrap()).unwrap();
            let visits = am.get(automerge::ROOT, "visits").unwrap().unwrap().1;
            for key in am.keys(&visits) {
                let (value, _) = am.get(&visits, key.as_str()).unwrap().unwrap();
                let v: serde_json::Value = serde_json::from_str(&value.into_string().unwrap()).unwrap();
                prop_assert_eq!(Period::of(v["at"].as_i64().unwrap()), *month, "visit {} in {}", key, id);
            }
        }
        let reports: BTreeSet<ReportId> =
            server.reports(&ReportFilter::default()).unwrap().into_iter().map(|r| r.id).collect();
        prop_assert_eq!(&reports, &w.reports);
        // No replica shows a forged record, in its tables or its documents.
        for (i, store) in std::iter::once(&mut server).chain(w.phones.iter_mut().map(|p| &mut p.store)).enumerate() {
            let tables = format!("{:?}", store.dump_query_tables().unwrap());
            for id in &w.forged {
                prop_assert!(!tables.contains(id.as_str()), "replica {} shows forged record {}", i, id);
            }
        }
    }
}
