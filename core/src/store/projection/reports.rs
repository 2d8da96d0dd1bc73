//! A report's projection: its row, its events' rows, its photos and its search entry, all
//! re-derived from the whole (small) report document whenever any of it changed, then its status
//! and deadlines from the workflow (`store/workflow.rs`).

use rusqlite::{params, OptionalExtension};

use super::{readable, Indexer};
use crate::document::{Collection, Doc, DocId, HEADER_KEY};
use crate::error::{Db, Result};
use crate::report::{Report, ReportEvent};

impl Indexer<'_> {
    /// Re-derives a report's row, its events and its status from its document.
    pub(super) fn report(&mut self, doc: &Doc) -> Result<()> {
        let DocId::Report(report_id) = &doc.id else {
            return Ok(());
        };
        let rid = report_id.as_str();
        self.tx.execute("DELETE FROM report_events WHERE report_id = ?1", [rid]).db()?;
        self.tx.execute("DELETE FROM photos WHERE doc_id = ?1", [doc.id.to_string()]).db()?;
        let mut events = Vec::new();
        for key in doc.keys(Collection::Events)? {
            if let Some(e) = readable(
                self.tx,
                doc,
                Collection::Events,
                &key,
                doc.get_value::<ReportEvent>(Collection::Events, &key),
            )? {
                if e.id.as_str() == key {
                    events.push(e);
                }
            }
        }
        for e in &events {
            self.tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO report_events (id, report_id, at, author_id, kind, note, target, score, photo_count,
                                                        classification, risk)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                ).db()?
                .execute(params![
                    e.id.as_str(),
                    rid,
                    e.at,
                    e.author.as_str(),
                    e.kind.as_str(),
                    e.note,
                    e.target,
                    e.score,
                    e.photos.len() as i64,
                    e.classification.map(|c| c.as_str()),
                    e.risk.map(|r| r.as_str())
                ]).db()?;
            self.photos(&doc.id, "report_event", e.id.as_str(), &e.photos)?;
        }
        let header = readable(
            self.tx,
            doc,
            Collection::Header,
            HEADER_KEY,
            doc.get_value::<Report>(Collection::Header, HEADER_KEY),
        )?;
        let Some(r) = header.filter(|r| &r.id == report_id) else {
            return self.remove_report_row(rid);
        };
        let old_rowid: Option<i64> =
            self.tx.query_row("SELECT rowid FROM reports WHERE id = ?1", [rid], |r| r.get(0)).optional().db()?;
        if let Some(rowid) = old_rowid {
            self.tx.execute("DELETE FROM report_search WHERE rowid = ?1", [rowid]).db()?;
        }
        let updated_at = events.iter().map(|e| e.at).max().unwrap_or(r.created_at).max(r.created_at);
        let (lat, lon) = r.location.map(|p| (p.lat, p.lon)).unzip();
        // The derived columns are filled in by `derive_report` below.
        self.tx
            .prepare_cached(
                "INSERT INTO reports (id, grid_id, reporter_id, category_id, description, address, lat, lon, created_at,
                                      status, updated_at, event_count, level, reopen_count, rejected_count,
                                      triage_due_at, feedback_due_at, resolve_due_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'open', ?10, ?11, 'grid', 0, 0, ?9, ?9, ?9)
                 ON CONFLICT(id) DO UPDATE SET grid_id = ?2, reporter_id = ?3, category_id = ?4, description = ?5,
                     address = ?6, lat = ?7, lon = ?8, created_at = ?9, updated_at = ?10, event_count = ?11",
            ).db()?
            .execute(params![
                rid,
                r.grid.as_ref().map(|g| g.as_str()),
                r.reporter.as_str(),
                r.category.as_str(),
                r.description,
                r.address,
                lat,
                lon,
                r.created_at,
                updated_at,
                events.len() as i64
            ]).db()?;
        crate::store::workflow::derive_report(self.tx, rid)?;
        self.photos(&doc.id, "report", rid, &r.photos)?;
        let rowid: i64 = self.tx.query_row("SELECT rowid FROM reports WHERE id = ?1", [rid], |r| r.get(0)).db()?;
        let body = format!("{} {}", r.description, r.address.as_deref().unwrap_or(""));
        self.tx.execute("INSERT INTO report_search (rowid, body) VALUES (?1, ?2)", params![rowid, body.trim()]).db()?;
        Ok(())
    }

    /// Removes a report's row, its search entry and its refused events.
    pub(super) fn remove_report_row(&mut self, rid: &str) -> Result<()> {
        let rowid: Option<i64> =
            self.tx.query_row("SELECT rowid FROM reports WHERE id = ?1", [rid], |r| r.get(0)).optional().db()?;
        if let Some(rowid) = rowid {
            self.tx.execute("DELETE FROM report_search WHERE rowid = ?1", [rowid]).db()?;
        }
        self.tx.execute("DELETE FROM reports WHERE id = ?1", [rid]).db()?;
        self.tx.execute("DELETE FROM report_rejections WHERE report_id = ?1", [rid]).db()?;
        Ok(())
    }
}
