//! Provider privacy and account linking: what a verified launch keeps of the
//! user's personal data, and the embedding application's hook that maps the
//! launch's user to a local account (or refuses the launch).

use async_trait::async_trait;
use serde_json::Value;

use crate::launch::VerifiedIdToken;

/// The id_token claims that carry the user's name, email and picture (OIDC
/// standard claims, LTI 1.3 core §5.3.6).
pub const PERSONAL_DATA_CLAIMS: [&str; 6] = [
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "email",
    "picture",
];

/// Whether saved launch data keeps the user's name and email. The default,
/// [`PersonalData::Store`], keeps the id_token as the platform sent it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PersonalData {
    /// Keep every claim (the default).
    #[default]
    Store,
    /// Remove [`PERSONAL_DATA_CLAIMS`] from the launch data before it is
    /// saved: a launch read back with `Tool::load_launch` has no name or
    /// email. The launch request's own `Launch` and the account-linking hook
    /// still see them, except for a launch confirmed through platform
    /// storage, whose pending record was already saved without them.
    Drop,
}

impl PersonalData {
    /// Removes the personal-data claims from a JSON payload (text) when
    /// dropping; returns it unchanged otherwise or when it is not an object.
    pub(crate) fn apply(self, payload_json: &str) -> String {
        if self == Self::Store {
            return payload_json.to_owned();
        }
        match serde_json::from_str::<Value>(payload_json) {
            Ok(Value::Object(mut map)) => {
                for claim in PERSONAL_DATA_CLAIMS {
                    map.remove(claim);
                }
                Value::Object(map).to_string()
            }
            _ => payload_json.to_owned(),
        }
    }
}

/// Why an [`AccountLinker`] refused a launch: shown to the user (so no
/// secrets), reported as `account_refused` (403).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRefusal {
    /// A short, user-presentable reason.
    pub reason: String,
}

impl AccountRefusal {
    /// A refusal with `reason`.
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

/// The embedding application's account-linking hook, called once per launch
/// after every check passed and before the launch is saved (Open edX's
/// "require a linked user account" and "authenticate the local user" on
/// launch). Return the local account id to link the launch to (read back as
/// `Launch::account`), or refuse the launch.
#[async_trait]
pub trait AccountLinker: Send + Sync + 'static {
    /// Maps the launch's user (`launch.sub()`, `launch.registration().issuer`,
    /// names and email when the platform sent them) to a local account id.
    ///
    /// # Errors
    /// An [`AccountRefusal`] refuses the launch with `account_refused` (403).
    async fn link(&self, launch: &VerifiedIdToken) -> Result<String, AccountRefusal>;
}
