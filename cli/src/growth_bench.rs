//! `doorstep bench growth`: one grid after three years of ordinary work, in the document layout
//! of docs/DATA-MODEL.md (registers by micro-grid, visits by micro-grid and month), as the phones and the
//! server hold it.
//!
//! The office records the history (300 households in 30 micro-grids, about a quarter of them
//! elderly people living alone with a bell check every day, plus routine visits), a real
//! `doorstep serve` process on 127.0.0.1 takes it, and the grid worker's and the volunteer's phones
//! enrol and sync. Figures go to stdout as `name: value unit`, with the targets beside
//! them; progress to stderr. The server's CPU is read from its threads' scheduler statistics
//! (nanoseconds), so a sync is measured by the work the server did, not by the loopback's timing.

use std::sync::Arc;
use std::time::Instant;

use doorstep_core::DAY_MS;
use doorstep_core::{
    CareTag, DocId, FixedClock, Household, HouseholdFilter, NewVisit, OpenOptions, Result, Store, UserId, VisitKind,
    VisitOutcome,
};
use doorstep_server::admin::AdminClient;
use rand::{rngs::StdRng, Rng, SeedableRng};

use crate::abuse_bench::{enrol, ServerProcess, ADMIN_TOKEN};
use crate::bench::{disk_bytes, evict_from_page_cache, median, progress};
use crate::sample;

pub struct GrowthSizes {
    pub households: usize,
    pub micro_grids: usize,
    pub days: i64,
    /// Routine (non-bell) visits a day across the grid.
    pub routine_per_day: usize,
    pub runs: usize,
}

impl GrowthSizes {
    /// The grid: 300 households, three years (~137,000 visits).
    pub fn full() -> GrowthSizes {
        GrowthSizes { households: 300, micro_grids: 30, days: 3 * 365, routine_per_day: 46, runs: 5 }
    }
    /// For a quick look (`--quick`); its figures are not the targets.
    pub fn quick() -> GrowthSizes {
        GrowthSizes { households: 40, micro_grids: 4, days: 75, routine_per_day: 6, runs: 3 }
    }
}

/// 2026-11-23 08:00 in Zhengzhou: the bench's today.
pub const TODAY: i64 = 1_795_392_000_000;

