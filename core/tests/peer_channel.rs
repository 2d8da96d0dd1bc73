//! The channel under phone-to-phone sessions (docs/PROTOCOL.md §9), attacked as a modified app
//! or a stranger's phone in the stairwell would: claiming another phone's identity with its
//! recorded certificate, with a certificate of another deployment, an altered or an expired one,
//! a hello that names someone else, and messages played again, altered, cut short or sent out
//! of turn. Each is refused before anything is offered or applied.

use doorstep_core::hooks::{device_public_key_of, Forged, HandPeer, Identity};
use doorstep_core::identity::{Certificate, DeploymentSigner};
use doorstep_core::sync::wire::{Batch, Hello, Mode};
use doorstep_core::sync::{PeerResponder, Session};
use doorstep_core::*;
use tempfile::TempDir;
use testkit::*;

/// Li Na's and the volunteer's phones, both holding the grid's register with a resident, and
/// Zhang Wei's (another grid).
struct Stairwell {
    _dir: TempDir,
    office: Store,
    f: District,
    li: Store,
    vol: Store,
    zhang: Store,
}

fn stairwell() -> Stairwell {
    let dir = TempDir::new().unwrap();
    let (mut office, f) = district(&dir.path().join("office.db"));
    let mut phones = Vec::new();
    for (name, user) in [("li-na", &f.li_na), ("volunteer", &f.volunteer), ("zhang", &f.zhang_wei)] {
        let mut p = open(&dir.path().join(format!("{name}.db")), &f.clock);
        enrol(&mut office, &mut p, &user.id);
        phones.push(p);
    }
    let directory = office.save_document(&DocId::Directory).unwrap();
    for p in &mut phones {
        p.merge_document(&DocId::Directory, &directory).unwrap();
    }
    let zhang = phones.pop().unwrap();
    let mut vol = phones.pop().unwrap();
    let mut li = phones.pop().unwrap();
    let h = household(&mut li, &f, "301", &[CareTag::ElderlyAlone]);
    li.record_visit(visit(&h.id, &f.li_na.id, VisitKind::WelfareCheck)).unwrap();
    pump(&mut li, &mut vol).unwrap();
    assert!(vol.document_ids().unwrap().contains(&register(&f)), "the volunteer's phone holds the grid");
    Stairwell { _dir: dir, office, f, li, vol, zhang }
}

fn pump(a: &mut Store, b: &mut Store) -> Result<Session> {
    let mut session = Session::with_peer(a)?;
    let mut responder = PeerResponder::new(b)?;
    while let Some(msg) = session.next_message(a)? {
        let reply = match responder.respond(b, &msg) {
            Ok(reply) => reply,
            Err(e) => responder.refusal(b, &e),
        };
        session.receive(a, &reply)?;
    }
    Ok(session)
}

fn hello_as(user: &UserId, actor: &str) -> Vec<u8> {
    let hello = Hello { mode: Mode::Peer, user: user.to_string(), device: actor.to_string(), summary: None };
    Batch { hello: Some(hello), ..Batch::default() }.encode()
}

