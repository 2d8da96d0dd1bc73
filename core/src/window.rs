//! What a phone keeps: the documents of the last few months and the reports still in play.
//!
//! Years of visits are far more than a phone needs and more than its storage should carry (a
//! busy grid records about 45,000 visits a year). A phone keeps a rolling window (docs/DATA-MODEL.md, *The phone's window*):
//! the visits documents of the current month and the months before it, the reports open or closed
//! lately, and everything else (the directory, the registers). Once the server holds every change
//! of a document outside the window, the document leaves the phone; what the screens need from
//! it — each household's last visit and contact, an unanswered bell — stays in the query tables
//! (`earlier_visits`). The server keeps everything; older history comes back on demand, read-only
//! (`sync::history`).

use crate::clock::UnixMillis;
use crate::document::DocId;
use crate::period::Period;

const DAY_MS: i64 = 86_400_000;

/// The window a phone keeps (a setting of the store, `OpenOptions::window`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Months of visits kept: the current month and the `months - 1` before it (at least 1). A
    /// month still open for writing (its grace week) is kept whatever this says.
    pub months: u32,
    /// Days a closed report stays after it was closed.
    pub closed_report_days: u32,
}

impl Default for Window {
    fn default() -> Self {
        Window { months: 3, closed_report_days: 30 }
    }
}

impl Window {
    /// Months a window keeps at most (a hundred years; a larger setting counts as this).
    pub const MAX_MONTHS: u32 = 1_200;

    /// The oldest month whose visits the window keeps at `now`.
    pub fn first_month(&self, now: UnixMillis) -> Period {
        Period::of(now).minus(self.months.clamp(1, Window::MAX_MONTHS) - 1)
    }

    /// The month before which every month lies outside the window and is closed at `now`: what
    /// the phone asks the server for its households' clocks of (`wire::Earlier`). The window's
    /// first month, or the one before it while that one is still in its grace week (a one-month
    /// window), so that an answer never covers a month that can still change.
    pub fn settled_before(&self, now: UnixMillis) -> Period {
        let first = self.first_month(now);
        if first.previous().is_open(now) {
            first.previous()
        } else {
            first
        }
    }

    /// Whether a visits document of `period` belongs on the phone at `now`.
    pub fn keeps_month(&self, period: Period, now: UnixMillis) -> bool {
        period >= self.first_month(now) || period.is_open(now)
    }

    /// Whether a report closed at `closed_at` still belongs on the phone at `now` (an open report
    /// always does).
    pub fn keeps_closed_report(&self, closed_at: UnixMillis, now: UnixMillis) -> bool {
        now.saturating_sub(closed_at) < i64::from(self.closed_report_days) * DAY_MS
    }

    /// Whether the phone takes `doc` when it does not hold it: a visits document only inside
    /// the window. Anything else is taken (a report's state is known only once it is in; a
    /// report closed long ago leaves again after the sync).
    pub fn takes(&self, doc: &DocId, now: UnixMillis) -> bool {
        match doc {
            DocId::Visits(_, period) => self.keeps_month(*period, now),
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, m: u8, day: i64) -> UnixMillis {
        Period::new(y, m).unwrap().start() + (day - 1) * DAY_MS
    }

    #[test]
    fn three_months_by_default_and_a_month_in_its_grace_week() {
        let w = Window::default();
        let now = at(2026, 3, 20);
        assert_eq!(w.first_month(now).to_string(), "2026-01");
        assert!(w.keeps_month(Period::parse("2026-01").unwrap(), now));
        assert!(!w.keeps_month(Period::parse("2025-12").unwrap(), now));
        let one = Window { months: 1, ..w };
        assert!(one.keeps_month(Period::parse("2026-02").unwrap(), at(2026, 3, 3)), "still open");
        assert!(!one.keeps_month(Period::parse("2026-02").unwrap(), at(2026, 3, 9)), "closed");
        assert_eq!(Window { months: 0, ..w }.first_month(now).to_string(), "2026-03");
        assert_eq!(Window { months: 14, ..w }.first_month(now).to_string(), "2025-02");
        assert_eq!(Window { months: u32::MAX, ..w }.first_month(now).to_string(), "2000-01");
        assert_eq!(w.settled_before(now).to_string(), "2026-01");
        assert_eq!(one.settled_before(at(2026, 3, 3)).to_string(), "2026-02", "February is open");
        assert_eq!(one.settled_before(at(2026, 3, 9)).to_string(), "2026-03");
    }

    #[test]
    fn closed_reports_stay_thirty_days() {
        let w = Window::default();
        let now = at(2026, 3, 31);
        assert!(w.keeps_closed_report(now - 29 * DAY_MS, now));
        assert!(!w.keeps_closed_report(now - 30 * DAY_MS, now));
        assert!(!w.keeps_closed_report(i64::MIN, now), "no overflow on a hostile time");
    }
}
