//! For configuration documentation, see [`ApitallyConfig`].

use std::{fmt, sync::Arc, time::Duration};

mod checks;
mod client;

pub(crate) use self::client::{redact, ResolvedConfig, Target, Tuning};
pub use self::client::{
    ClientConfig, Protocol, DEFAULT_ENV, DEFAULT_HUB_BASE_URL, DEFAULT_OTLP_ENDPOINT,
};
use crate::{
    pipeline::{
        forwarded::TrustedProxies,
        sampling::{SampleRequest, SampleResponse, Sampling},
    },
    ConfigError, Consumer, PathItem,
};

const ENV_TRUSTED_PROXIES: &str = "APITALLY_TRUSTED_PROXIES";
const ENV_DISABLED: &str = "APITALLY_DISABLED";
const ENV_OTEL_SDK_DISABLED: &str = "OTEL_SDK_DISABLED";

/// A callback that names the consumer of a request; see
/// [`ApitallyConfig::identify_consumer`].
pub type ConsumerCallback<R> = Arc<dyn Fn(&R) -> Option<Consumer> + Send + Sync>;

/// The configuration of Apitally, for every framework: the credential, what is recorded and
/// logged, and how. `R` is the framework's request type, which the
/// [`identify_consumer`](Self::identify_consumer) callback reads; each adapter names it
/// (`apitally_actix::ApitallyConfig` is `ApitallyConfig<actix_web::HttpRequest>`).
///
/// Required inputs go in [`new`](Self::new) (or come from the environment with
/// [`from_env`](Self::from_env)); every setter states its default.
///
/// ```
/// # use apitally_core as apitally;
/// # type ApitallyConfig = apitally::ApitallyConfig<actix_web::HttpRequest>;
/// use actix_web::HttpMessage;
/// use apitally::Consumer;
///
/// // Set by the app's auth layer once it has checked the credential.
/// #[derive(Clone)]
/// struct CustomerId(u64);
///
/// let config = ApitallyConfig::new("3cd8948c-b589-40a2-a33f-a4e604425c81", "prod")
///     .app_version("1.4.0")
///     .identify_consumer(|req| {
///         let CustomerId(id) = req.extensions().get::<CustomerId>()?.clone();
///         Some(Consumer::new(id.to_string()))
///     })
///     .route("GET", "/items")
///     .route("POST", "/items");
/// assert!(config.validate().is_ok());
/// ```
#[must_use]
pub struct ApitallyConfig<R> {
    pub(crate) client: ClientConfig,
    pub(crate) identify_consumer: Option<ConsumerCallback<R>>,
    pub(crate) paths: Vec<PathItem>,
    pub(crate) openapi: Option<String>,
    pub(crate) catch_panics: bool,
    pub(crate) sampling: Sampling,
    /// The first option rejected by a builder method, returned by `validate`.
    pub(crate) rejected: Option<ConfigError>,
    pub(crate) disabled: bool,
    /// As given (`trusted_proxies` or `APITALLY_TRUSTED_PROXIES`); parsed by `validate`.
    pub(crate) trusted_proxies: Vec<String>,
}

impl<R> Clone for ApitallyConfig<R> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            identify_consumer: self.identify_consumer.clone(),
            paths: self.paths.clone(),
            openapi: self.openapi.clone(),
            catch_panics: self.catch_panics,
            sampling: self.sampling.clone(),
            rejected: self.rejected.clone(),
            disabled: self.disabled,
            trusted_proxies: self.trusted_proxies.clone(),
        }
    }
}

impl<R> fmt::Debug for ApitallyConfig<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApitallyConfig")
            .field("client", &self.client)
            .field("identify_consumer", &self.identify_consumer.is_some())
            .field("paths", &self.paths.len())
            .field("openapi", &self.openapi.is_some())
            .field("catch_panics", &self.catch_panics)
            .field("sample_rate", &self.sampling.rate)
            .field("sample_on_request", &self.sampling.on_request.is_some())
            .field("sample_on_response", &self.sampling.on_response.is_some())
            .field("disabled", &self.disabled)
            .field("trusted_proxies", &self.trusted_proxies)
            .finish()
    }
}

