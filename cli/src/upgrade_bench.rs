//! `doorstep bench upgrade`: what converting a deployment of the old layout costs its server.
//! One grid after three years as the old layout kept it (one `grid/<id>` document: households
//! and residents as map records, every visit as a value record, one change per visit as a phone
//! wrote them) is taken by a store holding the directory and converted into registers by
//! micro-grid and months (docs/OPERATIONS.md, *Upgrading a deployment from grid documents*).
//! The baseline in the same run is plain Automerge loading the same bytes.

use std::time::Instant;

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ObjId, ObjType, ReadDoc, ROOT};
use doorstep_core::{
    hooks, Clock, DocId, Error, FixedClock, NewUser, OpenOptions, Personal, Result, Role, Store, Visit, VisitId,
};
use rand::{rngs::StdRng, SeedableRng};

use crate::bench::progress;
use crate::growth_bench::{grid, history, GrowthSizes, TODAY};

pub fn upgrade(sizes: &GrowthSizes) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut rng = StdRng::seed_from_u64(23);
    let clock = std::sync::Arc::new(FixedClock::new(TODAY - (sizes.days + 1) * doorstep_core::DAY_MS));
    let options = || OpenOptions { clock: clock.clone(), ..OpenOptions::default() };

    // ---- the grid as the old layout kept it ------------------------------------------------------
    let mut office = Store::open(dir.path().join("office.sqlite"), options())?;
    let (d, staff, households) = grid(&mut office, &mut rng, sizes)?;
    let admin = office.add_user(NewUser {
        name: Personal::new("Zhou Min"),
        role: Role::Admin,
        unit: d.district.id.clone(),
        department: None,
    })?;
    let doc = DocId::Grid(d.grids[0].id.clone());
    let json = |e: serde_json::Error| Error::File(format!("a record as JSON: {e}"));
    let bad = |e: automerge::AutomergeError| Error::File(format!("writing the old grid document: {e}"));
    let mut am = AutoCommit::load(&hooks::genesis(&doc)).map_err(bad)?.with_actor(ActorId::random());
    let collection = |am: &AutoCommit, name: &str| -> Result<ObjId> {
        match am.get(ROOT, name).map_err(bad)? {
            Some((_, id)) => Ok(id),
            None => Err(Error::File(format!("the genesis has no {name}"))),
        }
    };
    let (household_map, resident_map, visit_map) =
        (collection(&am, "households")?, collection(&am, "residents")?, collection(&am, "visits")?);
    let mut residents = 0;
    for h in &households {
        let obj = am.put_object(&household_map, h.id.as_str(), ObjType::Map).map_err(bad)?;
        put_fields(&mut am, &obj, &serde_json::to_value(h).map_err(json)?).map_err(bad)?;
        for r in office.residents(&h.id)? {
            let obj = am.put_object(&resident_map, r.id.as_str(), ObjType::Map).map_err(bad)?;
            put_fields(&mut am, &obj, &serde_json::to_value(&r).map_err(json)?).map_err(bad)?;
            residents += 1;
        }
        am.commit();
    }
    let visits = history(sizes, &mut rng, &clock, &households, &staff.workers[0].id, |v| {
        let visit = Visit {
            id: VisitId::generate(),
            household: v.household,
            worker: v.worker,
            at: v.at.unwrap_or_else(|| clock.now_ms()),
            location: v.location,
            kind: v.kind,
            outcome: v.outcome,
            notes: v.notes,
            follow_up: v.follow_up,
            photos: v.photos,
            deleted: false,
        };
        am.put(&visit_map, visit.id.as_str(), serde_json::to_string(&visit).map_err(json)?).map_err(bad)?;
        am.commit();
        Ok(())
    })?;
    let bytes = am.save();
    drop(am);

    // ---- the server takes it and converts it ----------------------------------------------------
    clock.set(TODAY);
    let mut server = Store::open(dir.path().join("server.sqlite"), options())?;
    server.merge_document(&DocId::Directory, &office.save_document(&DocId::Directory)?)?;
    drop(office);
    progress(&format!("the server takes the old grid document ({} bytes)", bytes.len()));
    let t = Instant::now();
    server.merge_document(&doc, &bytes)?;
    let merge_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    drop(AutoCommit::load(&bytes).map_err(bad)?);
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    progress("converting it");
    let t = Instant::now();
    let converted = server.convert_grids(&admin.id)?;
    let convert_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let again = server.convert_grids(&admin.id)?;
    let again_ms = t.elapsed().as_secs_f64() * 1e3;
    let converted_docs =
        server.document_ids()?.iter().filter(|id| !matches!(id, DocId::Directory | DocId::Grid(_))).count();

    println!("old_grid_document_bytes: {} bytes", bytes.len());
    println!("old_grid_households: {} households", households.len());
    println!("old_grid_residents: {residents} residents");
    println!("old_grid_visits: {visits} visits");
    println!("merge_old_grid_ms: {merge_ms:.0} ms (the server takes the document, checked and indexed)");
    println!("automerge_load_old_grid_ms: {load_ms:.0} ms (plain Automerge loads the same bytes)");
    println!("convert_grid_ms: {convert_ms:.0} ms");
    println!("convert_grid_per_load_ratio: {:.1}", convert_ms / load_ms);
    println!("convert_grid_us_per_visit: {:.1} us", convert_ms * 1e3 / visits.max(1) as f64);
    println!("converted_households: {} households", converted.households);
    println!("converted_residents: {} residents", converted.residents);
    println!("converted_visits: {} visits", converted.visits);
    println!("converted_skipped: {} records", converted.skipped.len());
    println!("converted_documents: {converted_docs} documents (registers and months)");
    println!("convert_again_ms: {again_ms:.1} ms (nothing new since: {} grids)", again.grids);
    if (converted.households, converted.residents, converted.visits) != (households.len(), residents, visits)
        || !converted.skipped.is_empty()
    {
        return Err(Error::File(format!("the conversion did not copy every record: {converted:?}")));
    }
    Ok(())
}

/// Writes a JSON object into an Automerge map field by field, as the old layout's clients kept
/// map records (`null` fields left out, lists as JSON text).
fn put_fields(
    am: &mut AutoCommit,
    obj: &ObjId,
    value: &serde_json::Value,
) -> std::result::Result<(), automerge::AutomergeError> {
    let Some(fields) = value.as_object() else { return Ok(()) };
    for (k, v) in fields {
        match v {
            serde_json::Value::Null => {}
            serde_json::Value::Object(_) => {
                let child = am.put_object(obj, k.as_str(), ObjType::Map)?;
                put_fields(am, &child, v)?;
            }
            serde_json::Value::Array(_) => am.put(obj, k.as_str(), v.to_string())?,
            serde_json::Value::String(s) => am.put(obj, k.as_str(), s.as_str())?,
            serde_json::Value::Bool(b) => am.put(obj, k.as_str(), *b)?,
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => am.put(obj, k.as_str(), i)?,
                None => am.put(obj, k.as_str(), n.as_f64().unwrap_or_default())?,
            },
        }
    }
    Ok(())
}
