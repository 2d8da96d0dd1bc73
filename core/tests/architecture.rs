//! The layering docs/ARCHITECTURE.md §2 promises, checked on the source.
//!
//! The sync engine talks to the replica it syncs through `sync::replica`'s traits, not through
//! the `Store` facade: outside its tests, an engine file names `Store` only in the import and in
//! a public entry point whose body is one line handing the store on. A function that took a
//! `Store` could call any of the facade's methods; one generic over `Replica` can call only what
//! `replica.rs` lists.

use std::path::Path;

/// The engine's files (`wire`, `api`, `http` and `history` are its bytes and its clients).
const ENGINE: &[&str] = &["exchange.rs", "gate.rs", "session.rs", "responder.rs"];

/// Whether `line` names the type `Store` (not `StoredHeads`, `store`, or a comment).
fn names_store(line: &str) -> bool {
    let code = line.split("//").next().unwrap_or("");
    code.match_indices("Store").any(|(i, _)| {
        let before = code[..i].chars().next_back();
        let after = code[i + "Store".len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// Where an engine file's `source` names `Store` outside its import, its test module and its
/// entry points. An entry point is a `pub fn` whose signature is one line and whose body is one
/// call handing `store` on to the engine (`self.…(store…`, `Self::…(store…`, …).
fn uses_of_store(source: &str) -> Vec<String> {
    let lines: Vec<&str> = source.lines().collect();
    let end = lines
        .windows(2)
        .position(|w| w[0].trim() == "#[cfg(test)]" && w[1].trim().starts_with("mod tests"))
        .unwrap_or(lines.len());
    let hands_on = |body: &str| {
        let body = body.trim().trim_start_matches("Ok(");
        ["self.", "Self::", "Session::", "ServerResponder::", "PeerResponder::"].iter().any(|p| body.starts_with(p))
            && body.contains("(store")
            && !body.ends_with('{')
            && !body.ends_with(';')
    };
    let mut out = Vec::new();
    for (i, line) in lines[..end].iter().enumerate() {
        let t = line.trim();
        if !names_store(t) {
            continue;
        }
        // The import, without renaming it (an alias would escape the check).
        if t.starts_with("use crate::store::") && !t.contains(" as ") {
            continue;
        }
        let entry_point = t.starts_with("pub fn ")
            && t.ends_with('{')
            && lines.get(i + 1).is_some_and(|body| hands_on(body))
            && lines.get(i + 2).is_some_and(|close| close.trim() == "}");
        if !entry_point {
            out.push(format!("{}: {t}", i + 1));
        }
    }
    out
}

#[test]
fn the_sync_engine_reaches_the_store_only_through_its_replica_traits() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sync");
    let mut found = Vec::new();
    for file in ENGINE {
        let source = std::fs::read_to_string(dir.join(file)).unwrap();
        found.extend(uses_of_store(&source).into_iter().map(|l| format!("sync/{file}:{l}")));
    }
    // The traits themselves must not hand the facade out, nor the module alias it.
    let replica = std::fs::read_to_string(dir.join("replica.rs")).unwrap();
    let traits = &replica[..replica.find("\nimpl ").expect("replica.rs implements its traits")];
    for (i, line) in traits.lines().enumerate() {
        if names_store(line) && !line.trim().starts_with("use crate::store::") {
            found.push(format!("sync/replica.rs:{}: {}", i + 1, line.trim()));
        }
    }
    let module = std::fs::read_to_string(dir.join("mod.rs")).unwrap();
    found.extend(module.lines().filter(|l| names_store(l)).map(|l| format!("sync/mod.rs: {}", l.trim())));
    assert!(
        found.is_empty(),
        "the engine names Store beyond its entry points (an entry point is a `pub fn` on one line whose \
         one-line body hands `store` on):\n{}",
        found.join("\n")
    );
}

/// The rule above catches what it is meant to catch.
#[test]
fn the_rule_sees_a_function_that_takes_the_store() {
    let ok = "use crate::store::{DocumentRefusal, Store};\n\
              pub fn respond(&mut self, store: &mut Store, request: &[u8]) -> Result<Vec<u8>> {\n    \
                  self.respond_with(store, request)\n}\n\
              fn check<R: Replica>(&self, store: &mut R) -> Result<()> { // not a Store\n";
    assert!(uses_of_store(ok).is_empty(), "{:?}", uses_of_store(ok));
    let private = "fn check(&self, store: &mut Store) -> Result<()> {\n    store.users()\n}\n";
    assert_eq!(uses_of_store(private).len(), 1);
    let long_body = "pub fn with_server(store: &mut Store) -> Result<Session> {\n    \
                     let users = store.users()?;\n    Session::server(store)\n}\n";
    assert_eq!(uses_of_store(long_body).len(), 1);
    let in_tests = "#[cfg(test)]\nmod tests {\n    fn f(store: &mut Store) {}\n}\n";
    assert!(uses_of_store(in_tests).is_empty());
    let alias = "use crate::store::Store as Db;\n";
    assert_eq!(uses_of_store(alias).len(), 1);
    let early_cfg = "#[cfg(test)]\nfn helper() {}\nfn check(&self, store: &mut Store) {}\n";
    assert_eq!(uses_of_store(early_cfg).len(), 1);
    let does_work = "pub fn with_server(store: &mut Store) -> Result<Session> {\n    \
                     store.delete_visit(&id).map(|_| Session::default())\n}\n";
    assert_eq!(uses_of_store(does_work).len(), 1);
}
