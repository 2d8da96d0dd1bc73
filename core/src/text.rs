//! Limits on free text, shared by every record so each field is checked the same way.

use crate::error::{Error, Result};

pub(crate) const NAME_MAX: usize = 100;
pub(crate) const SHORT_MAX: usize = 200;
pub(crate) const NOTES_MAX: usize = 4_000;

/// Checks a text field's length in characters (not bytes: Chinese text counts per character).
/// The message names the field and the limit, never the text itself.
pub(crate) fn check_len(field: &'static str, value: &str, max: usize) -> Result<()> {
    let n = value.chars().count();
    if n > max {
        return Err(Error::invalid(field, format!("{n} characters is over the limit of {max}")));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Error::invalid(field, "contains control characters"));
    }
    Ok(())
}

pub(crate) fn check_required(field: &'static str, value: &str, max: usize) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    check_len(field, value, max)
}
