//! `Doorstep`: one opened store, the object the app holds for the whole session.
//!
//! The core's `Store` is single-threaded (`&mut self`), the app calls from any thread: the store
//! sits behind one mutex, held for one core call at a time (a visit takes ~0.1 ms). Every call
//! goes through [`Doorstep::run_as`], the one place that
//! - catches a panic, so none crosses the FFI: the caller gets `Internal`, and the store is
//!   reopened from disk (memory may hold half a change; disk never does);
//! - collects the documents the call changed, and notifies observers after the lock is released.
//!
//! Sync and compaction are `async` (Kotlin `suspend`, Swift `async`) and run on the core's
//! tokio runtime (`sync.rs`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use doorstep_core as core;
use doorstep_core::{OpenOptions, Store};

use crate::error::{panic_message, DoorstepError};
use crate::observer::{DoorstepObserver, Observers};
use crate::types::*;

/// An opened Doorstep store: a SQLite file and its photo folder.
#[derive(uniffi::Object)]
pub struct Doorstep {
    path: PathBuf,
    store: Mutex<Option<Store>>,
    pub(crate) observers: Observers,
    /// Set while a sync with the server runs, with its progress.
    pub(crate) syncing: Mutex<Option<SyncProgress>>,
    /// Set while a sync with the server runs: one at a time.
    pub(crate) server_sync: std::sync::atomic::AtomicBool,
}

fn options() -> OpenOptions {
    OpenOptions { track_changes: true, ..OpenOptions::default() }
}

impl Doorstep {
    /// Runs `f` on the store: the call and its notifications.
    pub(crate) fn run<R>(&self, f: impl FnOnce(&mut Store) -> Result<R>) -> Result<R> {
        self.run_as(ChangeOrigin::Local, f)
    }

    /// [`Doorstep::run`] for changes from elsewhere (a sync step, an imported document). The one
    /// place that locks the store: it catches `f`'s panics and notifies the observers of what
    /// `f` changed once the lock is released.
    pub(crate) fn run_as<R, E: From<DoorstepError>>(
        &self,
        origin: ChangeOrigin,
        f: impl FnOnce(&mut Store) -> Result<R, E>,
    ) -> Result<R, E> {
        let (r, change, status) = {
            let mut slot = self.slot();
            let Some(store) = slot.as_mut() else {
                // Only after a panic whose reopening failed (the file is gone or damaged).
                return Err(DoorstepError::Storage("the store could not be reopened; open it again".into()).into());
            };
            let want_status = origin == ChangeOrigin::Local && !self.observers.is_empty();
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                let r = f(store);
                let documents: Vec<String> = store.take_changed_documents().iter().map(ToString::to_string).collect();
                let status = (want_status && !documents.is_empty()).then(|| store.sync_status().ok()).flatten();
                (r, documents, status)
            }));
            match outcome {
                Ok((r, documents, status)) => {
                    let change = (!documents.is_empty()).then_some(Change { origin, documents });
                    (r, change, status)
                }
                Err(panic) => {
                    let message = panic_message(panic.as_ref());
                    // What memory held may be half a change: start again from what disk holds.
                    // The old store goes first: its lock on the file must be released.
                    let window = store.window();
                    *slot = None;
                    *slot = Store::open(&self.path, OpenOptions { window, ..options() }).ok();
                    return Err(DoorstepError::Internal(message).into());
                }
            }
        };
        if let Some(change) = change {
            self.observers.each(|o| o.on_change(change.clone()));
        }
        if let Some(status) = status {
            let status = self.with_progress(status.into());
            self.observers.each(|o| o.on_sync_status(status.clone()));
        }
        r
    }

    /// The store's status with this object's sync-in-progress flag.
    pub(crate) fn with_progress(&self, mut status: SyncStatus) -> SyncStatus {
        let progress = self.syncing.lock().unwrap_or_else(|p| p.into_inner()).clone();
        status.syncing = progress.is_some();
        status.progress = progress;
        status
    }

    fn slot(&self) -> MutexGuard<'_, Option<Store>> {
        // `run_as` catches panics inside the lock, so it is never poisoned by the core; should
        // it be, the slot is still a whole store or none.
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn import_photos(s: &mut Store, photos: Vec<PhotoFile>) -> Result<Vec<core::PhotoMeta>> {
        photos
            .into_iter()
            .map(|p| {
                let location = opt_point(p.location)?;
                Ok(s.import_photo(p.path.as_ref(), &p.mime, p.width, p.height, p.taken_at, location)?)
            })
            .collect()
    }
}