/// What the volunteer's phone answers a phone that presents `identity` and says it is `claims`
/// (user, actor) in its hello: the responder's error, after checking that the impostor got
/// nothing but the volunteer's proof and a refusal with no document in it, and that nothing of
/// the volunteer's phone changed.
fn impostor_meets_the_volunteer(w: &mut Stairwell, identity: Identity, claims: (&UserId, &str)) -> Error {
    let before = (w.vol.document_ids().unwrap(), w.vol.dump_query_tables().unwrap());
    let mut impostor = HandPeer::default();
    let mut responder = PeerResponder::new(&w.vol).unwrap();
    let proof = responder.respond(&mut w.vol, &impostor.hello().unwrap()).unwrap();
    // The volunteer's phone names itself to whoever asks (Noise XX): its certificate, no more.
    assert!(proof.len() < 600, "{}", proof.len());
    let (actor, _) = impostor.read_proof(&w.li, &proof).unwrap();
    assert_eq!(actor, w.vol.actor_id());
    let msg = impostor.seal(&identity, &hello_as(claims.0, claims.1)).unwrap();
    let err = responder.respond(&mut w.vol, &msg).unwrap_err();
    let reply = responder.refusal(&w.vol, &err);
    // The refusal says why, and no more: in the clear when the credential failed (the channel
    // never opened on the volunteer's side), sealed when the hello did.
    let code = match &err {
        Error::Refused { code, .. } => code.to_string(),
        Error::Protocol(_) => "bad_message".to_string(),
        other => panic!("{other}"),
    };
    if code == "unknown_peer" {
        assert!(reply.starts_with(b"DN"), "sealed once the channel is open");
    } else {
        let plain = Batch::decode(&reply).expect("a refusal in the clear");
        assert!(plain.docs.is_empty() && plain.hello.is_none() && plain.refused.is_some(), "{plain:?}");
    }
    match impostor.open(&reply) {
        Err(Error::Refused { code: told, .. }) => assert_eq!(told.as_str(), code),
        other => panic!("{other:?}"),
    }
    // The session is over for the impostor: what it sends next is refused.
    let again = impostor.seal(&identity, &Batch { inventory: true, ..Batch::default() }.encode()).unwrap();
    assert!(responder.respond(&mut w.vol, &again).is_err());
    assert_eq!((w.vol.document_ids().unwrap(), w.vol.dump_query_tables().unwrap()), before);
    err
}

fn refused(err: &Error, code: &str, says: &str) {
    assert!(matches!(err, Error::Refused { code: c, .. } if c == code), "{err}");
    assert!(err.to_string().contains(says), "{err}");
}

/// The attack of the issue: claiming Li Na's (user, actor) pair, which every device can read in
/// the directory, with her real certificate recorded from an earlier handshake.
#[test]
fn a_phone_presenting_li_nas_recorded_certificate_gets_nothing() {
    let mut w = stairwell();
    let recorded = w.li.certificate().unwrap().unwrap();
    let (li_na, li_actor) = (w.f.li_na.id.clone(), w.li.actor_id());
    let forged = Identity::Forged(Forged { certificate: recorded, seed: [7; 32] });
    let err = impostor_meets_the_volunteer(&mut w, forged, (&li_na, &li_actor));
    refused(&err, "bad_certificate", "is not the other phone's own");
}

#[test]
fn a_certificate_of_another_deployment_is_refused() {
    let mut w = stairwell();
    let seed = [9; 32];
    let elsewhere = DeploymentSigner::generate().unwrap();
    let now = w.vol.now();
    let (li_na, li_actor) = (w.f.li_na.id.clone(), w.li.actor_id());
    let cert = elsewhere.issue(&device_public_key_of(&seed).unwrap(), &li_actor, &li_na, now - DAY, now + DAY).unwrap();
    let err =
        impostor_meets_the_volunteer(&mut w, Identity::Forged(Forged { certificate: cert, seed }), (&li_na, &li_actor));
    refused(&err, "bad_certificate", "unknown key");
    assert!(!err.to_string().contains(&li_actor), "a certificate nobody vouches for names nobody: {err}");
}

/// Zhang Wei's phone, with his own key, presents his certificate altered to name Li Na.
#[test]
fn an_altered_certificate_is_refused() {
    let mut w = stairwell();
    let (li_na, li_actor) = (w.f.li_na.id.clone(), w.li.actor_id());
    let mut cert = w.zhang.certificate().unwrap().unwrap();
    cert.user = li_na.clone();
    cert.actor = li_actor.clone();
    // Zhang Wei's key is inside his store; a forged identity with that certificate cannot prove
    // it, so the altered certificate is proved with a key it names instead.
    let seed = [3; 32];
    cert.device_key = device_public_key_of(&seed).unwrap();
    let err =
        impostor_meets_the_volunteer(&mut w, Identity::Forged(Forged { certificate: cert, seed }), (&li_na, &li_actor));
    refused(&err, "bad_certificate", "signature does not verify");

    // A credential whose fields are not their sizes is not read at all.
    let mut cert = w.zhang.certificate().unwrap().unwrap();
    cert.device_key = "00".repeat(31);
    let err =
        impostor_meets_the_volunteer(&mut w, Identity::Forged(Forged { certificate: cert, seed }), (&li_na, &li_actor));
    assert!(matches!(&err, Error::Protocol(m) if m.contains("credential could not be read")), "{err}");
}

