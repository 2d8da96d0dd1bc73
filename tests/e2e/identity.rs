//! Devices' identities (PROTOCOL.md §8) against a real server on 127.0.0.1: the key each store
//! makes, the proof of it at enrolment, the certificate the deployment's key signs, the keys a
//! phone pins, renewal, and the binding of a key by a device that enrolled before keys.

use std::sync::Arc;

use doorstep_core::identity::{Certificate, DeploymentSigner};
use doorstep_core::sync::api::{DeviceRequest, Registration};
use doorstep_core::sync::http::{certificate_request, enrolment_request, keep_registration, ServerClient};

fn certificate_of(reg: &Registration) -> Certificate {
    reg.certificate.clone().expect("the server issues a certificate at enrolment")
}
use doorstep_core::*;
use testkit::*;

fn open(dir: &std::path::Path, name: &str) -> Store {
    Store::open(dir.join(format!("{name}.sqlite")), OpenOptions::default()).unwrap()
}

fn post_json(url: &str, token: Option<&str>, body: &impl serde::Serialize) -> (u16, serde_json::Value) {
    let (status, body) = http("POST", url, token, serde_json::to_vec(body).unwrap());
    (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
}

/// The admin revokes `phone`'s device (`DELETE /v1/admin/devices/<id>`, the id read from the
/// server's own table, as an operator would look it up).
fn revoke(server: &doorstep_server::RunningServer, dir: &std::path::Path, phone: &Store) {
    let id: String = rusqlite::Connection::open(dir.join("server.sqlite"))
        .unwrap()
        .query_row("SELECT id FROM server_devices WHERE actor = ?1", [phone.actor_id()], |r| r.get(0))
        .unwrap();
    let (status, _) = http("DELETE", &format!("{}/v1/admin/devices/{id}", server.url()), Some(ADMIN_TOKEN), vec![]);
    assert_eq!(status, 204);
}

fn refusal_code(e: &Error) -> String {
    match e {
        Error::Refused { code, .. } => code.as_str().to_string(),
        other => panic!("expected a refusal, got {other}"),
    }
}

#[test]
fn enrolment_gives_a_certificate_for_this_device_signed_by_the_deployment_key_the_phone_pins() {
    let (dir, _office, people, server) = served(|_| {});
    let mut li = open(dir.path(), "li-na");
    let reg = ServerClient::new(&server.url())
        .unwrap()
        .register(&enrolment_code(&server, &people.li_na), &mut li, "li")
        .unwrap();

    let cert = li.certificate().unwrap().expect("the store keeps its certificate");
    assert_eq!(cert, certificate_of(&reg));
    assert_eq!(cert.device_key, li.device_public_key().unwrap());
    assert_eq!(cert.actor, li.actor_id());
    assert_eq!(cert.user, people.li_na.id);
    assert_eq!(cert.expires_at - cert.issued_at, 14 * DAY_MS, "the default validity");
    let pinned = li.deployment_keys().unwrap();
    assert_eq!(pinned, reg.deployment_keys);
    cert.verify(&pinned, cert.issued_at + DAY_MS).unwrap();
    assert!(!li.certificate_due().unwrap(), "a fresh certificate is not renewed");

    // The key is the server's file beside its database, private to its user, and the same after
    // a restart: a phone enrolled before it still verifies what the server issues after.
    let key_file = dir.path().join("server.sqlite.deployment-key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let signer = DeploymentSigner::from_hex(&std::fs::read_to_string(&key_file).unwrap()).unwrap();
    assert_eq!(signer.id(), pinned[0].id);
    server.stop();
    // Without its key file the server does not start: a new key would make every phone refuse it.
    let aside = dir.path().join("key-aside");
    std::fs::rename(&key_file, &aside).unwrap();
    let config = doorstep_server::Config {
        listen: "127.0.0.1:0".into(),
        database: dir.path().join("server.sqlite"),
        ..doorstep_server::Config::default()
    };
    let refused = doorstep_server::RunningServer::start(config).err().expect("no server without its key");
    assert!(refused.to_string().contains("is missing"), "{refused}");
    assert!(!key_file.exists(), "no new key was made");
    std::fs::rename(&aside, &key_file).unwrap();
    let server = start_server(dir.path(), |_| {});
    let mut zhang = open(dir.path(), "zhang-wei");
    let again = ServerClient::new(&server.url())
        .unwrap()
        .register(&enrolment_code(&server, &people.zhang_wei), &mut zhang, "zhang")
        .unwrap();
    assert_eq!(again.deployment_keys, pinned);
    let again = certificate_of(&again);
    again.verify(&pinned, again.issued_at).unwrap();
}

#[test]
fn an_enrolment_that_does_not_prove_its_key_is_refused_and_leaves_the_code_usable() {
    let (dir, _office, people, server) = served(|_| {});
    let url = format!("{}/v1/devices", server.url());
    let (li, other) = (open(dir.path(), "li-na"), open(dir.path(), "other"));
    let code = enrolment_code(&server, &people.li_na);
    let honest = enrolment_request(&li, &code, "li").unwrap();
    let before = server_state(&server);

    let forged: Vec<(&str, DeviceRequest)> = vec![
        ("no key, no proof", DeviceRequest { public_key: String::new(), proof: String::new(), ..honest.clone() }),
        ("another device's key", DeviceRequest { public_key: other.device_public_key().unwrap(), ..honest.clone() }),
        (
            "a proof made by another key",
            DeviceRequest { proof: other.enrolment_proof(&code).unwrap(), ..honest.clone() },
        ),
        (
            "a proof for another code",
            DeviceRequest { proof: li.enrolment_proof("ABCDEFGHJKMN").unwrap(), ..honest.clone() },
        ),
        ("a proof for another actor", DeviceRequest { actor: other.actor_id(), ..honest.clone() }),
        ("a key that is not hex", DeviceRequest { public_key: "zz".repeat(32), ..honest.clone() }),
    ];
    for (what, request) in forged {
        let (status, body) = post_json(&url, None, &request);
        assert_eq!((status, body["error"].as_str()), (400, Some("bad_proof")), "{what}: {body}");
    }
    // The proof is checked before the code: a forged proof with an unknown code is a bad proof.
    let unknown =
        DeviceRequest { code: "ABCDEFGHJKMN".into(), proof: other.enrolment_proof(&code).unwrap(), ..honest.clone() };
    let (status, body) = post_json(&url, None, &unknown);
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_proof")), "{body}");
    assert_eq!(server_state(&server), before, "nothing is stored for a refused enrolment");

    let (status, body) = post_json(&url, None, &honest);
    assert_eq!(status, 201, "the code still works: {body}");
    let reg: Registration = serde_json::from_value(body).unwrap();
    assert_eq!(certificate_of(&reg).device_key, li.device_public_key().unwrap());
}

#[test]
fn a_store_keeps_only_a_certificate_for_itself_signed_by_its_pinned_deployment() {
    let (dir, _office, people, server) = served(|_| {});
    let client = ServerClient::new(&server.url()).unwrap();
    let mut li = open(dir.path(), "li-na");
    let reg = client.register(&enrolment_code(&server, &people.li_na), &mut li, "li").unwrap();
    let kept = li.certificate().unwrap();

    // Li Na's certificate handed to another phone: not its key.
    let mut other = open(dir.path(), "other");
    // What an enrolment keeps: not this certificate, and the registration is still returned whole.
    keep_registration(&mut other, &reg);
    let e = other.keep_certificate(&certificate_of(&reg), &reg.deployment_keys).unwrap_err();
    assert_eq!(refusal_code(&e), "bad_certificate", "{e}");
    assert!(e.to_string().contains("another device"), "{e}");
    assert_eq!(other.certificate().unwrap(), None);
    assert_eq!(other.deployment_keys().unwrap(), vec![], "nothing is pinned from a refused answer");

    // Altered on the way: any field.
    let altered = |f: &dyn Fn(&mut Certificate)| {
        let mut c = certificate_of(&reg);
        f(&mut c);
        c
    };
    for cert in [
        altered(&|c| c.expires_at += 365 * DAY_MS),
        altered(&|c| c.user = people.supervisor.id.clone()),
        altered(&|c| c.signature = c.signature.chars().rev().collect()),
    ] {
        let e = li.keep_certificate(&cert, &reg.deployment_keys).unwrap_err();
        assert_eq!(refusal_code(&e), "bad_certificate", "{e}");
    }

    // Another deployment, even with its own keys in the answer: Li Na's phone pinned this one.
    let elsewhere = DeploymentSigner::generate().unwrap();
    let now = li.now();
    let theirs =
        elsewhere.issue(&li.device_public_key().unwrap(), &li.actor_id(), &people.li_na.id, now, now + DAY_MS).unwrap();
    let e = li.keep_certificate(&theirs, &[elsewhere.public(0)]).unwrap_err();
    assert!(e.to_string().contains("unknown key"), "{e}");

    // The user of a renewal must stay the device's.
    let signer =
        DeploymentSigner::from_hex(&std::fs::read_to_string(dir.path().join("server.sqlite.deployment-key")).unwrap())
            .unwrap();
    let moved = signer
        .issue(&li.device_public_key().unwrap(), &li.actor_id(), &people.supervisor.id, now, now + DAY_MS)
        .unwrap();
    let e = li.keep_certificate(&moved, &reg.deployment_keys).unwrap_err();
    assert!(e.to_string().contains("another user"), "{e}");
    // Li Na's key, but another actor's certificate; and an older answer, replayed.
    let other_actor = signer
        .issue(&li.device_public_key().unwrap(), &other.actor_id(), &people.li_na.id, now, now + 30 * DAY_MS)
        .unwrap();
    assert!(li
        .keep_certificate(&other_actor, &reg.deployment_keys)
        .unwrap_err()
        .to_string()
        .contains("another device"));
    let issued = kept.as_ref().unwrap().issued_at;
    let older = signer
        .issue(
            &li.device_public_key().unwrap(),
            &li.actor_id(),
            &people.li_na.id,
            issued - DAY_MS,
            issued + 30 * DAY_MS,
        )
        .unwrap();
    let e = li.keep_certificate(&older, &reg.deployment_keys).unwrap_err();
    assert!(e.to_string().contains("issued before"), "{e}");
    assert_eq!(li.certificate().unwrap(), kept, "the store's certificate is untouched");
    assert_eq!(li.deployment_keys().unwrap(), reg.deployment_keys);
    // An enrolment answer whose certificate names another user than the answer: not kept.
    let newer = signer
        .issue(&li.device_public_key().unwrap(), &li.actor_id(), &people.li_na.id, issued + 1, issued + 30 * DAY_MS)
        .unwrap();
    let mismatched =
        Registration { user_id: people.supervisor.id.as_str().into(), certificate: Some(newer.clone()), ..reg.clone() };
    keep_registration(&mut li, &mismatched);
    assert_eq!(li.certificate().unwrap(), kept, "a certificate for another user than the answer's is not kept");
    keep_registration(&mut li, &Registration { certificate: Some(newer.clone()), ..reg.clone() });
    assert_eq!(li.certificate().unwrap(), Some(newer), "the same, for the answer's user, is");
}

#[test]
fn a_sync_renews_a_certificate_over_a_day_old() {
    let (dir, _office, people, server) = served(|_| {});
    let clock = Arc::new(FixedClock::new(SystemClock.now_ms()));
    let options = OpenOptions { clock: clock.clone(), ..OpenOptions::default() };
    let (mut li, client) = phone_with(&server, dir.path(), "li-na", &people.li_na, options);
    let first = li.certificate().unwrap().unwrap();
    client.sync(&mut li).unwrap();
    assert_eq!(li.certificate().unwrap().unwrap(), first, "not renewed within the day");

    clock.advance(25 * HOUR_MS);
    assert!(li.certificate_due().unwrap());
    client.sync(&mut li).unwrap();
    let renewed = li.certificate().unwrap().unwrap();
    assert_ne!(renewed.id, first.id, "a new certificate");
    assert!(renewed.expires_at >= first.expires_at);
    assert_eq!((renewed.device_key, renewed.actor, renewed.user), (first.device_key, first.actor, first.user));
    // A clock put back behind the time the certificate was kept: renewed at the next sync.
    assert!(!li.certificate_due().unwrap());
    clock.set(clock.now_ms() - 2 * HOUR_MS);
    assert!(li.certificate_due().unwrap());
}

#[test]
fn a_device_enrolled_before_keys_binds_its_key_once_and_no_other_key_replaces_it() {
    let (dir, _office, people, server) = served(|_| {});
    let path = dir.path().join("li-na.sqlite");
    let mut li = Store::open(&path, OpenOptions::default()).unwrap();
    let client = ServerClient::new(&server.url()).unwrap();
    let reg = client.register(&enrolment_code(&server, &people.li_na), &mut li, "li").unwrap();
    drop(li);
    // As before devices had keys: the server knows no key for the device, the store holds no
    // certificate and pins nothing.
    let db = rusqlite::Connection::open(dir.path().join("server.sqlite")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    db.execute("UPDATE server_devices SET public_key = NULL", []).unwrap();
    let phone = rusqlite::Connection::open(&path).unwrap();
    phone.execute("UPDATE device SET certificate = NULL, deployment_keys = NULL", []).unwrap();
    drop(phone);
    let mut li = Store::open(&path, OpenOptions::default()).unwrap();
    assert!(li.certificate_due().unwrap());

    // A key proven for another actor (the token's device writes as Li Na's) is refused.
    let url = format!("{}/v1/certificate", server.url());
    let thief = open(dir.path(), "thief");
    let (status, body) = post_json(&url, Some(&reg.token), &certificate_request(&thief).unwrap());
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_proof")), "{body}");

    // The device's first sync binds its key and pins the deployment's.
    let client = client.with_token(reg.token.clone());
    client.sync(&mut li).unwrap();
    let cert = li.certificate().unwrap().expect("bound and certified");
    assert_eq!(cert.device_key, li.device_public_key().unwrap());
    assert_eq!(li.deployment_keys().unwrap(), reg.deployment_keys);
    let bound: String = db.query_row("SELECT public_key FROM server_devices", [], |r| r.get(0)).unwrap();
    assert_eq!(bound, li.device_public_key().unwrap());

    // Once bound, the key is never replaced, even by a valid proof for the device's own actor:
    // a copy of Li Na's store given a new key.
    drop(li);
    for suffix in ["", "-wal"] {
        let from = dir.path().join(format!("li-na.sqlite{suffix}"));
        if from.exists() {
            std::fs::copy(&from, dir.path().join(format!("twin.sqlite{suffix}"))).unwrap();
        }
    }
    rusqlite::Connection::open(dir.path().join("twin.sqlite"))
        .unwrap()
        .execute("UPDATE device SET signing_key = NULL", [])
        .unwrap();
    let twin = open(dir.path(), "twin");
    assert_ne!(twin.device_public_key().unwrap(), bound);
    let (status, body) = post_json(&url, Some(&reg.token), &certificate_request(&twin).unwrap());
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_proof")), "{body}");
    let still: String = db.query_row("SELECT public_key FROM server_devices", [], |r| r.get(0)).unwrap();
    assert_eq!(still, bound);
}

#[test]
fn the_private_key_never_leaves_the_store() {
    let (dir, _office, people, server) = served(|_| {});
    let (mut li, client) = phone(&server, dir.path(), "li-na", &people.li_na);
    client.sync(&mut li).unwrap();
    let path = dir.path().join("li-na.sqlite");
    let key: Vec<u8> = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT signing_key FROM device", [], |r| r.get(0))
        .unwrap();
    assert_eq!(key.len(), 32);
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let contains = |haystack: &[u8]| {
        haystack.windows(key.len()).any(|w| w == key.as_slice())
            || haystack.windows(hex.len()).any(|w| w == hex.as_bytes())
    };
    for doc in li.document_ids().unwrap() {
        assert!(!contains(&li.save_document(&doc).unwrap()), "{doc} holds the device key");
    }
    for file in ["server.sqlite", "server.sqlite-wal"] {
        if let Ok(bytes) = std::fs::read(dir.path().join(file)) {
            assert!(!contains(&bytes), "the server's {file} holds the device key");
        }
    }
    let reg_json = serde_json::to_vec(&li.certificate().unwrap()).unwrap();
    assert!(!contains(&reg_json));
}

/// The residents' data the revocation test looks for in the phone's files, as the store holds
/// it (UTF-8) and as the register's Automerge columns do.
const NAME: &str = "Zhao Guilan";
const PHONE: &str = "13800138000";
const ID_NUMBER: &str = "410105194203150028";

#[test]
fn a_revoked_phone_erases_its_data_at_its_next_sync_on_the_deployments_signed_word_only() {
    let (dir, _office, people, server) = served(|_| {});
    let (mut li, li_client) = phone(&server, dir.path(), "li-na", &people.li_na);
    let (mut vol, vol_client) = phone(&server, dir.path(), "volunteer", &people.volunteer);
    let h = household(&mut li, &people, "301", &[CareTag::ElderlyAlone]);
    li.add_resident(NewResident {
        household: h.id.clone(),
        name: Personal::new(NAME),
        phone: Personal::new(PHONE),
        id_number: Personal::new(ID_NUMBER),
        birth_year: Some(1942),
        relation: Relation::Head,
    })
    .unwrap();
    record_visit(&mut li, &h.id, &people.li_na, "Bell check, all well");
    li_client.sync(&mut li).unwrap();
    vol_client.sync(&mut vol).unwrap();
    for p in [&li, &vol] {
        assert_eq!(p.residents(&h.id).unwrap().len(), 1);
    }
    // A photo the volunteer took, in her phone's photo folder.
    let shot = dir.path().join("stairwell.jpg");
    std::fs::write(&shot, format!("JPEG of the stairwell by {NAME}'s door")).unwrap();
    let photo = vol.import_photo(&shot, "image/jpeg", 640, 480, None, None).unwrap();
    assert!(vol.photo_path(&photo.sha256).is_some());
    let search_rows = |path: &std::path::Path| -> i64 {
        rusqlite::Connection::open(path)
            .unwrap()
            .query_row(
                "SELECT (SELECT count(*) FROM household_search_data) + (SELECT count(*) FROM report_search_data)",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    drop(open(dir.path(), "fresh"));
    let fresh_search_rows = search_rows(&dir.path().join("fresh.sqlite"));

    // A forged revocation (a captive portal's answer, say) erases nothing.
    let forger = DeploymentSigner::generate().unwrap();
    let forged = forger.revoke(&vol.actor_id(), vol.now());
    let e = vol.erase_revoked(&forged).unwrap_err();
    assert_eq!(refusal_code(&e), "bad_certificate", "{e}");
    // Nor one of the deployment's for another phone.
    let signer =
        DeploymentSigner::from_hex(&std::fs::read_to_string(dir.path().join("server.sqlite.deployment-key")).unwrap())
            .unwrap();
    assert!(vol.erase_revoked(&signer.revoke(&li.actor_id(), vol.now())).is_err());
    assert_eq!(vol.residents(&h.id).unwrap().len(), 1, "nothing was erased");

    // The volunteer's phone is lost: the admin revokes it, and its next sync erases it.
    revoke(&server, dir.path(), &vol);
    let e = vol_client.sync(&mut vol).unwrap_err();
    let Error::Revoked(revocation) = e else { panic!("expected the revocation, got {e}") };
    let old_actor = revocation.actor.clone();
    assert_eq!(vol.document_ids().unwrap(), vec![], "no document is left");
    assert!(vol.households(&HouseholdFilter::default()).unwrap().is_empty());
    assert_eq!(vol.certificate().unwrap(), None);
    assert_eq!(vol.deployment_keys().unwrap(), vec![]);
    assert_ne!(vol.actor_id(), old_actor, "a new device, which may enrol again");
    assert!(vol.photo_path(&photo.sha256).is_none());
    assert!(!dir.path().join("volunteer.sqlite.photos").exists());
    // On disk, with the store still open (its WAL too), and in the full-text indexes' segments.
    for needle in [NAME, PHONE, ID_NUMBER] {
        assert_eq!(
            files_hold(dir.path(), "volunteer.sqlite", needle),
            Vec::<String>::new(),
            "{needle} is left on disk"
        );
    }
    assert_eq!(search_rows(&dir.path().join("volunteer.sqlite")), fresh_search_rows, "the search indexes are empty");

    // The phone enrols again with a new code; the old revocation, replayed, no longer applies.
    let client = ServerClient::new(&server.url()).unwrap();
    let again = client.register(&enrolment_code(&server, &people.volunteer), &mut vol, "volunteer again").unwrap();
    let client = client.with_token(again.token);
    client.sync(&mut vol).unwrap();
    assert_eq!(vol.residents(&h.id).unwrap().len(), 1, "her micro-grid comes back to her new device");
    let e = vol.erase_revoked(&revocation).unwrap_err();
    assert!(e.to_string().contains("another device"), "{e}");
    assert_eq!(vol.residents(&h.id).unwrap().len(), 1);
    drop(vol);

    // Its certificate is not renewed either; Li Na's phone is untouched and syncs on.
    let renewal =
        doorstep_core::sync::http::runtime().block_on(vol_client.certificate(&certificate_request(&li).unwrap()));
    assert!(matches!(renewal, Err(Error::Revoked(_))), "{renewal:?}");
    li_client.sync(&mut li).unwrap();
    assert_eq!(li.residents(&h.id).unwrap().len(), 1);
    // Before the erasure the data was on disk, so the search above can find it.
    assert!(!files_hold(dir.path(), "li-na.sqlite", NAME).is_empty());
}

/// Two phones through one server, then carrying the bytes between them as a stairwell would.
fn stairwell(a: &mut Store, b: &mut Store) -> Result<sync::Progress> {
    let mut session = sync::Session::with_peer(a)?;
    let mut responder = sync::PeerResponder::new(b)?;
    while let Some(msg) = session.next_message(a)? {
        let reply = responder.respond(b, &msg).unwrap_or_else(|e| responder.refusal(b, &e));
        session.receive(a, &reply)?;
    }
    Ok(session.progress())
}

/// The admin revokes the volunteer's lost phone. Its certificate is still valid for days and it
/// never syncs again, yet the revocation reaches Li Na's phone with the directory at her next
/// sync, and from then on her phone refuses it as a peer, both ways, offline.
#[test]
fn a_revoked_phone_is_refused_as_a_peer_once_the_directory_says_so() {
    let (dir, _office, people, server) = served(|_| {});
    let (mut li, li_client) = phone(&server, dir.path(), "li-na", &people.li_na);
    let (mut lost, _) = phone(&server, dir.path(), "volunteer", &people.volunteer);
    li_client.sync(&mut li).unwrap();
    let h = household(&mut li, &people, "301", &[CareTag::ElderlyAlone]);
    stairwell(&mut li, &mut lost).unwrap();
    assert!(lost.household(&h.id).is_ok(), "before the revocation they sync");

    revoke(&server, dir.path(), &lost);
    li_client.sync(&mut li).unwrap();
    assert!(lost.certificate().unwrap().unwrap().expires_at > lost.now(), "its certificate has not expired");
    record_visit(&mut li, &h.id, &people.li_na, "After the phone was lost");
    for err in [stairwell(&mut lost, &mut li).unwrap_err(), stairwell(&mut li, &mut lost).unwrap_err()] {
        assert!(matches!(&err, Error::Refused { code, .. } if code == "unknown_peer"), "{err}");
    }
    assert_eq!(lost.visit_history(&h.id, 10).unwrap().len(), 0, "nothing new reached the lost phone");
}
