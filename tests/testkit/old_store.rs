//! A store file as an older version of the app left it, for the upgrade tests.

use std::path::Path;

use doorstep_core::DocId;

/// A store as version `version` of the app left it, holding `docs`. Its query tables are empty:
/// an upgrade from it must rebuild them (every version up to `newest_rebuilding_upgrade`); for a
/// later version, [`old_query_rows`] fills them in as that version had them.
pub fn old_store(path: &Path, version: i64, docs: &[(DocId, Vec<u8>)]) {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    doorstep_core::hooks::migrate_to(&mut conn, version).unwrap();
    conn.execute("INSERT INTO device (id, actor, created_at) VALUES (1, x'00112233445566778899aabbccddeeff', 0)", [])
        .unwrap();
    for (d, bytes) in docs {
        conn.execute(
            "INSERT INTO documents (doc_id, snapshot, compacted_at) VALUES (?1, ?2, 0)",
            rusqlite::params![d.to_string(), bytes],
        )
        .unwrap();
    }
}

/// Copies the query rows and document heads of the current store `from` into the old store at
/// `path`: an old version after the newest upgrade that rebuilds had the same query tables (a
/// migration that changes them rebuilds) and kept them, and its documents' heads, filled in.
pub fn old_query_rows(path: &Path, from: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute("ATTACH DATABASE ?1 AS current", [from.to_str().unwrap()]).unwrap();
    for table in doorstep_core::hooks::DERIVED_TABLES.iter().chain(&["document_heads"]) {
        conn.execute(&format!("INSERT INTO main.{table} SELECT * FROM current.{table}"), []).unwrap();
    }
}
