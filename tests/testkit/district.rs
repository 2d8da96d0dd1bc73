//! The small district the tests start from: Jinshui District, Wenhua Road, the Weilai community
//! with two grids, "Building 3" a micro-grid of the first, and its people — Li Na the first
//! grid's worker, Wang Guiying the micro-grid's volunteer, Zhang Wei the second grid's worker,
//! Chen Jie a courier who reports, Liu Min the community's supervisor and the office's admin —
//! with the default report categories. Each store is opened on a [`FixedClock`]: at
//! [`MORNING`], which the core tests move; at the system's time for the office of the end-to-end
//! tests, which only writes the directory.

use std::path::Path;
use std::sync::Arc;

use doorstep_core::identity::DeploymentSigner;
use doorstep_core::*;

pub const DAY: i64 = 86_400_000;
/// 2026-11-23 08:00 in Zhengzhou.
pub const MORNING: i64 = 1_795_392_000_000;

pub struct District {
    pub district: Unit,
    pub street: Unit,
    pub community: Unit,
    pub grid: Unit,
    pub other_grid: Unit,
    /// "Building 3", in `grid`.
    pub micro_grid: Unit,
    /// The grid worker of `grid`.
    pub li_na: User,
    /// The volunteer of `micro_grid`.
    pub volunteer: User,
    /// The grid worker of `other_grid`.
    pub zhang_wei: User,
    /// A flowing reporter of the community.
    pub courier: User,
    /// The community's supervisor.
    pub supervisor: User,
    pub admin: User,
    /// The clock of the store the district was built in.
    pub clock: Arc<FixedClock>,
}

/// A store at `path` on `clock`.
pub fn open(path: &Path, clock: &Arc<FixedClock>) -> Store {
    Store::open(path, OpenOptions { clock: clock.clone(), ..OpenOptions::default() }).expect("open store")
}

/// The district built in a new store at `path`, on a clock at [`MORNING`].
pub fn district(path: &Path) -> (Store, District) {
    district_at(path, MORNING)
}

/// The district built in the office's store at `path`, on a clock at the system's time: the
/// office of the end-to-end tests, whose server and phones run on the system clock.
pub fn office(path: &Path) -> (Store, District) {
    district_at(path, SystemClock.now_ms())
}

fn district_at(path: &Path, now: UnixMillis) -> (Store, District) {
    let clock = Arc::new(FixedClock::new(now));
    let mut s = open(path, &clock);
    let unit = |s: &mut Store, kind, parent: Option<&Unit>, name: &str| {
        s.add_unit(NewUnit { kind, parent: parent.map(|p| p.id.clone()), name: name.into() }).unwrap()
    };
    let district = unit(&mut s, UnitKind::District, None, "Jinshui District");
    let street = unit(&mut s, UnitKind::Street, Some(&district), "Wenhua Road");
    let community = unit(&mut s, UnitKind::Community, Some(&street), "Weilai");
    let grid = unit(&mut s, UnitKind::Grid, Some(&community), "Weilai Grid 1");
    let other_grid = unit(&mut s, UnitKind::Grid, Some(&community), "Weilai Grid 2");
    let micro_grid = unit(&mut s, UnitKind::MicroGrid, Some(&grid), "Building 3");
    for c in NewCategory::defaults() {
        s.set_category(c).unwrap();
    }
    let mut user = |name: &str, role, unit: &Unit| {
        s.add_user(NewUser { name: Personal::new(name), role, unit: unit.id.clone(), department: None }).unwrap()
    };
    let li_na = user("Li Na", Role::GridWorker, &grid);
    let volunteer = user("Wang Guiying", Role::MicroGridVolunteer, &micro_grid);
    let zhang_wei = user("Zhang Wei", Role::GridWorker, &other_grid);
    let courier = user("Chen Jie", Role::FlowingReporter, &community);
    let supervisor = user("Liu Min", Role::Supervisor, &community);
    let admin = user("Office admin", Role::Admin, &district);
    let d = District {
        district,
        street,
        community,
        grid,
        other_grid,
        micro_grid,
        li_na,
        volunteer,
        zhang_wei,
        courier,
        supervisor,
        admin,
        clock,
    };
    (s, d)
}