/// A certificate the deployment did issue, to a phone that stopped syncing (lost, or revoked
/// and never renewed), expired by the volunteer's clock.
#[test]
fn an_expired_certificate_is_refused() {
    let mut w = stairwell();
    let seed = [5; 32];
    let now = w.vol.now();
    let (li_na, li_actor) = (w.f.li_na.id.clone(), w.li.actor_id());
    let cert: Certificate = deployment()
        .issue(&device_public_key_of(&seed).unwrap(), &li_actor, &li_na, now - 20 * DAY, now - 6 * DAY)
        .unwrap();
    let err =
        impostor_meets_the_volunteer(&mut w, Identity::Forged(Forged { certificate: cert, seed }), (&li_na, &li_actor));
    refused(&err, "bad_certificate", "has expired");
}

/// Zhang Wei's own phone, proving its own certificate, says in its hello that it is Li Na's.
#[test]
fn a_hello_naming_another_phone_than_the_certificate_is_refused() {
    let mut w = stairwell();
    let zhang = std::mem::replace(&mut w.zhang, open(&w._dir.path().join("spare.db"), &w.f.clock));
    let (li_na, li_actor) = (w.f.li_na.id.clone(), w.li.actor_id());
    let err = impostor_meets_the_volunteer(&mut w, Identity::Store(&zhang), (&li_na, &li_actor));
    refused(&err, "unknown_peer", "another device or user than its certificate names");
    // His own device, another user.
    let zhang_actor = zhang.actor_id();
    let err = impostor_meets_the_volunteer(&mut w, Identity::Store(&zhang), (&li_na, &zhang_actor));
    refused(&err, "unknown_peer", "another device or user");
}

/// The other direction: a phone answering Li Na's session with the volunteer's recorded
/// certificate. Li Na's phone refuses its proof and sends nothing after its first message.
#[test]
fn a_responder_presenting_a_recorded_certificate_gets_nothing() {
    let mut w = stairwell();
    let recorded = w.vol.certificate().unwrap().unwrap();
    let mut session = Session::with_peer(&mut w.li).unwrap();
    let first = session.next_message(&mut w.li).unwrap().unwrap();
    assert!(first.len() < 64, "the first message is an ephemeral key: {} bytes", first.len());
    let mut impostor = HandPeer::default();
    let forged = Identity::Forged(Forged { certificate: recorded, seed: [1; 32] });
    let proof = impostor.answer_hello(&forged, &first).unwrap();
    let err = session.receive(&mut w.li, &proof).unwrap_err();
    refused(&err, "bad_certificate", "is not the other phone's own");
    assert!(session.next_message(&mut w.li).is_err(), "nothing more is sent");
}

