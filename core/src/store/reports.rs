//! Filing citizen reports and appending to their workflow log.

use super::Store;
use crate::directory::UnitKind;
use crate::document::Collection;
use crate::document::{DocId, Touched, HEADER_KEY};
use crate::error::{Db, Error, Result};
use crate::ids::ReportId;
use crate::report::{NewReport, NewReportEvent, Report, ReportEvent, ReportEventKind};

impl Store {
    /// Files a citizen report: a new `report/<id>` document with its header and `submitted` event.
    pub fn file_report(&mut self, new: NewReport) -> Result<Report> {
        self.require_author(&new.reporter)?;
        let exists: bool = self
            .conn
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM categories WHERE id = ?1 AND deleted = 0)",
                [new.category.as_str()],
                |r| r.get(0),
            )
            .db()?;
        if !exists {
            return Err(Error::not_found("report category", &new.category));
        }
        if let Some(g) = &new.grid {
            self.require_unit(g, UnitKind::Grid, "grid")?;
        }
        let now = self.now();
        let report = Report {
            id: ReportId::generate(),
            reporter: new.reporter,
            category: new.category,
            description: new.description,
            location: new.location,
            address: new.address,
            grid: new.grid,
            photos: new.photos,
            created_at: now,
        };
        report.validate()?;
        let submitted = ReportEvent::recorded(
            NewReportEvent::new(report.id.clone(), report.reporter.clone(), ReportEventKind::Submitted),
            now,
        );
        self.write(
            &DocId::Report(report.id.clone()),
            |d| {
                d.put_value(Collection::Header, HEADER_KEY, &report)?;
                d.put_value(Collection::Events, submitted.id.as_str(), &submitted)
            },
            |ix, d| ix.project(d, &Touched { collection: Collection::Header, key: Some(HEADER_KEY.into()) }),
        )?;
        Ok(report)
    }

    /// Appends an event to a report's log. An event the workflow would refuse as things stand on
    /// this phone (a volunteer closing a report, accepting a report not dispatched to you) is
    /// refused with the reason, and nothing is written.
    pub fn add_report_event(&mut self, new: NewReportEvent) -> Result<ReportEvent> {
        self.require_author(&new.author)?;
        let doc_id = DocId::Report(new.report.clone());
        if !self.has_document(&doc_id)? {
            return Err(Error::not_found("report", &new.report));
        }
        // An event follows everything this phone already knows of the log, even within one
        // millisecond: the fold orders by time, and a log's local order is its causal order.
        let last: Option<i64> = self
            .conn
            .query_row("SELECT MAX(at) FROM report_events WHERE report_id = ?1", [new.report.as_str()], |r| r.get(0))
            .db()?;
        let report = new.report.clone();
        let e = ReportEvent::recorded(new, self.now().max(last.map_or(i64::MIN, |l| l + 1)));
        e.validate()?;
        if let Some(reason) = self.refusal_of(&report, &e)? {
            return Err(Error::invalid("report event", reason));
        }
        self.write(
            &doc_id,
            |d| d.put_value(Collection::Events, e.id.as_str(), &e),
            |ix, d| ix.project(d, &Touched { collection: Collection::Events, key: Some(e.id.to_string()) }),
        )?;
        Ok(e)
    }

    /// A report as filed and its whole event log, oldest first.
    pub fn report(&mut self, id: &ReportId) -> Result<(Report, Vec<ReportEvent>)> {
        let doc_id = DocId::Report(id.clone());
        if !self.has_document(&doc_id)? {
            return Err(Error::not_found("report", id));
        }
        let doc = self.doc(&doc_id)?;
        let report =
            doc.get_value::<Report>(Collection::Header, HEADER_KEY)?.ok_or_else(|| Error::not_found("report", id))?;
        let mut events = Vec::new();
        for k in doc.keys(Collection::Events)? {
            events.extend(doc.get_value::<ReportEvent>(Collection::Events, &k)?);
        }
        events.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        Ok((report, events))
    }
}
