//! `lti consumers import FILE`: LTI 1.1 consumers from a plain `key secret` file.

use std::path::Path;

use lti_registry::{SecretString, Store};

use crate::error::AppError;

/// One consumer read from an import file.
#[derive(Debug, Clone)]
pub struct ImportedConsumer {
    /// The consumer key.
    pub key: String,
    /// The shared secret.
    pub secret: SecretString,
}

/// Parses an import file: one `key secret` pair per line, separated by
/// whitespace; blank lines and lines starting with `#` are skipped.
///
/// # Errors
/// [`AppError::ImportLine`] naming the first malformed line (the secret is never
/// echoed).
pub fn parse_consumers_file(path: &Path, text: &str) -> Result<Vec<ImportedConsumer>, AppError> {
    let mut out: Vec<ImportedConsumer> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let bad = |message: String| AppError::ImportLine {
            path: path.to_owned(),
            line: i + 1,
            message,
        };
        let [key, secret] = fields.as_slice() else {
            let hint = if fields.len() == 1 {
                " (a file written by `lti consumers export` without --with-secrets has no secrets)"
            } else {
                ""
            };
            return Err(bad(format!(
                "expected `key secret` (2 fields), found {} field(s){hint}",
                fields.len()
            )));
        };
        if out.iter().any(|c| c.key == *key) {
            return Err(bad(format!("expected unique keys, found {key:?} again")));
        }
        out.push(ImportedConsumer {
            key: (*key).to_owned(),
            secret: SecretString::new(*secret),
        });
    }
    Ok(out)
}

/// Reads `path` and inserts (or updates) every consumer in `store`; returns how
/// many were imported.
///
/// # Errors
/// [`AppError::Io`], [`AppError::ImportLine`], [`AppError::Store`].
pub async fn import_consumers(store: &Store, path: &Path) -> Result<usize, AppError> {
    let text = std::fs::read_to_string(path).map_err(|e| AppError::io("reading", path, e))?;
    let consumers = parse_consumers_file(path, &text)?;
    for c in &consumers {
        crate::server::upsert_consumer(store, &c.key, c.secret.expose(), &c.key).await?;
    }
    Ok(consumers.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let c = parse_consumers_file(Path::new("f"), "# a comment\n\nk1 s1\n  k2\ts2  \n").unwrap();
        let keys: Vec<&str> = c.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["k1", "k2"]);
        assert_eq!(c[1].secret.expose(), "s2");
    }

    #[test]
    fn malformed_lines_are_named_without_the_secret() {
        let e = parse_consumers_file(Path::new("f"), "k1 s1\nk2 topsecret extra\n").unwrap_err();
        assert_eq!(e.code(), "invalid_import_line");
        let text = e.to_string();
        assert!(text.starts_with("f:2:"), "{text}");
        assert!(!text.contains("topsecret"));
        let e = parse_consumers_file(Path::new("f"), "k1 s1\nk1 s2\n").unwrap_err();
        assert!(e.to_string().contains("unique"));
    }
}
