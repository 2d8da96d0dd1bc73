//! Every older schema upgrades to the current one: same tables and indexes as a new store,
//! documents carried over untouched, query tables rebuilt from them.

use doorstep_core::hooks::{newest_rebuilding_upgrade, SCHEMA_VERSION as CURRENT};
use doorstep_core::*;
use testkit::*;

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
    s.record_visit(visit(&h.id, &f.li_na.id, VisitKind::BellCheckAnswered)).unwrap();
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
        upgraded.record_visit(visit(&h.id, &f.li_na.id, VisitKind::Routine)).unwrap();
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

/// A phone of the old layout (schema 6: one `grid/<id>` document holding the grid's register and
/// visits) upgrades with nothing gone from its screens. Its households stay read-only until their
/// register arrives, whose copy then shows, a tombstone included; new visits go to the months.
#[test]
fn a_store_of_grid_documents_upgrades_and_its_registers_take_over() {
    use automerge::transaction::Transactable;
    use automerge::{ActorId, ObjType, ReadDoc, ROOT};
    let dir = tempfile::tempdir().unwrap();
    let (mut office, f) = district(&dir.path().join("office.sqlite"));
    let h = household(&mut office, &f, "401", &[CareTag::ElderlyAlone]);
    // The grid document as version 6 wrote it: its genesis, then the household and a visit.
    let grid = DocId::Grid(f.grid.id.clone());
    let mut am = genesis(&grid).with_actor(ActorId::random());
    let (_, households) = am.get(ROOT, "households").unwrap().unwrap();
    let record = am.put_object(&households, h.id.as_str(), ObjType::Map).unwrap();
    put_json(&mut am, &record, &serde_json::to_value(&h).unwrap());
    let (_, visits) = am.get(ROOT, "visits").unwrap().unwrap();
    let old_visit = serde_json::json!({"id": "01JOLDVISIT000000000000000", "household": h.id.as_str(),
        "worker": f.li_na.id.as_str(), "at": MORNING - DAY, "kind": "routine", "outcome": "all_well"});
    am.put(&visits, "01JOLDVISIT000000000000000", old_visit.to_string()).unwrap();
    am.commit();
    let path = dir.path().join("v6.sqlite");
    let directory = office.save_document(&DocId::Directory).unwrap();
    old_store(&path, 6, &[(DocId::Directory, directory), (grid.clone(), am.save())]);

    let mut phone = open(&path, &f.clock);
    assert_eq!(phone.household(&h.id).unwrap().micro_grid, Some(f.micro_grid.id.clone()));
    assert_eq!(phone.visit_history(&h.id, 0).unwrap().len(), 1, "the old visit is still shown");
    let edit = HouseholdUpdate { notes: Some("Daughter visits on Sundays".into()), ..Default::default() };
    let err = phone.update_household(&h.id, edit).unwrap_err();
    assert!(matches!(&err, Error::InvalidInput { field: "household", .. }), "{err}");
    phone.record_visit(visit(&h.id, &f.li_na.id, VisitKind::BellCheckAnswered)).unwrap();
    assert!(phone.document_ids().unwrap().contains(&month_visits(&f)));
    assert_eq!(phone.visit_history(&h.id, 0).unwrap().len(), 2);
    assert!(phone.household(&h.id).unwrap().last_contact_at.is_some(), "its clocks count both documents");
    // Its register arrives, where the household has since been deleted: the register's copy
    // shows, not the old grid document's.
    office.delete_household(&h.id).unwrap();
    phone.merge_document(&register(&f), &office.save_document(&register(&f)).unwrap()).unwrap();
    assert!(phone.household(&h.id).is_err(), "the register's tombstone shows over the old copy");
    let tables = phone.dump_query_tables().unwrap();
    phone.rebuild_indexes().unwrap();
    assert_eq!(phone.dump_query_tables().unwrap(), tables, "and so does a rebuild");
}

/// Stored documents are read as untrusted too (an older version, a restored backup): a household
/// kept in a document its units do not name gets no row, in a register or an old grid document.
#[test]
fn a_stored_household_in_the_wrong_document_gets_no_row() {
    use automerge::transaction::Transactable;
    use automerge::{ActorId, ObjType, ReadDoc, ROOT};
    let dir = tempfile::tempdir().unwrap();
    let (mut office, f) = district(&dir.path().join("office.sqlite"));
    let h = household(&mut office, &f, "401", &[]);
    let directory = office.save_document(&DocId::Directory).unwrap();
    let stray = |doc: &DocId, grid: &UnitId, micro: Option<&UnitId>| {
        let mut am = genesis(doc).with_actor(ActorId::random());
        let (_, households) = am.get(ROOT, "households").unwrap().unwrap();
        let record = am.put_object(&households, h.id.as_str(), ObjType::Map).unwrap();
        let copy = Household { grid: grid.clone(), micro_grid: micro.cloned(), ..h.clone() };
        put_json(&mut am, &record, &serde_json::to_value(&copy).unwrap());
        am.commit();
        am.save()
    };
    // In the grid's own register, though it names a micro-grid; in the old grid document of
    // another grid.
    let docs = vec![
        (DocId::Directory, directory),
        (
            DocId::Register(f.grid.id.clone()),
            stray(&DocId::Register(f.grid.id.clone()), &f.grid.id, Some(&f.micro_grid.id)),
        ),
        (DocId::Grid(f.other_grid.id.clone()), stray(&DocId::Grid(f.other_grid.id.clone()), &f.grid.id, None)),
    ];
    let path = dir.path().join("v7.sqlite");
    old_store(&path, 6, &docs);
    let phone = open(&path, &f.clock);
    assert!(phone.household(&h.id).is_err(), "neither copy belongs where it is kept");
}
