//! Registrations written in other LTI 1.3 tools' configuration formats.
//!
//! Two JSON layouts are read, each detected from its shape:
//!
//! - the **issuer map** of Python tools such as mimilti:
//!   `{"kid": "...", "issuers": {"<iss>": {"login_url", "token_url",
//!   "tools": [{"aud", "jwks_endpoint", "deployment_ids"?}]}}}`;
//! - **PyLTI1.3's `config.json`** (`ToolConfJsonFile`): `{"<iss>": entry or
//!   [entry, ...]}` where an entry has `client_id`, `auth_login_url`,
//!   `auth_token_url`, `auth_audience`?, `key_set_url` or `key_set`,
//!   `deployment_ids`, `default`?, `private_key_file`?, `public_key_file`?.
//!
//! Unknown and missing members are errors that name their key path
//! (`issuers["https://lms"].tools[0].jwks_endpoint`). Members that this
//! toolkit keeps elsewhere (the tool's own key files, PyLTI1.3's `default`
//! flag) are accepted and reported in [`ForeignRegistrations::notes`].
//!
//! Both formats may list no deployment ids (mimilti never does). Such a
//! registration gets the caller's `no_deployments` policy; with
//! [`UnknownDeploymentPolicy::Reject`] every launch from it would be refused,
//! so callers usually pick `RecordPendingAndReject` (an administrator
//! approves each deployment) or, to keep mimilti's behaviour of trusting
//! every deployment of a registered client, `AcceptAndRecord`.
//!
//! ```
//! use lti_registry::{UnknownDeploymentPolicy, import::{parse_foreign, ForeignFormat}};
//!
//! let text = r#"{"https://lms.example.edu": {
//!     "client_id": "abc", "auth_login_url": "https://lms.example.edu/auth",
//!     "auth_token_url": "https://lms.example.edu/token",
//!     "key_set_url": "https://lms.example.edu/jwks",
//!     "deployment_ids": ["1"], "private_key_file": "private.key"}}"#;
//! let found = parse_foreign(text, UnknownDeploymentPolicy::Reject).unwrap();
//! assert_eq!(found.format, ForeignFormat::PyLti1p3);
//! assert_eq!(found.registrations[0].client_id, "abc");
//! assert_eq!(found.notes.len(), 1); // private_key_file is not carried over
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::{RegistryError, Result};
use crate::registration::{Deployment, KeySource, PlatformRegistration, UnknownDeploymentPolicy};

/// Which foreign layout a document was read as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForeignFormat {
    /// The Python issuer map (`{"issuers": {...}}`), as mimilti reads it.
    IssuerMap,
    /// PyLTI1.3's `config.json`.
    PyLti1p3,
}

impl ForeignFormat {
    /// A short name for messages.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ForeignFormat::IssuerMap => "issuer map (mimilti)",
            ForeignFormat::PyLti1p3 => "PyLTI1.3 config.json",
        }
    }
}

/// What [`parse_foreign`] read.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ForeignRegistrations {
    /// The detected layout.
    pub format: ForeignFormat,
    /// One registration per (issuer, client id), validated.
    pub registrations: Vec<PlatformRegistration>,
    /// Members read but not carried over, by key path, with the reason.
    pub notes: Vec<String>,
}

/// The issuer map of existing Python tools.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerMap {
    #[serde(default)]
    kid: Option<String>,
    issuers: BTreeMap<String, IssuerEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerEntry {
    login_url: String,
    token_url: String,
    tools: Vec<IssuerTool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerTool {
    aud: String,
    jwks_endpoint: String,
    #[serde(default)]
    deployment_ids: Vec<String>,
}

/// PyLTI1.3's `config.json`: one entry or a list per issuer.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum PyEntries {
    One(Box<PyEntry>),
    Many(Vec<PyEntry>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PyEntry {
    #[serde(default)]
    default: Option<bool>,
    client_id: String,
    auth_login_url: String,
    auth_token_url: String,
    #[serde(default)]
    auth_audience: Option<String>,
    #[serde(default)]
    key_set_url: Option<String>,
    #[serde(default)]
    key_set: Option<serde_json::Value>,
    #[serde(default)]
    private_key_file: Option<String>,
    #[serde(default)]
    public_key_file: Option<String>,
    #[serde(default)]
    deployment_ids: Vec<String>,
}

fn invalid(expected: &'static str, found: String) -> RegistryError {
    RegistryError::InvalidInput {
        field: "registration file",
        expected,
        found,
    }
}

fn from_json<'de, T: Deserialize<'de>>(
    value: &'de serde_json::Value,
    expected: &'static str,
    prefix: &str,
) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let at = match (prefix.is_empty(), path == ".") {
            (true, _) => path,
            (false, true) => prefix.to_owned(),
            (false, false) if path.starts_with('[') => format!("{prefix}{path}"),
            (false, false) => format!("{prefix}.{path}"),
        };
        invalid(expected, format!("at {at}: {}", e.inner()))
    })
}

