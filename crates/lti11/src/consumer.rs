//! The tool consumer side: an LMS launching an LTI 1.1 tool.
//!
//! Credentials come as passports (`id:key:secret`), custom parameters as
//! `name=value` lines; a [`LaunchRequest`] is signed for a launch URL into a
//! [`SignedLaunch`], rendered as an auto-submitting HTML form. User ids are
//! pseudonymous per (user, tool) by default ([`UserIdPolicy`]).

use std::fmt;
use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use lti_message::lti11::custom_parameter_name;
use ring::hmac;

use crate::error::{Error, Result, snippet};
use crate::oauth::{self, Credentials, OAuthParams, SignatureMethod};

/// Tool credentials given as `id:key:secret`: a local tool id, the OAuth
/// consumer key and the shared secret (which may itself contain `:`).
#[derive(Clone)]
pub struct Passport {
    /// The local tool id (what pseudonymous user ids are derived for).
    pub tool_id: String,
    /// Key and secret.
    pub credentials: Credentials,
}

impl fmt::Debug for Passport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Passport")
            .field("tool_id", &self.tool_id)
            .field("key", &self.credentials.key)
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl Passport {
    /// Parses `id:key:secret`. The id and key must be non-empty printable
    /// ASCII without `:` or spaces; the secret is everything after the second
    /// `:` and must be non-empty. Errors never include the secret.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        let invalid = |found: String| Error::InvalidPassport { found };
        let mut parts = text.splitn(3, ':');
        let id = parts.next().unwrap_or_default();
        let key = parts
            .next()
            .ok_or_else(|| invalid("no `:` after the tool id".to_owned()))?;
        let secret = parts
            .next()
            .ok_or_else(|| invalid("only `id:key`, no secret".to_owned()))?;
        let field_ok = |s: &str| !s.is_empty() && s.bytes().all(|b| (0x21..0x7f).contains(&b));
        if !field_ok(id) {
            return Err(invalid(format!(
                "tool id `{}` (must be non-empty visible ASCII)",
                snippet(id)
            )));
        }
        if !field_ok(key) {
            return Err(invalid(format!(
                "consumer key `{}` (must be non-empty visible ASCII)",
                snippet(key)
            )));
        }
        oauth::check_consumer_key(key)
            .map_err(|_| invalid(format!("consumer key of {} characters", key.len())))?;
        if secret.is_empty() {
            return Err(invalid("an empty secret".to_owned()));
        }
        if secret.chars().any(char::is_control) {
            return Err(invalid("a control character in the secret".to_owned()));
        }
        Ok(Passport {
            tool_id: id.to_owned(),
            credentials: Credentials::new(key, secret),
        })
    }
}

/// Parses custom parameters given as `name=value` lines into
/// `(custom_<name>, value)` pairs, names normalised per the spec (lower-case,
/// every character outside `[a-z0-9]` becomes `_`). Blank lines and lines
/// starting with `#` are skipped; values are kept verbatim (only the line
/// ending is removed). A missing `=`, an empty name, or two lines normalising
/// to the same name are errors naming the line.
pub fn parse_custom_parameters(text: &str) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut lines_of: Vec<usize> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let (name, value) = line
            .split_once('=')
            .ok_or_else(|| Error::InvalidCustomParameter {
                line: line_no,
                found: format!("`{}` without `=`", snippet(line)),
            })?;
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::InvalidCustomParameter {
                line: line_no,
                found: "an empty name".to_owned(),
            });
        }
        let normalised = custom_parameter_name(name.strip_prefix("custom_").unwrap_or(name));
        if let Some(pos) = out.iter().position(|(n, _)| *n == normalised) {
            return Err(Error::InvalidCustomParameter {
                line: line_no,
                found: format!("`{normalised}` again (first on line {})", lines_of[pos]),
            });
        }
        out.push((normalised, value.to_owned()));
        lines_of.push(line_no);
    }
    Ok(out)
}

/// How the consumer identifies users to a tool.
#[derive(Clone)]
pub enum UserIdPolicy {
    /// A stable pseudonym per (user, tool): `HMAC-SHA256(key, user ‖ tool)`,
    /// base64url. Tools cannot correlate a learner across tools. The default.
    Pseudonymous(PseudonymKey),
    /// Send the LMS's real user id to every tool. An explicit opt-in.
    AllowRealUserIds,
}

