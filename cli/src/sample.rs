//! Realistic sample data for the demo and the benches: a district laid out as the field guide
//! (the project's FIELD.md) describes
//! (streets, communities, grids of a few hundred households, micro-grids of about ten), elderly
//! residents living alone, and visit notes in a grid worker's words. All names and numbers are
//! made up.

use std::collections::BTreeSet;

use doorstep_core::{
    Address, CareTag, GeoPoint, NewCategory, NewHousehold, NewResident, NewUnit, NewUser, Personal, Relation,
    RiskLevel, Role, Store, Unit, UnitId, UnitKind, User, VisitKind, VisitOutcome,
};
use rand::{rngs::StdRng, Rng};

pub const SURNAMES: &[&str] =
    &["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Huang", "Zhou", "Wu", "Xu", "Sun"];
pub const GIVEN: &[&str] = &[
    "Guiying", "Xiuying", "Jianguo", "Shulan", "Fang", "Wei", "Min", "Jing", "Lei", "Yan", "Hua", "Qiang", "Lihua",
    "Jun",
];

const NOTE_PHRASES: &[&str] = &[
    "Resident in good spirits",
    "checked the gas valve, closed properly",
    "reminded about charging e-bikes in the corridor",
    "blood pressure medicine running low, daughter informed",
    "smoke alarm battery replaced",
    "asked about the heating subsidy application",
    "stairwell light on floor 3 broken, reported",
    "neighbour complains about noise after 22:00",
    "door answered by grandson, elderly father asleep",
    "fridge well stocked, ate lunch at the community canteen",
    "leaking pipe in kitchen, property management called",
    "elderly resident slipped last week, now walking with a cane",
    "explained the fraud-prevention leaflet",
    "registered a new tenant in the spare room",
    "no issues found",
];

pub fn visit_note(rng: &mut StdRng) -> String {
    let n = rng.random_range(1..=3);
    let mut parts: Vec<&str> = (0..n).map(|_| NOTE_PHRASES[rng.random_range(0..NOTE_PHRASES.len())]).collect();
    parts.dedup();
    let mut s = parts.join("; ");
    s.push('.');
    s
}

pub fn visit_kind(rng: &mut StdRng, elderly: bool) -> (VisitKind, VisitOutcome) {
    match rng.random_range(0..100) {
        0..=54 => (VisitKind::Routine, VisitOutcome::AllWell),
        55..=69 if elderly => (VisitKind::BellCheckAnswered, VisitOutcome::AllWell),
        55..=69 => (VisitKind::WelfareCheck, VisitOutcome::AllWell),
        70..=79 => (VisitKind::HazardInspection, VisitOutcome::ProblemFound),
        80..=84 => (VisitKind::DisputeMediation, VisitOutcome::ResolvedOnSite),
        85..=89 => (VisitKind::Routine, VisitOutcome::NobodyHome),
        _ => (VisitKind::WelfareCheck, VisitOutcome::Referred),
    }
}

/// A visit to a household at its door (its GPS), now unless `at` says when; a follow-up is due
/// when a problem was found or nobody was home.
pub fn visit_to(
    household: &doorstep_core::HouseholdId,
    location: Option<GeoPoint>,
    worker: &doorstep_core::UserId,
    (kind, outcome): (VisitKind, VisitOutcome),
    notes: impl Into<String>,
    at: Option<doorstep_core::UnixMillis>,
) -> doorstep_core::NewVisit {
    doorstep_core::NewVisit {
        household: household.clone(),
        worker: worker.clone(),
        at,
        location,
        kind,
        outcome,
        notes: notes.into(),
        follow_up: matches!(outcome, VisitOutcome::ProblemFound | VisitOutcome::NobodyHome),
        photos: vec![],
    }
}

/// The people of the sample district.
pub struct Staff {
    pub supervisor: User,
    pub workers: Vec<User>,
    pub volunteer: User,
    pub courier: User,
    /// A department handler of "Housing and fire safety".
    pub handler: User,
}

/// The units of the sample district.
pub struct District {
    pub district: Unit,
    pub streets: Vec<Unit>,
    pub grids: Vec<Unit>,
    /// Micro-grids per grid, in the order of `grids`.
    pub micro_grids: Vec<Vec<Unit>>,
}

