//! A wrapper for residents' personal data (names, phone numbers, ID numbers).
//!
//! `Debug` prints a placeholder and there is no `Display`, so a `{:?}` in a log line or an error
//! can never leak the value. Read it with [`Personal::expose`] only where a screen shows it.

use serde::{Deserialize, Serialize};

#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Personal(String);

impl Personal {
    pub fn new(value: impl Into<String>) -> Self {
        Personal(value.into())
    }
    /// The value itself, for showing on the worker's screen. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Personal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Personal(<redacted>)")
    }
}

impl From<&str> for Personal {
    fn from(s: &str) -> Self {
        Personal(s.to_owned())
    }
}