/// Reads `text` as an issuer map or a PyLTI1.3 `config.json` (detected:
/// a top-level `"issuers"` object means an issuer map). Registrations
/// without deployment ids get `no_deployments`; the others keep
/// [`UnknownDeploymentPolicy::Reject`] for deployments not listed.
///
/// # Errors
/// [`RegistryError::InvalidInput`] naming the key path of the first unknown,
/// missing or malformed member, a duplicate (issuer, client id), or a
/// registration that fails [`PlatformRegistration::validate`].
pub fn parse_foreign(
    text: &str,
    no_deployments: UnknownDeploymentPolicy,
) -> Result<ForeignRegistrations> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| invalid("a JSON document", format!("{e}")))?;
    let Some(object) = value.as_object() else {
        return Err(invalid(
            "a JSON object (an issuer map or a PyLTI1.3 config.json)",
            "another JSON value".to_owned(),
        ));
    };
    let mut out = ForeignRegistrations {
        format: ForeignFormat::PyLti1p3,
        registrations: Vec::new(),
        notes: Vec::new(),
    };
    let with_policy = |mut r: PlatformRegistration, ids: Vec<String>| {
        if ids.is_empty() {
            r = r.with_unknown_deployment_policy(no_deployments);
        }
        for id in ids {
            r.deployments.push(Deployment::active(id));
        }
        r
    };
    if object.contains_key("issuers") {
        out.format = ForeignFormat::IssuerMap;
        let map: IssuerMap = from_json(&value, "the issuer-map layout", "")?;
        for (issuer, entry) in map.issuers {
            for tool in entry.tools {
                let mut r = PlatformRegistration::new(
                    issuer.clone(),
                    tool.aud,
                    entry.login_url.clone(),
                    entry.token_url.clone(),
                    KeySource::JwksUrl {
                        url: tool.jwks_endpoint,
                    },
                );
                if let Some(kid) = &map.kid {
                    r.metadata.insert("tool_kid".to_owned(), kid.clone());
                }
                push(&mut out.registrations, with_policy(r, tool.deployment_ids))?;
            }
        }
        return Ok(out);
    }
    for (issuer, entries) in object {
        let at = format!("{issuer:?}");
        let entries: PyEntries = from_json(entries, "the PyLTI1.3 config.json layout", &at)
            .map_err(|e| match e {
                // The untagged enum hides the member error; read it again as
                // the shape it most likely is, for a precise path.
                RegistryError::InvalidInput { .. } if entries.is_array() => {
                    from_json::<Vec<PyEntry>>(entries, "the PyLTI1.3 config.json layout", &at)
                        .err()
                        .unwrap_or(e)
                }
                RegistryError::InvalidInput { .. } => {
                    from_json::<PyEntry>(entries, "the PyLTI1.3 config.json layout", &at)
                        .err()
                        .unwrap_or(e)
                }
                other => other,
            })?;
        let list = match entries {
            PyEntries::One(e) => vec![(at.clone(), *e)],
            PyEntries::Many(v) => v
                .into_iter()
                .enumerate()
                .map(|(i, e)| (format!("{at}[{i}]"), e))
                .collect(),
        };
        for (at, e) in list {
            let key_source = match (e.key_set_url, e.key_set) {
                (Some(url), _) if !url.is_empty() => KeySource::JwksUrl { url },
                (_, Some(jwks)) if !jwks.is_null() => KeySource::StaticJwks { jwks },
                _ => {
                    return Err(invalid(
                        "key_set_url or key_set",
                        format!("at {at}: neither is set"),
                    ));
                }
            };
            let mut r = PlatformRegistration::new(
                issuer.clone(),
                e.client_id,
                e.auth_login_url,
                e.auth_token_url,
                key_source,
            );
            if let Some(aud) = e.auth_audience.filter(|a| !a.is_empty()) {
                r = r.with_token_audience(aud);
            }
            for (name, set) in [
                ("private_key_file", e.private_key_file.is_some()),
                ("public_key_file", e.public_key_file.is_some()),
            ] {
                if set {
                    out.notes.push(format!(
                        "{at}.{name}: not carried over; the tool signs with its own key store (`lti keys`)"
                    ));
                }
            }
            if e.default == Some(true) {
                out.notes.push(format!(
                    "{at}.default: not carried over; launches name their client id"
                ));
            }
            push(&mut out.registrations, with_policy(r, e.deployment_ids))?;
        }
    }
    Ok(out)
}

