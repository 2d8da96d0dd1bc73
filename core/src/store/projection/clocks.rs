//! Each household's three clocks (home visit, bell check, follow-up of an unanswered bell),
//! kept in its `households` row from its visits' rows and from what months that left the phone
//! said (`earlier_visits`). DATA-MODEL.md describes the rules.

use rusqlite::{params, OptionalExtension, Transaction};

use super::directory::load_rules;
use crate::directory::VisitRules;
use crate::error::{Db, Result};
use crate::household::{CareTag, RiskLevel};

/// Re-reads the visit rules and recomputes every household's interval and due date.
pub(super) fn refresh_all_due(tx: &Transaction<'_>) -> Result<VisitRules> {
    let rules = load_rules(tx)?;
    let mut stmt = tx.prepare("SELECT id, care_tags, risk FROM households").db()?;
    let all = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?)))
        .db()?
        .collect::<rusqlite::Result<Vec<_>>>()
        .db()?;
    for (id, mask, risk) in all {
        let risk = RiskLevel::parse(&risk).unwrap_or(RiskLevel::Grey);
        let tags = CareTag::from_mask(mask);
        tx.prepare_cached("UPDATE households SET visit_interval_ms = ?2, bell_interval_ms = ?3 WHERE id = ?1")
            .db()?
            .execute(params![id, rules.interval_ms(&tags, risk), rules.bell_interval_ms(&tags)])
            .db()?;
        refresh_due(tx, &id, rules.follow_up_ms())?;
    }
    Ok(rules)
}

/// Recomputes a household's clocks from all its visits: the home-visit clock from its last home
/// visit (bell checks do not count), the bell-check clock from its last contact (anything but an
/// unanswered bell), and the follow-up from the first unanswered bell since that contact.
/// Never visited: due from the day it was registered. Visits whose documents left the phone
/// count through `earlier_visits`.
pub(crate) fn refresh_due(tx: &rusqlite::Connection, id: &str, follow_up_ms: i64) -> Result<()> {
    let earlier = earlier_visits(tx, id)?;
    // Along the (household_id, at) index. The kinds are literals, not parameters: a bound value
    // there makes SQLite re-plan the statement on every call (measured: a tenth of `record_visit`).
    let last = |sql: &str| -> Result<Option<i64>> {
        tx.prepare_cached(sql).db()?.query_row([id], |r| r.get(0)).optional().db()
    };
    let last_visit = last(
        "SELECT at FROM visits WHERE household_id = ?1 AND deleted = 0
         AND kind NOT IN ('bell_check_no_answer', 'bell_check_answered') ORDER BY at DESC LIMIT 1",
    )?
    .max(earlier.last_visit);
    let last_contact = last(
        "SELECT at FROM visits WHERE household_id = ?1 AND deleted = 0 AND kind != 'bell_check_no_answer'
         ORDER BY at DESC LIMIT 1",
    )?
    .max(earlier.last_contact);
    let unanswered: Option<i64> = tx
        .prepare_cached(
            "SELECT MIN(at) FROM visits WHERE household_id = ?1 AND deleted = 0 AND kind = 'bell_check_no_answer'
             AND at > ?2",
        )
        .db()?
        .query_row(params![id, last_contact.unwrap_or(i64::MIN)], |r| r.get(0))
        .db()?;
    let unanswered = earliest(unanswered, earlier.unanswered_bell.filter(|u| last_contact.is_none_or(|c| *u > c)));
    tx.prepare_cached(
        "UPDATE households SET last_visit_at = ?2, next_due_at = COALESCE(?2 + visit_interval_ms, created_at),
             last_contact_at = ?3, next_bell_due_at = COALESCE(?3, created_at) + bell_interval_ms,
             unanswered_bell_at = ?4, follow_up_due_at = ?4 + ?5
         WHERE id = ?1",
    )
    .db()?
    .execute(params![id, last_visit, last_contact, unanswered, follow_up_ms])
    .db()?;
    Ok(())
}

/// What visits outside the store's documents (months that left a phone's window, or that it
/// never took) say about one household's clocks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Earlier {
    pub last_visit: Option<i64>,
    pub last_contact: Option<i64>,
    /// The first unanswered bell after `last_contact`.
    pub unanswered_bell: Option<i64>,
}

