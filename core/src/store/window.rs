//! Letting documents outside a phone's window go (`crate::window`), once the server holds them;
//! and those its user may no longer read (moved to another unit), on the same terms.
//!
//! A document leaves only when nothing is lost by it: it lies outside the window, its month is
//! closed for writing (so no visit can still arrive for it from this phone), and the server holds
//! every change this phone holds (its heads are the heads the server last confirmed; a document
//! with changes the server has not taken — written here, relayed from another phone, refused —
//! stays). It leaves in one transaction: its rows, its query-table rows, its sync bookkeeping.

use std::collections::HashSet;

use super::projection::{clocks_of_rows, merge_earlier, refresh_due, Earlier};
use super::{DocumentRepository, Indexer, SqliteRepository, Store, SERVER_PEER};
use crate::document::DocId;
use crate::error::{Db, Result};
use crate::period::{Period, GRACE_MS};
use crate::store::query::lookup;
use crate::sync::wire::{self, EarlierClocks};
use crate::window::Window;

/// What [`Store::release_outside_window`] let go of.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Released {
    pub documents: usize,
    /// Stored bytes of those documents (snapshots and change rows).
    pub bytes: u64,
}

impl Store {
    /// The window this store keeps, if it keeps one (phones do; the server keeps everything).
    pub fn window(&self) -> Option<Window> {
        self.window
    }

    /// Changes the window (the app's setting); `None` keeps everything from now on. Documents
    /// already let go of come back only on demand (`ServerClient::fetch_visits`).
    pub fn set_window(&mut self, window: Option<Window>) {
        self.window = window;
    }

    /// Whether this store takes `doc` from another replica when it does not hold it yet: not a
    /// visits document outside its window.
    pub(crate) fn takes(&self, doc: &DocId) -> bool {
        self.window.is_none_or(|w| w.takes(doc, self.now()))
    }

    /// Lets go of every document outside the window whose changes the server holds (see the
    /// module doc). Each document's query rows go with it; what its visits said about their
    /// households' clocks stays (`earlier_visits`), so due dates do not move. A sync with the
    /// server does this when it ends; a store without a window keeps everything.
    pub fn release_outside_window(&mut self) -> Result<Released> {
        self.release_outside_window_but(&HashSet::new())
    }

    /// [`Store::release_outside_window`], keeping `also_kept` too (a session keeps what the
    /// server confirmed only during it, until a later session: a server restored from a backup
    /// taken meanwhile would lack it, and the phone would have let go of the last copy).
    pub(crate) fn release_outside_window_but(&mut self, also_kept: &HashSet<DocId>) -> Result<Released> {
        let Some(window) = self.window else { return Ok(Released::default()) };
        let now = self.now();
        let mut unsent: HashSet<DocId> = self.dirty_documents(SERVER_PEER)?.into_iter().collect();
        unsent.extend(also_kept.iter().cloned());
        let mut released = Released::default();
        for doc in self.document_ids()? {
            let outside = match &doc {
                DocId::Visits(_, period) => !window.keeps_month(*period, now),
                DocId::Report(id) => {
                    let closed_at: Option<i64> = lookup(
                        &self.conn,
                        "SELECT closed_at FROM reports WHERE id = ?1 AND status = 'closed'",
                        [id.as_str()],
                    )?
                    .flatten();
                    closed_at.is_some_and(|at| !window.keeps_closed_report(at, now))
                }
                _ => false,
            };
            if outside && !unsent.contains(&doc) {
                released.bytes += self.release(&doc)?;
                released.documents += 1;
            }
        }
        if released.documents > 0 {
            tracing::info!(
                documents = released.documents,
                bytes = released.bytes,
                "documents outside the window let go"
            );
        }
        Ok(released)
    }