impl<R> ApitallyConfig<R> {
    /// Reports as the app with `client_id` (from the Apitally dashboard) in environment `env`
    /// (such as `"prod"`, created on the hub when first seen).
    pub fn new(client_id: impl Into<String>, env: impl Into<String>) -> Self {
        Self::from_client(ClientConfig::new(client_id, env))
    }

    /// Reports as the app with the write token `token` (`apt_...`, on the app's setup page in
    /// the Apitally dashboard) in environment `env`: Apitally 1.x, which receives OpenTelemetry
    /// data (OTLP). Everything else (consumers, errors, request logging, sampling, shutdown) is
    /// configured as with a client id; switching is this one line.
    ///
    /// ```
    /// # use apitally_core as apitally;
    /// # type ApitallyConfig = apitally::ApitallyConfig<actix_web::HttpRequest>;
    ///
    /// let config = ApitallyConfig::with_write_token("apt_0123456789abcdefghijABCD", "prod");
    /// assert!(config.validate().is_ok());
    /// ```
    pub fn with_write_token(token: impl Into<String>, env: impl Into<String>) -> Self {
        Self::from_client(ClientConfig::with_write_token(token, env))
    }

    /// Reads the credential from the environment: `APITALLY_WRITE_TOKEN` (Apitally 1.x) or
    /// `APITALLY_CLIENT_ID` (the hub; both set is a configuration error), `APITALLY_ENV` (default
    /// `"dev"`), `APITALLY_OTLP_ENDPOINT` / `APITALLY_HUB_BASE_URL`, and
    /// `APITALLY_TRUSTED_PROXIES` (comma-separated, see
    /// [`trusted_proxies`](Self::trusted_proxies)). `APITALLY_DISABLED` and
    /// `OTEL_SDK_DISABLED` are read when the middleware starts, whatever the config came from
    /// (see [`disabled`](Self::disabled)).
    pub fn from_env() -> Self {
        let mut config = Self::from_client(ClientConfig::from_env());
        if let Ok(proxies) = std::env::var(ENV_TRUSTED_PROXIES) {
            config.trusted_proxies = proxies.split(',').map(str::to_owned).collect();
        }
        config
    }

    /// Switches Apitally off (`true`): the middleware then starts no thread, opens no socket
    /// or file, and passes every request through as if it were not there. `APITALLY_DISABLED`
    /// or `OTEL_SDK_DISABLED` set to `1`, `true` or `yes` does the same whatever this says (an
    /// explicit `false` does not override them), as in the official SDKs. A disabled config
    /// needs no credential. Defaults to false.
    ///
    /// ```
    /// # use apitally_core as apitally;
    /// # type ApitallyConfig = apitally::ApitallyConfig<actix_web::HttpRequest>;
    ///
    /// // No monitoring in local development.
    /// let config = ApitallyConfig::from_env().disabled(cfg!(debug_assertions));
    /// # let _ = config;
    /// ```
    pub fn disabled(mut self, disabled: bool) -> Self {
        self.disabled = disabled;
        self
    }

