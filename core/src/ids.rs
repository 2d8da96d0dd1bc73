//! Stable record ids made on the device (ULIDs), never list positions.
//!
//! An id is 1–64 characters of `A-Z a-z 0-9 - _`: ULIDs made here, or ids an admin typed into the
//! directory. Ids are not personal data and may appear in messages and logs.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub(crate) fn validate_id(field: &'static str, s: &str) -> Result<()> {
    if s.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if s.len() > 64 {
        return Err(Error::invalid(field, "is longer than 64 characters"));
    }
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(Error::invalid(field, "may only hold letters, digits, '-' and '_'"));
    }
    Ok(())
}

/// The Automerge actor id a device writes every change with, in its hex form: 16 bytes as 32
/// hexadecimal digits, lower-cased (every store makes one at random). The one rule for actor ids,
/// wherever one arrives: an enrolment, the directory, the server's device table.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ActorHex(String);

impl ActorHex {
    pub fn parse(s: &str) -> Result<ActorHex> {
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid("actor id", "must be 32 hexadecimal digits"));
        }
        Ok(ActorHex(s.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The actor id itself.
    pub(crate) fn actor(&self) -> automerge::ActorId {
        let bytes: Vec<u8> = hex::decode(&self.0).expect("checked hex");
        automerge::ActorId::from(bytes)
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// A new id, unique across devices (ULID).
            pub fn generate() -> Self {
                $name(ulid::Ulid::new().to_string())
            }
            pub fn parse(s: &str) -> Result<Self> {
                validate_id($field, s)?;
                Ok($name(s.to_owned()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                validate_id($field, &s)?;
                Ok($name(s))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A node of the hierarchy: district, street, community, grid or micro-grid.
    UnitId, "unit id");
id_type!(UserId, "user id");
id_type!(CategoryId, "category id");
id_type!(HouseholdId, "household id");
id_type!(ResidentId, "resident id");
id_type!(VisitId, "visit id");
id_type!(ReportId, "report id");
id_type!(
    /// One entry of a report's workflow log.
    EventId, "event id");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_actor_id_is_32_hexadecimal_digits_kept_lower_case() {
        let a = ActorHex::parse("00112233445566778899AABBCCDDEEFF").unwrap();
        assert_eq!(a.as_str(), "00112233445566778899aabbccddeeff");
        assert_eq!(a.actor().to_hex_string(), a.as_str());
        for bad in [
            "",
            "aa",
            "00112233445566778899aabbccddeef",
            "00112233445566778899aabbccddeeff0",
            "0011223344556677889 aabbccddeeff",
            "g0112233445566778899aabbccddeeff",
        ] {
            let e = ActorHex::parse(bad).unwrap_err();
            assert!(matches!(e, Error::InvalidInput { field: "actor id", .. }), "{bad}: {e}");
        }
    }
}