/// Every frame of an honest session of the volunteer's phone with Li Na's, recorded by a
/// listener, then played to Li Na's second phone (which lacks what the session carried): the
/// handshake's first message gets a fresh answer, the rest does not decrypt against it.
#[test]
fn a_recorded_session_played_again_is_refused() {
    let mut w = stairwell();
    let mut second = open(&w._dir.path().join("li-na-2.db"), &w.f.clock);
    enrol(&mut w.office, &mut second, &w.f.li_na.id);
    let directory = w.office.save_document(&DocId::Directory).unwrap();
    for p in [&mut second, &mut w.li, &mut w.vol] {
        p.merge_document(&DocId::Directory, &directory).unwrap();
    }
    pump(&mut w.li, &mut second).unwrap();
    let h = household_of(&w);
    w.vol.record_visit(visit(&h, &w.f.volunteer.id, VisitKind::BellCheckAnswered)).unwrap();
    let mut recorded = Vec::new();
    let mut session = Session::with_peer(&mut w.vol).unwrap();
    let mut responder = PeerResponder::new(&w.li).unwrap();
    while let Some(msg) = session.next_message(&mut w.vol).unwrap() {
        recorded.push(msg.clone());
        let reply = responder.respond(&mut w.li, &msg).unwrap();
        session.receive(&mut w.vol, &reply).unwrap();
    }
    assert!(recorded.len() >= 3, "{}", recorded.len());
    assert_eq!(w.li.visit_history(&h, 10).unwrap().len(), 2, "the honest session carried the visit");

    let before = (second.document_ids().unwrap(), second.dump_query_tables().unwrap());
    let mut replayed = PeerResponder::new(&second).unwrap();
    replayed.respond(&mut second, &recorded[0]).unwrap();
    let err = replayed.respond(&mut second, &recorded[1]).unwrap_err();
    assert!(matches!(&err, Error::Protocol(m) if m.contains("does not decrypt")), "{err}");
    for msg in &recorded[2..] {
        assert!(replayed.respond(&mut second, msg).is_err());
    }
    assert_eq!((second.document_ids().unwrap(), second.dump_query_tables().unwrap()), before);
    assert_eq!(second.visit_history(&h, 10).unwrap().len(), 1);
}

/// The volunteer's session with Li Na's phone, run until its `n`-th message (from 0), which is
/// returned unsent.
fn until(w: &mut Stairwell, n: usize) -> (Session, PeerResponder, Vec<u8>) {
    let mut session = Session::with_peer(&mut w.vol).unwrap();
    let mut responder = PeerResponder::new(&w.li).unwrap();
    for _ in 0..n {
        let msg = session.next_message(&mut w.vol).unwrap().unwrap();
        let reply = responder.respond(&mut w.li, &msg).unwrap();
        session.receive(&mut w.vol, &reply).unwrap();
    }
    let msg = session.next_message(&mut w.vol).unwrap().expect("the session has that many messages");
    (session, responder, msg)
}

type Damage = Box<dyn Fn(Vec<u8>) -> Vec<u8>>;

