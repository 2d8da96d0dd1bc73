//! Hostile and buggy clients against a real server on 127.0.0.1: slow and idle connections,
//! bodies that never arrive or would not fit in memory, malformed requests, a database that
//! cannot be written, enrolments all at once and an enrolment whose directory write fails.
//! Each test is an attack that once worked; every loop in it is bounded in count and time.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use doorstep_core::sync::{http::runtime, wire};
use doorstep_core::*;
use doorstep_server::RunningServer;
use testkit::*;

/// Every error code the server may answer with (docs/OPERATIONS.md, "Errors").
const DOCUMENTED_CODES: &[&str] = &[
    "unauthorized",
    "revoked",
    "bad_code",
    "actor_taken",
    "forbidden_document",
    "foreign_actor",
    "refused",
    "too_large",
    "bad_message",
    "bad_proof",
    "bad_document",
    "bad_request",
    "unsupported_media_type",
    "not_found",
    "method_not_allowed",
    "unknown_user",
    "busy",
    "timeout",
    "unhealthy",
    "internal",
];

struct Deployment {
    dir: tempfile::TempDir,
    server: RunningServer,
    people: District,
}

fn deployment(tweak: impl FnOnce(&mut doorstep_server::Config)) -> Deployment {
    let (dir, _office, people, server) = served(tweak);
    Deployment { dir, server, people }
}

/// A phone of `user`, enrolled: its token.
fn token(d: &Deployment, name: &str, user: &User) -> String {
    let mut store = Store::open(d.dir.path().join(format!("{name}.sqlite")), OpenOptions::default()).unwrap();
    let client = doorstep_core::sync::http::ServerClient::new(&d.server.url()).unwrap();
    client.register(&enrolment_code(&d.server, user), &mut store, name).unwrap().token
}

/// A sync request that only asks for the change feed: small, valid, and answered 200.
fn pull() -> Vec<u8> {
    wire::Batch { cursor: Some(0), ..Default::default() }.encode()
}