    /// Lets go of every document this phone's user may no longer read by the directory (the
    /// office moved them to another unit, as Couchbase purges a document on channel loss), but
    /// those the server lacks changes of, and `also_kept`: what the worker wrote there and the
    /// server refused stays, listed as refused (`DocumentRefusal`), until the app or an office
    /// deals with it, so that nothing recorded is lost. What leaves, leaves the file too: its
    /// pages overwritten (`secure_delete`), the WAL emptied (best effort below that, as for an
    /// erased phone). Known gaps (PROTOCOL.md §4, *Moved workers*): the search indexes' segments
    /// and pages freed earlier may keep terms and older rows, photo files stay, and the old
    /// households' clocks stay in `earlier_visits`. A sync with the server does this when it ends,
    /// after the directory came.
    pub(crate) fn release_unreadable_but(&mut self, also_kept: &HashSet<DocId>) -> Result<Released> {
        let Some(me) = self.device_user()? else { return Ok(Released::default()) };
        let mut unsent: HashSet<DocId> = self.dirty_documents(SERVER_PEER)?.into_iter().collect();
        unsent.extend(also_kept.iter().cloned());
        let mut leaving = Vec::new();
        for doc in self.document_ids()? {
            if doc != DocId::Directory && !unsent.contains(&doc) && !self.may_read(&me, &doc)? {
                leaving.push(doc);
            }
        }
        let mut released = Released::default();
        if leaving.is_empty() {
            return Ok(released);
        }
        self.conn.pragma_update(None, "secure_delete", true).db()?;
        let result = (|| {
            for doc in &leaving {
                released.bytes += self.release(doc)?;
                released.documents += 1;
            }
            self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).db()
        })();
        self.conn.pragma_update(None, "secure_delete", false).db()?;
        result?;
        tracing::info!(
            documents = released.documents,
            bytes = released.bytes,
            "documents this phone's user may no longer read let go"
        );
        Ok(released)
    }

    /// The old layout's grid documents this phone holds (at most `limit`), by id: what a session
    /// asks the server about (`Batch::converted`), found without listing every document.
    pub(crate) fn grid_documents(&self, limit: usize) -> Result<Vec<String>> {
        Ok(self.repository().ids("grid/", Some(limit))?.iter().map(DocId::to_string).collect())
    }

    /// Lets go of the old layout's grid documents among `converted` (the server said, in the
    /// session ending now, that it converted them at the heads it holds), each only if the
    /// server held every change this phone holds of it when the session began (`dirty_at_start`:
    /// nothing is written to a grid document during a session, so it is not dirty now either).
    /// Its households, residents and visits are in the registers and months by then.
    pub(crate) fn release_converted_grids(
        &mut self,
        converted: &HashSet<DocId>,
        dirty_at_start: &HashSet<DocId>,
    ) -> Result<Released> {
        let mut released = Released::default();
        for doc in converted {
            if matches!(doc, DocId::Grid(_)) && self.has_document(doc)? && !dirty_at_start.contains(doc) {
                released.bytes += self.release(doc)?;
                released.documents += 1;
            }
        }
        if released.documents > 0 {
            tracing::info!(documents = released.documents, bytes = released.bytes, "converted grid documents let go");
        }
        Ok(released)
    }

    /// Removes `doc` and everything derived from it, in one transaction; returns its stored bytes.
    fn release(&mut self, doc: &DocId) -> Result<u64> {
        let key = doc.to_string();
        let tx = self.conn.transaction().db()?;
        let mut repo = SqliteRepository::new(&tx);
        let bytes = repo.stored_bytes(doc)?;
        Indexer::new(&tx, &self.rules).forget(doc)?;
        repo.remove(doc)?;
        for table in ["peer_docs", "refused_documents"] {
            tx.execute(&format!("DELETE FROM {table} WHERE doc_id = ?1"), [&key]).db()?;
        }
        tx.commit().db()?;
        self.docs.remove(doc);
        self.note_change(doc);
        Ok(bytes)
    }
}

impl Store {
    /// The registers this phone holds whose households' clocks it has not yet asked the server
    /// for, as the months before its window's first month set them (a new phone, one that was
    /// offline while months went by, a register it just took): what a sync with the server asks.
    pub(crate) fn earlier_to_ask(&self) -> Result<Vec<wire::Earlier>> {
        let Some(window) = self.window else { return Ok(Vec::new()) };
        let before = window.settled_before(self.now()).to_string();
        let mut stmt = self.conn.prepare_cached("SELECT unit_id FROM earlier_registers WHERE before = ?1").db()?;
        let asked: HashSet<String> =
            stmt.query_map([&before], |r| r.get(0)).db()?.collect::<rusqlite::Result<_>>().db()?;
        let docs = self
            .repository()
            .ids("register/", None)?
            .into_iter()
            .filter(|d| !matches!(d, DocId::Register(unit) if asked.contains(unit.as_str())))
            .map(|d| d.to_string());
        Ok(docs.map(|register| wire::Earlier { register, before: before.clone(), households: Vec::new() }).collect())
    }