impl fmt::Debug for UserIdPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserIdPolicy::Pseudonymous(_) => f.write_str("Pseudonymous([redacted])"),
            UserIdPolicy::AllowRealUserIds => f.write_str("AllowRealUserIds"),
        }
    }
}

impl UserIdPolicy {
    /// The `user_id` to send to `tool_id` for the LMS user `user`.
    pub fn user_id_for(&self, user: &str, tool_id: &str) -> String {
        match self {
            UserIdPolicy::Pseudonymous(k) => k.pseudonym(user, tool_id),
            UserIdPolicy::AllowRealUserIds => user.to_owned(),
        }
    }
}

/// The key behind pseudonymous user ids. Keep it stable and secret: changing
/// it changes every pseudonym.
#[derive(Clone)]
pub struct PseudonymKey(hmac::Key);

impl PseudonymKey {
    /// A key from at least 32 bytes of secret material.
    pub fn new(secret: &[u8]) -> Result<Self> {
        if secret.len() < 32 {
            return Err(Error::WeakPseudonymKey {
                found: secret.len(),
            });
        }
        Ok(PseudonymKey(hmac::Key::new(hmac::HMAC_SHA256, secret)))
    }

    /// The pseudonym of `user` for `tool_id` (43 base64url characters).
    pub fn pseudonym(&self, user: &str, tool_id: &str) -> String {
        let mut msg = Vec::with_capacity(user.len() + tool_id.len() + 8);
        msg.extend_from_slice(&(user.len() as u64).to_be_bytes());
        msg.extend_from_slice(user.as_bytes());
        msg.extend_from_slice(tool_id.as_bytes());
        B64URL.encode(hmac::sign(&self.0, &msg).as_ref())
    }
}

/// Where the launch form is submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormTarget {
    /// The current window (`_self`).
    SameWindow,
    /// A new window or tab (`_blank`).
    NewWindow,
    /// An iframe rendered next to the form, with this name.
    Iframe {
        /// The iframe's `name` (and `id`).
        name: String,
        /// CSS width, e.g. `100%`.
        width: String,
        /// CSS height, e.g. `600px`.
        height: String,
    },
}

impl FormTarget {
    /// The `launch_presentation_document_target` value matching this target.
    pub fn document_target(&self) -> &'static str {
        match self {
            FormTarget::SameWindow => "frame",
            FormTarget::NewWindow => "window",
            FormTarget::Iframe { .. } => "iframe",
        }
    }
}

/// An unsigned launch: the LTI parameters to send to one tool.
#[derive(Debug, Clone)]
pub struct LaunchRequest {
    params: Vec<(String, String)>,
}

impl LaunchRequest {
    /// A `basic-lti-launch-request` (`LTI-1p0`) for a resource link.
    pub fn new(resource_link_id: impl Into<String>) -> Self {
        LaunchRequest {
            params: vec![
                ("lti_message_type".into(), "basic-lti-launch-request".into()),
                ("lti_version".into(), "LTI-1p0".into()),
                ("resource_link_id".into(), resource_link_id.into()),
            ],
        }
    }

