//! Errors of the core: configuration.

/// Why a configuration was rejected. The client then stays disabled and every request passes
/// through untouched; [`ClientConfig::validate`](crate::ClientConfig::validate) returns it for
/// those who want to fail at startup.
///
/// ```
/// # use apitally_core as apitally;
/// use apitally::ConfigError;
/// use apitally::adapter::ClientConfig;
///
/// let err = ClientConfig::new("not-a-uuid", "prod").validate().unwrap_err();
/// assert!(matches!(err, ConfigError::InvalidClientId { .. }));
/// assert!(err.to_string().contains("not-a-uuid"));
/// ```
///
/// Its `Debug` output is its message, so that `.expect(...)` and `fn main() -> Result<..>`
/// print a readable line:
///
/// ```
/// # use apitally_core as apitally;
/// # use apitally::adapter::ClientConfig;
/// let err = ClientConfig::new("not-a-uuid", "prod").validate().unwrap_err();
/// assert_eq!(format!("{err:?}"), err.to_string());
/// ```
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No credential was given: neither a write token nor a client id (nor
    /// `APITALLY_WRITE_TOKEN` or `APITALLY_CLIENT_ID` set).
    #[error("no credential: pass a write token (Apitally 1.x) or a client id to the config, or set APITALLY_WRITE_TOKEN or APITALLY_CLIENT_ID (find them in the Apitally dashboard)")]
    MissingCredential,
    /// Both a client id and a write token were given (`APITALLY_CLIENT_ID` and
    /// `APITALLY_WRITE_TOKEN`, say): the client speaks one protocol, so there is no silent choice.
    #[error("both a client id (Apitally hub) and a write token (Apitally 1.x) are set: keep the write token for 1.x (unset APITALLY_CLIENT_ID) or the client id for the hub (unset APITALLY_WRITE_TOKEN)")]
    ConflictingCredentials,
    /// The write token is not `apt_` followed by 24 letters or digits. Only its start is kept.
    #[error("invalid write token {start:?}...: expected apt_ followed by 24 letters or digits, as shown on the app's setup page in the Apitally dashboard")]
    InvalidWriteToken {
        /// Its first 8 characters (a token is never shown whole).
        start: String,
    },
    /// The client id is not a UUID in its canonical form.
    #[error("invalid client id {value:?}: expected a UUID of 36 characters, 8-4-4-4-12 hexadecimal digits with dashes, such as 3cd8948c-b589-40a2-a33f-a4e604425c81")]
    InvalidClientId {
        /// The rejected value.
        value: String,
    },
    /// The env is empty, too long or has characters other than ASCII letters, digits, `_`, `-`.
    #[error("invalid env {value:?}: expected 1 to 32 characters from a-z, A-Z, 0-9, '_' and '-', such as \"prod\"")]
    InvalidEnv {
        /// The rejected value.
        value: String,
    },
    /// The hub base URL is not a plain `http(s)://host[:port][/path]` URL.
    #[error("invalid hub base URL {value:?}: expected a plain http(s)://host[:port][/path] URL, such as https://hub.apitally.io, but {reason}")]
    InvalidHubBaseUrl {
        /// The rejected value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A proxy URL, from the config or the environment, that cannot be used: not an `http://`
    /// URL, or a bad host or port. Credentials in it are shown as `***`.
    #[error("invalid proxy URL {value:?} from {origin}: {reason}; expected http://[name[:password]@]host[:port]")]
    InvalidProxy {
        /// Where it came from: `proxy` (the config) or the environment variable's name.
        origin: String,
        /// The rejected value, credentials replaced by `***`.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An option whose value cannot be used: a pattern that is not a valid regular expression,
    /// a sample rate outside `0.0..=1.0`, a document that is not JSON, ...
    #[error("invalid {option} {value:?}: expected {expected}")]
    InvalidOption {
        /// The option, as its builder method is named.
        option: &'static str,
        /// The rejected value (cut to 200 characters).
        value: String,
        /// What is expected, and why the value is not it.
        expected: String,
    },
    /// CA certificates given in the config that cannot be read or hold no certificate.
    #[error("invalid CA certificates from {origin}: {reason}")]
    InvalidCaCertificates {
        /// The option, and the file for `ca_certificates_file`.
        origin: String,
        /// What is wrong with them.
        reason: String,
    },
}

impl std::fmt::Debug for ConfigError {
    /// The message (as `Display`); `{:#?}` shows the variant and its fields.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !f.alternate() {
            return std::fmt::Display::fmt(self, f);
        }
        match self {
            Self::MissingCredential => f.write_str("MissingCredential"),
            Self::ConflictingCredentials => f.write_str("ConflictingCredentials"),
            Self::InvalidWriteToken { start } => f
                .debug_struct("InvalidWriteToken")
                .field("start", start)
                .finish(),
            Self::InvalidClientId { value } => f
                .debug_struct("InvalidClientId")
                .field("value", value)
                .finish(),
            Self::InvalidEnv { value } => {
                f.debug_struct("InvalidEnv").field("value", value).finish()
            }
            Self::InvalidHubBaseUrl { value, reason } => f
                .debug_struct("InvalidHubBaseUrl")
                .field("value", value)
                .field("reason", reason)
                .finish(),
            Self::InvalidProxy {
                origin,
                value,
                reason,
            } => f
                .debug_struct("InvalidProxy")
                .field("origin", origin)
                .field("value", value)
                .field("reason", reason)
                .finish(),
            Self::InvalidOption {
                option,
                value,
                expected,
            } => f
                .debug_struct("InvalidOption")
                .field("option", option)
                .field("value", value)
                .field("expected", expected)
                .finish(),
            Self::InvalidCaCertificates { origin, reason } => f
                .debug_struct("InvalidCaCertificates")
                .field("origin", origin)
                .field("reason", reason)
                .finish(),
        }
    }
}

/// A rejected value as kept in an error: at most 200 characters, then `...`.
pub(crate) fn cut(value: &str) -> String {
    const MAX_CHARS: usize = 200;
    match value.char_indices().nth(MAX_CHARS) {
        Some((at, _)) => format!("{}...", &value[..at]),
        None => value.to_owned(),
    }
}
