//! Errors of the core: configuration.

/// Why a configuration was rejected. The client then stays disabled and every request passes
/// through untouched; [`ClientConfig::validate`](crate::ClientConfig::validate) returns it for
/// those who want to fail at startup.
///
/// ```
/// use apitally_core::{ClientConfig, ConfigError};
///
/// let err = ClientConfig::new("not-a-uuid", "prod").validate().unwrap_err();
/// assert!(matches!(err, ConfigError::InvalidClientId { .. }));
/// assert!(err.to_string().contains("not-a-uuid"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No client id was given (nor `APITALLY_CLIENT_ID` set).
    #[error("no client id: pass one to the config or set APITALLY_CLIENT_ID (find it in the Apitally dashboard)")]
    MissingClientId,
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
    /// The hub base URL is not an `http://` or `https://` URL.
    #[error("invalid hub base URL {value:?}: expected an http:// or https:// URL, such as https://hub.apitally.io")]
    InvalidHubBaseUrl {
        /// The rejected value.
        value: String,
    },
}
