//! The welfare screen and search.

use super::*;

/// Whose households a welfare screen covers.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum Area {
    Grid {
        id: String,
    },
    MicroGrid {
        id: String,
    },
    /// A volunteer's micro-grid, or every grid a worker's or supervisor's unit covers.
    Worker {
        id: String,
    },
}

impl Area {
    pub(crate) fn to_core(&self) -> Result<core::Area> {
        Ok(match self {
            Area::Grid { id } => core::Area::Grid(unit_id(id)?),
            Area::MicroGrid { id } => core::Area::MicroGrid(unit_id(id)?),
            Area::Worker { id } => core::Area::Worker(user_id(id)?),
        })
    }
}

/// A worker's welfare screen, each list most urgent first.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Welfare {
    pub visits_overdue: Vec<Household>,
    pub visits_due_today: Vec<Household>,
    pub never_visited: Vec<Household>,
    pub bell_checks_due: Vec<Household>,
    pub follow_ups: Vec<Household>,
}

impl From<core::Welfare> for Welfare {
    fn from(w: core::Welfare) -> Self {
        let list = |v: Vec<core::HouseholdSummary>| v.into_iter().map(Household::from).collect();
        Welfare {
            visits_overdue: list(w.visits_overdue),
            visits_due_today: list(w.visits_due_today),
            never_visited: list(w.never_visited),
            bell_checks_due: list(w.bell_checks_due),
            follow_ups: list(w.follow_ups),
        }
    }
}

/// A household or report whose text matched a search.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum SearchHit {
    Household { id: String, address: String },
    Report { id: String, description: String },
}

impl From<core::SearchHit> for SearchHit {
    fn from(h: core::SearchHit) -> Self {
        match h {
            core::SearchHit::Household { id, address } => SearchHit::Household { id: id.as_str().into(), address },
            core::SearchHit::Report { id, description } => SearchHit::Report { id: id.as_str().into(), description },
        }
    }
}
