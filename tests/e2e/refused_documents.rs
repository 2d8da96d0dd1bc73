//! Refusals an honest phone meets when the world changed under it: its user moved to another
//! grid while it held unsynced visits of the old one, or a document reached its limit. The
//! server refuses those documents alone and takes the rest; the phone shows them as refused and
//! pending, keeps their changes, and sends them again in later sessions. Against a real server
//! on 127.0.0.1.

use doorstep_core::sync::wire;
use doorstep_core::*;
use testkit::*;

#[test]
fn a_worker_moved_to_another_grid_still_syncs_everything_else() {
    let (dir, mut office, p, server) = served(|_| {});
    let (mut li, client) = phone(&server, dir.path(), "li-na", &p.li_na);
    let h = household(&mut li, &p, "301", &[CareTag::ElderlyAlone]);
    record_visit(&mut li, &h.id, &p.li_na, "Bell check, all well");
    client.sync(&mut li).unwrap();

    // Offline, she records one more visit in her grid and files a report; meanwhile the office
    // moves her to the other grid.
    let late = record_visit(&mut li, &h.id, &p.li_na, "Evening check, lights on");
    let r = file_report(&mut li, &p, &p.li_na, "Broken handrail on stair 2");
    office.move_user(&p.li_na.id, &p.other_grid.id).unwrap();
    seed(&server, &mut office);
    let grid = month_visits(&p);

    let progress = client.sync(&mut li).expect("the session goes on without the old grid");
    assert_eq!(progress.refused.len(), 1, "{:?}", progress.refused);
    assert_eq!((&progress.refused[0].doc, progress.refused[0].code.as_str()), (&grid, "forbidden_document"));
    assert!(progress.round <= 4, "{progress:?}");
    // The report and the directory travelled; the late visit stays on her phone, pending.
    assert!(li.reached_server(&RecordRef::Report(r.id.clone())).unwrap());
    assert!(server.with_store(|s| s.report_state(&r.id).is_ok()));
    let her = li.users().unwrap().into_iter().find(|u| u.id == p.li_na.id).unwrap();
    assert_eq!(her.unit, p.other_grid.id, "her phone learned of the move");
    assert!(!li.reached_server(&RecordRef::Visit(late.id.clone())).unwrap());
    assert_eq!(li.visit_history(&h.id, 10).unwrap().len(), 2, "nothing she recorded is lost");
    assert!(server.with_store(|s| s.visit_history(&h.id, 10).unwrap().len()) == 1);
    let status = li.sync_status().unwrap();
    assert_eq!(status.last_error, None);
    assert_eq!(status.pending_changes, 1, "{status:?}");
    assert_eq!(status.refused_documents, progress.refused, "the badge shows the refusal");

    // Every later session says the same, and ends.
    let again = client.sync(&mut li).unwrap();
    assert_eq!(again.refused, progress.refused);
    assert!(again.round <= 2, "{again:?}");

    // Moved back, her late visit is taken and the refusal is gone.
    office.move_user(&p.li_na.id, &p.grid.id).unwrap();
    seed(&server, &mut office);
    client.sync(&mut li).unwrap();
    let back = client.sync(&mut li).unwrap();
    assert!(back.refused.is_empty(), "{back:?}");
    assert!(li.reached_server(&RecordRef::Visit(late.id.clone())).unwrap());
    let status = li.sync_status().unwrap();
    assert!(status.refused_documents.is_empty(), "{status:?}");
    assert_eq!(status.pending_changes, 0);
}

/// The office moves Li Na to the other grid through the admin API: at her next sync her phone lets
/// go of the old grid's documents the server holds every change of (as Couchbase purges on
/// channel loss), keeps the month with the visit the server refused (listed, pending) and the
/// report she filed, and takes the new grid's.
#[test]
fn a_worker_moved_away_lets_go_of_the_old_grid_but_keeps_what_she_has_not_sent() {
    let (dir, mut office, p, server) = served(|_| {});
    let admin = doorstep_server::admin::AdminClient::new(&server.url(), ADMIN_TOKEN);
    let (mut zhang, zhang_client) = phone(&server, dir.path(), "zhang-wei", &p.zhang_wei);
    let address = Address { building: "9".into(), unit: "1".into(), room: "901".into() };
    let there = NewHousehold {
        micro_grid: None,
        address,
        location: None,
        care_tags: Default::default(),
        risk: None,
        notes: String::new(),
    };
    zhang.add_household(&p.other_grid.id, there).unwrap();
    zhang_client.sync(&mut zhang).unwrap();
    let (mut li, client) = phone(&server, dir.path(), "li-na", &p.li_na);
    let h = household(&mut li, &p, "301", &[CareTag::ElderlyAlone]);
    let (name, phone_number, id_number) = ("Zhao Guilan", "13800138000", "410105194203150028");
    li.add_resident(NewResident {
        household: h.id.clone(),
        name: Personal::new(name),
        phone: Personal::new(phone_number),
        id_number: Personal::new(id_number),
        birth_year: Some(1942),
        relation: Relation::Head,
    })
    .unwrap();
    record_visit(&mut li, &h.id, &p.li_na, "Bell check, all well");
    let r = file_report(&mut li, &p, &p.li_na, "Broken handrail on stair 2");
    client.sync(&mut li).unwrap();
    assert!(!files_hold(dir.path(), "li-na.sqlite", name).is_empty(), "the test looks where the name is");
    let late = record_visit(&mut li, &h.id, &p.li_na, "Evening check, lights on");
    let old_register = register(&p);
    assert!(li.document_ids().unwrap().contains(&old_register));

    admin.move_user(&p.li_na.id, &p.other_grid.id).unwrap();
    let progress = client.sync(&mut li).unwrap();
    let held = li.document_ids().unwrap();
    assert!(!held.contains(&old_register), "the old grid's register left her phone: {held:?}");
    assert!(progress.documents_released >= 1, "{progress:?}");
    assert!(matches!(li.household(&h.id), Err(Error::NotFound { .. })));
    assert!(held.contains(&month_visits(&p)), "the month with her unsent visit stays");
    assert_eq!(progress.refused.iter().map(|r| &r.doc).collect::<Vec<_>>(), vec![&month_visits(&p)]);
    assert!(!li.reached_server(&RecordRef::Visit(late.id.clone())).unwrap());
    assert!(held.contains(&DocId::Report(r.id.clone())), "a report she filed is still hers to follow");
    assert!(held.contains(&DocId::Register(p.other_grid.id.clone())), "the new grid came");
    // Her old residents left the phone's files, not only its tables, and the search indexes hold
    // no segment of them: as many rows as the same indexes rebuilt from what is left.
    for needle in [name, phone_number, id_number] {
        assert_eq!(files_hold(dir.path(), "li-na.sqlite", needle), Vec::<String>::new(), "{needle}");
    }
    // Nothing more leaves at the next sync, and nothing she wrote was lost.
    let again = client.sync(&mut li).unwrap();
    assert_eq!(again.documents_released, 0, "{again:?}");
    assert_eq!(li.sync_status().unwrap().pending_changes, 1);
    let _ = &mut office;
}