fn earlier_visits(tx: &rusqlite::Connection, household: &str) -> Result<Earlier> {
    Ok(tx
        .prepare_cached(
            "SELECT last_visit_at, last_contact_at, unanswered_bell_at FROM earlier_visits WHERE household_id = ?1",
        )
        .db()?
        .query_row([household], |r| {
            Ok(Earlier { last_visit: r.get(0)?, last_contact: r.get(1)?, unanswered_bell: r.get(2)? })
        })
        .optional()
        .db()?
        .unwrap_or_default())
}

fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Folds `found` into a household's `earlier_visits` row: the later visit and contact, and the
/// first unanswered bell of either after that contact. (Exact when months are folded in in
/// order, as a window moving forward folds them; otherwise an unanswered bell before a later
/// contact of the other side can be missed, never one after it.)
pub(crate) fn merge_earlier(tx: &rusqlite::Connection, household: &str, found: &Earlier) -> Result<()> {
    let before = earlier_visits(tx, household)?;
    let last_contact = found.last_contact.max(before.last_contact);
    let after_contact = |u: Option<i64>| u.filter(|u| last_contact.is_none_or(|c| *u > c));
    tx.prepare_cached(
        "INSERT OR REPLACE INTO earlier_visits (household_id, last_visit_at, last_contact_at, unanswered_bell_at)
         VALUES (?1, ?2, ?3, ?4)",
    )
    .db()?
    .execute(params![
        household,
        found.last_visit.max(before.last_visit),
        last_contact,
        earliest(after_contact(found.unanswered_bell), after_contact(before.unanswered_bell))
    ])
    .db()?;
    Ok(())
}

/// Each household's clocks from the visit rows matching `rows` (a condition on ?2 and ?3, with
/// ?1 free) dated no later than `latest` (a visit dated after its month could close is not one an
/// honest phone wrote into it), the first unanswered bell counted after the later of the rows'
/// last contact and `earlier_visits`'.
pub(crate) fn clocks_of_rows(
    tx: &rusqlite::Connection,
    rows: &str,
    a: &str,
    b: &str,
    latest: i64,
) -> Result<Vec<(String, Earlier)>> {
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT household_id,
                MAX(CASE WHEN kind NOT IN ('bell_check_no_answer', 'bell_check_answered') THEN at END),
                MAX(CASE WHEN kind != 'bell_check_no_answer' THEN at END)
         FROM visits WHERE deleted = 0 AND at <= ?4 AND ?1 = ?1 AND {rows} GROUP BY household_id"
        ))
        .db()?;
    let found = stmt
        .query_map(params!["", a, b, latest], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?, r.get(2)?)))
        .db()?
        .collect::<rusqlite::Result<Vec<(String, Option<i64>, Option<i64>)>>>()
        .db()?;
    let mut first_unanswered = tx
        .prepare_cached(&format!(
            "SELECT MIN(at) FROM visits WHERE household_id = ?1 AND deleted = 0
         AND kind = 'bell_check_no_answer' AND at <= ?4 AND at > ?5 AND {rows}"
        ))
        .db()?;
    let mut out = Vec::with_capacity(found.len());
    for (household, last_visit, last_contact) in found {
        let since = last_contact.max(earlier_visits(tx, &household)?.last_contact);
        let unanswered: Option<i64> = first_unanswered
            .query_row(params![household, a, b, latest, since.unwrap_or(i64::MIN)], |r| r.get(0))
            .db()?;
        out.push((household, Earlier { last_visit, last_contact, unanswered_bell: unanswered }));
    }
    Ok(out)
}

/// Folds the visit rows matching `rows` into `earlier_visits` before those rows are removed.
pub(super) fn keep_earlier_visits(tx: &Transaction<'_>, rows: &str, a: &str, b: &str, latest: i64) -> Result<()> {
    for (household, found) in clocks_of_rows(tx, rows, a, b, latest)? {
        merge_earlier(tx, &household, &found)?;
    }
    Ok(())
}