pub fn growth(sizes: &GrowthSizes) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut rng = StdRng::seed_from_u64(23);
    let start = TODAY - sizes.days * DAY_MS;
    let clock = Arc::new(FixedClock::new(start - DAY_MS));

    // ---- the office records three years of the grid ------------------------------------------
    let mut office =
        Store::open(dir.path().join("office.sqlite"), OpenOptions { clock: clock.clone(), ..OpenOptions::default() })?;
    let (_, staff, households) = grid(&mut office, &mut rng, sizes)?;
    let worker = staff.workers[0].clone();
    let visits = history(sizes, &mut rng, &clock, &households, &worker.id, |v| office.record_visit(v).map(drop))?;
    clock.set(TODAY);
    office.compact_all()?;
    let docs = office.document_ids()?;
    let server_bytes: usize = docs.iter().map(|id| office.save_document(id).map(|b| b.len())).sum::<Result<_>>()?;

    // ---- the server takes it -------------------------------------------------------------------
    progress(&format!("the server takes the {} documents", docs.len()));
    let mut server = ServerProcess::start(dir.path())?;
    let admin = AdminClient::new(&server.url, ADMIN_TOKEN);
    for doc in &docs {
        admin.import(doc, office.save_document(doc)?)?;
    }

    // ---- the grid worker's new phone -----------------------------------------------------------
    progress("the grid worker's new phone syncs");
    let path = dir.path().join("worker.sqlite");
    let mut phone = enrol(&server.url, &path, &clock, &worker)?;
    let mut initial = 0;
    loop {
        let p = phone.client.sync(&mut phone.store)?;
        initial += p.bytes_sent + p.bytes_received;
        if phone.store.sync_status()?.pending_documents == 0 && p.done {
            break;
        }
    }
    let held = phone.store.document_ids()?;
    let (busiest, largest) = held
        .iter()
        .filter(|id| **id != DocId::Directory)
        .map(|id| phone.store.save_document(id).map(|b| (id.clone(), b.len())))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .expect("the phone holds the grid");
    let busiest_bytes = phone.store.save_document(&busiest)?;
    let unit = busiest.unit().expect("a register or a month").clone();
    let at_door = phone
        .store
        .households(&HouseholdFilter { micro_grid: Some(unit.clone()), limit: 1, ..Default::default() })?
        .first()
        .map(|h| h.id.clone())
        .expect("a household of the busiest micro-grid");
    drop(phone);
    let phone_store_bytes = disk_bytes(&path);

    // ---- loading the busiest document: its peak memory, in a fresh process ----------------------
    let load_peak = |name: &str, bytes: &[u8]| -> Result<(f64, f64)> {
        let file = dir.path().join(name);
        std::fs::write(&file, bytes)?;
        let out = std::process::Command::new(std::env::current_exe()?)
            .args(["bench", "growth-load", &file.to_string_lossy()])
            .output()?;
        let figures: Vec<f64> =
            String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect();
        match figures[..] {
            [heap_bytes, rss_kb] if out.status.success() => Ok((heap_bytes, rss_kb)),
            _ => Err(doorstep_core::Error::File(format!(
                "the load probe printed no figures: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))),
        }
    };
    let (heap, rss_kb) = load_peak("busiest.automerge", &busiest_bytes)?;
    // Two more loads of the same records say where that peak comes from: the document saved
    // without deflating its columns (what the load inflates them to), and its records written
    // again as one change (the most that batching a phone's changes could save).
    let loaded = automerge::AutoCommit::load(&busiest_bytes)
        .map_err(|e| doorstep_core::Error::File(format!("the busiest document does not load: {e}")))?;
    let inflated = loaded.clone().save_nocompress();
    let (inflated_heap, _) = load_peak("inflated.automerge", &inflated)?;
    let one_change = as_one_change(&loaded)?;
    let (one_change_heap, _) = load_peak("one-change.automerge", &one_change)?;
    // The same probe on an empty document: what any load costs, whatever the document holds.
    let (empty_heap, empty_kb) = load_peak("empty.automerge", &automerge::AutoCommit::new().save())?;
    // And on plain Automerge: as many changes as the busiest document has, each setting one
    // number. What Automerge's load costs per change, whatever the change holds.
    let changes = automerge::AutoCommit::load(&busiest_bytes)
        .map_err(|e| doorstep_core::Error::File(format!("the busiest document does not load: {e}")))?
        .get_changes(&[])
        .len();
    let plain = {
        use automerge::transaction::Transactable;
        let mut am = automerge::AutoCommit::new();
        for i in 0..changes {
            am.put(automerge::ROOT, "n", i as i64).expect("a number in a plain document");
            am.commit();
        }
        am.save()
    };
    let (plain_heap, _) = load_peak("plain.automerge", &plain)?;

    // ---- the first write after opening the phone's store ---------------------------------------
    progress("the first write after opening the worker's phone, cold");
    let mut first_write = Vec::new();
    for _ in 0..sizes.runs {
        evict_from_page_cache(&path);
        let mut store = Store::open(&path, OpenOptions { clock: clock.clone(), ..OpenOptions::default() })?;
        let t = Instant::now();
        let v = sample::visit_to(
            &at_door,
            None,
            &worker.id,
            (VisitKind::Routine, VisitOutcome::AllWell),
            "All well.",
            None,
        );
        store.record_visit(v)?;
        first_write.push(t.elapsed().as_secs_f64() * 1e3);
        clock.advance(60_000);
    }

    // ---- the server's work for a sync of 10 new visits, warm and after a restart ----------------
    progress("syncs of 10 new visits into the grid");
    let mut phone = enrol(&server.url, &path.with_file_name("worker-2.sqlite"), &clock, &worker)?;
    phone.client.sync(&mut phone.store)?;
    let ten = |phone: &mut crate::abuse_bench::Phone, server: &ServerProcess| -> Result<f64> {
        for i in 0..10 {
            let h = &households[(i * 31) % households.len()];
            clock.advance(60_000);
            let kind = (VisitKind::Routine, VisitOutcome::AllWell);
            phone.store.record_visit(sample::visit_to(&h.id, h.location, &worker.id, kind, "Checked in.", None))?;
        }
        let before = server.cpu_ns()?;
        phone.client.sync(&mut phone.store)?;
        Ok((server.cpu_ns()? - before) as f64 / 1e6)
    };
    ten(&mut phone, &server)?; // the session's sync state is warm from here
    let warm = median((0..sizes.runs).map(|_| ten(&mut phone, &server)).collect::<Result<Vec<_>>>()?);
    let mut restarted = Vec::new();
    for _ in 0..sizes.runs.min(3) {
        server = server.restart(dir.path())?;
        restarted.push(ten(&mut phone, &server)?);
    }
    let restarted = median(restarted);

    // ---- the volunteer's phone -------------------------------------------------------------------
    progress("the volunteer's phone syncs");
    let mut vol = enrol(&server.url, &dir.path().join("volunteer.sqlite"), &clock, &staff.volunteer)?;
    vol.client.sync(&mut vol.store)?;
    let residents = |s: &Store, micro: Option<&doorstep_core::UnitId>| -> Result<usize> {
        let filter = HouseholdFilter { micro_grid: micro.cloned(), ..Default::default() };
        s.households(&filter)?.iter().map(|h| s.residents(&h.id).map(|r| r.len())).sum()
    };
    let held_by_volunteer = residents(&vol.store, None)?;
    let of_her_micro_grid = residents(&office, Some(&staff.volunteer.unit))?;
    let all_residents = residents(&office, None)?;

    println!("grid_households: {} households", sizes.households);
    println!("grid_visits: {visits} visits");
    println!("server_documents: {} documents", docs.len());
    println!("server_stored_bytes: {server_bytes} bytes");
    println!("phone_documents: {} documents", held.len());
    println!("largest_phone_document_bytes: {largest} bytes ({busiest}; target <= 524288)");
    println!("first_write_after_open_ms: {:.2} ms (target <= 50)", median(first_write));
    println!("load_peak_heap_bytes: {heap:.0} bytes (the most heap loading {largest} bytes held at once)");
    println!("load_peak_heap_ratio: {:.1} (of the saved size; target <= 10)", heap / largest as f64);
    println!("load_peak_heap_empty_document_bytes: {empty_heap:.0} bytes (the same probe loading an empty document)");
    println!("busiest_document_changes: {changes} changes");
    println!("load_peak_heap_per_change_bytes: {:.0} bytes", heap / changes.max(1) as f64);
    println!(
        "plain_automerge_load_peak_heap_per_change_bytes: {:.0} bytes (as many changes of one number each, {} bytes saved)",
        plain_heap / changes.max(1) as f64,
        plain.len()
    );
    println!("busiest_document_inflated_bytes: {} bytes (saved without deflating its columns)", inflated.len());
    println!(
        "load_peak_heap_inflated_ratio: {:.1} (loading that save: {inflated_heap:.0} bytes at the peak, of its size)",
        inflated_heap / inflated.len() as f64
    );
    println!(
        "load_peak_heap_one_change_ratio: {:.1} (its records written as one change, {} bytes saved: {one_change_heap:.0} bytes at the peak)",
        one_change_heap / one_change.len() as f64,
        one_change.len()
    );
    println!(
        "load_peak_rss_ratio: {:.1} (peak RSS {rss_kb:.0} KB loading {largest} bytes, counted in pages; \
         an empty document: {empty_kb:.0} KB; target <= 10)",
        rss_kb * 1024.0 / largest as f64,
    );
    println!("phone_store_bytes: {phone_store_bytes} bytes (target <= 20971520)");
    println!("new_phone_initial_sync_bytes: {initial} bytes");
    println!("server_sync_10_visits_ms: {warm:.2} ms (server CPU, warm; target <= 15)");
    println!("server_sync_10_visits_after_restart_ms: {restarted:.2} ms (server CPU; target <= 50)");
    println!("volunteer_residents_held: {held_by_volunteer} residents");
    println!("micro_grid_residents: {of_her_micro_grid} residents (of {all_residents} in the grid; must equal the line above)");
    if held_by_volunteer != of_her_micro_grid {
        return Err(doorstep_core::Error::Storage {
            kind: doorstep_core::StorageKind::Other,
            detail: "the volunteer holds residents of other micro-grids".into(),
        });
    }
    Ok(())
}

/// The sample district with one grid of `sizes.households` households (with their residents)
/// spread over its `sizes.micro_grids` micro-grids, and its staff.
pub fn grid(
    office: &mut Store,
    rng: &mut StdRng,
    sizes: &GrowthSizes,
) -> Result<(sample::District, sample::Staff, Vec<Household>)> {
    let d = sample::district(office, 1, sizes.micro_grids)?;
    let staff = sample::staff(office, &d)?;
    let micro = &d.micro_grids[0];
    let households = (0..sizes.households)
        .map(|i| {
            let m = &micro[i * micro.len() / sizes.households];
            sample::household(office, rng, &d.grids[0], Some(m), i, true)
        })
        .collect::<Result<_>>()?;
    Ok((d, staff, households))
}

/// Records `sizes.days` days of the grid's visits by `worker`, from `TODAY - sizes.days`, through
/// `record`: a bell check every morning at each elderly person living alone's door (3% of them
/// unanswered) and `sizes.routine_per_day` routine visits to households drawn at random. Returns
/// how many were recorded.
pub fn history(
    sizes: &GrowthSizes,
    rng: &mut StdRng,
    clock: &FixedClock,
    households: &[Household],
    worker: &UserId,
    mut record: impl FnMut(NewVisit) -> Result<()>,
) -> Result<usize> {
    let start = TODAY - sizes.days * DAY_MS;
    let elderly: Vec<_> = households.iter().filter(|h| h.care_tags.contains(&CareTag::ElderlyAlone)).collect();
    progress(&format!(
        "recording {} days of visits: {} bell checks a day, {} routine visits",
        sizes.days,
        elderly.len(),
        sizes.routine_per_day
    ));
    let mut visits = 0usize;
    for day in 0..sizes.days {
        let morning = start + day * DAY_MS + 9 * 3_600_000;
        for (i, h) in elderly.iter().enumerate() {
            let at = morning + i as i64 * 60_000;
            clock.set(at);
            let outcome =
                if rng.random_bool(0.97) { VisitKind::BellCheckAnswered } else { VisitKind::BellCheckNoAnswer };
            record(sample::visit_to(&h.id, h.location, worker, (outcome, VisitOutcome::AllWell), "", Some(at)))?;
        }
        for i in 0..sizes.routine_per_day {
            let h = &households[rng.random_range(0..households.len())];
            let at = morning + 4 * 3_600_000 + i as i64 * 300_000;
            clock.set(at);
            let kind = sample::visit_kind(rng, h.care_tags.contains(&CareTag::ElderlyAlone));
            record(sample::visit_to(&h.id, h.location, worker, kind, sample::visit_note(rng), Some(at)))?;
        }
        visits += elderly.len() + sizes.routine_per_day;
        if day % 91 == 90 {
            progress(&format!("  day {} of {}: {visits} visits", day + 1, sizes.days));
        }
    }
    Ok(visits)
}

/// A document's records written again, as they are now, into a new document in one change: the
/// same content with the least history Automerge can carry. Month documents hold maps of scalars
/// (docs/DATA-MODEL.md), which is all this copies; the copy is compared with the original.
fn as_one_change(doc: &automerge::AutoCommit) -> Result<Vec<u8>> {
    use automerge::{transaction::Transactable, AutoCommit, AutomergeError, ObjId, ObjType, ReadDoc, Value};
    fn copy(
        from: &AutoCommit,
        src: &ObjId,
        to: &mut AutoCommit,
        dst: &ObjId,
    ) -> std::result::Result<(), AutomergeError> {
        for key in from.keys(src) {
            match from.get(src, &key)? {
                Some((Value::Scalar(v), _)) => to.put(dst, &key, v.into_owned())?,
                Some((Value::Object(ObjType::Map), id)) => {
                    let child = to.put_object(dst, &key, ObjType::Map)?;
                    copy(from, &id, to, &child)?;
                }
                _ => {} // not in a month document; the comparison below would refuse the copy
            }
        }
        Ok(())
    }
    let mut out = AutoCommit::new();
    copy(doc, &automerge::ROOT, &mut out, &automerge::ROOT)
        .map_err(|e| doorstep_core::Error::File(format!("copying the busiest document: {e}")))?;
    out.commit();
    if out.document().hydrate(None) != doc.clone().document().hydrate(None) {
        return Err(doorstep_core::Error::File("the one-change copy does not hold the same records".into()));
    }
    Ok(out.save())
}
