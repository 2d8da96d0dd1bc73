//! Citizen reports (随手拍): a header written once by the reporter and an append-only log of
//! workflow events, each in the report's own document.
//!
//! The report's status, assignee, escalation level and deadlines are derived from its log by
//! [`crate::workflow::derive`], never stored in the document, so every phone that holds the same
//! events shows the same state.

use serde::{Deserialize, Serialize};

use crate::clock::UnixMillis;
use crate::document::Tombstone;
use crate::error::{Error, Result};
use crate::geo::GeoPoint;
use crate::household::RiskLevel;
use crate::ids::{CategoryId, EventId, ReportId, UnitId, UserId};
use crate::photo::PhotoMeta;
use crate::text::{check_len, check_required, NOTES_MAX, SHORT_MAX};
use crate::workflow::Classification;

/// What a report says, as filed. Written once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub id: ReportId,
    pub reporter: UserId,
    pub category: CategoryId,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<GeoPoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<UnitId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub photos: Vec<PhotoMeta>,
    pub created_at: UnixMillis,
}

#[derive(Clone, Debug)]
pub struct NewReport {
    pub reporter: UserId,
    pub category: CategoryId,
    pub description: String,
    pub location: Option<GeoPoint>,
    pub address: Option<String>,
    pub grid: Option<UnitId>,
    pub photos: Vec<PhotoMeta>,
}

impl Report {
    pub(crate) fn validate(&self) -> Result<()> {
        check_required("report description", &self.description, NOTES_MAX)?;
        if let Some(a) = &self.address {
            check_len("report address", a, SHORT_MAX)?;
        }
        if self.location.is_none() && self.address.as_deref().is_none_or(|a| a.trim().is_empty()) {
            return Err(Error::invalid("report place", "give a GPS position or an address"));
        }
        if let Some(p) = &self.location {
            p.validate("report location")?;
        }
        if self.photos.len() > 20 {
            return Err(Error::invalid("report photos", "at most 20 photos per report"));
        }
        self.photos.iter().try_for_each(PhotoMeta::validate)
    }
}

impl Tombstone for Report {
    fn is_deleted(&self) -> bool {
        false
    }
}

field_enum! {
    /// The steps of the closed loop (发现 → 上报 → 派发 → 处置 → 督办 → 反馈 → 销号).
    pub enum ReportEventKind {
        Submitted = "submitted",
        Triaged = "triaged",
        Dispatched = "dispatched",
        Accepted = "accepted",
        ProgressNote = "progress_note",
        Escalated = "escalated",
        Resolved = "resolved",
        FeedbackSent = "feedback_sent",
        Confirmed = "confirmed",
        Disputed = "disputed",
        Closed = "closed",
        Reopened = "reopened",
        MergedAsDuplicate = "merged_as_duplicate",
        Comment = "comment",
    }
}

/// One entry of a report's append-only log. Written once, never edited.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportEvent {
    pub id: EventId,
    pub at: UnixMillis,
    pub author: UserId,
    pub kind: ReportEventKind,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// Who or what the event points at: a department or worker for a dispatch, the report it
    /// duplicates for a merge, the level for an escalation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The reporter's satisfaction, 1–5, when confirming or disputing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<u8>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub photos: Vec<PhotoMeta>,
    /// Set at triage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<Classification>,
    /// Set at triage: the report's risk colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<RiskLevel>,
}

#[derive(Clone, Debug)]
pub struct NewReportEvent {
    pub report: ReportId,
    pub author: UserId,
    pub kind: ReportEventKind,
    pub note: String,
    pub target: Option<String>,
    pub score: Option<u8>,
    pub photos: Vec<PhotoMeta>,
    pub classification: Option<Classification>,
    pub risk: Option<RiskLevel>,
}

impl NewReportEvent {
    /// An event with no note, target, score, photos or triage fields; set what applies.
    pub fn new(report: ReportId, author: UserId, kind: ReportEventKind) -> NewReportEvent {
        NewReportEvent {
            report,
            author,
            kind,
            note: String::new(),
            target: None,
            score: None,
            photos: Vec::new(),
            classification: None,
            risk: None,
        }
    }
}

impl ReportEvent {
    /// The event a [`NewReportEvent`] records, at `at`, with a new id.
    pub(crate) fn recorded(new: NewReportEvent, at: UnixMillis) -> ReportEvent {
        ReportEvent {
            id: EventId::generate(),
            at,
            author: new.author,
            kind: new.kind,
            note: new.note,
            target: new.target,
            score: new.score,
            photos: new.photos,
            classification: new.classification,
            risk: new.risk,
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        check_len("event note", &self.note, NOTES_MAX)?;
        if let Some(t) = &self.target {
            check_required("event target", t, SHORT_MAX)?;
        }
        if let Some(s) = self.score {
            if !(1..=5).contains(&s) {
                return Err(Error::invalid("satisfaction score", "must be from 1 to 5"));
            }
        }
        self.photos.iter().try_for_each(PhotoMeta::validate)
    }
}

impl Tombstone for ReportEvent {
    fn is_deleted(&self) -> bool {
        false
    }
}

field_enum! {
    /// Where a report stands in the loop.
    pub enum ReportStatus {
        Open = "open",
        Triaged = "triaged",
        Dispatched = "dispatched",
        InProgress = "in_progress",
        Resolved = "resolved",
        Closed = "closed",
        Duplicate = "duplicate",
    }
}
