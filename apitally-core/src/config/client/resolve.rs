//! Resolving a [`ClientConfig`]: the credential decides the protocol and its target URL,
//! every setting is checked, and the environment's proxies and certificates are read.

use std::fmt;

use super::{
    ClientConfig, Protocol, DEFAULT_HUB_BASE_URL, DEFAULT_OTLP_ENDPOINT, ENV_HUB_BASE_URL,
    ENV_OTLP_ENDPOINT,
};
use crate::config::checks::{
    check_base_url, is_canonical_uuid, is_valid_env, is_valid_otlp_env, is_write_token,
};
#[cfg(feature = "rustls")]
use crate::transport::tls::Trust;
use crate::{
    transport::{proxy::Proxies, NetSettings},
    ConfigError,
};

impl ClientConfig {
    pub(crate) fn resolve(&self) -> Result<ResolvedConfig, ConfigError> {
        let var = |name: &str| match &self.tuning.net_env {
            Some(vars) => vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()),
            None => std::env::var(name).ok(),
        };
        let target = if let Some(token) = &self.write_token {
            let token = token.trim();
            if !self.client_id.trim().is_empty() {
                return Err(ConfigError::ConflictingCredentials);
            }
            if !is_write_token(token) {
                return Err(ConfigError::InvalidWriteToken {
                    start: token.chars().take(8).collect(),
                });
            }
            if !is_valid_otlp_env(&self.env) {
                return Err(ConfigError::InvalidOption {
                    option: "env",
                    value: crate::error::cut(&self.env),
                    expected: "a name of 1 to 255 characters that an HTTP header can carry: \
                               ASCII letters, digits, punctuation and spaces"
                        .into(),
                });
            }
            let endpoint = match &self.otlp_endpoint {
                Some(url) => url.trim().to_owned(),
                None => var(ENV_OTLP_ENDPOINT)
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| DEFAULT_OTLP_ENDPOINT.to_owned()),
            };
            let endpoint =
                check_base_url(&endpoint).map_err(|reason| ConfigError::InvalidOption {
                    option: "otlp_endpoint",
                    value: crate::error::cut(&endpoint),
                    expected: format!(
                        "a plain http(s)://host[:port][/path] URL, such as \
                         https://otlp.apitally.io, but {reason}"
                    ),
                })?;
            Target::Otlp {
                endpoint,
                write_token: token.to_owned(),
            }
        } else {
            if self.client_id.trim().is_empty() {
                return Err(ConfigError::MissingCredential);
            }
            if !is_canonical_uuid(&self.client_id) {
                return Err(ConfigError::InvalidClientId {
                    value: crate::error::cut(&self.client_id),
                });
            }
            if !is_valid_env(&self.env) {
                return Err(ConfigError::InvalidEnv {
                    value: crate::error::cut(&self.env),
                });
            }
            let base = match &self.hub_base_url {
                Some(url) => url.trim().to_owned(),
                None => var(ENV_HUB_BASE_URL)
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| DEFAULT_HUB_BASE_URL.to_owned()),
            };
            let base = check_base_url(&base).map_err(|reason| ConfigError::InvalidHubBaseUrl {
                value: crate::error::cut(&base),
                reason,
            })?;
            Target::Hub {
                hub_url: format!("{base}/v2/{}/{}", self.client_id, self.env),
            }
        };
        let var = |name: &str| match &self.tuning.net_env {
            Some(vars) => vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()),
            None => std::env::var(name).ok(),
        };
        if let Some(logging) = &self.request_logging {
            logging.validate()?;
        }
        let net = NetSettings {
            proxies: Proxies::resolve(&self.proxy, &var)?,
            #[cfg(feature = "rustls")]
            trust: Trust::resolve(&self.ca_certificates, &var)?,
        };
        // The protocol's defaults for what the user did not set (a table per protocol in
        // `RequestLoggingConfig`'s docs): request logs are off for the hub unless configured,
        // and always on for 1.x, where they are traces.
        let logging = match (&self.request_logging, &target) {
            (Some(logging), Target::Otlp { .. }) => {
                Some(logging.clone().for_protocol(Protocol::Otlp))
            }
            (Some(logging), Target::Hub { .. }) => {
                Some(logging.clone().for_protocol(Protocol::Hub))
            }
            (None, Target::Otlp { .. }) => {
                Some(crate::RequestLoggingConfig::new().for_protocol(Protocol::Otlp))
            }
            (None, Target::Hub { .. }) => None,
        };
        Ok(ResolvedConfig {
            target,
            config: self.clone(),
            net,
            logging,
        })
    }
}

/// A configuration that passed validation, with the hub URL prefix resolved.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedConfig {
    pub(crate) target: Target,
    pub(crate) config: ClientConfig,
    /// Proxies and trusted certificates, the environment read.
    pub(crate) net: NetSettings,
    /// Request logging: as configured, or the protocol's default (off for hub v2; spans and
    /// application logs for 1.x).
    pub(crate) logging: Option<crate::RequestLoggingConfig>,
}

/// Where the client sends, by protocol.
#[derive(Clone)]
pub(crate) enum Target {
    /// `{base}/v2/{client_id}/{env}`
    Hub { hub_url: String },
    /// The OTLP base URL (without `/v1/...`) and the write token.
    Otlp {
        endpoint: String,
        write_token: String,
    },
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Hub { hub_url } => f.debug_struct("Hub").field("hub_url", hub_url).finish(),
            Target::Otlp { endpoint, .. } => f
                .debug_struct("Otlp")
                .field("endpoint", endpoint)
                .field("write_token", &"[REDACTED]")
                .finish(),
        }
    }
}
