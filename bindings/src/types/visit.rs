//! Visits: the new one the app records and the one a screen shows.

use super::*;

/// What a worker enters to record a visit.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct NewVisit {
    pub household: String,
    pub worker: String,
    /// When it happened; `None`: now.
    #[uniffi(default = None)]
    pub at: Option<i64>,
    #[uniffi(default = None)]
    pub location: Option<GeoPoint>,
    pub kind: VisitKind,
    pub outcome: VisitOutcome,
    #[uniffi(default = "")]
    pub notes: String,
    #[uniffi(default = false)]
    pub follow_up: bool,
    #[uniffi(default = [])]
    pub photos: Vec<PhotoFile>,
}

impl NewVisit {
    /// The core's visit, once its photos were imported.
    pub(crate) fn into_core(self, photos: Vec<core::PhotoMeta>) -> Result<core::NewVisit> {
        Ok(core::NewVisit {
            household: household_id(&self.household)?,
            worker: user_id(&self.worker)?,
            at: self.at,
            location: opt_point(self.location)?,
            kind: self.kind.into(),
            outcome: self.outcome.into(),
            notes: self.notes,
            follow_up: self.follow_up,
            photos,
        })
    }
}

/// A recorded visit.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Visit {
    pub id: String,
    pub household: String,
    pub worker: String,
    pub at: i64,
    pub location: Option<GeoPoint>,
    pub kind: VisitKind,
    pub outcome: VisitOutcome,
    pub notes: String,
    pub follow_up: bool,
    pub photo_count: u32,
}

impl From<core::VisitSummary> for Visit {
    fn from(v: core::VisitSummary) -> Self {
        Visit {
            id: v.id.as_str().into(),
            household: v.household.as_str().into(),
            worker: v.worker.as_str().into(),
            at: v.at,
            location: v.location.map(Into::into),
            kind: v.kind.into(),
            outcome: v.outcome.into(),
            notes: v.notes,
            follow_up: v.follow_up,
            photo_count: v.photo_count,
        }
    }
}
