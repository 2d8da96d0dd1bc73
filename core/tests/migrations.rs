//! Every older schema upgrades to the current one: same tables and indexes as a new store,
//! documents carried over untouched, query tables rebuilt from them.

mod common;

use common::*;
use doorstep_core::store::schema::{newest_rebuilding_upgrade, CURRENT};
use doorstep_core::*;

fn schema_of(path: &std::path::Path) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT name, COALESCE(sql, '') FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap();
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<Result<Vec<_>, _>>().unwrap();
    rows
}

#[test]
fn every_older_schema_upgrades_to_the_current_one() {
    let dir = tempfile::tempdir().unwrap();
    // A store of today with a little of everything in it.
    let current = dir.path().join("current.sqlite");
    let (mut s, f) = district(&current);
    let h = household(&mut s, &f, "401", &[CareTag::ElderlyAlone]);
    s.record_visit(visit(&h.id, &f.worker.id, VisitKind::BellCheckAnswered)).unwrap();
    s.add_resident(NewResident {
        household: h.id.clone(),
        name: Personal::new("Zhao Shulan"),
        phone: Personal::new("13800000000"),
        id_number: Personal::default(),
        birth_year: Some(1941),
        relation: Relation::Head,
    })
    .unwrap();
    let r = s.file_report(report(&f, "电动车在楼道充电 e-bike charging in the corridor")).unwrap();
    let docs: Vec<(DocId, Vec<u8>)> = s
        .document_ids()
        .unwrap()
        .into_iter()
        .map(|d| {
            let b = s.save_document(&d).unwrap();
            (d, b)
        })
        .collect();
    let expected = s.dump_query_tables().unwrap();
    drop(s);

    for version in 1..CURRENT {
        // A database as version `version` of the app left it, holding the same documents.
        let old = dir.path().join(format!("v{version}.sqlite"));
        old_store(&old, version, &docs);
        if version > newest_rebuilding_upgrade() {
            old_query_rows(&old, &current);
        }

        let mut upgraded = Store::open(&old, OpenOptions { clock: f.clock.clone(), ..OpenOptions::default() }).unwrap();
        assert_eq!(schema_of(&old), schema_of(&current), "schema after upgrading from v{version}");
        assert_eq!(upgraded.dump_query_tables().unwrap(), expected, "query tables after upgrading from v{version}");
        assert_eq!(upgraded.actor_id(), "00112233445566778899aabbccddeeff", "the device keeps its actor id");
        let hits = upgraded.search("楼道充电", 10).unwrap();
        assert_eq!(
            hits,
            vec![SearchHit::Report {
                id: r.id.clone(),
                description: "电动车在楼道充电 e-bike charging in the corridor".into()
            }]
        );
        upgraded.record_visit(visit(&h.id, &f.worker.id, VisitKind::Routine)).unwrap();
        drop(upgraded);
        let conn = rusqlite::Connection::open(&old).unwrap();
        let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v, CURRENT);
        let unknown_heads: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM documents d LEFT JOIN document_heads h USING (doc_id) WHERE h.heads IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(unknown_heads, 0, "every document has its heads and a place in the feed after v{version}");
    }
}