/// A message altered on the way, cut short, sent twice, or relabelled is refused by the phone it
/// reaches, which keeps nothing of it; an altered answer is refused by the phone that asked.
#[test]
fn a_message_altered_cut_played_twice_or_relabelled_is_refused() {
    let mut w = stairwell();
    let h = household_of(&w);
    w.vol.record_visit(visit(&h, &w.f.volunteer.id, VisitKind::BellCheckAnswered)).unwrap();
    let before = (w.li.document_ids().unwrap(), w.li.dump_query_tables().unwrap());
    let flip = |mut m: Vec<u8>, at: usize| {
        m[at] ^= 0x20;
        m
    };
    // Messages 1 (the handshake's end and the hello) and 2 (the inventory).
    for n in [1, 2] {
        let variants: Vec<(&str, Damage)> = vec![
            ("does not decrypt", Box::new(move |m: Vec<u8>| flip(m.clone(), m.len() - 1))),
            ("does not decrypt", Box::new(move |m: Vec<u8>| flip(m.clone(), m.len() / 2 + 3))),
            ("cut short", Box::new(|m: Vec<u8>| m[..m.len() - 1].to_vec())),
            ("kind", Box::new(move |m: Vec<u8>| flip(m, 3))),
            ("version", Box::new(move |m: Vec<u8>| flip(m, 2))),
        ];
        for (says, damage) in &variants {
            let (_session, mut responder, msg) = until(&mut w, n);
            let err = responder.respond(&mut w.li, &damage(msg)).unwrap_err();
            assert!(matches!(&err, Error::Protocol(m) if m.contains(says)), "message {n}, {says}: {err}");
            assert_eq!((w.li.document_ids().unwrap(), w.li.dump_query_tables().unwrap()), before);
        }
    }
    // The handshake's first two messages carry nothing else.
    let (_, mut responder, first) = until(&mut w, 0);
    let err = responder.respond(&mut w.li, &[first, vec![0]].concat()).unwrap_err();
    assert!(matches!(&err, Error::Protocol(m) if m.contains("carries data")), "{err}");
    let (mut session, mut responder, first) = until(&mut w, 0);
    let proof = responder.respond(&mut w.li, &first).unwrap();
    let err = session.receive(&mut w.vol, &[proof, vec![0]].concat()).unwrap_err();
    assert!(matches!(&err, Error::Protocol(m) if m.contains("carries data")), "{err}");

    // The previous message again, in place of the next.
    let mut session = Session::with_peer(&mut w.vol).unwrap();
    let mut responder = PeerResponder::new(&w.li).unwrap();
    let mut last = Vec::new();
    for _ in 0..2 {
        last = session.next_message(&mut w.vol).unwrap().unwrap();
        let reply = responder.respond(&mut w.li, &last).unwrap();
        session.receive(&mut w.vol, &reply).unwrap();
    }
    let err = responder.respond(&mut w.li, &last).unwrap_err();
    assert!(matches!(&err, Error::Protocol(m) if m.contains("kind")), "{err}");
    let (_, mut responder, _) = until(&mut w, 2);
    let again = until(&mut w, 2).2;
    let err = responder.respond(&mut w.li, &again).unwrap_err();
    assert!(
        matches!(&err, Error::Protocol(m) if m.contains("does not decrypt")),
        "a message of another session: {err}"
    );
    assert_eq!((w.li.document_ids().unwrap(), w.li.dump_query_tables().unwrap()), before);

    // An answer altered on its way back.
    let (mut session, mut responder, msg) = until(&mut w, 1);
    let reply = responder.respond(&mut w.li, &msg).unwrap();
    let err = session.receive(&mut w.vol, &flip(reply.clone(), reply.len() - 2)).unwrap_err();
    assert!(matches!(&err, Error::Protocol(m) if m.contains("does not decrypt")), "{err}");
    assert!(session.next_message(&mut w.vol).is_err(), "the session is over");
}

/// A refusal in the clear is taken only while the other phone has no channel to seal it in (the
/// handshake), never with a code only the server gives; once the channel is open, plain bytes are
/// no refusal at all.
#[test]
fn a_refusal_in_the_clear_is_taken_only_before_the_channel_opens() {
    use doorstep_core::sync::wire::Refusal;
    let mut w = stairwell();
    let plain = |code: &str| {
        let refused = Refusal { code: code.into(), message: "enrol this phone again".into() };
        Batch { refused: Some(refused), ..Batch::default() }.encode()
    };
    let h = household_of(&w);
    w.vol.record_visit(visit(&h, &w.f.volunteer.id, VisitKind::BellCheckAnswered)).unwrap();
    let mut session = Session::with_peer(&mut w.vol).unwrap();
    session.next_message(&mut w.vol).unwrap();
    let err = session.receive(&mut w.vol, &plain("unauthorized")).unwrap_err();
    assert!(matches!(&err, Error::Refused { code, .. } if *code == "refused"), "{err}");
    assert!(err.to_string().contains("(not authenticated)"), "{err}");
    let mut session = Session::with_peer(&mut w.vol).unwrap();
    session.next_message(&mut w.vol).unwrap();
    let long = Batch {
        refused: Some(Refusal { code: "unknown_peer".into(), message: noise_text(7, 2_000) }),
        ..Batch::default()
    };
    let err = session.receive(&mut w.vol, &long.encode()[..]).unwrap_err();
    assert!(
        matches!(&err, Error::Protocol(m) if m.contains("older Doorstep")),
        "a long text in the clear is not read: {err}"
    );

    let (mut session, mut responder, msg) = until(&mut w, 2);
    let reply = responder.respond(&mut w.li, &msg).unwrap();
    assert!(reply.starts_with(b"DN"));
    let err = session.receive(&mut w.vol, &plain("unauthorized")).unwrap_err();
    assert!(matches!(&err, Error::Protocol(m) if m.contains("not of a Doorstep peer session")), "{err}");
}