    /// Sets a parameter (replacing an earlier value of the same name).
    /// `oauth_*` names are ignored: the signer owns them.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        if name.starts_with("oauth_") {
            return self;
        }
        let value = value.into();
        match self.params.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.params.push((name, value)),
        }
        self
    }

    /// Sets `user_id` for the LMS user `user`, as the policy says.
    pub fn user(self, policy: &UserIdPolicy, user: &str, tool_id: &str) -> Self {
        let id = policy.user_id_for(user, tool_id);
        self.param("user_id", id)
    }

    /// Sets `roles` (comma-separated).
    pub fn roles(self, roles: &[&str]) -> Self {
        self.param("roles", roles.join(","))
    }

    /// Sets `context_id` and `context_title`.
    pub fn context(self, id: impl Into<String>, title: impl Into<String>) -> Self {
        self.param("context_id", id).param("context_title", title)
    }

    /// Asks the tool to report grades to `service_url` for `sourced_id`.
    pub fn outcomes(self, service_url: impl Into<String>, sourced_id: impl Into<String>) -> Self {
        self.param("lis_outcome_service_url", service_url)
            .param("lis_result_sourcedid", sourced_id)
    }

    /// Adds custom parameters as produced by [`parse_custom_parameters`].
    pub fn custom(mut self, custom: &[(String, String)]) -> Self {
        for (k, v) in custom {
            self = self.param(k.clone(), v.clone());
        }
        self
    }

    /// The parameters set so far.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// Signs the launch for `url` (which may carry a query string) with
    /// HMAC-SHA1, a fresh nonce and `timestamp` (Unix seconds).
    pub fn sign(
        &self,
        url: &str,
        credentials: &Credentials,
        timestamp: u64,
    ) -> Result<SignedLaunch> {
        self.sign_fresh(url, credentials, timestamp, SignatureMethod::HmacSha1)
    }

    fn sign_fresh(
        &self,
        url: &str,
        credentials: &Credentials,
        timestamp: u64,
        method: SignatureMethod,
    ) -> Result<SignedLaunch> {
        let mut oauth = OAuthParams::new(timestamp);
        oauth.method = method;
        oauth.callback = Some("about:blank".into());
        self.sign_with(url, credentials, &oauth)
    }

    /// Signs with explicit OAuth parameters (method, nonce, timestamp).
    pub fn sign_with(
        &self,
        url: &str,
        credentials: &Credentials,
        oauth: &OAuthParams,
    ) -> Result<SignedLaunch> {
        let protocol = oauth::sign_params("POST", url, &self.params, credentials, oauth)?;
        let mut fields = self.params.clone();
        fields.extend(protocol);
        Ok(SignedLaunch {
            url: url.to_owned(),
            fields,
        })
    }

    /// Signs with HMAC-SHA256 instead of HMAC-SHA1.
    pub fn sign_sha256(
        &self,
        url: &str,
        credentials: &Credentials,
        timestamp: u64,
    ) -> Result<SignedLaunch> {
        self.sign_fresh(url, credentials, timestamp, SignatureMethod::HmacSha256)
    }
}

/// A signed launch: the URL and every form field (LTI + OAuth).
#[derive(Debug, Clone)]
pub struct SignedLaunch {
    url: String,
    fields: Vec<(String, String)>,
}

impl SignedLaunch {
    /// The launch URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every form field, LTI parameters first, then `oauth_*`.
    pub fn fields(&self) -> &[(String, String)] {
        &self.fields
    }

    /// The form body (`application/x-www-form-urlencoded`).
    pub fn form_body(&self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.fields.iter())
            .finish()
    }

    /// An auto-submitting HTML page posting the launch to the tool.
    ///
    /// Every attribute value is HTML-escaped. A visible submit button covers
    /// browsers without JavaScript. `script_nonce` is put on the inline
    /// script for pages served with a nonce-based Content-Security-Policy.
    pub fn to_html(&self, target: &FormTarget, script_nonce: Option<&str>) -> String {
        let mut h = String::with_capacity(
            512 + self
                .fields
                .iter()
                .map(|(k, v)| k.len() + v.len() + 48)
                .sum::<usize>(),
        );
        h.push_str("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Launching tool</title></head><body>\n");
        let target_name = match target {
            FormTarget::SameWindow => "_self".to_owned(),
            FormTarget::NewWindow => "_blank".to_owned(),
            FormTarget::Iframe { name, .. } => name.clone(),
        };
        let _ = write!(
            h,
            "<form id=\"lti11-launch\" action=\"{}\" method=\"post\" enctype=\"application/x-www-form-urlencoded\" target=\"{}\">",
            html_escape(&self.url),
            html_escape(&target_name)
        );
        h.push('\n');
        for (k, v) in &self.fields {
            let _ = writeln!(
                h,
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                html_escape(k),
                html_escape(v)
            );
        }
        h.push_str("<button type=\"submit\">Continue to the tool</button>\n</form>\n");
        if let FormTarget::Iframe {
            name,
            width,
            height,
        } = target
        {
            let _ = writeln!(
                h,
                "<iframe name=\"{0}\" id=\"{0}\" title=\"Tool\" style=\"width:{1};height:{2};border:0\" allow=\"fullscreen\"></iframe>",
                html_escape(name),
                html_escape(width),
                html_escape(height)
            );
        }
        match script_nonce {
            Some(n) => {
                let _ = write!(h, "<script nonce=\"{}\">", html_escape(n));
            }
            None => h.push_str("<script>"),
        }
        h.push_str(
            "document.getElementById(\"lti11-launch\").submit();</script>\n</body></html>\n",
        );
        h
    }
}