    /// Whether Apitally is switched off, and by what: [`disabled`](Self::disabled), or the
    /// environment variable that switched it off.
    pub(crate) fn disabled_by(&self) -> Option<&'static str> {
        if self.disabled {
            return Some("the config (disabled(true))");
        }
        [ENV_DISABLED, ENV_OTEL_SDK_DISABLED]
            .into_iter()
            .find(|name| crate::diag::truthy(name))
    }

    /// Trusts these proxies' forwarding headers for the client's address (IP addresses and
    /// CIDR ranges, IPv4 and IPv6: `"10.0.0.0/8"`, `"::1"`). Behind a load balancer or a
    /// reverse proxy, every request's socket peer is the proxy; with the proxy trusted, the
    /// client address recorded (Apitally 1.x `client.address`, for the location views) is the
    /// rightmost address of `Forwarded: for=` (else of `X-Forwarded-For`) that is not itself a
    /// trusted proxy. A header from a peer that is not trusted is ignored, so a client cannot
    /// choose its recorded address. A header that cannot be read (garbage, `for=_hidden`,
    /// `unknown`, ports out of range) gives the peer. Defaults to `APITALLY_TRUSTED_PROXIES`
    /// with [`from_env`](Self::from_env), else nothing: the peer is the client.
    ///
    /// ```
    /// # use apitally_core as apitally;
    /// # type ApitallyConfig = apitally::ApitallyConfig<actix_web::HttpRequest>;
    ///
    /// // nginx on the same host, and the cloud load balancer's private range.
    /// let config = ApitallyConfig::from_env().trusted_proxies(["127.0.0.1", "::1", "10.0.0.0/8"]);
    /// # let _ = config;
    /// ```
    pub fn trusted_proxies<I, S>(mut self, proxies: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.trusted_proxies = proxies.into_iter().map(Into::into).collect();
        self
    }

    /// Sets where Apitally 1.x data goes, for tests and a local hub. Defaults to
    /// `APITALLY_OTLP_ENDPOINT` when set, else `https://otlp.apitally.io`.
    pub fn otlp_endpoint(mut self, url: impl Into<String>) -> Self {
        self.client = self.client.otlp_endpoint(url);
        self
    }

    fn from_client(client: ClientConfig) -> Self {
        Self {
            client,
            identify_consumer: None,
            paths: Vec::new(),
            openapi: None,
            rejected: None,
            catch_panics: true,
            sampling: Sampling::new(1.0),
            disabled: false,
            trusted_proxies: Vec::new(),
        }
    }

    /// Sets the app's version, shown in Apitally. Defaults to none.
    pub fn app_version(mut self, version: impl Into<String>) -> Self {
        self.client = self.client.app_version(version);
        self
    }

    /// Sets the hub base URL. Defaults to `APITALLY_HUB_BASE_URL` when set, else
    /// `https://hub.apitally.io`.
    pub fn hub_base_url(mut self, url: impl Into<String>) -> Self {
        self.client = self.client.hub_base_url(url);
        self
    }

    /// Sends the traffic to the hub through this HTTP proxy (`http://[name:password@]host[:port]`),
    /// in a `CONNECT` tunnel; the credentials are sent as `Proxy-Authorization: Basic` and never
    /// logged. Overrides `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`. Defaults to
    /// those variables, read once at start; see [`ClientConfig::proxy`].
    ///
    /// ```
    /// # use apitally_core as apitally;
    /// # type ApitallyConfig = apitally::ApitallyConfig<actix_web::HttpRequest>;
    ///
    /// let config = ApitallyConfig::new("3cd8948c-b589-40a2-a33f-a4e604425c81", "prod")
    ///     .proxy("http://proxy.internal:3128");
    /// assert!(config.validate().is_ok());
    /// ```
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.client = self.client.proxy(url);
        self
    }

    /// Connects to the hub directly, ignoring the environment's proxy variables. Defaults to
    /// using them.
    pub fn no_proxy(mut self) -> Self {
        self.client = self.client.no_proxy();
        self
    }

    /// Also trusts the CA certificates in this PEM text, for a hub or a TLS-inspecting proxy
    /// whose certificate a private CA signed; see [`ClientConfig::ca_certificates_pem`]. The
    /// webpki roots and the platform's (or `SSL_CERT_FILE` / `SSL_CERT_DIR`) are trusted in any
    /// case. Defaults to none.
    #[cfg(feature = "rustls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
    pub fn ca_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.client = self.client.ca_certificates_pem(pem);
        self
    }

    /// Like [`ca_certificates_pem`](Self::ca_certificates_pem), from a PEM file read when the
    /// configuration is checked. Defaults to none.
    #[cfg(feature = "rustls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
    pub fn ca_certificates_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.client = self.client.ca_certificates_file(path);
        self
    }

    /// Sets how long the middleware's `shutdown` may take for the final
    /// sync. Defaults to 10 seconds.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.client = self.client.shutdown_timeout(timeout);
        self
    }

    /// Sets the most distinct (consumer, method, route, status) keys per sync window; see
    /// [`ClientConfig::max_request_keys`]. Defaults to 50,000.
    pub fn max_request_keys(mut self, max: usize) -> Self {
        self.client = self.client.max_request_keys(max);
        self
    }

    /// Sets the most named consumers remembered; see [`ClientConfig::max_consumers`]. Defaults
    /// to 50,000.
    pub fn max_consumers(mut self, max: usize) -> Self {
        self.client = self.client.max_consumers(max);
        self
    }

    /// Configures request logging: individual requests, with the headers and bodies the
    /// [`RequestLoggingConfig`](crate::RequestLoggingConfig) asks for, masked before they leave
    /// the app. Defaults to the protocol's: off with a client id (the hub), on with a write
    /// token (Apitally 1.x, where request logs are traces). Every option the config does not
    /// set keeps the protocol's default:
    ///
    /// | option | hub v2 (client id) | Apitally 1.x (write token) |
    /// |---|---|---|
    /// | request logging | off until this is called | on |
    /// | `log_query_params` | true | true |
    /// | `log_request_headers` / `capture_request_headers` | false | false |
    /// | `log_request_body` / `capture_request_body` | false | false |
    /// | `log_response_headers` / `capture_response_headers` | true | true |
    /// | `log_response_body` / `capture_response_body` | false | false |
    /// | `log_exception` | true | true |
    /// | `capture_logs` | false | true |
    /// | `capture_traces` | false | true |
    ///
    /// So with a write token, `RequestLoggingConfig::new().capture_request_body(true)` adds
    /// request bodies and keeps application logs and spans.
    ///
    /// ```
    /// # use apitally_core as apitally;
    /// # type ApitallyConfig = apitally::ApitallyConfig<actix_web::HttpRequest>;
    /// use apitally::RequestLoggingConfig;
    ///
    /// let config = ApitallyConfig::new("3cd8948c-b589-40a2-a33f-a4e604425c81", "prod")
    ///     .request_logging(
    ///         RequestLoggingConfig::new()
    ///             .log_request_headers(true)
    ///             .log_request_body(true)
    ///             .log_response_body(true),
    ///     );
    /// # let _ = config;
    /// ```
    pub fn request_logging(mut self, logging: crate::RequestLoggingConfig) -> Self {
        self.client = self.client.request_logging(logging);
        self
    }

    /// Names the consumer of each request from the request, for example from an API key header
    /// or what an auth middleware stored in the request's extensions.
    ///
    /// It runs after the handler, and only when no consumer was set on the request with
    /// `set_consumer` (the adapter's request extension trait) or
    /// `#[apitally::consumer]`, which win over it. It needs the response's request, so it does
    /// not run for a request that an inner middleware rejected with an `Err` or whose handler
    /// panicked (actix drops the request there): an auth layer names the consumer with
    /// `set_consumer` before it rejects. If it panics, the panic is caught and logged and the
    /// request is counted without consumer. Defaults to none.
    pub fn identify_consumer<F>(mut self, callback: F) -> Self
    where
        F: Fn(&R) -> Option<Consumer> + Send + Sync + 'static,
    {
        self.identify_consumer = Some(Arc::new(callback));
        self
    }

    /// Adds a route to the list sent to Apitally at startup, so that endpoints show before they
    /// get traffic. Use actix's template syntax (`/items/{id}`). Defaults to no routes.
    pub fn route(mut self, method: &str, path: &str) -> Self {
        self.paths.push(PathItem::new(method, path));
        self
    }

    /// Adds routes with summaries or descriptions; see [`route`](Self::route).
    pub fn routes(mut self, paths: impl IntoIterator<Item = PathItem>) -> Self {
        self.paths.extend(paths);
        self
    }

    /// Takes the routes (with summaries and descriptions) from an OpenAPI document, given as
    /// JSON text, and sends the document to Apitally. With utoipa:
    /// `.openapi_json(ApiDoc::openapi().to_json()?)`. A document that is not JSON is a
    /// configuration error (`try_new` fails, naming it).
    /// Defaults to none.
    ///
    /// ```
    /// # use apitally_core as apitally;
    /// # type ApitallyConfig = apitally::ApitallyConfig<actix_web::HttpRequest>;
    ///
    /// let doc = r#"{"openapi":"3.1.0","paths":{"/items/{id}":{"get":{"summary":"Get an item"}}}}"#;
    /// let config = ApitallyConfig::new("3cd8948c-b589-40a2-a33f-a4e604425c81", "prod")
    ///     .openapi_json(doc);
    /// # let _ = config;
    /// ```
    pub fn openapi_json(mut self, document: impl Into<String>) -> Self {
        let document = document.into();
        match serde_json::from_str::<serde_json::Value>(&document) {
            Ok(value) => {
                self.paths.extend(paths_from_openapi(&value));
                self.openapi = Some(document);
            }
            Err(err) => self.reject(ConfigError::InvalidOption {
                option: "openapi_json",
                value: cut(&document),
                expected: format!("an OpenAPI document in JSON, but it is not JSON: {err}"),
            }),
        }
        self
    }

    /// Takes the routes (with summaries and descriptions) from a utoipa OpenAPI document and
    /// sends the document to Apitally. Defaults to none.
    ///
    /// ```
    /// # use apitally_core as apitally;
    /// # type ApitallyConfig = apitally::ApitallyConfig<actix_web::HttpRequest>;
    /// use utoipa::openapi::{path::{HttpMethod, OperationBuilder, PathItem}, OpenApiBuilder, PathsBuilder};
    ///
    /// let doc = OpenApiBuilder::new()
    ///     .paths(PathsBuilder::new().path(
    ///         "/items",
    ///         PathItem::new(HttpMethod::Get, OperationBuilder::new().summary(Some("List items"))),
    ///     ))
    ///     .build();
    /// let config = ApitallyConfig::new("3cd8948c-b589-40a2-a33f-a4e604425c81", "prod").openapi(&doc);
    /// # let _ = config;
    /// ```
    #[cfg(feature = "utoipa")]
    #[cfg_attr(docsrs, doc(cfg(feature = "utoipa")))]
    pub fn openapi(self, doc: &utoipa::openapi::OpenApi) -> Self {
        match doc.to_json() {
            Ok(json) => self.openapi_json(json),
            Err(err) => {
                let mut config = self;
                config.reject(ConfigError::InvalidOption {
                    option: "openapi",
                    value: String::from("(a utoipa OpenApi document)"),
                    expected: format!("a document serde_json can serialise, but: {err}"),
                });
                config
            }
        }
    }

    /// Whether a panicking handler is caught: the client then gets a `500 Internal Server
    /// Error` instead of a dropped connection, and Apitally records a server error with the
    /// panic message and backtrace. A panic hook the app installed keeps working. Defaults to
    /// true.
    pub fn catch_panics(mut self, catch: bool) -> Self {
        self.catch_panics = catch;
        self
    }

    /// Sets the share of requests whose log is kept, from `0.0` (none) to `1.0` (all, the
    /// default). The decision is made on the request's trace id (the incoming W3C
    /// `traceparent`'s, else a random one), so a request's log, its spans and its captured
    /// logs are kept or dropped together, and a service that samples the same trace at the same
    /// rate this way (as OpenTelemetry's ratio sampler does) keeps the same requests. Metrics
    /// count every request whatever is sampled. Excluded requests (health checks, your
    /// `exclude_paths`) are left out before sampling. A value outside `0.0..=1.0` fails the
    /// middleware's `try_new`; its `new` says so in one line and samples `1.0`.
    ///
    /// Sampling is how request logging stays within Apitally's request-log quota: at 1,000
    /// requests per second, `sample_rate(0.01)` logs about 10 per second. A request dropped by
    /// the rate (and no response callback) costs a trace-id lookup and nothing else.
    ///
    /// ```
    /// # use apitally_core as apitally;
    /// # type ApitallyConfig = apitally::ApitallyConfig<actix_web::HttpRequest>;
    /// use apitally::RequestLoggingConfig;
    ///
    /// let config = ApitallyConfig::from_env()
    ///     .request_logging(RequestLoggingConfig::new())
    ///     .sample_rate(0.05)
    ///     // ... but every server error and every slow request.
    ///     .sample_on_response(|res| {
    ///         (res.status() >= 500 || res.duration().as_secs() >= 2).then_some(1.0)
    ///     });
    /// # let _ = config;
    /// ```
    pub fn sample_rate(mut self, rate: f64) -> Self {
        self.sampling.rate = rate;
        self
    }

    /// Decides, before the handler runs, at what rate this request's log is kept (`Some(1.0)`
    /// keeps it, `Some(0.0)` drops it), or `None` for the sample rate. A request it drops costs
    /// nothing further: no capture, no buffering. It sees the method, path, headers and a
    /// consumer set by an outer middleware. A panic in it drops the request's log (the request
    /// and its metrics are untouched). Defaults to none.
    ///
    /// ```
    /// # use apitally_core as apitally;
    /// # type ApitallyConfig = apitally::ApitallyConfig<actix_web::HttpRequest>;
    ///
    /// // Never log the internal admin API; every request of one consumer.
    /// let config = ApitallyConfig::from_env().sample_on_request(|req| {
    ///     if req.path().starts_with("/admin/") {
    ///         return Some(0.0);
    ///     }
    ///     req.consumer()
    ///         .filter(|c| c.get_identifier() == "customer-42")
    ///         .map(|_| 1.0)
    /// });
    /// # let _ = config;
    /// ```
    pub fn sample_on_request<F>(mut self, callback: F) -> Self
    where
        F: Fn(&SampleRequest<'_>) -> Option<f64> + Send + Sync + 'static,
    {
        self.sampling.on_request = Some(Arc::new(callback));
        self
    }

    /// Decides, once the status is known, at what rate this request's log is kept, overriding
    /// the sample rate (`None` leaves it to the sample rate): keep every 5xx, every slow
    /// request, every request of one consumer. It sees the method, path, route, status, time to
    /// the response head, consumer and headers. With it, every request the request stage keeps
    /// is captured, so that it can be kept: it saves quota, not the capture's cost. A panic in
    /// it drops the request's log. Defaults to none.
    pub fn sample_on_response<F>(mut self, callback: F) -> Self
    where
        F: Fn(&SampleResponse<'_>) -> Option<f64> + Send + Sync + 'static,
    {
        self.sampling.on_response = Some(Arc::new(callback));
        self
    }

    /// Checks every option: the credential (client id or write token), env, hub URL or OTLP
    /// endpoint, request-logging patterns, proxy and CA certificates, the sample rate and the
    /// OpenAPI document. the middleware's `try_new` runs it, to fail at
    /// startup.
    ///
    /// ```
    /// # use apitally_core as apitally;
    /// # type ApitallyConfig = apitally::ApitallyConfig<actix_web::HttpRequest>;
    /// use apitally::RequestLoggingConfig;
    ///
    /// let config = ApitallyConfig::new("3cd8948c-b589-40a2-a33f-a4e604425c81", "prod")
    ///     .request_logging(RequestLoggingConfig::new().exclude_paths(["/internal/(.*"]));
    /// let err = config.validate().unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "invalid exclude_paths \"/internal/(.*\": expected a regular expression in the regex \
    ///      crate's syntax, but it is not one: unclosed group",
    /// );
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(err) = &self.rejected {
            return Err(err.clone());
        }
        if !(0.0..=1.0).contains(&self.sampling.rate) {
            return Err(invalid_sample_rate(self.sampling.rate));
        }
        self.parse_trusted_proxies()?;
        self.client.validate()
    }

    /// The trusted proxies, parsed.
    pub(crate) fn parse_trusted_proxies(&self) -> Result<TrustedProxies, ConfigError> {
        TrustedProxies::parse(&self.trusted_proxies).map_err(|reason| ConfigError::InvalidOption {
            option: "trusted_proxies",
            value: cut(&self.trusted_proxies.join(",")),
            expected: format!("IP addresses and CIDR ranges, but {reason}"),
        })
    }

    /// Replaces every invalid optional setting with its default, as `new` does: what `validate`
    /// would refuse and what each becomes, one line each. What is left for `validate` to refuse
    /// is what Apitally cannot run without: the credential, the env and the endpoint.
    pub(crate) fn repair(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(err) = self.rejected.take() {
            lines.push(format!("{err}; it is left out"));
        }
        if !(0.0..=1.0).contains(&self.sampling.rate) {
            lines.push(format!(
                "{}; sampling 1.0 instead",
                invalid_sample_rate(self.sampling.rate)
            ));
            self.sampling.rate = 1.0;
        }
        let entries = std::mem::take(&mut self.trusted_proxies);
        for entry in entries {
            match TrustedProxies::parse([&entry]) {
                Ok(_) => self.trusted_proxies.push(entry),
                Err(reason) => lines.push(format!(
                    "invalid trusted_proxies entry {:?}: {reason}; it is left out",
                    cut(&entry)
                )),
            }
        }
        lines.extend(self.client.repair());
        lines
    }

    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    /// For tests (feature `test-util`): adjusts the core configuration (its `test_*` timings).
    pub fn test_client_config(mut self, f: impl FnOnce(ClientConfig) -> ClientConfig) -> Self {
        self.client = f(self.client);
        self
    }
}

