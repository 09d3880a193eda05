//! Stable, sortable identifiers. A session id is `ses_` plus a lowercase ULID,
//! so ids sort by creation time and are safe as a git ref component.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! prefixed_id {
    ($name:ident, $prefix:literal, $what:literal) => {
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id, ordered after every id made earlier on this machine.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, ulid::Ulid::new().to_string().to_lowercase()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
                let body = text
                    .strip_prefix($prefix)
                    .ok_or_else(|| format!("`{text}` is not a {} id: it must start with `{}`", $what, $prefix))?;
                if body.len() != 26 || ulid::Ulid::from_string(body).is_err() {
                    return Err(format!("`{text}` is not a valid {} id", $what));
                }
                Ok(Self(text.to_lowercase()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(text: String) -> Result<Self, String> {
                text.parse()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        /// An id compares with its text, and a map keyed by ids is
        /// searched by text (the hash is the text's).
        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(SessionId, "ses_", "session");
prefixed_id!(WorkspaceId, "wsp_", "workspace");
prefixed_id!(NodeId, "nod_", "node");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_round_trip_and_sort() {
        let first = SessionId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = SessionId::generate();
        assert!(first < second);
        assert_eq!(first.as_str().parse::<SessionId>().unwrap(), first);
        assert!(first.as_str().starts_with("ses_"));
    }

    #[test]
    fn malformed_ids_are_refused_with_the_reason() {
        assert_eq!(
            "wsp_01jx".parse::<SessionId>().unwrap_err(),
            "`wsp_01jx` is not a session id: it must start with `ses_`"
        );
        assert!("ses_nope".parse::<SessionId>().is_err());
    }
}
