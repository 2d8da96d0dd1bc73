//! Reports: filing, their events, summaries, filters, derived state and overdue ones.

use super::*;

/// A snap-and-report issue, as filed.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct NewReport {
    pub reporter: String,
    /// A category id of the directory (`fire_safety`, `environment`, ...).
    pub category: String,
    pub description: String,
    #[uniffi(default = None)]
    pub location: Option<GeoPoint>,
    #[uniffi(default = None)]
    pub address: Option<String>,
    /// The grid it is in, when known.
    #[uniffi(default = None)]
    pub grid: Option<String>,
    #[uniffi(default = [])]
    pub photos: Vec<PhotoFile>,
}

impl NewReport {
    pub(crate) fn into_core(self, photos: Vec<core::PhotoMeta>) -> Result<core::NewReport> {
        Ok(core::NewReport {
            reporter: user_id(&self.reporter)?,
            category: CategoryId::parse(&self.category)?,
            description: self.description,
            location: opt_point(self.location)?,
            address: self.address,
            grid: opt_unit(self.grid)?,
            photos,
        })
    }
}

/// One step taken on a report: triage, dispatch, accept, resolve, feedback, close, ...
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct NewReportEvent {
    pub report: String,
    pub author: String,
    pub kind: ReportEventKind,
    #[uniffi(default = "")]
    pub note: String,
    /// Dispatch: the department; escalate: the unit; merged as duplicate: the other report.
    #[uniffi(default = None)]
    pub target: Option<String>,
    /// Confirmation: the reporter's satisfaction, 1 to 5.
    #[uniffi(default = None)]
    pub score: Option<u8>,
    #[uniffi(default = [])]
    pub photos: Vec<PhotoFile>,
    /// Triage: how hard the case is (sets the resolution deadline).
    #[uniffi(default = None)]
    pub classification: Option<Classification>,
    /// Triage: the risk colour.
    #[uniffi(default = None)]
    pub risk: Option<RiskLevel>,
}

impl NewReportEvent {
    pub(crate) fn into_core(self, photos: Vec<core::PhotoMeta>) -> Result<core::NewReportEvent> {
        Ok(core::NewReportEvent {
            report: report_id(&self.report)?,
            author: user_id(&self.author)?,
            kind: self.kind.into(),
            note: self.note,
            target: self.target,
            score: self.score,
            photos,
            classification: self.classification.map(Into::into),
            risk: self.risk.map(Into::into),
        })
    }
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct ReportEvent {
    pub id: String,
    pub at: i64,
    pub author: String,
    pub kind: ReportEventKind,
    pub note: String,
    pub target: Option<String>,
    pub score: Option<u8>,
    pub photos: Vec<Photo>,
    pub classification: Option<Classification>,
    pub risk: Option<RiskLevel>,
}

impl From<core::ReportEvent> for ReportEvent {
    fn from(e: core::ReportEvent) -> Self {
        ReportEvent {
            id: e.id.as_str().into(),
            at: e.at,
            author: e.author.as_str().into(),
            kind: e.kind.into(),
            note: e.note,
            target: e.target,
            score: e.score,
            photos: e.photos.into_iter().map(Into::into).collect(),
            classification: e.classification.map(Into::into),
            risk: e.risk.map(Into::into),
        }
    }
}

/// A report in a list.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct ReportSummary {
    pub id: String,
    pub grid: Option<String>,
    pub reporter: String,
    pub category: String,
    pub description: String,
    pub address: Option<String>,
    pub location: Option<GeoPoint>,
    pub created_at: i64,
    pub status: ReportStatus,
    pub updated_at: i64,
    pub event_count: u32,
}

impl From<core::ReportSummary> for ReportSummary {
    fn from(r: core::ReportSummary) -> Self {
        ReportSummary {
            id: r.id.as_str().into(),
            grid: opt_str(r.grid),
            reporter: r.reporter.as_str().into(),
            category: r.category.as_str().into(),
            description: r.description,
            address: r.address,
            location: r.location.map(Into::into),
            created_at: r.created_at,
            status: r.status.into(),
            updated_at: r.updated_at,
            event_count: r.event_count,
        }
    }
}

/// Which reports a list shows; every field given narrows it.
#[derive(Clone, Debug, Default, PartialEq, uniffi::Record)]
pub struct ReportFilter {
    #[uniffi(default = None)]
    pub status: Option<ReportStatus>,
    #[uniffi(default = None)]
    pub grid: Option<String>,
    #[uniffi(default = None)]
    pub category: Option<String>,
    /// With `radius_m`: only reports within that distance.
    #[uniffi(default = None)]
    pub near: Option<GeoPoint>,
    #[uniffi(default = None)]
    pub radius_m: Option<f64>,
    /// 0: no limit.
    #[uniffi(default = 0)]
    pub limit: u32,
}