    /// The server's answer to [`wire::Earlier`] asks: the clocks of each household of `register`
    /// from the visits of months before `before`, wherever they were recorded (a household that
    /// moved brings its visits in its old micro-grid's months).
    pub(crate) fn earlier_clocks(&self, register: &DocId, before: Period) -> Result<Vec<EarlierClocks>> {
        let rows = "household_id IN (SELECT id FROM households WHERE doc_id = ?2) AND period < ?3";
        let latest = before.start() + GRACE_MS;
        let mut found: std::collections::HashMap<String, Earlier> =
            clocks_of_rows(&self.conn, rows, &register.to_string(), &before.to_string(), latest)?.into_iter().collect();
        // Every household of the register is named, with no clocks where no visit set one: the
        // phone replaces exactly what is named.
        Ok(households_of(&self.conn, &register.to_string())?
            .into_iter()
            .map(|household| {
                let e = found.remove(&household).unwrap_or_default();
                EarlierClocks {
                    household,
                    last_visit_at: e.last_visit,
                    last_contact_at: e.last_contact,
                    unanswered_bell_at: e.unanswered_bell,
                }
            })
            .collect())
    }

    /// Takes the server's answers to this phone's asks in, in one transaction. An answer covers
    /// every month before its `before`, the months this phone let go of included, so it replaces
    /// what `earlier_visits` held for each household it names (a visit deleted since is gone
    /// from it); the server names every household of the register. An answer for a register or month this phone did not ask about, a household its
    /// register does not hold, or a time outside 2000 to the end of the last month's grace week
    /// is left out.
    pub(crate) fn keep_earlier(&mut self, answers: &[wire::Earlier], asked: &[wire::Earlier]) -> Result<()> {
        let tx = self.conn.transaction().db()?;
        let mut registers = Vec::new();
        for a in answers {
            if !asked.iter().any(|q| q.register == a.register && q.before == a.before) {
                continue;
            }
            let (Ok(DocId::Register(unit)), Ok(before)) = (DocId::parse(&a.register), Period::parse(&a.before)) else {
                continue;
            };
            let plausible = |at: Option<i64>| {
                at.filter(|t| (Period::new(2000, 1).expect("a month").start()..=before.start() + GRACE_MS).contains(t))
            };
            let held = households_of(&tx, &a.register)?;
            // Only households the answer names are replaced: one the server files elsewhere (a
            // move it has not taken yet) keeps what this phone knew of it.
            for h in a.households.iter().filter(|h| held.contains(&h.household)) {
                tx.prepare_cached("DELETE FROM earlier_visits WHERE household_id = ?1")
                    .db()?
                    .execute([&h.household])
                    .db()?;
                let found = Earlier {
                    last_visit: plausible(h.last_visit_at),
                    last_contact: plausible(h.last_contact_at),
                    unanswered_bell: plausible(h.unanswered_bell_at),
                };
                merge_earlier(&tx, &h.household, &found)?;
                refresh_due(&tx, &h.household, self.rules.follow_up_ms())?;
            }
            tx.prepare_cached("INSERT OR REPLACE INTO earlier_registers (unit_id, before) VALUES (?1, ?2)")
                .db()?
                .execute([unit.as_str(), a.before.as_str()])
                .db()?;
            registers.push(DocId::Register(unit));
        }
        tx.commit().db()?;
        for r in &registers {
            self.note_change(r);
        }
        Ok(())
    }

    /// Forgets that the server told this phone the clocks of `unit`'s register, so that the next
    /// sync asks again: a month of that register outside the window changed on the server (a
    /// visit that arrived late), and this phone no longer holds it to see the change.
    pub(crate) fn ask_earlier_again(&self, unit: &crate::ids::UnitId) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM earlier_registers WHERE unit_id = ?1")
            .db()?
            .execute([unit.as_str()])
            .db()?;
        Ok(())
    }
}