/// The move's admin call refuses what it cannot do, with its documented code.
#[test]
fn moving_a_worker_refuses_unknown_users_units_and_bad_bodies() {
    let (_dir, _office, p, server) = served(|_| {});
    let url = |user: &str| format!("{}/v1/admin/users/{user}/unit", server.url());
    let body = |unit: &str| serde_json::json!({ "unit": unit }).to_string().into_bytes();
    let call = |user: &str, token: Option<&str>, b: Vec<u8>| {
        let (status, answer) = http("POST", &url(user), token, b);
        (status, String::from_utf8_lossy(&answer).to_string())
    };
    let grid = p.other_grid.id.to_string();
    let (status, answer) = call(p.li_na.id.as_str(), None, body(&grid));
    assert_eq!(status, 401, "{answer}");
    let (status, answer) = call(&UserId::generate().to_string(), Some(ADMIN_TOKEN), body(&grid));
    assert_eq!((status, answer.contains("unknown_user")), (404, true), "{answer}");
    let (status, answer) = call(p.li_na.id.as_str(), Some(ADMIN_TOKEN), body(&UnitId::generate().to_string()));
    assert_eq!((status, answer.contains("not_found")), (404, true), "{answer}");
    let (status, answer) = call("not a user", Some(ADMIN_TOKEN), body(&grid));
    assert_eq!((status, answer.contains("bad_request")), (400, true), "{answer}");
    let (status, answer) = call(p.li_na.id.as_str(), Some(ADMIN_TOKEN), b"{".to_vec());
    assert_eq!((status, answer.contains("bad_request")), (400, true), "{answer}");
    assert!(server.with_store(|s| s.users().unwrap()).iter().any(|u| u.id == p.li_na.id && u.unit == p.grid.id));
    let (status, answer) = call(p.li_na.id.as_str(), Some(ADMIN_TOKEN), body(&grid));
    assert_eq!(status, 204, "{answer}");
    assert!(server.with_store(|s| s.users().unwrap()).iter().any(|u| u.id == p.li_na.id && u.unit == p.other_grid.id));
}

/// The server's answer names each refused document with its code; the rest of the request is
/// answered as if it came alone.
#[test]
fn a_request_with_a_forbidden_document_is_answered_for_the_others() {
    let (dir, _office, p, server) = served(|_| {});
    let (mut li, client) = phone(&server, dir.path(), "li-na", &p.li_na);
    household(&mut li, &p, "301", &[CareTag::ElderlyAlone]);
    client.sync(&mut li).unwrap();
    let code = enrolment_code(&server, &p.courier);
    let mut courier = Store::open(dir.path().join("courier.sqlite"), OpenOptions::default()).unwrap();
    let reg = sync::http::ServerClient::new(&server.url()).unwrap().register(&code, &mut courier, "courier").unwrap();
    let grid = register(&p);
    let batch = wire::Batch {
        cursor: Some(0),
        docs: vec![
            wire::Entry { doc: grid.to_string(), kind: wire::Kind::Want, data: vec![], vouchers: Vec::new() },
            wire::Entry {
                doc: DocId::Directory.to_string(),
                kind: wire::Kind::Want,
                data: vec![],
                vouchers: Vec::new(),
            },
        ],
        ..Default::default()
    };
    let (status, body) = http("POST", &format!("{}/v1/sync", server.url()), Some(&reg.token), batch.encode());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let answer = wire::Batch::decode(&body).unwrap();
    assert_eq!(answer.rejected.len(), 1);
    assert_eq!(
        (answer.rejected[0].doc.as_str(), answer.rejected[0].code.as_str()),
        (grid.to_string().as_str(), "forbidden_document")
    );
    assert!(answer.docs.iter().all(|e| e.doc != grid.to_string()), "nothing of the grid goes out");
    assert!(answer.docs.iter().any(|e| e.doc == "directory" && e.kind == wire::Kind::Save), "{:?}", answer.docs);
}