/// Lays out a district with `grids` grids (spread over streets and communities) and
/// `micro_per_grid` micro-grids each, plus the default categories and visit rules.
pub fn district(store: &mut Store, grids: usize, micro_per_grid: usize) -> doorstep_core::Result<District> {
    let district =
        store.add_unit(NewUnit { kind: UnitKind::District, parent: None, name: "Jinshui District".into() })?;
    for c in NewCategory::defaults() {
        store.set_category(c)?;
    }
    store.set_visit_rules(&doorstep_core::VisitRules::default())?;
    let streets = ["Wenhua Road Street Office", "Fengchan Road Street Office", "Dashiqiao Street Office"];
    let communities = ["Weilai", "Xinghe", "Dongfeng", "Huayuan", "Jinqiao", "Beilin", "Nanyang", "Qingfeng"];
    let mut street_units = Vec::new();
    for s in streets.iter().take(grids.div_ceil(6).clamp(1, streets.len())) {
        street_units.push(store.add_unit(NewUnit {
            kind: UnitKind::Street,
            parent: Some(district.id.clone()),
            name: (*s).into(),
        })?);
    }
    let n_comm = grids.div_ceil(2).min(communities.len() * street_units.len());
    let mut comm_units = Vec::new();
    for i in 0..n_comm {
        let street = &street_units[i % street_units.len()];
        let name = format!("{} Community", communities[i % communities.len()]);
        comm_units.push(store.add_unit(NewUnit {
            kind: UnitKind::Community,
            parent: Some(street.id.clone()),
            name,
        })?);
    }
    let mut grid_units = Vec::new();
    let mut micro = Vec::new();
    for g in 0..grids {
        let comm = &comm_units[g % comm_units.len()];
        let name = format!("{} Grid {}", comm.name.trim_end_matches(" Community"), g / comm_units.len() + 1);
        let grid = store.add_unit(NewUnit { kind: UnitKind::Grid, parent: Some(comm.id.clone()), name })?;
        let mut ms = Vec::new();
        for m in 0..micro_per_grid {
            ms.push(store.add_unit(NewUnit {
                kind: UnitKind::MicroGrid,
                parent: Some(grid.id.clone()),
                name: format!("Building {} micro-grid", m + 1),
            })?);
        }
        grid_units.push(grid);
        micro.push(ms);
    }
    Ok(District { district, streets: street_units, grids: grid_units, micro_grids: micro })
}

/// The department reports about blocked exits and unsafe charging go to.
pub const FIRE_SAFETY: &str = "Housing and fire safety";

pub fn staff(store: &mut Store, d: &District) -> doorstep_core::Result<Staff> {
    let user = |store: &mut Store, name: &str, role: Role, unit: &UnitId, dept: Option<&str>| {
        store.add_user(NewUser {
            name: Personal::new(name),
            role,
            unit: unit.clone(),
            department: dept.map(Into::into),
        })
    };
    user(store, "District office admin", Role::Admin, &d.district.id, None)?;
    let supervisor = user(store, "Supervisor Gao Min", Role::Supervisor, &d.district.id, None)?;
    let workers = vec![
        user(store, "Grid worker Li Na", Role::GridWorker, &d.grids[0].id, None)?,
        user(store, "Grid worker Zhang Wei", Role::GridWorker, &d.grids[1 % d.grids.len()].id, None)?,
    ];
    let volunteer = user(
        store,
        "Volunteer Wang Guiying",
        Role::MicroGridVolunteer,
        d.micro_grids[0].first().map_or(&d.grids[0].id, |m| &m.id),
        None,
    )?;
    let courier = user(store, "Courier Liu Qiang", Role::FlowingReporter, &d.district.id, None)?;
    let handler = user(store, "Handler Sun Hao", Role::DepartmentHandler, &d.district.id, Some(FIRE_SAFETY))?;
    Ok(Staff { supervisor, workers, volunteer, courier, handler })
}

/// One household with 1–4 residents; about a quarter of households in an old compound are elderly
/// people living alone.
pub fn household(
    store: &mut Store,
    rng: &mut StdRng,
    grid: &Unit,
    micro: Option<&Unit>,
    number: usize,
    with_residents: bool,
) -> doorstep_core::Result<doorstep_core::Household> {
    let mut tags = BTreeSet::new();
    let elderly_alone = rng.random_bool(0.25);
    if elderly_alone {
        tags.insert(CareTag::ElderlyAlone);
    }
    if rng.random_bool(0.05) {
        tags.insert(CareTag::Disabled);
    }
    if rng.random_bool(0.04) {
        tags.insert(CareTag::HardshipFamily);
    }
    let risk = match rng.random_range(0..100) {
        0..=2 => RiskLevel::Red,
        3..=9 => RiskLevel::Orange,
        10..=24 => RiskLevel::Yellow,
        25..=59 => RiskLevel::Blue,
        _ => RiskLevel::Grey,
    };
    let building = number / 24 + 1;
    let h = store.add_household(
        &grid.id,
        NewHousehold {
            micro_grid: micro.map(|m| m.id.clone()),
            address: Address {
                building: building.to_string(),
                unit: (number % 24 / 8 + 1).to_string(),
                room: format!("{}0{}", number % 8 / 2 + 1, number % 2 + 1),
            },
            location: Some(GeoPoint::new(34.75 + rng.random_range(0.0..0.02), 113.65 + rng.random_range(0.0..0.02))?),
            care_tags: tags,
            risk: Some(risk),
            notes: String::new(),
        },
    )?;
    if with_residents {
        let n = if elderly_alone { 1 } else { rng.random_range(1..=4) };
        let surname = SURNAMES[rng.random_range(0..SURNAMES.len())];
        for i in 0..n {
            let birth_year = if elderly_alone { rng.random_range(1935..1958) } else { rng.random_range(1950..2022) };
            store.add_resident(NewResident {
                household: h.id.clone(),
                name: Personal::new(format!("{surname} {}", GIVEN[rng.random_range(0..GIVEN.len())])),
                phone: Personal::new(format!("138{:08}", rng.random_range(0..100_000_000u32))),
                id_number: Personal::new(format!("410105{birth_year}0101{:04}", rng.random_range(0..10_000))),
                birth_year: Some(birth_year as u16),
                relation: if i == 0 {
                    Relation::Head
                } else {
                    [Relation::Spouse, Relation::Child, Relation::Parent][i % 3]
                },
            })?;
        }
    }
    Ok(h)
}
