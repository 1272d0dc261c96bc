//! The state cookie: binds a login's `state` to the browser that started it.
//!
//! One cookie per login, so several launches in several iframes of one page do not
//! overwrite each other. Its name is the prefix followed by a digest of the state;
//! its value is `base64url(HMAC-SHA256(secret, "lti-tool state cookie v1\0" || state))`,
//! so the cookie cannot be forged for another state without the tool's secret, and
//! the state itself never needs to be stored in the browser. Comparison is constant
//! time (`subtle`).

use ring::digest::{SHA256, digest};
use ring::hmac;
use subtle::ConstantTimeEq;

use crate::error::ToolError;
use crate::request::ToolRequest;

/// Name prefix when the cookie is `Secure` (`__Host-` forbids `Domain` and requires `Path=/`).
pub const SECURE_COOKIE_PREFIX: &str = "__Host-lti_state_";
/// Name prefix of the development (insecure, non-`Secure`) cookie.
pub const INSECURE_COOKIE_PREFIX: &str = "lti_state_";

const CONTEXT: &[u8] = b"lti-tool state cookie v1\0";

pub(crate) struct StateCookies {
    key: hmac::Key,
    secure: bool,
    partitioned: bool,
    max_age: i64,
}

impl StateCookies {
    pub(crate) fn new(secret: &[u8], secure: bool, partitioned: bool, max_age: i64) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            secure,
            partitioned,
            max_age,
        }
    }

    fn prefix(&self) -> &'static str {
        if self.secure {
            SECURE_COOKIE_PREFIX
        } else {
            INSECURE_COOKIE_PREFIX
        }
    }

    /// The cookie name for `state`: the prefix and 16 base64url characters of SHA-256(state).
    pub(crate) fn name(&self, state: &str) -> String {
        let d = digest(&SHA256, state.as_bytes());
        let mut name = self.prefix().to_owned();
        name.push_str(&lti_jose::b64::encode(&d.as_ref()[..12]));
        name
    }

    fn tag(&self, state: &str) -> hmac::Tag {
        self.mac(CONTEXT, state)
    }

    /// `HMAC-SHA256(secret, context || value)`: the state cookie's tag with its
    /// own context, or another value the tool binds to its secret under another
    /// NUL-terminated context (the web layer's CSRF token).
    pub(crate) fn mac(&self, context: &[u8], value: &str) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(context);
        ctx.update(value.as_bytes());
        ctx.sign()
    }

    fn attributes(&self, max_age: i64) -> String {
        let mut a = format!("Max-Age={max_age}; Path=/; HttpOnly");
        if self.secure {
            a.push_str("; Secure; SameSite=None");
            if self.partitioned {
                a.push_str("; Partitioned");
            }
        } else {
            a.push_str("; SameSite=Lax");
        }
        a
    }

    /// The `Set-Cookie` value that binds `state` to this browser.
    pub(crate) fn set_cookie(&self, state: &str) -> String {
        format!(
            "{}={}; {}",
            self.name(state),
            lti_jose::b64::encode(self.tag(state).as_ref()),
            self.attributes(self.max_age)
        )
    }

    /// The `Set-Cookie` value that deletes the cookie called `name` ([`StateCookies::name`]
    /// of its state, as [`StateCookies::check`] returns it).
    pub(crate) fn clear_cookie_named(&self, name: &str) -> String {
        format!("{name}=; {}", self.attributes(0))
    }

    /// Checks that the request carries the cookie bound to `state`.
    ///
    /// No state cookie at all: [`ToolError::StateCookieMissing`] (typically the
    /// browser blocked third-party cookies). State cookies, but none bound to this
    /// state: [`ToolError::StateMismatch`]. On success, the cookie's name (for
    /// clearing it).
    pub(crate) fn check(&self, req: &ToolRequest, state: &str) -> Result<String, ToolError> {
        let name = self.name(state);
        let prefix = self.prefix();
        let mut seen = 0usize;
        let mut bound = false;
        for (n, v) in req.cookies() {
            if !n.starts_with(prefix) {
                continue;
            }
            seen += 1;
            if n == name
                && let Ok(tag) = lti_jose::b64::decode(v)
            {
                bound |= bool::from(self.tag(state).as_ref().ct_eq(&tag));
            }
        }
        match (seen, bound) {
            (_, true) => Ok(name),
            (0, false) => Err(ToolError::StateCookieMissing {
                cookie_only: crate::error::CookieOnly::CookieRoute,
            }),
            (found, false) => Err(ToolError::StateMismatch { found }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::{HeaderMap, HeaderValue, Method};

    fn request(cookie: Option<&str>) -> ToolRequest {
        let mut h = HeaderMap::new();
        if let Some(c) = cookie {
            h.insert(http::header::COOKIE, HeaderValue::from_str(c).unwrap());
        }
        ToolRequest::new(
            Method::POST,
            "/lti/launch".parse().unwrap(),
            h,
            Bytes::new(),
        )
    }

    fn pair(set_cookie: &str) -> String {
        set_cookie.split(';').next().unwrap().to_owned()
    }

    #[test]
    fn the_cookie_for_a_state_verifies_and_carries_the_secure_attributes() {
        let c = StateCookies::new(&[7u8; 32], true, true, 600);
        let set = c.set_cookie("state-1");
        assert!(set.starts_with("__Host-lti_state_"));
        for attr in [
            "Max-Age=600",
            "Path=/",
            "HttpOnly",
            "Secure",
            "SameSite=None",
            "Partitioned",
        ] {
            assert!(set.contains(attr), "{set}");
        }
        assert!(!set.contains("state-1"));
        c.check(
            &request(Some(&format!("other=1; {}", pair(&set)))),
            "state-1",
        )
        .unwrap();
        // Deleting a partitioned cookie needs the same name and Partitioned again.
        let cleared = c.clear_cookie_named(&c.name("state-1"));
        assert_eq!(pair(&cleared), format!("{}=", c.name("state-1")));
        assert!(cleared.contains("Max-Age=0") && cleared.contains("; Partitioned"));
    }

    #[test]
    fn the_insecure_cookie_is_lax_and_never_partitioned() {
        let c = StateCookies::new(&[7u8; 32], false, true, 600);
        let set = c.set_cookie("s");
        assert!(set.starts_with(INSECURE_COOKIE_PREFIX), "{set}");
        assert!(set.ends_with("; SameSite=Lax"), "{set}");
        assert!(
            !set.contains("Secure") && !set.contains("Partitioned"),
            "{set}"
        );
        c.check(&request(Some(&pair(&set))), "s").unwrap();
        // A Secure-prefixed cookie does not count for the insecure tool.
        let secure = pair(&StateCookies::new(&[7u8; 32], true, true, 600).set_cookie("s"));
        let err = c.check(&request(Some(&secure)), "s").unwrap_err();
        assert_eq!(err.code(), "state_cookie_missing");
    }

    #[test]
    fn missing_wrong_and_forged_cookies_are_distinguished() {
        let c = StateCookies::new(&[7u8; 32], true, false, 600);
        let err = c.check(&request(None), "s").unwrap_err();
        assert_eq!(err.code(), "state_cookie_missing");
        let other = pair(&c.set_cookie("another-state"));
        let err = c.check(&request(Some(&other)), "s").unwrap_err();
        assert_eq!(err.code(), "state_mismatch");
        // Right name, value made with another secret.
        let forged = pair(&StateCookies::new(&[8u8; 32], true, false, 600).set_cookie("s"));
        let err = c.check(&request(Some(&forged)), "s").unwrap_err();
        assert_eq!(err.code(), "state_mismatch");
        let cleared = c.clear_cookie_named(&c.name("s"));
        assert!(cleared.contains("Max-Age=0"));
    }
}
