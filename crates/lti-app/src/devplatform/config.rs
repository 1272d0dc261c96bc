//! The `lti platform` configuration file (TOML).

use std::path::Path;

use serde::Deserialize;

use crate::config::Problem;

/// The default bind address of the dev platform.
pub const DEFAULT_PLATFORM_BIND: &str = "127.0.0.1:4000";

/// The default deployment id of registered tools.
pub const DEFAULT_DEPLOYMENT_ID: &str = "1";

/// The whole `lti platform` configuration file. Unknown keys are errors.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevPlatformConfig {
    /// `[platform]`.
    #[serde(default)]
    pub platform: DevServerConfig,
    /// `[[tools]]`: the LTI 1.3 tools registered with the platform.
    #[serde(default)]
    pub tools: Vec<DevToolConfig>,
    /// `[[lti11_tools]]`: LTI 1.1 tools, launched with a signed form.
    #[serde(default)]
    pub lti11_tools: Vec<DevLti11ToolConfig>,
}

/// One `[[lti11_tools]]` entry: an LTI 1.1 tool and the OAuth credentials the
/// platform signs its launches with.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevLti11ToolConfig {
    /// A display name.
    pub name: String,
    /// The launch URL.
    pub launch_url: String,
    /// The OAuth consumer key.
    pub key: String,
    /// The shared secret.
    pub secret: String,
}

impl std::fmt::Debug for DevLti11ToolConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevLti11ToolConfig")
            .field("name", &self.name)
            .field("launch_url", &self.launch_url)
            .field("key", &self.key)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// `[platform]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevServerConfig {
    /// The address to listen on (default `127.0.0.1:4000`).
    #[serde(default = "default_bind")]
    pub bind: String,
    /// The public base URL (the issuer); default `http://localhost:<port>` so
    /// that a tool served on `127.0.0.1` is cross-site, as in a real LMS.
    #[serde(default)]
    pub public_url: Option<String>,
    /// How long a Dynamic Registration token minted by `/admin/tools` stays
    /// usable, in seconds (default 3600).
    #[serde(default = "default_registration_token_lifetime")]
    pub registration_token_lifetime_secs: u64,
}

impl Default for DevServerConfig {
    fn default() -> Self {
        Self {
            bind: default_bind(),
            public_url: None,
            registration_token_lifetime_secs: default_registration_token_lifetime(),
        }
    }
}

fn default_registration_token_lifetime() -> u64 {
    lti_platform::DEFAULT_REGISTRATION_TOKEN_LIFETIME_SECS
}

fn default_bind() -> String {
    DEFAULT_PLATFORM_BIND.to_owned()
}

fn default_deployment() -> String {
    DEFAULT_DEPLOYMENT_ID.to_owned()
}

/// One `[[tools]]` entry: an LTI 1.3 tool registration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevToolConfig {
    /// A display name.
    pub name: String,
    /// The client id the platform assigns to the tool.
    pub client_id: String,
    /// The tool's OIDC login initiation URL.
    pub login_url: String,
    /// The redirect URIs (exact match).
    pub redirect_uris: Vec<String>,
    /// The default target link URI (also the deep-linking URL).
    pub target_link_uri: String,
    /// The tool's JWKS URL.
    pub jwks_url: String,
    /// The deployment id (default `1`).
    #[serde(default = "default_deployment")]
    pub deployment_id: String,
    /// `[tools.privacy]`: what the platform tells the tool about its users.
    #[serde(default)]
    pub privacy: DevPrivacyConfig,
}

/// `[tools.privacy]`: what a tool learns about users besides its pseudonymous
/// `sub`. Names and email are shared unless turned off; pictures, login names
/// (`$User.username`) and SIS ids only when turned on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevPrivacyConfig {
    /// Names (`name`, `given_name`, `family_name`, `$Person.name.*`); default on.
    #[serde(default = "yes")]
    pub share_name: bool,
    /// Email (`email`, `$Person.email.primary`); default on.
    #[serde(default = "yes")]
    pub share_email: bool,
    /// Pictures (`picture`, `$User.image`); default off.
    #[serde(default)]
    pub share_picture: bool,
    /// Login names (`$User.username`); default off.
    #[serde(default)]
    pub share_username: bool,
    /// SIS ids (`lis.person_sourcedid`, NRPS `lis_person_sourcedid`,
    /// `$Person.sourcedId`); default off.
    #[serde(default)]
    pub share_sourcedid: bool,
}

