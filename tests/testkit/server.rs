//! The district's office and a real `doorstep-server` on 127.0.0.1, with phones that enrol
//! through its HTTP API like the app does.

use std::path::Path;

use doorstep_core::sync::http::{runtime, ServerClient};
use doorstep_core::*;
use doorstep_server::{Config, RunningServer};

use crate::by_hand::actor;
use crate::district::{office, District};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

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
pub fn served(tweak: impl FnOnce(&mut Config)) -> (tempfile::TempDir, Store, District, RunningServer) {
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
        let json = ["/v1/devices", "/v1/certificate", "/unit"].iter().any(|end| url.ends_with(end));
        if url.contains("/admin/enrolments") || json {
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
    let reg = client.register(&enrolment_code(server, user), &mut store, name).unwrap();
    assert_eq!(reg.user_id, user.id.as_str());
    let client = client.with_token(reg.token);
    client.sync(&mut store).unwrap();
    (store, client)
}

/// Everything the server holds that a refused request must not change: each document's bytes
/// and every query table.
pub fn server_state(server: &RunningServer) -> (Vec<(DocId, Vec<u8>)>, doorstep_core::TableDump) {
    server.with_store(|s| {
        let docs = s.document_ids().unwrap().into_iter().map(|d| (d.clone(), s.save_document(&d).unwrap())).collect();
        (docs, s.dump_query_tables().unwrap())
    })
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
    // Signed by the writer's key, as its app would: what the server then decides is about the
    // change itself.
    sync::wire::Batch { docs: vec![signed(writer, doc, sync::wire::Kind::Sync, msg.encode())], ..Default::default() }
}

/// An entry of `kind` (`save` or `sync`) carrying `data`, with `writer`'s signature over its
/// latest change among those `data` holds (PROTOCOL.md §10), as `writer`'s app would send it:
/// a test of what a receiver decides about the changes themselves is not stopped by the
/// signature check. No signature when `data` holds no change of `writer`.
pub fn signed(writer: &Store, doc: &DocId, kind: sync::wire::Kind, data: Vec<u8>) -> sync::wire::Entry {
    signed_as(&actor(writer), |c| writer.vouch_for_tests(doc, c).unwrap(), doc, kind, data)
}

/// [`signed`] by the device key made from `seed`, writing as `by` (hex).
pub fn signed_with_seed(
    seed: &[u8; 32],
    by: &str,
    doc: &DocId,
    kind: sync::wire::Kind,
    data: Vec<u8>,
) -> sync::wire::Entry {
    let actor = automerge::ActorId::from(hex::decode(by).unwrap());
    signed_as(&actor, |c| doorstep_core::hooks::vouch_with_seed(seed, doc, by, c).unwrap(), doc, kind, data)
}

fn signed_as(
    own: &automerge::ActorId,
    vouch: impl Fn(&automerge::Change) -> doorstep_core::voucher::Voucher,
    doc: &DocId,
    kind: sync::wire::Kind,
    data: Vec<u8>,
) -> sync::wire::Entry {
    let changes: Vec<automerge::Change> = match kind {
        sync::wire::Kind::Save => {
            automerge::AutoCommit::load(&data).map(|mut am| am.get_changes(&[])).unwrap_or_default()
        }
        _ => automerge::sync::Message::decode(&data)
            .map(|m| {
                m.changes
                    .iter()
                    .flat_map(|bytes| match automerge::Change::from_bytes(bytes.to_vec()) {
                        Ok(c) => vec![c],
                        Err(_) => {
                            automerge::AutoCommit::load(bytes).map(|mut am| am.get_changes(&[])).unwrap_or_default()
                        }
                    })
                    .collect()
            })
            .unwrap_or_default(),
    };
    let latest = changes.iter().filter(|c| c.actor_id() == own).max_by_key(|c| c.seq());
    let vouchers = latest.map(|c| vec![vouch(c)]).unwrap_or_default();
    sync::wire::Entry { doc: doc.to_string(), kind, data, vouchers }
}

/// The JSON body of `POST /v1/devices` for `code` and any `actor`, with a valid key and proof
/// (of a key made for it): so a test of what the server decides about the actor or the code is
/// not stopped earlier by the proof check.
pub fn device_request(code: &str, actor: &str) -> serde_json::Value {
    let (public_key, proof) = doorstep_core::hooks::enrolment_proof_for(code, actor).unwrap();
    serde_json::json!({ "code": code, "actor": actor, "public_key": public_key, "proof": proof })
}

/// The files of `dir` whose names start with `name` (a store, its WAL, its photo folder's files
/// are beside it) that hold `needle`'s bytes: where a resident's name or number could be read
/// without the app.
pub fn files_hold(dir: &Path, name: &str, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if file.starts_with(name) && path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                found.push(file);
            }
        }
    }
    found
}