fn invalid_sample_rate(rate: f64) -> ConfigError {
    ConfigError::InvalidOption {
        option: "sample_rate",
        value: rate.to_string(),
        expected: "a number from 0.0 to 1.0".into(),
    }
}

const OPENAPI_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn paths_from_openapi(doc: &serde_json::Value) -> Vec<PathItem> {
    let Some(paths) = doc.get("paths").and_then(|p| p.as_object()) else {
        return Vec::new();
    };
    let mut items = Vec::new();
    for (path, operations) in paths {
        for method in OPENAPI_METHODS {
            if let Some(op) = operations.get(method) {
                let mut item = PathItem::new(method, path.as_str());
                if let Some(summary) = op.get("summary").and_then(|s| s.as_str()) {
                    item = item.summary(summary);
                }
                if let Some(description) = op.get("description").and_then(|s| s.as_str()) {
                    item = item.description(description);
                }
                items.push(item);
            }
        }
    }
    items
}

impl<R> ApitallyConfig<R> {
    /// Keeps the first rejected option for `validate`.
    fn reject(&mut self, err: ConfigError) {
        self.rejected.get_or_insert(err);
    }
}

/// A rejected value as kept in an error: at most 200 characters, then `...`.
fn cut(value: &str) -> String {
    const MAX_CHARS: usize = 200;
    match value.char_indices().nth(MAX_CHARS) {
        Some((at, _)) => format!("{}...", &value[..at]),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests;