fn push(list: &mut Vec<PlatformRegistration>, r: PlatformRegistration) -> Result<()> {
    r.validate()?;
    if list
        .iter()
        .any(|x| x.issuer == r.issuer && x.client_id == r.client_id)
    {
        return Err(invalid(
            "each (issuer, client id) once",
            format!("{:?} / {:?} twice", r.issuer, r.client_id),
        ));
    }
    list.push(r);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIMILTI: &str = r#"{
        "kid": "tool-key-1",
        "issuers": {
            "https://canvas.instructure.com": {
                "login_url": "https://sso.canvaslms.com/api/lti/authorize_redirect",
                "token_url": "https://sso.canvaslms.com/login/oauth2/token",
                "tools": [
                    {"aud": "10000000000123", "jwks_endpoint": "https://sso.canvaslms.com/api/lti/security/jwks"},
                    {"aud": "10000000000456", "jwks_endpoint": "https://sso.canvaslms.com/api/lti/security/jwks",
                     "deployment_ids": ["456:abc"]}
                ]
            }
        }
    }"#;

    #[test]
    fn issuer_map_without_deployments_gets_the_callers_policy() {
        let found = parse_foreign(MIMILTI, UnknownDeploymentPolicy::AcceptAndRecord).unwrap();
        assert_eq!(found.format, ForeignFormat::IssuerMap);
        let [a, b] = found.registrations.as_slice() else {
            panic!("two registrations expected")
        };
        assert_eq!(a.client_id, "10000000000123");
        assert_eq!(
            a.unknown_deployment_policy,
            UnknownDeploymentPolicy::AcceptAndRecord
        );
        assert!(a.deployments.is_empty());
        assert_eq!(a.metadata["tool_kid"], "tool-key-1");
        assert_eq!(b.unknown_deployment_policy, UnknownDeploymentPolicy::Reject);
        assert_eq!(b.deployments[0].deployment_id, "456:abc");
    }

    #[test]
    fn issuer_map_errors_name_the_key_path() {
        let text = MIMILTI.replace(
            "\"jwks_endpoint\": \"https://sso.canvaslms.com/api/lti/security/jwks\"}",
            "\"jwks\": \"x\"}",
        );
        let e = parse_foreign(&text, UnknownDeploymentPolicy::Reject).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("issuers.https://canvas.instructure.com.tools[0]"),
            "{msg}"
        );
        assert!(msg.contains("unknown field `jwks`"), "{msg}");
        assert_eq!(e.code(), "invalid_input");
    }

    const PYLTI: &str = r#"{
        "https://canvas.instructure.com": [{
            "default": true,
            "client_id": "10000000000123",
            "auth_login_url": "https://sso.canvaslms.com/api/lti/authorize_redirect",
            "auth_token_url": "https://sso.canvaslms.com/login/oauth2/token",
            "auth_audience": null,
            "key_set_url": "https://sso.canvaslms.com/api/lti/security/jwks",
            "key_set": null,
            "private_key_file": "private.key",
            "public_key_file": "public.key",
            "deployment_ids": ["123:abcdef"]
        }],
        "https://brightspace.example.edu": {
            "client_id": "d2l-client",
            "auth_login_url": "https://brightspace.example.edu/d2l/lti/authenticate",
            "auth_token_url": "https://auth.brightspace.com/core/connect/token",
            "auth_audience": "https://api.brightspace.com/auth/token",
            "key_set": {"keys": []},
            "deployment_ids": []
        }
    }"#;

    #[test]
    fn pylti1p3_both_shapes_audience_and_static_key_set() {
        let found = parse_foreign(PYLTI, UnknownDeploymentPolicy::RecordPendingAndReject).unwrap();
        assert_eq!(found.format, ForeignFormat::PyLti1p3);
        let d2l = found
            .registrations
            .iter()
            .find(|r| r.client_id == "d2l-client")
            .unwrap();
        assert_eq!(
            d2l.token_audience(),
            "https://api.brightspace.com/auth/token"
        );
        assert!(matches!(d2l.key_source, KeySource::StaticJwks { .. }));
        assert_eq!(
            d2l.unknown_deployment_policy,
            UnknownDeploymentPolicy::RecordPendingAndReject
        );
        let canvas = found
            .registrations
            .iter()
            .find(|r| r.client_id == "10000000000123")
            .unwrap();
        assert_eq!(canvas.deployments.len(), 1);
        assert_eq!(found.notes.len(), 3, "{:?}", found.notes);
        assert!(
            found
                .notes
                .iter()
                .any(|n| n.starts_with("\"https://canvas.instructure.com\"[0].default")),
            "{:?}",
            found.notes
        );
    }

    #[test]
    fn pylti1p3_errors_name_the_key_path() {
        let text = PYLTI.replace("\"client_id\": \"d2l-client\",", "");
        let msg = parse_foreign(&text, UnknownDeploymentPolicy::Reject)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("\"https://brightspace.example.edu\""), "{msg}");
        assert!(msg.contains("missing field `client_id`"), "{msg}");

        let text = PYLTI.replace("\"key_set_url\":", "\"keyset_url\":");
        let msg = parse_foreign(&text, UnknownDeploymentPolicy::Reject)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("\"https://canvas.instructure.com\"[0]"),
            "{msg}"
        );
        assert!(msg.contains("unknown field `keyset_url`"), "{msg}");

        let text = PYLTI.replace("\"key_set\": {\"keys\": []},", "");
        let msg = parse_foreign(&text, UnknownDeploymentPolicy::Reject)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("key_set_url or key_set"), "{msg}");

        let msg = parse_foreign("[1]", UnknownDeploymentPolicy::Reject)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("JSON object"), "{msg}");
    }
}
