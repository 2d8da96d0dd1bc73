//! A visit to a household: door-to-door, welfare check, bell check, mediation or inspection.
//!
//! Visits are written once and rarely corrected, so each is one encoded value in its grid's
//! document (one Automerge op), and deleting one writes a tombstone in its place.

use serde::{Deserialize, Serialize};

use crate::clock::UnixMillis;
use crate::document::Tombstone;
use crate::error::Result;
use crate::geo::GeoPoint;
use crate::ids::{HouseholdId, UserId, VisitId};
use crate::photo::PhotoMeta;
use crate::text::{check_len, NOTES_MAX};

field_enum! {
    /// What kind of call a visit was.
    pub enum VisitKind {
        /// Regular door-to-door visit (入户走访).
        Routine = "routine",
        /// A visit to check on someone's wellbeing (elderly, ill, disabled).
        WelfareCheck = "welfare_check",
        /// Bell check (摇响铃铛) and the resident showed at the window.
        BellCheckAnswered = "bell_check_answered",
        /// Bell check with no answer: the household has not been seen, follow up at once.
        /// (Also spelled out in the store's due-date query.)
        BellCheckNoAnswer = "bell_check_no_answer",
        DisputeMediation = "dispute_mediation",
        HazardInspection = "hazard_inspection",
    }
}

impl VisitKind {
    /// Whether the visit shows the household was seen, and so resets its visit clock.
    pub fn counts_as_contact(self) -> bool {
        self != VisitKind::BellCheckNoAnswer
    }
}

field_enum! {
    /// What the worker found.
    pub enum VisitOutcome {
        AllWell = "all_well",
        ProblemFound = "problem_found",
        NobodyHome = "nobody_home",
        ResolvedOnSite = "resolved_on_site",
        Referred = "referred",
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Visit {
    pub id: VisitId,
    pub household: HouseholdId,
    pub worker: UserId,
    pub at: UnixMillis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<GeoPoint>,
    pub kind: VisitKind,
    pub outcome: VisitOutcome,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub follow_up: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub photos: Vec<PhotoMeta>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// What a worker enters to record a visit.
#[derive(Clone, Debug)]
pub struct NewVisit {
    pub household: HouseholdId,
    pub worker: UserId,
    /// When the visit happened; `None` means now.
    pub at: Option<UnixMillis>,
    pub location: Option<GeoPoint>,
    pub kind: VisitKind,
    pub outcome: VisitOutcome,
    pub notes: String,
    pub follow_up: bool,
    pub photos: Vec<PhotoMeta>,
}

impl Visit {
    pub(crate) fn validate(&self) -> Result<()> {
        if let Some(p) = &self.location {
            p.validate("visit location")?;
        }
        check_len("visit notes", &self.notes, NOTES_MAX)?;
        if self.photos.len() > 20 {
            return Err(crate::Error::invalid("visit photos", "at most 20 photos per visit"));
        }
        self.photos.iter().try_for_each(PhotoMeta::validate)
    }
}

impl Tombstone for Visit {
    fn is_deleted(&self) -> bool {
        self.deleted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_one_spelling_in_documents_tables_and_queries() {
        for k in VisitKind::ALL {
            assert_eq!(VisitKind::parse(k.as_str()), Some(*k));
            assert_eq!(serde_json::to_string(k).unwrap(), format!("\"{}\"", k.as_str()));
        }
        // The store's due-date query spells this one out as a literal.
        assert_eq!(VisitKind::BellCheckNoAnswer.as_str(), "bell_check_no_answer");
        assert_eq!(VisitKind::parse("Routine"), None);
    }
}