#[uniffi::export]
impl Doorstep {
    /// Opens (or creates) the store at `path` (the photo folder goes beside it). The database
    /// closes when the app lets go of the object (Kotlin: `close()` or `use {}`).
    /// `encryption_key` is reserved for encryption at rest, which this version does not have
    /// yet: pass `null`; a key is refused rather than silently ignored.
    #[uniffi::constructor(default(encryption_key = None))]
    pub fn open(path: String, encryption_key: Option<Vec<u8>>) -> Result<Arc<Doorstep>> {
        if encryption_key.is_some() {
            return Err(DoorstepError::InvalidInput(
                "encryption at rest is not available in this version; open the store without a key".into(),
            ));
        }
        let path = PathBuf::from(path);
        let store = Store::open(&path, options())?;
        Ok(Arc::new(Doorstep {
            path,
            store: Mutex::new(Some(store)),
            observers: Observers::default(),
            syncing: Mutex::new(None),
            server_sync: Default::default(),
        }))
    }

    /// The rolling window this phone keeps (`None`: everything). An app setting: the store opens
    /// with the default (3 months of visits, reports closed within 30 days), so an app that
    /// changes it sets it again after each `open`.
    pub fn window(&self) -> Result<Option<StoreWindow>> {
        self.run(|s| Ok(s.window().map(StoreWindow::from)))
    }

    /// Changes the window; documents already let go of come back only on demand
    /// (`fetchVisits`). `months` is 1 to 1,200, `closedReportDays` at most 3,650.
    pub fn set_window(&self, window: Option<StoreWindow>) -> Result<()> {
        let window = window.map(StoreWindow::into_core).transpose()?;
        self.run(|s| {
            s.set_window(window);
            Ok(())
        })
    }

    /// This phone's actor id (hex), which the server ties to its device at enrolment.
    pub fn actor_id(&self) -> Result<String> {
        self.run(|s| Ok(s.actor_id()))
    }

    /// This phone's Ed25519 public key (64 hexadecimal digits): the key its signed changes are
    /// checked with, which enrolment writes into the directory.
    pub fn device_public_key(&self) -> Result<String> {
        self.run(|s| Ok(s.device_public_key()?))
    }

    /// The user this phone's device belongs to, once the directory says so.
    pub fn device_user(&self) -> Result<Option<String>> {
        self.run(|s| Ok(s.device_user()?.map(|u| u.as_str().to_string())))
    }

    /// This device's certificate, once enrolment gave one (PROTOCOL.md §8).
    pub fn device_certificate(&self) -> Result<Option<DeviceCertificate>> {
        self.run(|s| Ok(s.certificate()?.map(Into::into)))
    }

    // ---- observers ------------------------------------------------------------------------

    /// Starts notifying `observer`; returns the id to stop with.
    pub fn add_observer(&self, observer: Arc<dyn DoorstepObserver>) -> u64 {
        self.observers.add(observer)
    }

    /// Stops notifying the observer `id`; false if it was not registered.
    pub fn remove_observer(&self, id: u64) -> bool {
        self.observers.remove(id)
    }

    // ---- the hierarchy (the office sets it up; phones receive it by sync) ------------------

    /// Units under `parent` (the top of the hierarchy when `None`).
    #[uniffi::method(default(parent = None))]
    pub fn units(&self, parent: Option<String>) -> Result<Vec<OrgUnit>> {
        let parent = parent.as_deref().map(unit_id).transpose()?;
        self.run(|s| Ok(s.units(parent.as_ref())?.into_iter().map(OrgUnit::from).collect()))
    }

    pub fn users(&self) -> Result<Vec<User>> {
        self.run(|s| Ok(s.users()?.into_iter().map(User::from).collect()))
    }

    /// Office: adds a unit of the hierarchy.
    pub fn add_unit(&self, unit: NewOrgUnit) -> Result<OrgUnit> {
        let unit = unit.into_core()?;
        self.run(|s| Ok(s.add_unit(unit)?.into()))
    }

    /// Office: adds a user.
    pub fn add_user(&self, user: NewUser) -> Result<User> {
        let user = user.into_core()?;
        self.run(|s| Ok(s.add_user(user)?.into()))
    }

    /// The report categories, for the report form.
    pub fn categories(&self) -> Result<Vec<Category>> {
        self.run(|s| Ok(s.categories()?.into_iter().map(Category::from).collect()))
    }

    /// Office: moves a user to another unit (a grid worker to another grid). Their phone's
    /// unsynced changes to what they may no longer change are refused by the server document by
    /// document (`SyncStatus.refusedDocuments`) and stay on the phone.
    pub fn move_user(&self, user: String, unit: String) -> Result<User> {
        let (user, unit) = (user_id(&user)?, unit_id(&unit)?);
        self.run(|s| Ok(s.move_user(&user, &unit)?.into()))
    }

    /// Office: adds a report category or changes its clocks.
    pub fn set_category(&self, category: Category) -> Result<()> {
        let category = category.into_core()?;
        self.run(|s| Ok(s.set_category(category)?))
    }

