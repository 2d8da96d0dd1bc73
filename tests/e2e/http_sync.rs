//! Phones syncing with a real server over HTTP on 127.0.0.1.

use doorstep_core::*;
use testkit::*;

#[test]
fn phones_meet_through_the_server() {
    let (dir, _office, p, server) = served(|_| {});
    let (mut li, li_client) = phone(&server, dir.path(), "li-na", &p.li_na);
    let (mut sup, sup_client) = phone(&server, dir.path(), "supervisor", &p.supervisor);
    let (mut courier, courier_client) = phone(&server, dir.path(), "courier", &p.courier);

    let h = household(&mut li, &p, "301", &[CareTag::ElderlyAlone]);
    let v = record_visit(&mut li, &h.id, &p.li_na, "Bell check, all well");
    let r = file_report(&mut courier, &p, &p.courier, "Manhole cover missing by gate 2");
    assert_eq!(li.sync_status().unwrap().pending_changes, 2);
    li_client.sync(&mut li).unwrap();
    courier_client.sync(&mut courier).unwrap();
    assert!(li.reached_server(&RecordRef::Visit(v.id.clone())).unwrap());
    assert_eq!(li.sync_status().unwrap().pending_changes, 0);

    sup_client.sync(&mut sup).unwrap();
    assert_eq!(sup.visit_history(&h.id, 10).unwrap().len(), 1, "the supervisor sees the visit");
    assert_eq!(sup.reports(&ReportFilter::default()).unwrap().len(), 1, "and the courier's report");
    // Li Na's phone gets the courier's report in her grid; the courier does not get her grid.
    li_client.sync(&mut li).unwrap();
    assert_eq!(li.reports(&ReportFilter::default()).unwrap()[0].id, r.id);
    courier_client.sync(&mut courier).unwrap();
    assert!(courier.household(&h.id).is_err());

    // Nothing changed: one round trip, a few bytes.
    let progress = li_client.sync(&mut li).unwrap();
    assert_eq!(progress.round, 1);
    assert!(progress.bytes_sent + progress.bytes_received < 200, "{progress:?}");

    let (status, body) = http("GET", &format!("{}/healthz", server.url()), None, vec![]);
    assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]));
    let (status, body) = http("GET", &format!("{}/metrics", server.url()), None, vec![]);
    let text = String::from_utf8(body).unwrap();
    assert_eq!(status, 200);
    assert!(text.contains("doorstep_sync_requests_total{outcome=\"ok\"}"), "{text}");
    assert!(text.contains("doorstep_sync_duration_seconds_count"), "{text}");
    assert!(!text.contains("Li Na"), "no personal data in metrics");
}

#[test]
fn a_server_restart_mid_session_loses_nothing() {
    let (dir, _office, p, server) = served(|_| {});
    let (mut li, client) = phone(&server, dir.path(), "li-na", &p.li_na);
    let h = household(&mut li, &p, "301", &[CareTag::ElderlyAlone]);
    for i in 0..20 {
        record_visit(&mut li, &h.id, &p.li_na, &format!("visit {i}"));
    }
    // First round reaches the server, then it stops (graceful shutdown) and comes back on the
    // same port and database while the phone is between rounds.
    let mut session = doorstep_core::sync::Session::with_server(&mut li).unwrap();
    let msg = session.next_message(&mut li).unwrap().unwrap();
    let answer = doorstep_core::sync::http::runtime().block_on(client.exchange(msg)).unwrap();
    session.receive(&mut li, &answer).unwrap();
    let addr = server.addr();
    server.stop();
    let server = start_server(dir.path(), |c| c.listen = addr.to_string());
    while let Some(msg) = session.next_message(&mut li).unwrap() {
        let answer = doorstep_core::sync::http::runtime().block_on(client.exchange(msg)).unwrap();
        session.receive(&mut li, &answer).unwrap();
    }
    assert!(session.is_done());
    assert_eq!(server.with_store(|s| s.visit_history(&h.id, 100).unwrap().len()), 20);
    assert_eq!(li.sync_status().unwrap().pending_changes, 0);

    // The phone retries while the server is away and carries on when it is back.
    let addr = server.addr();
    server.stop();
    record_visit(&mut li, &h.id, &p.li_na, "visit while the server is down");
    let restart = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(400));
        start_server(dir.path(), |c| c.listen = addr.to_string())
    });
    client.sync(&mut li).unwrap();
    let server = restart.join().unwrap();
    assert_eq!(server.with_store(|s| s.visit_history(&h.id, 100).unwrap().len()), 21);
}
