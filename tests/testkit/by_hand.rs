//! Documents and changes written as another client would write them (PROTOCOL.md §1), past the
//! store's own write path: what the boundary's attacks and the upgrade tests send.

use doorstep_core::hooks::{HandPeer, Identity};
use doorstep_core::sync::wire::{Batch, Hello, Mode};
use doorstep_core::sync::PeerResponder;
use doorstep_core::*;

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

/// A device's actor id, as another client would write with it.
pub fn actor(store: &Store) -> automerge::ActorId {
    let hex = store.actor_id();
    automerge::ActorId::from(
        (0..hex.len() / 2).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()).collect::<Vec<_>>(),
    )
}

/// A top-level collection map of a document.
pub fn collection(am: &automerge::AutoCommit, name: &str) -> automerge::ObjId {
    automerge::ReadDoc::get(am, automerge::ROOT, name).unwrap().unwrap().1
}

/// The genesis change every replica makes for a document (PROTOCOL.md §1), as another client
/// would write it: from the protocol's text, deliberately not from the core's own
/// `DocId::collections`, so that a core that drifted from PROTOCOL.md fails the tests.
pub fn genesis(doc: &DocId) -> automerge::AutoCommit {
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

/// A modified app on `ours` in a peer session with `responder` on `theirs`, past the handshake
/// (with `ours`'s own certificate and key) and the introductions: what it sends next is any
/// batch the test builds ([`send`]).
pub fn introduced(ours: &Store, responder: &mut PeerResponder, theirs: &mut Store) -> HandPeer {
    let mut peer = HandPeer::default();
    let proof = responder.respond(theirs, &peer.hello().unwrap()).unwrap();
    peer.read_proof(ours, &proof).unwrap();
    let hello = Hello {
        mode: Mode::Peer,
        user: ours.device_user().unwrap().expect("registered").to_string(),
        device: ours.actor_id(),
        summary: None,
    };
    send(&mut peer, ours, responder, theirs, &Batch { hello: Some(hello), ..Batch::default() }).unwrap();
    peer
}

/// Sends `batch` through the modified app's channel: the responder's error, or its answer.
pub fn send(
    peer: &mut HandPeer,
    ours: &Store,
    responder: &mut PeerResponder,
    theirs: &mut Store,
    batch: &Batch,
) -> Result<Batch> {
    let reply = responder.respond(theirs, &peer.seal(&Identity::Store(ours), &batch.encode())?)?;
    peer.open(&reply)
}