impl ReportFilter {
    pub(crate) fn into_core(self) -> Result<core::ReportFilter> {
        let near = match (self.near, self.radius_m) {
            (Some(p), Some(r)) => Some((p.to_core()?, r)),
            (None, None) => None,
            _ => return Err(DoorstepError::InvalidInput("near and radius_m are given together or not at all".into())),
        };
        Ok(core::ReportFilter {
            status: self.status.map(Into::into),
            grid: opt_unit(self.grid)?,
            category: self.category.as_deref().map(CategoryId::parse).transpose()?,
            near,
            limit: self.limit,
        })
    }
}

/// An event the workflow did not apply, and why (it stays in the log).
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct RejectedEvent {
    pub event: String,
    pub reason: String,
}

/// Where a report stands, derived from its whole log.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct ReportState {
    pub status: ReportStatus,
    pub classification: Option<Classification>,
    pub risk: Option<RiskLevel>,
    /// The department it was dispatched to.
    pub assignee: Option<String>,
    pub accepted_by: Option<String>,
    /// The level that owns it now (grid, then community, street, district as it escalates).
    pub level: UnitKind,
    pub triage_due: i64,
    pub feedback_due: i64,
    pub resolve_due: i64,
    /// The next deadline still open, if any.
    pub next_due_step: Option<Step>,
    pub next_due_at: Option<i64>,
    pub triaged_at: Option<i64>,
    pub first_feedback_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub closed_at: Option<i64>,
    pub satisfaction: Option<u8>,
    pub reopen_count: u32,
    pub duplicate_of: Option<String>,
    pub rejected: Vec<RejectedEvent>,
}

impl From<core::Derived> for ReportState {
    fn from(d: core::Derived) -> Self {
        let next = d.next_due();
        ReportState {
            status: d.status.into(),
            classification: d.classification.map(Into::into),
            risk: d.risk.map(Into::into),
            assignee: d.assignee,
            accepted_by: opt_str(d.accepted_by),
            level: d.level.into(),
            triage_due: d.triage_due,
            feedback_due: d.feedback_due,
            resolve_due: d.resolve_due,
            next_due_step: next.map(|(s, _)| s.into()),
            next_due_at: next.map(|(_, at)| at),
            triaged_at: d.triaged_at,
            first_feedback_at: d.first_feedback_at,
            resolved_at: d.resolved_at,
            closed_at: d.closed_at,
            satisfaction: d.satisfaction,
            reopen_count: d.reopen_count,
            duplicate_of: d.duplicate_of,
            rejected: d
                .rejected
                .into_iter()
                .map(|r| RejectedEvent { event: r.event.as_str().into(), reason: r.reason })
                .collect(),
        }
    }
}

/// A report with its whole log and derived state: the report's detail screen.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct ReportDetail {
    pub id: String,
    pub reporter: String,
    pub category: String,
    pub description: String,
    pub location: Option<GeoPoint>,
    pub address: Option<String>,
    pub grid: Option<String>,
    pub photos: Vec<Photo>,
    pub created_at: i64,
    pub events: Vec<ReportEvent>,
    pub state: ReportState,
}

impl ReportDetail {
    pub(crate) fn new(r: core::Report, events: Vec<core::ReportEvent>, state: core::Derived) -> Self {
        ReportDetail {
            id: r.id.as_str().into(),
            reporter: r.reporter.as_str().into(),
            category: r.category.as_str().into(),
            description: r.description,
            location: r.location.map(Into::into),
            address: r.address,
            grid: opt_str(r.grid),
            photos: r.photos.into_iter().map(Into::into).collect(),
            created_at: r.created_at,
            events: events.into_iter().map(Into::into).collect(),
            state: state.into(),
        }
    }
}

/// A report past a deadline, for the supervisor's view.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct OverdueReport {
    pub id: String,
    pub grid: Option<String>,
    pub category: String,
    pub description: String,
    pub status: ReportStatus,
    /// The earliest deadline missed, when it was, and how long ago.
    pub step: Step,
    pub due_at: i64,
    pub overdue_ms: i64,
    pub level: UnitKind,
    pub assignee: Option<String>,
}

impl From<CoreOverdue> for OverdueReport {
    fn from(o: CoreOverdue) -> Self {
        OverdueReport {
            id: o.id.as_str().into(),
            grid: opt_str(o.grid),
            category: o.category,
            description: o.description,
            status: o.status.into(),
            step: o.step.into(),
            due_at: o.due_at,
            overdue_ms: o.overdue_ms,
            level: o.level.into(),
            assignee: o.assignee,
        }
    }
}