    /// Office: writes a phone's device (its `actor_id` and `public_key`, from
    /// `devicePublicKey()`) into the directory as `user`'s, for phones set up without a sync
    /// server (with one, enrolment does this). Without the key, other phones take none of the
    /// device's changes (they cannot check its signatures).
    pub fn add_device(&self, user: String, actor_id: String, public_key: Option<String>) -> Result<()> {
        let user = user_id(&user)?;
        self.run(|s| Ok(s.enrol_device(&user, &actor_id, public_key.as_deref())?))
    }

    // ---- households and residents ---------------------------------------------------------

    pub fn households(&self, filter: HouseholdFilter) -> Result<Vec<Household>> {
        let filter = filter.into_core()?;
        self.run(|s| Ok(s.households(&filter)?.into_iter().map(Household::from).collect()))
    }

    pub fn household(&self, id: String) -> Result<Household> {
        let id = household_id(&id)?;
        self.run(|s| Ok(s.household(&id)?.into()))
    }

    pub fn add_household(&self, household: NewHousehold) -> Result<Household> {
        let (grid, new) = household.into_core()?;
        self.run(|s| {
            let h = s.add_household(&grid, new)?;
            Ok(s.household(&h.id)?.into())
        })
    }

    pub fn update_household(&self, id: String, update: HouseholdUpdate) -> Result<Household> {
        let id = household_id(&id)?;
        let update = update.into_core()?;
        self.run(|s| {
            s.update_household(&id, update)?;
            Ok(s.household(&id)?.into())
        })
    }

    pub fn residents(&self, household: String) -> Result<Vec<Resident>> {
        let household = household_id(&household)?;
        self.run(|s| Ok(s.residents(&household)?.into_iter().map(Resident::from).collect()))
    }

    pub fn add_resident(&self, resident: NewResident) -> Result<Resident> {
        let resident = resident.into_core()?;
        self.run(|s| Ok(s.add_resident(resident)?.into()))
    }

    /// A resident moved out (or was entered by mistake): removed from the register.
    pub fn move_out_resident(&self, id: String) -> Result<()> {
        let id = resident_id(&id)?;
        self.run(|s| Ok(s.delete_resident(&id)?))
    }

    // ---- visits ---------------------------------------------------------------------------

    /// Records a visit (its photos are imported from their files first). Durable on return.
    pub fn record_visit(&self, mut visit: NewVisit) -> Result<Visit> {
        let files = std::mem::take(&mut visit.photos);
        self.run(|s| {
            let photos = Self::import_photos(s, files)?;
            Ok(core::VisitSummary::from(s.record_visit(visit.into_core(photos)?)?).into())
        })
    }

    /// Deletes a visit recorded by mistake.
    pub fn delete_visit(&self, id: String) -> Result<()> {
        let id = visit_id(&id)?;
        self.run(|s| Ok(s.delete_visit(&id)?))
    }

    /// A household's visits, newest first (`limit` 0: all).
    #[uniffi::method(default(limit = 0))]
    pub fn visit_history(&self, household: String, limit: u32) -> Result<Vec<Visit>> {
        let household = household_id(&household)?;
        self.run(|s| Ok(s.visit_history(&household, limit)?.into_iter().map(Visit::from).collect()))
    }

    /// Photos of a visit, report or event (by its id).
    pub fn photos(&self, owner_id: String) -> Result<Vec<Photo>> {
        self.run(|s| Ok(s.photos(&owner_id)?.into_iter().map(Photo::from).collect()))
    }

    /// Where this phone keeps a photo's file, if it has it.
    pub fn photo_path(&self, sha256: String) -> Result<Option<String>> {
        self.run(|s| Ok(s.photo_path(&sha256).map(|p| p.to_string_lossy().into_owned())))
    }

    // ---- reports and their workflow -------------------------------------------------------

    /// Files a report (its photos are imported first); returns its detail with the deadlines.
    pub fn file_report(&self, mut report: NewReport) -> Result<ReportDetail> {
        let files = std::mem::take(&mut report.photos);
        self.run(|s| {
            let photos = Self::import_photos(s, files)?;
            let r = s.file_report(report.into_core(photos)?)?;
            Self::detail(s, &r.id)
        })
    }

    /// Takes one step of a report's loop. A step the workflow does not allow now (by role,
    /// relationship or state) is refused with `InvalidInput` and the reason.
    pub fn add_report_event(&self, mut event: NewReportEvent) -> Result<ReportEvent> {
        let files = std::mem::take(&mut event.photos);
        self.run(|s| {
            let photos = Self::import_photos(s, files)?;
            Ok(s.add_report_event(event.into_core(photos)?)?.into())
        })
    }