impl Default for DevPrivacyConfig {
    fn default() -> Self {
        Self {
            share_name: true,
            share_email: true,
            share_picture: false,
            share_username: false,
            share_sourcedid: false,
        }
    }
}

fn yes() -> bool {
    true
}

fn problem(path: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        message: message.into(),
    }
}

impl DevPlatformConfig {
    /// Parses and checks a configuration.
    ///
    /// # Errors
    /// Every [`Problem`] found: syntax, unknown keys, types, bad URLs, duplicate
    /// client ids.
    pub fn parse(text: &str) -> Result<Self, Vec<Problem>> {
        let config: Self = toml::from_str(text).map_err(|e| {
            vec![problem(
                "",
                format!(
                    "expected a valid platform configuration, found: {}",
                    e.message()
                ),
            )]
        })?;
        let problems = config.validate();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }

    /// Reads and parses a configuration file.
    ///
    /// # Errors
    /// An unreadable file is one problem; otherwise as [`DevPlatformConfig::parse`].
    pub fn load(path: &Path) -> Result<Self, Vec<Problem>> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text),
            Err(e) => Err(vec![problem(
                "",
                format!(
                    "expected a readable platform configuration at {}, found: {e}",
                    path.display()
                ),
            )]),
        }
    }

    /// The semantic checks.
    pub fn validate(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.platform.bind.parse::<std::net::SocketAddr>().is_err() {
            out.push(problem(
                "platform.bind",
                format!(
                    "expected an IP address and port such as 127.0.0.1:4000, found {:?}",
                    self.platform.bind
                ),
            ));
        }
        if let Some(url) = &self.platform.public_url
            && let Err(m) = check_url(url)
        {
            out.push(problem("platform.public_url", m));
        }
        if self.platform.registration_token_lifetime_secs == 0 {
            out.push(problem(
                "platform.registration_token_lifetime_secs",
                "expected a positive number of seconds, found 0",
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, t) in self.tools.iter().enumerate() {
            let at = |k: &str| format!("tools[{i}].{k}");
            for (k, v) in [
                ("name", &t.name),
                ("client_id", &t.client_id),
                ("deployment_id", &t.deployment_id),
            ] {
                if v.trim().is_empty() {
                    out.push(problem(
                        at(k),
                        "expected a non-empty string, found an empty one",
                    ));
                }
            }
            if !t.client_id.is_empty() && !seen.insert(t.client_id.clone()) {
                out.push(problem(
                    at("client_id"),
                    format!("expected a unique client id, found {:?} twice", t.client_id),
                ));
            }
            for (k, v) in [
                ("login_url", &t.login_url),
                ("target_link_uri", &t.target_link_uri),
                ("jwks_url", &t.jwks_url),
            ] {
                if let Err(m) = check_url(v) {
                    out.push(problem(at(k), m));
                }
            }
            if t.redirect_uris.is_empty() {
                out.push(problem(
                    at("redirect_uris"),
                    "expected at least one redirect URI, found none",
                ));
            }
            for (j, u) in t.redirect_uris.iter().enumerate() {
                if let Err(m) = check_url(u) {
                    out.push(problem(format!("tools[{i}].redirect_uris[{j}]"), m));
                }
            }
        }
        for (i, t) in self.lti11_tools.iter().enumerate() {
            let at = |k: &str| format!("lti11_tools[{i}].{k}");
            for (k, v) in [("name", &t.name), ("key", &t.key), ("secret", &t.secret)] {
                if v.trim().is_empty() {
                    out.push(problem(
                        at(k),
                        "expected a non-empty string, found an empty one",
                    ));
                }
            }
            if let Err(m) = check_url(&t.launch_url) {
                out.push(problem(at("launch_url"), m));
            }
        }
        out
    }
}

/// An `http(s)` URL with a host; plain `http` only for loopback hosts.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    let uri = url.parse::<http::Uri>().ok();
    let host = uri.as_ref().and_then(http::Uri::host);
    match (uri.as_ref().and_then(http::Uri::scheme_str), host) {
        (Some("https"), Some(_)) => Ok(()),
        (Some("http"), Some(h)) if lti_http::is_loopback_host(h) => Ok(()),
        (Some("http"), Some(_)) => Err(format!(
            "expected an https URL (plain http only for loopback hosts), found {url:?}"
        )),
        _ => Err(format!("expected an absolute http(s) URL, found {url:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[platform]
bind = "127.0.0.1:4100"

[[tools]]
name = "Inspector"
client_id = "tool-1"
login_url = "http://127.0.0.1:3000/lti/login"
redirect_uris = ["http://127.0.0.1:3000/lti/launch"]
target_link_uri = "http://127.0.0.1:3000/lti/app"
jwks_url = "http://127.0.0.1:3000/.well-known/jwks.json"
"#;

    #[test]
    fn parses_a_tool_with_the_default_deployment() {
        let c = DevPlatformConfig::parse(GOOD).unwrap();
        assert_eq!(c.platform.bind, "127.0.0.1:4100");
        assert_eq!(c.tools.len(), 1);
        assert_eq!(c.tools[0].deployment_id, "1");
        assert_eq!(c.tools[0].privacy, DevPrivacyConfig::default());
    }

    #[test]
    fn privacy_settings_default_to_names_and_email_only_and_can_be_changed() {
        let d = DevPrivacyConfig::default();
        assert!(d.share_name && d.share_email);
        assert!(!d.share_picture && !d.share_username && !d.share_sourcedid);
        let c = DevPlatformConfig::parse(&format!(
            "{GOOD}[tools.privacy]\nshare_email = false\nshare_username = true\nshare_sourcedid = true\n"
        ))
        .unwrap();
        let p = &c.tools[0].privacy;
        assert!(p.share_name && !p.share_email && !p.share_picture);
        assert!(p.share_username && p.share_sourcedid);
        let err = DevPlatformConfig::parse(&format!("{GOOD}[tools.privacy]\nshare_ids = true\n"))
            .unwrap_err();
        assert!(
            err[0].message.contains("unknown field `share_ids`"),
            "{}",
            err[0]
        );
    }

    #[test]
    fn the_example_fixture_parses() {
        let c = DevPlatformConfig::parse(include_str!(
            "../../../../tests/fixtures/lti-app-platform/platform.toml"
        ))
        .unwrap();
        assert_eq!(c.tools[0].client_id, "dev-tool");
        assert_eq!(
            c.tools[0].redirect_uris,
            ["http://127.0.0.1:3000/lti/launch"]
        );
    }

    #[test]
    fn lti11_tools_are_checked() {
        let err = DevPlatformConfig::parse(
            "[[lti11_tools]]\nname = \"Old\"\nlaunch_url = \"ftp://x\"\nkey = \"k\"\nsecret = \"\"\n",
        )
        .unwrap_err();
        let paths: Vec<&str> = err.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            ["lti11_tools[0].secret", "lti11_tools[0].launch_url"]
        );
        let c = DevPlatformConfig::parse(
            "[[lti11_tools]]\nname = \"Old\"\nlaunch_url = \"https://tool.example/launch\"\nkey = \"k\"\nsecret = \"s3cret\"\n",
        )
        .unwrap();
        assert!(
            !format!("{:?}", c.lti11_tools[0]).contains("s3cret"),
            "secret redacted"
        );
    }

    #[test]
    fn empty_file_is_the_default() {
        let c = DevPlatformConfig::parse("").unwrap();
        assert_eq!(c.platform.bind, DEFAULT_PLATFORM_BIND);
        assert!(c.tools.is_empty());
    }

    #[test]
    fn unknown_key_is_refused() {
        let err = DevPlatformConfig::parse("[platform]\nport = 3\n").unwrap_err();
        assert_eq!(err.len(), 1);
        assert!(
            err[0].message.contains("unknown field `port`"),
            "{}",
            err[0]
        );
    }

    #[test]
    fn bad_values_are_each_reported() {
        let text = GOOD
            .replace("127.0.0.1:4100", "nowhere")
            .replace(
                "http://127.0.0.1:3000/lti/login",
                "http://example.com/login",
            )
            .replace("[\"http://127.0.0.1:3000/lti/launch\"]", "[]");
        let text = format!(
            "{text}\n{}",
            GOOD.split("[[tools]]")
                .nth(1)
                .map(|t| format!("[[tools]]{t}"))
                .unwrap()
        );
        let err = DevPlatformConfig::parse(&text).unwrap_err();
        let paths: Vec<&str> = err.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "platform.bind",
                "tools[0].login_url",
                "tools[0].redirect_uris",
                "tools[1].client_id"
            ],
            "{err:?}"
        );
        assert!(err[1].message.contains("plain http only for loopback"));
        assert!(err[3].message.contains("unique client id"));
    }
}