/// An answer: status, headers (lower-case names), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    /// The JSON error code; panics unless the body is the documented `{"error", "message"}`.
    fn code(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("{} answered a body that is not JSON: {:?}", self.status, self.text()));
        let (code, message) = (v["error"].as_str(), v["message"].as_str());
        let (Some(code), Some(message)) = (code, message) else { panic!("not an error body: {v}") };
        assert!(DOCUMENTED_CODES.contains(&code), "undocumented code {code}");
        assert!(!message.is_empty() && !message.contains("Error {") && !message.contains("Some("), "{message}");
        code.to_string()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn call(method: &str, url: &str, token: Option<&str>, content_type: Option<&str>, body: Vec<u8>) -> Answer {
    runtime().block_on(async {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
        let mut req = client.request(method.parse().unwrap(), url).body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(c) = content_type {
            req = req.header("content-type", c);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        Answer { status, headers, body: resp.bytes().await.unwrap().to_vec() }
    })
}

/// `/healthz` as an honest client sees it, retrying (bounded) while connections are refused.
fn healthz_within(server: &RunningServer, within: Duration) -> Option<u16> {
    let deadline = Instant::now() + within;
    let url = format!("{}/healthz", server.url());
    while Instant::now() < deadline {
        let answer = runtime().block_on(async {
            let client = reqwest::Client::builder().timeout(Duration::from_secs(1)).build().unwrap();
            client.get(&url).send().await.ok().map(|r| r.status().as_u16())
        });
        if answer.is_some() {
            return answer;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// Request head of a raw request; the body (if any) is for the caller to send, or not.
fn head(method: &str, path: &str, token: Option<&str>, extra: &str) -> Vec<u8> {
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{auth}{extra}\r\n").into_bytes()
}

/// What a raw connection gets back within `within`: the answer if the server wrote one and
/// closed, `Err(true)` if it closed without a word, `Err(false)` if it is still open.
fn read_raw(mut stream: &TcpStream, within: Duration) -> Result<Answer, bool> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(false);
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return Err(false),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("{e}"),
        }
    }
    if got.is_empty() {
        return Err(true);
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Answer { status, headers, body: body.as_bytes().to_vec() })
}

// ---- 1. slow and idle connections ---------------------------------------------------------------

#[test]
fn slow_headers_and_idle_connections_are_cut_by_the_header_timeout() {
    let d = deployment(|c| c.header_read_timeout_secs = 1);
    let started = Instant::now();
    let attackers: Vec<TcpStream> = (0..50)
        .map(|i| {
            let mut s = TcpStream::connect(d.server.addr()).unwrap();
            if i % 2 == 0 {
                // Half of a request head, then nothing more.
                s.write_all(b"POST /v1/sync HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le").unwrap();
            }
            s
        })
        .collect();
    let open = attackers
        .iter()
        .filter(|s| read_raw(s, Duration::from_secs(4).saturating_sub(started.elapsed())).is_err_and(|closed| !closed))
        .count();
    assert_eq!(open, 0, "connections still open {:?} after the 1 s header timeout", started.elapsed());
    assert_eq!(healthz_within(&d.server, Duration::from_secs(2)), Some(200));
}

#[test]
fn connections_over_the_cap_are_closed_at_once_and_honest_clients_still_get_in() {
    let d = deployment(|c| {
        c.header_read_timeout_secs = 1;
        c.max_connections = 20;
    });
    let idle: Vec<TcpStream> = (0..50).map(|_| TcpStream::connect(d.server.addr()).unwrap()).collect();
    // The server holds at most 20 of them: the others are closed at once, long before the
    // header timeout, so file descriptors never run out.
    std::thread::sleep(Duration::from_millis(300));
    let closed_at_once = idle.iter().filter(|s| matches!(read_raw(s, Duration::from_millis(10)), Err(true))).count();
    assert!(closed_at_once >= 30, "only {closed_at_once} of 50 idle connections were closed at once");
    // An honest client gets in once the idle ones are cut by the header timeout.
    assert_eq!(healthz_within(&d.server, Duration::from_secs(5)), Some(200));
    let metrics = call("GET", &format!("{}/metrics", d.server.url()), None, None, vec![]).text();
    assert!(metrics.contains("doorstep_connections_refused_total"), "{metrics}");
}

#[test]
fn a_body_that_never_arrives_is_answered_408() {
    let d = deployment(|c| c.body_read_timeout_secs = 1);
    let li = token(&d, "li-na", &d.people.li_na);
    for (path, auth, content_type) in
        [("/v1/sync", Some(li.as_str()), "application/x-doorstep-sync"), ("/v1/devices", None, "application/json")]
    {
        let mut s = TcpStream::connect(d.server.addr()).unwrap();
        s.write_all(&head("POST", path, auth, &format!("Content-Type: {content_type}\r\nContent-Length: 1000\r\n")))
            .unwrap();
        s.write_all(&[b'{'; 10]).unwrap();
        let started = Instant::now();
        let answer = read_raw(&s, Duration::from_secs(4)).unwrap_or_else(|open| panic!("{path}: open={}", !open));
        assert_eq!((answer.status, answer.code()), (408, "timeout".into()), "{path}");
        assert!(started.elapsed() < Duration::from_secs(3), "{path}: {:?}", started.elapsed());
    }
}

// ---- 2. bytes in flight ---------------------------------------------------------------------------

#[test]
fn a_content_length_over_the_limit_is_refused_before_the_body() {
    let d = deployment(|_| {});
    let li = token(&d, "li-na", &d.people.li_na);
    for (path, auth) in [
        ("/v1/sync", Some(li.as_str())),
        ("/v1/devices", None),
        ("/v1/admin/enrolments", Some(ADMIN_TOKEN)),
        ("/v1/admin/documents?doc=directory", Some(ADMIN_TOKEN)),
    ] {
        let mut s = TcpStream::connect(d.server.addr()).unwrap();
        let extra = "Content-Type: application/json\r\nContent-Length: 1000000000000\r\n";
        s.write_all(&head("POST", path, auth, extra)).unwrap();
        let answer = read_raw(&s, Duration::from_secs(3)).unwrap_or_else(|open| panic!("{path}: open={}", !open));
        assert_eq!((answer.status, answer.code()), (413, "too_large".into()), "{path}");
    }
}

/// The bytes the server has reserved for request bodies now (`/metrics`).
fn bytes_in_flight(server: &RunningServer) -> usize {
    let text = call("GET", &format!("{}/metrics", server.url()), None, None, vec![]).text();
    let line = text.lines().find(|l| l.starts_with("doorstep_body_bytes_in_flight ")).expect("the gauge");
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// A sync request whose head and first byte of body are sent, and whose body then waits.
fn start_sync(d: &Deployment, token: &str, content_length: Option<usize>) -> TcpStream {
    let mut s = TcpStream::connect(d.server.addr()).unwrap();
    let extra = match content_length {
        Some(n) => format!("Content-Length: {n}\r\n"),
        None => "Transfer-Encoding: chunked\r\n".into(),
    };
    s.write_all(&head("POST", "/v1/sync", Some(token), &extra)).unwrap();
    s.write_all(if content_length.is_some() { b"D" } else { b"1\r\nD\r\n" }).unwrap();
    s
}

/// A slow sync the server holds: it keeps what it reserved until the connection is dropped.
fn slow_sync(d: &Deployment, token: &str, content_length: usize) -> TcpStream {
    let before = bytes_in_flight(&d.server);
    let s = start_sync(d, token, Some(content_length));
    let deadline = Instant::now() + Duration::from_secs(5);
    while bytes_in_flight(&d.server) < before + content_length && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    s
}

#[test]
fn bytes_in_flight_are_bounded_per_device_and_server_wide() {
    const KIB: usize = 1024;
    let d = deployment(|c| {
        c.max_body_bytes = 1024 * KIB;
        c.max_in_flight_bytes = 1536 * KIB;
        c.body_read_timeout_secs = 10;
    });
    let li = token(&d, "li-na", &d.people.li_na);
    let courier = token(&d, "courier", &d.people.courier);
    let volunteer = token(&d, "volunteer", &d.people.volunteer);
    let sync =
        |token: &str, body: Vec<u8>| call("POST", &format!("{}/v1/sync", d.server.url()), Some(token), None, body);

    // One request at a time per device: Li Na's phone has one in flight.
    let li_slow = slow_sync(&d, &li, 600 * KIB);
    let busy = sync(&li, pull());
    assert_eq!((busy.status, busy.code()), (429, "busy".into()));
    assert!(busy.header("retry-after").is_some_and(|s| s.parse::<u32>().is_ok()), "{:?}", busy.headers);
    assert_eq!(sync(&courier, pull()).status, 200, "another device is not held up");

    // Server-wide: 600 KiB + 800 KiB are in flight; 200 KiB more would pass 1.5 MiB.
    let volunteer_slow = slow_sync(&d, &volunteer, 800 * KIB);
    let busy = sync(&courier, vec![0x44; 200 * KIB]);
    assert_eq!((busy.status, busy.code()), (429, "busy".into()));
    assert_eq!(sync(&courier, pull()).status, 200, "a small request still fits");
    drop(volunteer_slow);

    // A body without a Content-Length reserves the largest body (1 MiB): with Li Na's 600 KiB
    // in flight, it does not fit.
    let chunked = start_sync(&d, &courier, None);
    let answer = read_raw(&chunked, Duration::from_secs(3)).expect("an answer");
    assert_eq!((answer.status, answer.code()), (429, "busy".into()));

    // Once the slow request is gone, Li Na's phone syncs again.
    drop(li_slow);
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        let status = sync(&li, pull()).status;
        if status != 429 || Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status, 200);
    assert_eq!(bytes_in_flight(&d.server), 0, "every reservation was given back");
}

// ---- 3 and 4. every error is JSON; one body limit ----------------------------------------------

/// method, url, token, content type, body; the status and code expected.
type Case<'a> = (&'a str, String, Option<&'a str>, Option<&'a str>, Vec<u8>, u16, &'a str);

#[test]
fn every_error_is_json_with_a_documented_code() {
    let d = deployment(|_| {});
    let url = d.server.url();
    let li = token(&d, "li-na", &d.people.li_na);
    let json = Some("application/json");
    let bad_actor = serde_json::json!({ "code": "AAAA-BBBB-CCCC", "actor": "not hex" }).to_string();
    let bad_key = serde_json::json!({ "public_key": "zz", "proof": "00" }).to_string();
    let no_proof =
        serde_json::json!({ "code": "AAAA-BBBB-CCCC", "actor": "00112233445566778899aabbccddeeff" }).to_string();
    let cases: Vec<Case> = vec![
        ("POST", format!("{url}/v1/devices"), None, json, b"{not json".to_vec(), 400, "bad_request"),
        ("POST", format!("{url}/v1/devices"), None, json, b"{\"code\": 7}".to_vec(), 400, "bad_request"),
        ("POST", format!("{url}/v1/devices"), None, json, bad_actor.into_bytes(), 400, "bad_request"),
        ("POST", format!("{url}/v1/devices"), None, json, no_proof.into_bytes(), 400, "bad_proof"),
        ("POST", format!("{url}/v1/certificate"), None, json, bad_key.clone().into_bytes(), 401, "unauthorized"),
        ("POST", format!("{url}/v1/certificate"), Some(li.as_str()), json, b"{not json".to_vec(), 400, "bad_request"),
        ("POST", format!("{url}/v1/certificate"), Some(li.as_str()), json, bad_key.into_bytes(), 400, "bad_proof"),
        ("POST", format!("{url}/v1/devices"), None, Some("text/plain"), b"{}".to_vec(), 415, "unsupported_media_type"),
        ("POST", format!("{url}/v1/devices"), None, None, b"{}".to_vec(), 415, "unsupported_media_type"),
        ("POST", format!("{url}/v1/admin/enrolments"), Some(ADMIN_TOKEN), json, b"[".to_vec(), 400, "bad_request"),
        (
            "POST",
            format!("{url}/v1/admin/enrolments"),
            Some(ADMIN_TOKEN),
            json,
            b"{\"user_id\": \"not a user\"}".to_vec(),
            400,
            "bad_request",
        ),
        ("POST", format!("{url}/v1/admin/enrolments"), Some(&li), json, b"{}".to_vec(), 401, "unauthorized"),
        ("POST", format!("{url}/v1/admin/documents"), Some(ADMIN_TOKEN), None, vec![1, 2], 400, "bad_request"),
        ("POST", format!("{url}/v1/admin/documents?doc=nope"), Some(ADMIN_TOKEN), None, vec![1], 400, "bad_request"),
        (
            "POST",
            format!("{url}/v1/admin/documents?doc=directory"),
            Some(ADMIN_TOKEN),
            None,
            vec![1],
            400,
            "bad_document",
        ),
        ("DELETE", format!("{url}/v1/admin/devices/nobody"), Some(ADMIN_TOKEN), None, vec![], 404, "not_found"),
        ("DELETE", format!("{url}/v1/admin/devices/nobody"), None, None, vec![], 401, "unauthorized"),
        ("GET", format!("{url}/v1/nowhere"), None, None, vec![], 404, "not_found"),
        ("GET", format!("{url}/"), None, None, vec![], 404, "not_found"),
        ("GET", format!("{url}/v1/sync"), Some(&li), None, vec![], 405, "method_not_allowed"),
        ("PUT", format!("{url}/v1/devices"), None, None, vec![], 405, "method_not_allowed"),
        ("POST", format!("{url}/healthz"), None, None, vec![], 405, "method_not_allowed"),
        ("POST", format!("{url}/v1/sync"), Some(&li), None, b"hello".to_vec(), 400, "bad_message"),
        ("POST", format!("{url}/v1/sync"), None, None, pull(), 401, "unauthorized"),
    ];
    for (method, url, token, content_type, body, status, code) in cases {
        let answer = call(method, &url, token, content_type, body);
        assert_eq!((answer.status, answer.code().as_str()), (status, code), "{method} {url}: {}", answer.text());
        assert!(answer.header("content-type").is_some_and(|c| c.starts_with("application/json")), "{method} {url}");
    }
}

#[test]
fn the_admin_imports_a_document_over_2_mib_and_the_body_limit_is_the_configured_one() {
    let d = deployment(|c| c.max_body_bytes = 6 << 20);
    // The office's grid after a busy year: 1,300 visits with long notes that hardly compress.
    let grid = DocId::Visits(d.people.micro_grid.id.clone(), Period::of(SystemClock.now_ms()));
    let url = format!("{}/v1/admin/documents?doc={grid}", d.server.url());
    let mut office = Store::open(d.dir.path().join("office.sqlite"), OpenOptions::default()).unwrap();
    let h = household(&mut office, &d.people, "301", &[CareTag::ElderlyAlone]);
    for _ in 0..1_300 {
        let notes: String = (0..3_900).map(|_| char::from(b'a' + rand::random::<u8>() % 26)).collect();
        record_visit(&mut office, &h.id, &d.people.li_na, &notes);
    }
    let bytes = office.save_document(&grid).unwrap();
    drop(office);
    assert!(bytes.len() > 2 << 20, "{}", bytes.len());
    let answer = call("POST", &url, Some(ADMIN_TOKEN), None, bytes.clone());
    assert_eq!(answer.status, 200, "{}", answer.text());
    // Over the configured limit, the same route answers the JSON error.
    let mut over = bytes;
    over.resize(7 << 20, 0);
    let answer = call("POST", &url, Some(ADMIN_TOKEN), None, over);
    assert_eq!((answer.status, answer.code()), (413, "too_large".into()));
}

// ---- 5. health reflects whether writes work ----------------------------------------------------

#[test]
fn health_fails_while_the_database_cannot_be_written() {
    let d = deployment(|_| {});
    let code = enrolment_code(&d.server, &d.people.li_na);
    assert_eq!(healthz_within(&d.server, Duration::from_secs(2)), Some(200));
    // Another process holds the database's write lock (a stuck backup, a sqlite3 shell left in
    // a transaction): every sync and enrolment fails, and health must say so.
    let other = rusqlite::Connection::open(d.dir.path().join("server.sqlite")).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let answer = call("GET", &format!("{}/healthz", d.server.url()), None, None, vec![]);
    assert_eq!((answer.status, answer.code()), (503, "unhealthy".into()), "{}", answer.text());
    let body = device_request(&code, "00112233445566778899aabbccddeeff");
    let enrol = || {
        call(
            "POST",
            &format!("{}/v1/devices", d.server.url()),
            None,
            Some("application/json"),
            body.to_string().into_bytes(),
        )
    };
    let answer = enrol();
    assert_eq!((answer.status, answer.code()), (500, "internal".into()));
    assert!(answer.text().contains("server's database") && !answer.text().contains("phone"), "{}", answer.text());
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(healthz_within(&d.server, Duration::from_secs(2)), Some(200));
    let answer = enrol();
    assert_eq!(answer.status, 201, "the code still works: {}", answer.text());
}

// ---- 6 and 7. enrolments ---------------------------------------------------------------------------

#[test]
fn two_hundred_phones_enrol_at_once() {
    let d = deployment(|_| {});
    let codes: Vec<String> = (0..200).map(|_| enrolment_code(&d.server, &d.people.li_na)).collect();
    let url = format!("{}/v1/devices", d.server.url());
    // Another writer on the same file commits all the while, as the store's own connection does
    // when phones sync: a registration must wait for the write lock, not fail.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (done, database) = (done.clone(), d.dir.path().join("server.sqlite"));
        std::thread::spawn(move || {
            let conn = rusqlite::Connection::open(database).unwrap();
            conn.busy_timeout(Duration::from_secs(5)).unwrap();
            conn.execute_batch("CREATE TABLE other_writer (n INTEGER)").unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            for n in 0..100_000 {
                if done.load(std::sync::atomic::Ordering::Relaxed) || Instant::now() > deadline {
                    break;
                }
                conn.execute("INSERT INTO other_writer (n) VALUES (?1)", [n]).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let statuses: Vec<(u16, String)> = runtime().block_on(async {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        let calls = codes.iter().enumerate().map(|(i, code)| {
            let mut body = device_request(code, &format!("{i:032x}"));
            body["name"] = format!("phone {i}").into();
            let req = client.post(&url).json(&body);
            async move {
                let resp = req.send().await.unwrap();
                (resp.status().as_u16(), resp.text().await.unwrap())
            }
        });
        let tasks: Vec<_> = calls.map(tokio::spawn).collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    let failed: Vec<_> = statuses.iter().filter(|(s, _)| *s != 201).collect();
    assert!(failed.is_empty(), "{} of 200 failed: {:?}", failed.len(), &failed[..failed.len().min(3)]);
    let devices = d.server.with_store(|s| s.save_document(&DocId::Directory).unwrap());
    let doc = automerge::AutoCommit::load(&devices).unwrap();
    let listed = automerge::ReadDoc::get(&doc, automerge::ROOT, "devices").unwrap().unwrap().1;
    assert_eq!(automerge::ReadDoc::length(&doc, &listed), 200, "every device is in the directory");
}

#[test]
fn an_enrolment_whose_directory_write_fails_leaves_no_device_and_keeps_the_code() {
    let d = deployment(|_| {});
    let code = enrolment_code(&d.server, &d.people.li_na);
    let actor = "0123456789abcdef0123456789abcdef";
    // The disk fills up: the directory write of the enrolment cannot be kept.
    let database = d.dir.path().join("server.sqlite");
    let pages: i64 =
        rusqlite::Connection::open(&database).unwrap().query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
    d.server.with_store(|s| {
        s.limit_pages_for_tests(pages + 2).unwrap();
        for name_len in [100, 10, 1] {
            let mut writes = 0;
            let full = loop {
                let unit = NewUnit { kind: UnitKind::District, parent: None, name: "x".repeat(name_len) };
                match s.add_unit(unit) {
                    Ok(_) => writes += 1,
                    Err(e) => break e,
                }
                assert!(writes < 10_000, "the page limit never bit");
            };
            assert!(full.to_string().contains("full"), "{full}");
        }
    });
    let body = device_request(&code, actor).to_string().into_bytes();
    let url = format!("{}/v1/devices", d.server.url());
    let answer = call("POST", &url, None, Some("application/json"), body.clone());
    assert_eq!((answer.status, answer.code()), (500, "internal".into()), "{}", answer.text());
    let devices: i64 = rusqlite::Connection::open(&database)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM server_devices WHERE actor = ?1", [actor], |r| r.get(0))
        .unwrap();
    assert_eq!(devices, 0, "no token works for a device the directory does not know");

    // Room again: the same code and phone enrol, and the token syncs.
    d.server.with_store(|s| s.limit_pages_for_tests(1_000_000).unwrap());
    let answer = call("POST", &url, None, Some("application/json"), body);
    assert_eq!(answer.status, 201, "{}", answer.text());
    let token: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    let token = token["token"].as_str().unwrap();
    assert_eq!(call("POST", &format!("{}/v1/sync", d.server.url()), Some(token), None, pull()).status, 200);
    assert_eq!(
        d.server.with_store(|s| s.user_of_actor(actor).unwrap()),
        Some(d.people.li_na.id.clone()),
        "the directory knows the device"
    );
}
