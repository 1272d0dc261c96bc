//! HTML escaping for the pages this crate renders.

/// Escapes text for an HTML text node or a double-quoted attribute value.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            '`' => out.push_str("&#x60;"),
            _ => out.push(c),
        }
    }
    out
}

/// A policy for a page whose only script is `script` (inline, allowed by its
/// SHA-256), with inline styles and nothing else loaded; `extra` directives follow.
pub(crate) fn script_policy(script: &str, extra: &str) -> String {
    use base64::Engine as _;
    let hash = ring::digest::digest(&ring::digest::SHA256, script.as_bytes());
    format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'unsafe-inline'; base-uri 'none'{extra}",
        base64::engine::general_purpose::STANDARD.encode(hash.as_ref())
    )
}

/// `response` with `Content-Security-Policy: policy`.
pub(crate) fn with_policy(
    response: crate::request::ToolResponse,
    policy: &str,
) -> crate::request::ToolResponse {
    match http::HeaderValue::from_str(policy) {
        Ok(value) => response.with_header(http::header::CONTENT_SECURITY_POLICY, value),
        Err(_) => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_characters_are_escaped() {
        assert_eq!(
            escape(r#"<a href="x" onclick='y'>&`"#),
            "&lt;a href=&quot;x&quot; onclick=&#x27;y&#x27;&gt;&amp;&#x60;"
        );
        assert_eq!(escape("plain text é"), "plain text é");
    }
}