/// The ids of the households whose rows come from `register` (a document id), in id order.
fn households_of(conn: &rusqlite::Connection, register: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT id FROM households WHERE doc_id = ?1 ORDER BY id").db()?;
    let ids = stmt.query_map([register], |r| r.get(0)).db()?.collect::<rusqlite::Result<_>>().db()?;
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::FixedClock;
    use crate::directory::{NewUnit, UnitKind};
    use crate::household::{Address, CareTag, NewHousehold};
    use crate::ids::HouseholdId;
    use crate::store::OpenOptions;

    fn household(s: &mut Store, grid: &crate::ids::UnitId, micro: Option<&crate::ids::UnitId>) -> HouseholdId {
        let new = NewHousehold {
            micro_grid: micro.cloned(),
            address: Address { building: "3".into(), unit: "2".into(), room: "301".into() },
            location: None,
            care_tags: [CareTag::ElderlyAlone].into_iter().collect(),
            risk: None,
            notes: String::new(),
        };
        s.add_household(grid, new).unwrap().id
    }

    fn grid_and_micro_grid(s: &mut Store) -> (crate::ids::UnitId, crate::ids::UnitId) {
        let mut parent = None;
        for (kind, name) in
            [(UnitKind::District, "Jinshui"), (UnitKind::Street, "Wenhua Road"), (UnitKind::Community, "Weilai")]
        {
            parent = Some(s.add_unit(NewUnit { kind, parent: parent.clone(), name: name.into() }).unwrap().id);
        }
        let grid = s.add_unit(NewUnit { kind: UnitKind::Grid, parent, name: "Grid 1".into() }).unwrap().id;
        let micro = s
            .add_unit(NewUnit { kind: UnitKind::MicroGrid, parent: Some(grid.clone()), name: "Building 3".into() })
            .unwrap()
            .id;
        (grid, micro)
    }

    /// A month that leaves folds what its visits said into `earlier_visits` itself, so the clocks
    /// hold even where no server answer came (a server of an older version ignores `earlier`).
    #[test]
    fn a_month_that_leaves_keeps_its_clocks_without_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FixedClock::new(T));
        let options = OpenOptions { clock: clock.clone(), ..OpenOptions::default() };
        let mut s = Store::open(dir.path().join("phone.sqlite"), options).unwrap();
        let (grid, _) = grid_and_micro_grid(&mut s);
        let h = household(&mut s, &grid, None);
        let worker = s
            .add_user(crate::directory::NewUser {
                name: crate::personal::Personal::new("Li Na"),
                role: crate::directory::Role::GridWorker,
                unit: grid.clone(),
                department: None,
            })
            .unwrap()
            .id;
        for (kind, day) in [
            (crate::visit::VisitKind::WelfareCheck, 0),
            (crate::visit::VisitKind::BellCheckAnswered, 3),
            (crate::visit::VisitKind::BellCheckNoAnswer, 5),
        ] {
            clock.set(T + day * 86_400_000);
            s.record_visit(crate::visit::NewVisit {
                household: h.clone(),
                worker: worker.clone(),
                at: None,
                location: None,
                kind,
                outcome: crate::visit::VisitOutcome::AllWell,
                notes: String::new(),
                follow_up: false,
                photos: vec![],
            })
            .unwrap();
        }
        let january = DocId::Visits(grid.clone(), Period::parse("2026-01").unwrap());
        let shown = |s: &Store| s.households(&Default::default()).unwrap().into_iter().find(|x| x.id == h).unwrap();
        let before = shown(&s);
        assert!(before.follow_up_due_at.is_some());
        clock.set(T + 130 * 86_400_000);
        assert_eq!(s.release_outside_window().unwrap().documents, 0, "the server has not confirmed it");
        for doc in s.document_ids().unwrap() {
            let heads = s.stored_heads(&doc).unwrap().unwrap();
            s.set_peer_heads(SERVER_PEER, &doc, &heads).unwrap();
        }
        assert_eq!(s.release_outside_window().unwrap().documents, 1);
        assert!(!s.document_ids().unwrap().contains(&january));
        assert_eq!(shown(&s), before);
        s.rebuild_indexes().unwrap();
        assert_eq!(shown(&s), before);
    }

    /// A server naming, as converted, a document that is not a grid document, or one this phone
    /// does not hold, makes the phone let go of nothing.
    #[test]
    fn only_grid_documents_held_leave_as_converted() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path().join("phone.sqlite"), OpenOptions::default()).unwrap();
        let (grid, micro) = grid_and_micro_grid(&mut s);
        household(&mut s, &grid, Some(&micro));
        let register = DocId::Register(micro.clone());
        for doc in s.document_ids().unwrap() {
            let heads = s.stored_heads(&doc).unwrap().unwrap();
            s.set_peer_heads(SERVER_PEER, &doc, &heads).unwrap();
        }
        let named: HashSet<DocId> = [register.clone(), DocId::Grid(grid.clone())].into_iter().collect();
        let released = s.release_converted_grids(&named, &HashSet::new()).unwrap();
        assert_eq!(released, Released::default());
        assert!(s.document_ids().unwrap().contains(&register));
    }

    /// 2026-01-10 09:00 UTC.
    const T: i64 = 1_768_035_600_000;

    /// The server's answer is taken only for what was asked, and only for households the
    /// register it names holds: a hostile or buggy server cannot set another register's clocks.
    #[test]
    fn clocks_from_the_server_count_only_for_households_of_a_register_asked_about() {
        let dir = tempfile::tempdir().unwrap();
        let now = Period::parse("2026-05").unwrap().start() + 19 * 86_400_000;
        let options = OpenOptions { clock: Arc::new(FixedClock::new(now)), ..OpenOptions::default() };
        let mut s = Store::open(dir.path().join("phone.sqlite"), options).unwrap();
        let (grid, micro) = grid_and_micro_grid(&mut s);
        let ours = household(&mut s, &grid, Some(&micro));
        let elsewhere = household(&mut s, &grid, None);
        let asked = s.earlier_to_ask().unwrap();
        let registers: Vec<_> = asked.iter().map(|e| (e.register.as_str(), e.before.as_str())).collect();
        let (grid_register, micro_register) = (format!("register/{grid}"), format!("register/{micro}"));
        let mut expected = vec![(grid_register.as_str(), "2026-03"), (micro_register.as_str(), "2026-03")];
        expected.sort();
        assert_eq!(registers, expected);
        let clocks = |h: &HouseholdId, at: i64| EarlierClocks {
            household: h.to_string(),
            last_visit_at: Some(at),
            last_contact_at: Some(at),
            unanswered_bell_at: None,
        };
        let answers = vec![
            // The micro-grid's register, naming the grid register's household too.
            wire::Earlier {
                register: micro_register.clone(),
                before: "2026-03".into(),
                households: vec![clocks(&ours, T), clocks(&elsewhere, T + 20)],
            },
            // An answer for a month not asked about.
            wire::Earlier {
                register: grid_register.clone(),
                before: "2026-04".into(),
                households: vec![clocks(&elsewhere, T + 30)],
            },
        ];
        s.keep_earlier(&answers, &asked).unwrap();
        let last = |s: &Store, h: &HouseholdId| {
            s.households(&Default::default()).unwrap().into_iter().find(|x| &x.id == h).unwrap().last_visit_at
        };
        assert_eq!((last(&s, &ours), last(&s, &elsewhere)), (Some(T), None));
        let still: Vec<_> = s.earlier_to_ask().unwrap().into_iter().map(|e| e.register).collect();
        assert_eq!(still, vec![grid_register], "the register answered is not asked again this month");

        // An answer that does not name a household (the server files it elsewhere) leaves it.
        s.ask_earlier_again(&micro).unwrap();
        let asked = s.earlier_to_ask().unwrap();
        let silent =
            vec![wire::Earlier { register: micro_register.clone(), before: "2026-03".into(), households: vec![] }];
        s.keep_earlier(&silent, &asked).unwrap();
        assert_eq!(last(&s, &ours), Some(T));

        // Asked again, a later answer replaces the earlier one (a visit deleted since is gone from
        // it), and times outside 2000 to the end of the month before's grace week are left out.
        s.ask_earlier_again(&micro).unwrap();
        let asked = s.earlier_to_ask().unwrap();
        let grace_end = Period::parse("2026-03").unwrap().start() + GRACE_MS;
        let mut wild = clocks(&ours, grace_end + 1);
        wild.last_contact_at = Some(i64::MAX);
        wild.unanswered_bell_at = Some(-5);
        let answer = |c: EarlierClocks| {
            vec![wire::Earlier { register: micro_register.clone(), before: "2026-03".into(), households: vec![c] }]
        };
        s.keep_earlier(&answer(wild), &asked).unwrap();
        let shown = s.households(&Default::default()).unwrap().into_iter().find(|x| x.id == ours).unwrap();
        assert_eq!((shown.last_visit_at, shown.last_contact_at, shown.follow_up_due_at), (None, None, None));
        s.ask_earlier_again(&micro).unwrap();
        let asked = s.earlier_to_ask().unwrap();
        s.keep_earlier(&answer(clocks(&ours, grace_end)), &asked).unwrap();
        assert_eq!(last(&s, &ours), Some(grace_end));
    }
}