/// The handshake's messages in the wrong place: a second first message to a responder, a
/// responder's proof from another session, a session with itself.
#[test]
fn handshake_messages_out_of_place_are_refused() {
    let mut w = stairwell();
    let (_, mut responder, first) = until(&mut w, 0);
    responder.respond(&mut w.li, &first).unwrap();
    let err = responder.respond(&mut w.li, &first).unwrap_err();
    assert!(matches!(&err, Error::Protocol(m) if m.contains("kind 1 came where one of kind 3")), "{err}");

    let (mut session, _, _) = until(&mut w, 0);
    let (_, mut other, other_first) = until(&mut w, 0);
    let foreign_proof = other.respond(&mut w.li, &other_first).unwrap();
    let err = session.receive(&mut w.vol, &foreign_proof).unwrap_err();
    assert!(matches!(&err, Error::Protocol(m) if m.contains("does not decrypt")), "{err}");

    // Li Na's own phone, through a relay, answering itself.
    let mut relay = HandPeer::default();
    let mut responder = PeerResponder::new(&w.li).unwrap();
    let proof = responder.respond(&mut w.li, &relay.hello().unwrap()).unwrap();
    relay.read_proof(&w.li, &proof).unwrap();
    let (li_na, li_actor) = (w.f.li_na.id.clone(), w.li.actor_id());
    let msg = relay.seal(&Identity::Store(&w.li), &hello_as(&li_na, &li_actor)).unwrap();
    let err = responder.respond(&mut w.li, &msg).unwrap_err();
    refused(&err, "unknown_peer", "this phone itself");
}

/// A certificate the deployment signed for longer than it ever issues (a retired or leaked key
/// backdating one) is refused.
#[test]
fn a_certificate_valid_for_years_is_refused() {
    let mut w = stairwell();
    let seed = [4; 32];
    let now = w.vol.now();
    let (li_na, li_actor) = (w.f.li_na.id.clone(), w.li.actor_id());
    let key = device_public_key_of(&seed).unwrap();
    let cert = deployment().issue(&key, &li_actor, &li_na, now - DAY, now + 3 * 365 * DAY).unwrap();
    let err =
        impostor_meets_the_volunteer(&mut w, Identity::Forged(Forged { certificate: cert, seed }), (&li_na, &li_actor));
    refused(&err, "bad_certificate", "longer than any deployment issues");
}

mod hostile_frames {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// Random or damaged frames, at each step of a session, on either side: a typed error or
        /// (for an undamaged step) the answer; never a panic, and nothing kept.
        #[test]
        fn damaged_frames_never_panic_or_change_anything(
            step in 0usize..4,
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            cut in prop::option::of(any::<prop::sample::Index>()),
            random in prop::collection::vec(any::<u8>(), 0..200),
            use_random in any::<bool>(),
        ) {
            let mut w = stairwell();
            let h = household_of(&w);
            w.vol.record_visit(visit(&h, &w.f.volunteer.id, VisitKind::BellCheckAnswered)).unwrap();
            let before = (w.li.dump_query_tables().unwrap(), w.vol.dump_query_tables().unwrap());
            let (mut session, mut responder, msg) = until(&mut w, step.min(2));
            let mut damaged = if use_random { [b"DN\x01".to_vec(), random.clone()].concat() } else { msg.clone() };
            for (at, v) in &flips {
                let i = at.index(damaged.len());
                damaged[i] ^= v | 1;
            }
            if let Some(c) = cut {
                damaged.truncate(c.index(damaged.len()));
            }
            if step == 3 {
                // The answer damaged on its way back to the initiator.
                let reply = responder.respond(&mut w.li, &msg).unwrap();
                let mut bad = if use_random { random.clone() } else { reply.clone() };
                for (at, v) in &flips {
                    if !bad.is_empty() {
                        let i = at.index(bad.len());
                        bad[i] ^= v | 1;
                    }
                }
                let _ = session.receive(&mut w.vol, &bad);
            } else {
                let _ = responder.respond(&mut w.li, &damaged);
            }
            prop_assert_eq!((w.li.dump_query_tables().unwrap(), w.vol.dump_query_tables().unwrap()), before);
        }
    }
}