    pub fn report(&self, id: String) -> Result<ReportDetail> {
        let id = report_id(&id)?;
        self.run(|s| Self::detail(s, &id))
    }

    pub fn reports(&self, filter: ReportFilter) -> Result<Vec<ReportSummary>> {
        let filter = filter.into_core()?;
        self.run(|s| Ok(s.reports(&filter)?.into_iter().map(ReportSummary::from).collect()))
    }

    /// Open reports that may be the same issue (same category, near, recent).
    pub fn possible_duplicates(&self, id: String) -> Result<Vec<ReportSummary>> {
        let id = report_id(&id)?;
        self.run(|s| Ok(s.possible_duplicates(&id)?.into_iter().map(ReportSummary::from).collect()))
    }

    /// Reports in the units under `area` past a deadline at `now`, the longest overdue first.
    pub fn overdue_reports(&self, area: String, now: i64) -> Result<Vec<OverdueReport>> {
        let area = unit_id(&area)?;
        self.run(|s| Ok(s.overdue_reports(&area, now)?.into_iter().map(OverdueReport::from).collect()))
    }

    /// Escalates, as `author`, every report under `area` whose deadline passed and that the
    /// author may escalate; returns the ids escalated.
    pub fn escalate_overdue(&self, author: String, area: String) -> Result<Vec<String>> {
        let (author, area) = (user_id(&author)?, unit_id(&area)?);
        self.run(|s| Ok(s.escalate_overdue(&author, &area)?.iter().map(|r| r.as_str().to_string()).collect()))
    }

    // ---- welfare, search ------------------------------------------------------------------

    /// The welfare screen for `area` at `now`; "due today" ends at `day_end` (the phone's next
    /// local midnight: the core does not guess time zones).
    pub fn welfare(&self, area: Area, now: i64, day_end: i64) -> Result<Welfare> {
        let area = area.to_core()?;
        self.run(|s| Ok(s.welfare(&area, now, day_end)?.into()))
    }

    /// Households under `area` whose follow-up after an unanswered bell is overdue.
    pub fn missed_follow_ups(&self, area: String, now: i64) -> Result<Vec<Household>> {
        let area = unit_id(&area)?;
        self.run(|s| Ok(s.missed_follow_ups(&area, now)?.into_iter().map(Household::from).collect()))
    }

    /// Full-text search over addresses and report text (Chinese and English).
    #[uniffi::method(default(limit = 20))]
    pub fn search(&self, text: String, limit: u32) -> Result<Vec<SearchHit>> {
        self.run(|s| Ok(s.search(&text, limit)?.into_iter().map(SearchHit::from).collect()))
    }

    /// Records of this phone's documents that could not be read, so no screen shows them (by
    /// document, collection and id; never their content).
    pub fn rejected_records(&self) -> Result<Vec<RejectedRecord>> {
        self.run(|s| Ok(s.rejected_records()?.into_iter().map(RejectedRecord::from).collect()))
    }

    // ---- sync status and documents --------------------------------------------------------

    /// What the sync badge shows now.
    pub fn sync_status(&self) -> Result<SyncStatus> {
        let status = self.run(|s| Ok(s.sync_status()?))?;
        Ok(self.with_progress(status.into()))
    }

    /// Whether the record is known to have reached the server.
    pub fn reached_server(&self, record: RecordRef) -> Result<bool> {
        let record = record.to_core()?;
        self.run(|s| Ok(s.reached_server(&record)?))
    }

    /// The whole document `doc` (`directory`, `register/<unit>`, `visits/<unit>/<YYYY-MM>`, `report/<id>`) as bytes: for the
    /// office's import into the server, or a backup.
    pub fn export_document(&self, doc: String) -> Result<Vec<u8>> {
        let doc = core::DocId::parse(&doc)?;
        self.run(|s| Ok(s.save_document(&doc)?))
    }

    /// Merges a whole document's bytes (from `export_document` elsewhere: a backup being
    /// restored, the office's own files); returns the number of changes this phone did not
    /// have. Damaged or foreign bytes change nothing, and changes that break the data model's
    /// rules (a replaced map, a deleted record, a rewritten visit) are refused whole; records
    /// may name any author, as the office's import may.
    pub fn import_document(&self, doc: String, bytes: Vec<u8>) -> Result<u64> {
        let doc = core::DocId::parse(&doc)?;
        self.run_as(ChangeOrigin::Sync, |s| Ok(s.merge_document(&doc, &bytes)?.new_changes as u64))
    }
}

impl Doorstep {
    fn detail(s: &mut Store, id: &core::ReportId) -> Result<ReportDetail> {
        let (report, events) = s.report(id)?;
        let state = s.report_state(id)?;
        Ok(ReportDetail::new(report, events, state))
    }
}