/// The register document of the district's micro-grid, where [`household`] puts households.
pub fn register(d: &District) -> DocId {
    DocId::Register(d.micro_grid.id.clone())
}

/// The visits document of the micro-grid for the month `d`'s clock is in.
pub fn month_visits(d: &District) -> DocId {
    DocId::Visits(d.micro_grid.id.clone(), Period::of(d.clock.now_ms()))
}

/// A household in room `room` of Building 3, Unit 2, in the micro-grid.
pub fn household(s: &mut Store, d: &District, room: &str, tags: &[CareTag]) -> Household {
    s.add_household(
        &d.grid.id,
        NewHousehold {
            micro_grid: Some(d.micro_grid.id.clone()),
            address: Address { building: "3".into(), unit: "2".into(), room: room.into() },
            location: Some(GeoPoint::new(34.7561, 113.6532).unwrap()),
            care_tags: tags.iter().copied().collect(),
            risk: Some(RiskLevel::Blue),
            notes: String::new(),
        },
    )
    .unwrap()
}

/// A visit of `kind` by `worker` to `household` at its door, all well, now.
pub fn visit(household: &HouseholdId, worker: &UserId, kind: VisitKind) -> NewVisit {
    NewVisit {
        household: household.clone(),
        worker: worker.clone(),
        at: None,
        location: Some(GeoPoint::new(34.7561, 113.6532).unwrap()),
        kind,
        outcome: VisitOutcome::AllWell,
        notes: "Resident in good spirits.".into(),
        follow_up: false,
        photos: vec![],
    }
}

/// A welfare check by `worker` with `notes`, recorded in `s`.
pub fn record_visit(s: &mut Store, household: &HouseholdId, worker: &User, notes: &str) -> Visit {
    s.record_visit(NewVisit { notes: notes.into(), ..visit(household, &worker.id, VisitKind::WelfareCheck) }).unwrap()
}

pub fn photo() -> PhotoMeta {
    PhotoMeta {
        sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        byte_size: 48_213,
        mime: "image/jpeg".into(),
        width: 1280,
        height: 960,
        taken_at: Some(MORNING),
        location: None,
    }
}

/// A safety hazard the volunteer reports at Building 3, in the first grid.
pub fn report(d: &District, text: &str) -> NewReport {
    NewReport {
        reporter: d.volunteer.id.clone(),
        category: CategoryId::parse("safety-hazard").unwrap(),
        description: text.into(),
        location: Some(GeoPoint::new(34.7565, 113.6540).unwrap()),
        address: Some("Building 3, Unit 2".into()),
        grid: Some(d.grid.id.clone()),
        photos: vec![],
    }
}

/// That report by `reporter`, filed in `s`.
pub fn file_report(s: &mut Store, d: &District, reporter: &User, text: &str) -> Report {
    s.file_report(NewReport { reporter: reporter.id.clone(), ..report(d, text) }).unwrap()
}

/// The seed of the deployment key that vouches for the phones of in-process tests, which enrol
/// through the office's store ([`enrol`]) instead of a server.
const DEPLOYMENT_SEED: &str = "d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0";

/// The deployment key of in-process tests.
pub fn deployment() -> DeploymentSigner {
    DeploymentSigner::from_hex(DEPLOYMENT_SEED).expect("a valid seed")
}

/// Gives `phone` the certificate a server would for `user` (valid from a day before its clock
/// for a year, so tests that move the clock keep it), pinning [`deployment`]'s key.
pub fn certify(phone: &mut Store, user: &UserId) {
    let signer = deployment();
    let now = phone.now();
    let cert =
        signer.issue(&phone.device_public_key().unwrap(), &phone.actor_id(), user, now - DAY, now + 365 * DAY).unwrap();
    phone.keep_certificate(&cert, &[signer.public(0)]).expect("the certificate is kept");
}

/// Registers `phone` to `user` in the office's directory and certifies it, as enrolment
/// through a server would (the phone still needs the directory).
pub fn enrol(office: &mut Store, phone: &mut Store, user: &UserId) {
    office.enrol_device(user, &phone.actor_id(), Some(&phone.device_public_key().unwrap())).unwrap();
    certify(phone, user);
}
