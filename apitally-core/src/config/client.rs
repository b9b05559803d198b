//! For configuration documentation, see [`ClientConfig`].

use std::{fmt, time::Duration};

#[cfg(feature = "rustls")]
use crate::transport::tls::{CaSource, Trust};
use crate::{
    transport::proxy::{redact_url, Proxies, ProxySetting},
    ConfigError,
};

/// The hub the client reports to unless told otherwise.
pub const DEFAULT_HUB_BASE_URL: &str = "https://hub.apitally.io";
/// The environment used when none is given.
pub const DEFAULT_ENV: &str = "dev";

pub(crate) const ENV_CLIENT_ID: &str = "APITALLY_CLIENT_ID";
pub(crate) const ENV_ENV: &str = "APITALLY_ENV";
pub(crate) const ENV_HUB_BASE_URL: &str = "APITALLY_HUB_BASE_URL";
pub(crate) const ENV_WRITE_TOKEN: &str = "APITALLY_WRITE_TOKEN";
pub(crate) const ENV_OTLP_ENDPOINT: &str = "APITALLY_OTLP_ENDPOINT";
/// Where Apitally 1.x data goes unless told otherwise.
pub const DEFAULT_OTLP_ENDPOINT: &str = "https://otlp.apitally.io";

/// The wire protocol a client speaks, decided by the credential of its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// The Apitally hub (client id): JSON syncs every 10 to 60 s (the 0.x SDKs' protocol).
    Hub,
    /// Apitally 1.x (write token): OpenTelemetry OTLP/HTTP protobuf, every ~15 s.
    Otlp,
}

/// Configuration of the Apitally client: which app and environment to report as, and where.
///
/// Required inputs go in [`new`](Self::new) (or come from the environment with
/// [`from_env`](Self::from_env)); every other setting has a default. Nothing is checked until the
/// client starts: an invalid value then disables the client with one error log naming the value,
/// and requests pass through untouched. Call [`validate`](Self::validate) to fail at startup
/// instead.
///
/// ```
/// # use apitally_core as apitally;
/// use std::time::Duration;
/// use apitally::adapter::ClientConfig;
///
/// let config = ClientConfig::new("3cd8948c-b589-40a2-a33f-a4e604425c81", "prod")
///     .app_version("1.4.0")
///     .shutdown_timeout(Duration::from_secs(5));
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone)]
#[must_use]
pub struct ClientConfig {
    pub(crate) client_id: String,
    /// The 1.x credential; with it the client exports OTLP instead of posting to the hub.
    pub(crate) write_token: Option<String>,
    pub(crate) otlp_endpoint: Option<String>,
    pub(crate) env: String,
    pub(crate) app_version: Option<String>,
    pub(crate) hub_base_url: Option<String>,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) max_request_keys: usize,
    pub(crate) max_consumers: usize,
    pub(crate) request_logging: Option<crate::RequestLoggingConfig>,
    pub(crate) proxy: ProxySetting,
    #[cfg(feature = "rustls")]
    pub(crate) ca_certificates: Vec<CaSource>,
    pub(crate) tuning: Tuning,
}

/// Timings that tests shorten. Not part of the public API.
#[derive(Debug, Clone)]
pub(crate) struct Tuning {
    pub(crate) sync_interval: Option<Duration>,
    pub(crate) request_timeout: Duration,
    pub(crate) retry_backoff: Duration,
    pub(crate) max_queue_age: Duration,
    pub(crate) max_queue_len: usize,
    pub(crate) max_error_keys: usize,
    pub(crate) log_dir: Option<std::path::PathBuf>,
    /// Replaces the process environment for the proxy and certificate variables.
    pub(crate) net_env: Option<std::sync::Arc<[(String, String)]>>,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            sync_interval: None,
            request_timeout: Duration::from_secs(10),
            retry_backoff: Duration::from_secs(1),
            max_queue_age: Duration::from_secs(3600),
            max_queue_len: 400,
            max_error_keys: 1_000,
            log_dir: None,
            net_env: None,
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The client id is the only credential: show just enough to recognise it.
        f.debug_struct("ClientConfig")
            .field("client_id", &redact(&self.client_id))
            .field(
                "write_token",
                &self.write_token.as_deref().map(|t| redact(t.trim())),
            )
            .field("otlp_endpoint", &self.otlp_endpoint)
            .field("env", &self.env)
            .field("app_version", &self.app_version)
            .field("hub_base_url", &self.hub_base_url)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("max_request_keys", &self.max_request_keys)
            .field("max_consumers", &self.max_consumers)
            .field("request_logging", &self.request_logging)
            .field("proxy", &self.proxy_for_debug())
            .finish_non_exhaustive()
    }
}

