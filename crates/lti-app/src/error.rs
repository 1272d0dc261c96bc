//! The application's error type.

use std::path::PathBuf;

use crate::config::Problem;

/// Everything that can stop a command of the `lti` binary.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The configuration has problems (each listed).
    #[error("invalid configuration: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Config(Vec<Problem>),
    /// A file or directory could not be read or written.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `keygen` would overwrite a file and `--force` was not given.
    #[error("refusing to overwrite {}: expected no existing key file, found one (pass --force to replace it)", path.display())]
    KeyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// An unsupported RSA key size.
    #[error("unsupported key size: expected 2048, 3072 or 4096 bits, found {found}")]
    InvalidBits {
        /// The size asked for.
        found: usize,
    },
    /// A key could not be generated or parsed.
    #[error("key error in {}: {source}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: lti_jose::Error,
    },
    /// A store could not be opened or written.
    #[error("store error: {0}")]
    Store(#[from] lti_registry::RegistryError),
    /// The tool could not be built.
    #[error("tool error: {0}")]
    Tool(#[from] lti_tool::ToolError),
    /// The HTTP client could not be built.
    #[error("HTTP client error: {0}")]
    Http(#[from] lti_http::Error),
    /// An output file exists and `--force` was not given.
    #[error("refusing to overwrite {}: expected no existing file, found one (pass --force to replace it)", path.display())]
    OutputExists {
        /// The existing file.
        path: PathBuf,
    },
    /// `lti keys rotate` would promote a next key platforms may not have seen.
    #[error(
        "key rotation too early: expected the next key {kid:?} to be published for at least {required} s before it signs, found {waited} s (run again later, or pass --now)"
    )]
    RotationTooEarly {
        /// The waiting key.
        kid: String,
        /// Seconds since it was published.
        waited: i64,
        /// Seconds required.
        required: i64,
    },
    /// The operating system's random number generator failed.
    #[error(
        "random number generator failure: expected random bytes from the operating system, found an error"
    )]
    Random,
    /// An import file line is malformed.
    #[error("{}:{line}: {message}", path.display())]
    ImportLine {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Another instance sharing the store runs with a different application
    /// secret (the store records a fingerprint of the first one).
    #[error(
        "application secret mismatch: expected the secret the other instances sharing this store use (the store holds its fingerprint), found a different one; give every instance the same LTI_APP_SECRET or app-secret file"
    )]
    AppSecretMismatch,
}

impl AppError {
    /// A stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config(_) => "invalid_config",
            Self::Io { .. } => "io",
            Self::KeyExists { .. } => "key_exists",
            Self::InvalidBits { .. } => "invalid_key_size",
            Self::Key { .. } => "key_error",
            Self::Store(_) => "store",
            Self::Tool(_) => "tool",
            Self::Http(_) => "http_client",
            Self::ImportLine { .. } => "invalid_import_line",
            Self::OutputExists { .. } => "output_exists",
            Self::Random => "random_failure",
            Self::RotationTooEarly { .. } => "rotation_too_early",
            Self::AppSecretMismatch => "app_secret_mismatch",
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
