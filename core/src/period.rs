//! The period a visits document covers: one calendar month (UTC), written as `YYYY-MM`.
//!
//! Visits are kept per micro-grid and month (`visits/<unit>/<YYYY-MM>`, docs/DATA-MODEL.md) so that no
//! document a phone writes to grows without bound: a month's document is written during its month
//! and a grace window after it ([`GRACE_MS`]), then is closed for writing. Why a month and not a
//! quarter is measured by `doorstep bench growth` (docs/DATA-MODEL.md, *Visits by period*).

use crate::clock::UnixMillis;
use crate::error::{Error, Result};

/// How long after its month a period document still takes new visits: a phone that recorded a
/// visit on the last evening of the month and syncs a week later is still on time.
pub const GRACE_MS: i64 = 7 * DAY_MS;

const DAY_MS: i64 = 86_400_000;

/// One calendar month, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Period {
    year: i32,
    /// 1–12.
    month: u8,
}

impl Period {
    pub fn new(year: i32, month: u8) -> Result<Period> {
        if !(2000..=9999).contains(&year) || !(1..=12).contains(&month) {
            return Err(Error::invalid("period", "must be a month from 2000-01 to 9999-12"));
        }
        Ok(Period { year, month })
    }

    /// The month that `at` falls in.
    pub fn of(at: UnixMillis) -> Period {
        let (year, month, _) = civil_from_days(at.div_euclid(DAY_MS));
        match year {
            ..2000 => Period { year: 2000, month: 1 },
            10_000.. => Period { year: 9999, month: 12 },
            _ => Period { year, month },
        }
    }

    /// `YYYY-MM`.
    pub fn parse(s: &str) -> Result<Period> {
        let bad = || Error::invalid("period", "must be written YYYY-MM");
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 || !y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        Period::new(y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?)
    }

    /// First millisecond of the month.
    pub fn start(self) -> UnixMillis {
        days_from_civil(self.year, self.month, 1) * DAY_MS
    }

    /// First millisecond after the month.
    pub fn end(self) -> UnixMillis {
        self.next().start()
    }

    /// When the period's document stops taking new visits: its end plus [`GRACE_MS`].
    pub fn closes_at(self) -> UnixMillis {
        self.end() + GRACE_MS
    }

    pub fn is_open(self, now: UnixMillis) -> bool {
        now < self.closes_at()
    }

    pub fn next(self) -> Period {
        match self.month {
            12 => Period { year: self.year + 1, month: 1 },
            m => Period { year: self.year, month: m + 1 },
        }
    }

    /// The month `n` months before this one (2000-01 at the earliest).
    pub fn minus(self, n: u32) -> Period {
        let index = i64::from(self.year) * 12 + i64::from(self.month) - 1 - i64::from(n);
        let index = index.max(2000 * 12);
        Period { year: (index / 12) as i32, month: (index % 12) as u8 + 1 }
    }

    pub fn previous(self) -> Period {
        match self.month {
            1 => Period { year: self.year - 1, month: 12 },
            m => Period { year: self.year, month: m - 1 },
        }
    }

    /// The period a visit made at `at` and recorded at `now` is kept in: its own month while that
    /// month's document is open, else the current month (a visit entered late, or on a phone whose
    /// clock ran ahead, is never refused for its date).
    pub fn for_visit(at: UnixMillis, now: UnixMillis) -> Period {
        let own = Period::of(at.min(now));
        if own.is_open(now) {
            own
        } else {
            Period::of(now)
        }
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// Days since 1970-01-01 of a date in the proleptic Gregorian calendar (H. Hinnant's algorithm).
fn days_from_civil(year: i32, month: u8, day: u8) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day counted from 1970-01-01 (the inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_back_across_years_and_no_earlier_than_2000() {
        let p = Period::parse("2026-03").unwrap();
        assert_eq!(p.minus(0), p);
        assert_eq!(p.minus(2).to_string(), "2026-01");
        assert_eq!(p.minus(3).to_string(), "2025-12");
        assert_eq!(p.minus(27).to_string(), "2023-12");
        assert_eq!(p.minus(u32::MAX).to_string(), "2000-01");
    }

    #[test]
    fn months_begin_and_end_on_calendar_days() {
        let nov = Period::parse("2026-11").unwrap();
        assert_eq!(nov.start(), 1_793_491_200_000); // 2026-11-01T00:00:00Z
        assert_eq!(nov.end(), Period::parse("2026-12").unwrap().start());
        assert_eq!(Period::of(nov.start()), nov);
        assert_eq!(Period::of(nov.end() - 1), nov);
        assert_eq!(Period::parse("2024-02").unwrap().end() - Period::parse("2024-02").unwrap().start(), 29 * DAY_MS);
        assert_eq!(Period::parse("2026-12").unwrap().next().to_string(), "2027-01");
        assert_eq!(Period::parse("2027-01").unwrap().previous().to_string(), "2026-12");
        for d in (0..40_000).step_by(7) {
            let (y, m, day) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, day), d);
        }
    }

    #[test]
    fn times_outside_the_supported_years_fall_in_its_first_or_last_month() {
        assert_eq!(Period::of(0).to_string(), "2000-01"); // 1970-01
        assert_eq!(Period::of(-1).to_string(), "2000-01");
        assert_eq!(Period::of(946_684_800_000 - 1).to_string(), "2000-01"); // 1999-12-31
        assert_eq!(Period::of(i64::MAX / 2).to_string(), "9999-12");
    }

    #[test]
    fn periods_round_trip_through_text() {
        for s in ["2026-01", "2026-12", "2030-07"] {
            assert_eq!(Period::parse(s).unwrap().to_string(), s);
        }
        for bad in ["", "2026", "2026-1", "2026-13", "2026-00", "26-01", "2026-01-01", "abcd-ef", "1999-12"] {
            assert!(Period::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_visit_goes_to_its_month_until_that_month_closes() {
        let nov = Period::parse("2026-11").unwrap();
        let dec = nov.next();
        let late_in_nov = nov.end() - 3_600_000;
        // Recorded in the grace window: still November's document.
        assert_eq!(Period::for_visit(late_in_nov, nov.end() + GRACE_MS - 1), nov);
        // Recorded after November closed: December's, though the visit was in November.
        assert_eq!(Period::for_visit(late_in_nov, nov.closes_at()), dec);
        // A visit dated ahead of the phone's clock goes to the current month.
        assert_eq!(Period::for_visit(dec.end() + 5 * DAY_MS, late_in_nov), nov);
    }
}