pub(crate) fn redact(client_id: &str) -> String {
    let head: String = client_id.chars().take(8).collect();
    format!("{head}…")
}

impl ClientConfig {
    /// Configures the client for the app with `client_id` (from the Apitally dashboard) in the
    /// environment `env` (such as `"prod"`; created on the hub when first seen).
    pub fn new(client_id: impl Into<String>, env: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            write_token: None,
            otlp_endpoint: None,
            env: normalise_env(env.into()),
            app_version: None,
            hub_base_url: None,
            shutdown_timeout: Duration::from_secs(10),
            max_request_keys: 50_000,
            max_consumers: 50_000,
            request_logging: None,
            proxy: ProxySetting::FromEnv,
            #[cfg(feature = "rustls")]
            ca_certificates: Vec::new(),
            tuning: Tuning::default(),
        }
    }

    fn proxy_for_debug(&self) -> String {
        match &self.proxy {
            ProxySetting::FromEnv => "from the environment".to_owned(),
            ProxySetting::Explicit(url) => redact_url(url),
            ProxySetting::Off => "none".to_owned(),
        }
    }

    /// Configures the client for the app with the write token `token` (`apt_` and 24 letters
    /// or digits, on the app's setup page in the Apitally dashboard) in the environment `env`:
    /// Apitally 1.x, which exports OpenTelemetry data (OTLP) to `https://otlp.apitally.io`.
    /// Everything else is configured as with a client id.
    pub fn with_write_token(token: impl Into<String>, env: impl Into<String>) -> Self {
        let mut config = Self::new(String::new(), env);
        config.write_token = Some(token.into());
        config
    }

    /// Reads `APITALLY_WRITE_TOKEN` (Apitally 1.x) or `APITALLY_CLIENT_ID` (the hub), and
    /// `APITALLY_ENV` (default `"dev"`), from the environment.
    ///
    /// Setting both credentials is a configuration error (no silent choice); setting neither is
    /// reported like an invalid value, when the client starts or by
    /// [`validate`](Self::validate). `APITALLY_HUB_BASE_URL` and `APITALLY_OTLP_ENDPOINT` are
    /// read in any case (see [`hub_base_url`](Self::hub_base_url)).
    pub fn from_env() -> Self {
        let var = |name| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut config = Self::new(
            var(ENV_CLIENT_ID).unwrap_or_default(),
            var(ENV_ENV).unwrap_or_else(|| DEFAULT_ENV.to_owned()),
        );
        config.write_token = var(ENV_WRITE_TOKEN);
        config
    }

    /// The protocol this configuration speaks: Apitally 1.x (OTLP) with a write token, else
    /// the hub with a client id.
    pub fn get_protocol(&self) -> Protocol {
        if self.write_token.is_some() {
            Protocol::Otlp
        } else {
            Protocol::Hub
        }
    }

    /// Sets the app's version, sent as `versions.app` in the startup data (trimmed; empty means
    /// none). Defaults to none.
    pub fn app_version(mut self, version: impl Into<String>) -> Self {
        let version = version.into().trim().to_owned();
        self.app_version = Some(version).filter(|v| !v.is_empty());
        self
    }

    /// Sets the hub base URL. Defaults to `APITALLY_HUB_BASE_URL` when that is set and not
    /// blank, else to `https://hub.apitally.io`. A trailing `/` is removed.
    pub fn hub_base_url(mut self, url: impl Into<String>) -> Self {
        self.hub_base_url = Some(url.into());
        self
    }

    /// Sets where Apitally 1.x data goes (write-token configurations; for tests and a local
    /// hub). Defaults to `APITALLY_OTLP_ENDPOINT` when that is set and not blank, else to
    /// `https://otlp.apitally.io`.
    pub fn otlp_endpoint(mut self, url: impl Into<String>) -> Self {
        self.otlp_endpoint = Some(url.into());
        self
    }

    /// Sets how long [`ApitallyClient::shutdown`](crate::ApitallyClient::shutdown) may take for
    /// its final sync. Defaults to 10 seconds.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Sets the most distinct (consumer, method, route, status) keys one sync window holds.
    /// Past it, requests of new consumers are counted without their consumer, and requests that
    /// fit nowhere are counted as dropped and logged once per window. Each key takes about 300
    /// bytes. Defaults to 50,000.
    pub fn max_request_keys(mut self, max: usize) -> Self {
        self.max_request_keys = max;
        self
    }

    /// Sets the most consumers with a name or group the client remembers. Past it, new
    /// consumers' names and groups are not sent (their requests are still counted). Defaults to
    /// 50,000.
    pub fn max_consumers(mut self, max: usize) -> Self {
        self.max_consumers = max;
        self
    }

    /// Turns request logging on with this configuration. Defaults to off.
    pub fn request_logging(mut self, config: crate::RequestLoggingConfig) -> Self {
        self.request_logging = Some(config);
        self
    }

    /// Sends the traffic to the hub through this HTTP proxy, in a `CONNECT` tunnel (HTTPS
    /// stays end-to-end between the client and the hub). Credentials in the URL
    /// (`http://name:password@proxy.internal:3128`, `%`-escaped where needed) are sent as
    /// `Proxy-Authorization: Basic` and never logged. Only `http://` proxy URLs are supported;
    /// a URL without a port means port 80.
    ///
    /// Overrides the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`).
    /// An invalid URL is a [`ConfigError::InvalidProxy`]. Defaults to the environment's proxy
    /// variables, read once when the client starts: for an `https` hub `https_proxy`, else
    /// `HTTPS_PROXY`, else `all_proxy` / `ALL_PROXY` (`http_proxy` / `HTTP_PROXY` for an `http`
    /// hub), unless `no_proxy` / `NO_PROXY` lists the hub; the lowercase name wins where both
    /// are set.
    ///
    /// ```
    /// # use apitally_core as apitally;
    /// use apitally::adapter::ClientConfig;
    ///
    /// let config = ClientConfig::new("3cd8948c-b589-40a2-a33f-a4e604425c81", "prod")
    ///     .proxy("http://apitally:s3cret@proxy.internal:3128");
    /// assert!(config.validate().is_ok());
    /// assert!(!format!("{config:?}").contains("s3cret"));
    /// ```
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy = ProxySetting::Explicit(url.into());
        self
    }

    /// Connects to the hub directly, ignoring the environment's proxy variables. Defaults to
    /// using them (see [`proxy`](Self::proxy)).
    pub fn no_proxy(mut self) -> Self {
        self.proxy = ProxySetting::Off;
        self
    }

    /// Also trusts the CA certificates in this PEM text (one or more `-----BEGIN
    /// CERTIFICATE-----` blocks), for a hub or a TLS-inspecting proxy whose certificate a
    /// private CA signed. Can be called more than once; each adds.
    ///
    /// Trusted in any case: the webpki roots, and the platform's store or, when set,
    /// `SSL_CERT_FILE` / `SSL_CERT_DIR`. PEM that holds no usable certificate is a
    /// [`ConfigError::InvalidCaCertificates`]. Defaults to none.
    ///
    /// ```no_run
    /// # use apitally_core as apitally;
    /// use apitally::adapter::ClientConfig;
    ///
    /// let config = ClientConfig::new("3cd8948c-b589-40a2-a33f-a4e604425c81", "prod")
    ///     .ca_certificates_pem(std::fs::read("/etc/company/ca.pem")?);
    /// config.validate()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "rustls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
    pub fn ca_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_certificates.push(CaSource::Pem(pem.into()));
        self
    }

    /// Like [`ca_certificates_pem`](Self::ca_certificates_pem), from a PEM file read when the
    /// configuration is checked (an unreadable file is a
    /// [`ConfigError::InvalidCaCertificates`] naming it). Defaults to none.
    #[cfg(feature = "rustls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
    pub fn ca_certificates_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.ca_certificates.push(CaSource::File(path.into()));
        self
    }

    /// The client id as given.
    pub fn get_client_id(&self) -> &str {
        &self.client_id
    }

    /// The env as given.
    pub fn get_env(&self) -> &str {
        &self.env
    }

    /// Checks the credential (client id or write token), the env, the hub base URL or OTLP
    /// endpoint, the request-logging patterns, the proxy (from the config or the environment)
    /// and the CA certificates.
    ///
    /// ```
    /// # use apitally_core as apitally;
    /// use apitally::adapter::ClientConfig;
    ///
    /// let err = ClientConfig::new("3cd8948c-b589-40a2-a33f-a4e604425c81", "prod env")
    ///     .validate()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("\"prod env\""));
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.resolve().map(drop)
    }

    /// Replaces every invalid optional setting with its default (see `ApitallyConfig::repair`):
    /// a bad pattern is left out, a bad proxy means connecting directly, bad CA certificates
    /// are not added. One line per setting.
    pub(crate) fn repair(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(logging) = &mut self.request_logging {
            lines.extend(
                logging
                    .drop_invalid_patterns()
                    .into_iter()
                    .map(|err| format!("{err}; the pattern is left out")),
            );
        }
        let var = |name: &str| self.var(name);
        if let Err(err) = Proxies::resolve(&self.proxy, &var) {
            lines.push(format!("{err}; connecting directly"));
            self.proxy = ProxySetting::Off;
        }
        #[cfg(feature = "rustls")]
        {
            let sources = std::mem::take(&mut self.ca_certificates);
            for source in sources {
                let var = |name: &str| self.var(name);
                match Trust::resolve(std::slice::from_ref(&source), &var) {
                    Ok(_) => self.ca_certificates.push(source),
                    Err(err @ ConfigError::InvalidCaCertificates { .. }) => {
                        lines.push(format!("{err}; they are not trusted"));
                    }
                    // Not this source's fault (the environment's certificates): left to
                    // `validate`.
                    Err(_) => self.ca_certificates.push(source),
                }
            }
        }
        lines
    }

    /// An environment variable, or the test's replacement of the environment.
    fn var(&self, name: &str) -> Option<String> {
        match &self.tuning.net_env {
            Some(vars) => vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()),
            None => std::env::var(name).ok(),
        }
    }

    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    /// For tests (feature `test-util`): a fixed sync interval instead of 10 s for an hour and 60 s after.
    pub fn test_sync_interval(mut self, interval: Duration) -> Self {
        self.tuning.sync_interval = Some(interval);
        self
    }

    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    /// For tests (feature `test-util`): the timeout of one HTTP attempt (10 s).
    pub fn test_request_timeout(mut self, timeout: Duration) -> Self {
        self.tuning.request_timeout = timeout;
        self
    }

    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    /// For tests (feature `test-util`): the first retry wait (1 s, doubled for each further attempt).
    pub fn test_retry_backoff(mut self, backoff: Duration) -> Self {
        self.tuning.retry_backoff = backoff;
        self
    }

    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    /// For tests (feature `test-util`): how old a queued payload may get before it is dropped (1 h).
    pub fn test_max_queue_age(mut self, age: Duration) -> Self {
        self.tuning.max_queue_age = age;
        self
    }

    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    /// For tests (feature `test-util`): how many payloads the retry queue holds (400).
    pub fn test_max_queue_len(mut self, len: usize) -> Self {
        self.tuning.max_queue_len = len;
        self
    }

    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    /// For tests (feature `test-util`): where request log files go (`<temp dir>/apitally`).
    pub fn test_log_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.tuning.log_dir = Some(dir.into());
        self
    }

    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    /// For tests (feature `test-util`): these variables instead of the process environment for the proxy and
    /// certificate variables (`HTTPS_PROXY`, `NO_PROXY`, `SSL_CERT_FILE`, ...), so that tests
    /// in one process do not race on the environment.
    pub fn test_net_env<K: Into<String>, V: Into<String>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.tuning.net_env = Some(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        self
    }

    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    /// For tests (feature `test-util`): the most distinct validation-error and server-error keys per window (1,000).
    pub fn test_max_error_keys(mut self, max: usize) -> Self {
        self.tuning.max_error_keys = max;
        self
    }
}

/// The env as the SDKs take it: trimmed, and `"dev"` when empty.
fn normalise_env(env: String) -> String {
    match env.trim() {
        "" => DEFAULT_ENV.to_owned(),
        trimmed if trimmed.len() == env.len() => env,
        trimmed => trimmed.to_owned(),
    }
}

mod resolve;

pub(crate) use self::resolve::{ResolvedConfig, Target};

#[cfg(test)]
mod tests;