/// Escapes text for an HTML attribute value or text node.
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passports_parse_with_colons_in_the_secret() {
        let p = Passport::parse("quiz:key-1:s3:cr:et").unwrap();
        assert_eq!(p.tool_id, "quiz");
        assert_eq!(p.credentials.key, "key-1");
        assert_eq!(p.credentials.secret.expose(), "s3:cr:et");
        assert!(!format!("{p:?}").contains("s3:cr:et"));
    }

    #[test]
    fn bad_passports_are_rejected_without_leaking_the_secret() {
        for bad in [
            "",
            "quiz",
            "quiz:key",
            "quiz:key:",
            ":key:secret",
            "quiz::secret",
            "qu iz:key:secret",
        ] {
            let e = Passport::parse(bad).unwrap_err();
            assert_eq!(e.code(), "invalid_passport", "{bad}");
        }
        let e = Passport::parse("quiz:key:zq\u{7}xv").unwrap_err();
        assert_eq!(e.code(), "invalid_passport");
        assert!(!e.to_string().contains("zq"));
    }

    #[test]
    fn custom_parameters_are_normalised() {
        let parsed = parse_custom_parameters(
            "# comment\nChapter Name=3/4\n\nreview.mode = on=off\r\ncustom_X=1\n",
        )
        .unwrap();
        assert_eq!(
            parsed,
            vec![
                ("custom_chapter_name".to_owned(), "3/4".to_owned()),
                ("custom_review_mode".to_owned(), " on=off".to_owned()),
                ("custom_x".to_owned(), "1".to_owned()),
            ]
        );
    }

    #[test]
    fn bad_custom_parameter_lines_name_the_line() {
        match parse_custom_parameters("a=1\nno equals sign").unwrap_err() {
            Error::InvalidCustomParameter { line, .. } => assert_eq!(line, 2),
            e => panic!("unexpected {e:?}"),
        }
        match parse_custom_parameters("=1").unwrap_err() {
            Error::InvalidCustomParameter { line, .. } => assert_eq!(line, 1),
            e => panic!("unexpected {e:?}"),
        }
        match parse_custom_parameters("A-b=1\na_B=2").unwrap_err() {
            Error::InvalidCustomParameter { line, found } => {
                assert_eq!(line, 2);
                assert!(found.contains("line 1"));
            }
            e => panic!("unexpected {e:?}"),
        }
    }

    #[test]
    fn pseudonyms_are_stable_per_tool_and_differ_across_tools() {
        let key = PseudonymKey::new(&[7u8; 32]).unwrap();
        let policy = UserIdPolicy::Pseudonymous(key);
        let a1 = policy.user_id_for("alice", "tool-a");
        assert_eq!(a1, policy.user_id_for("alice", "tool-a"));
        assert_ne!(a1, policy.user_id_for("alice", "tool-b"));
        assert_ne!(a1, policy.user_id_for("bob", "tool-a"));
        assert_ne!(a1, "alice");
        assert_eq!(
            UserIdPolicy::AllowRealUserIds.user_id_for("alice", "tool-a"),
            "alice"
        );
        assert_eq!(
            PseudonymKey::new(&[1u8; 8]).err().unwrap().code(),
            "weak_pseudonym_key"
        );
    }

    #[test]
    fn html_form_escapes_everything_and_has_a_button() {
        let creds = Credentials::new("k", "s");
        let launch = LaunchRequest::new("rl\"><script>x</script>")
            .param("custom_q", "a&b<c>'d\"")
            .sign(
                "https://tool.example/launch?x=1&y=\"2\"",
                &creds,
                1_700_000_000,
            )
            .unwrap();
        let target = FormTarget::Iframe {
            name: "tool\"frame".into(),
            width: "100%".into(),
            height: "600px".into(),
        };
        let html = launch.to_html(&target, Some("n0nce"));
        assert!(!html.contains("<script>x"));
        assert!(html.contains("rl&quot;&gt;&lt;script&gt;x&lt;/script&gt;"));
        assert!(html.contains("a&amp;b&lt;c&gt;&#39;d&quot;"));
        assert!(html.contains("action=\"https://tool.example/launch?x=1&amp;y=&quot;2&quot;\""));
        assert!(html.contains("<button type=\"submit\">"));
        assert!(html.contains("target=\"tool&quot;frame\""));
        assert!(html.contains("<iframe name=\"tool&quot;frame\""));
        assert!(html.contains("<script nonce=\"n0nce\">"));
        assert_eq!(
            html.matches("<input type=\"hidden\"").count(),
            launch.fields().len()
        );
    }
}