/// A phone of an older version speaks plain batches: it is told to update, in words, and its
/// bytes are never read as a batch.
#[test]
fn a_plain_batch_is_refused_in_words() {
    let mut w = stairwell();
    let mut responder = PeerResponder::new(&w.li).unwrap();
    let err = responder.respond(&mut w.li, &hello_as(&w.f.volunteer.id, &w.vol.actor_id())).unwrap_err();
    assert!(matches!(&err, Error::Protocol(m) if m.contains("not of a Doorstep peer session")), "{err}");
    let mut session = Session::with_peer(&mut w.vol).unwrap();
    session.next_message(&mut w.vol).unwrap();
    let err = session.receive(&mut w.vol, &hello_as(&w.f.li_na.id, &w.li.actor_id())).unwrap_err();
    assert!(matches!(&err, Error::Protocol(m) if m.contains("older Doorstep")), "{err}");
}

/// A batch of several Noise messages (a month of long visit notes) goes through whole.
#[test]
fn a_large_message_travels_in_chunks() {
    let mut w = stairwell();
    let h = household_of(&w);
    for n in 0..100 {
        let notes = noise_text(n, 1_500);
        w.li.record_visit(NewVisit { notes, ..visit(&h, &w.f.li_na.id, VisitKind::WelfareCheck) }).unwrap();
    }
    // The message carrying the month, cut after its first Noise message (each of which decrypts),
    // is refused for what its length says.
    let mut session = Session::with_peer(&mut w.li).unwrap();
    let mut responder = PeerResponder::new(&w.vol).unwrap();
    let before = w.vol.dump_query_tables().unwrap();
    let err = loop {
        let msg = session.next_message(&mut w.li).unwrap().unwrap();
        if msg.len() > 65_535 {
            assert_eq!(msg[3], 4, "a data frame: no handshake message before its chunks");
            let first = 4;
            let chunk = 2 + u16::from_be_bytes([msg[first], msg[first + 1]]) as usize;
            assert!(msg.len() > first + chunk, "more than one Noise message");
            break responder.respond(&mut w.vol, &msg[..first + chunk]).unwrap_err();
        }
        let reply = responder.respond(&mut w.vol, &msg).unwrap();
        session.receive(&mut w.li, &reply).unwrap();
    };
    assert!(matches!(&err, Error::Protocol(m) if m.contains("shorter than the length it gives")), "{err}");
    assert_eq!(w.vol.dump_query_tables().unwrap(), before);

    let s = pump(&mut w.li, &mut w.vol).unwrap();
    assert!(s.progress().bytes_sent > 65_535 + 20_000, "{:?}", s.progress());
    assert_eq!(w.vol.visit_history(&h, 200).unwrap().len(), 101);
}

/// Letters that do not deflate to much less.
fn noise_text(mut seed: u64, n: usize) -> String {
    (0..n)
        .map(|_| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            char::from(b'a' + ((seed >> 59) % 26) as u8)
        })
        .collect()
}

fn household_of(w: &Stairwell) -> HouseholdId {
    w.li.households(&HouseholdFilter::default()).unwrap()[0].id.clone()
}
