//! For request-logging configuration, see [`RequestLoggingConfig`].

use std::{fmt, sync::Arc};

use super::{
    exclude::EXCLUDE_PATH_PATTERNS,
    item::{CapturedLog, CapturedSpan, LoggedRequest, LoggedResponse},
};

type RequestBodyCallback = Arc<dyn Fn(&LoggedRequest) -> Option<Vec<u8>> + Send + Sync>;
type ResponseBodyCallback =
    Arc<dyn Fn(&LoggedRequest, &LoggedResponse) -> Option<Vec<u8>> + Send + Sync>;
type ExcludeCallback = Arc<dyn Fn(&LoggedRequest, &LoggedResponse) -> bool + Send + Sync>;
type LogRecordCallback = Arc<dyn Fn(&mut CapturedLog) -> bool + Send + Sync>;
type SpanCallback = Arc<dyn Fn(&mut CapturedSpan) -> bool + Send + Sync>;

/// A hub v2 request-log file is closed once this many compressed bytes were written to it.
pub(crate) const MAX_FILE_SIZE: u64 = 1_000_000;

/// Request logging: individual requests with headers and bodies, masked, sent to Apitally.
///
/// With a client id (the hub), off unless a config is passed (`ApitallyConfig::request_logging`);
/// with a write token (Apitally 1.x), on. Each option not set here keeps its protocol's default
/// (the table is on `ApitallyConfig::request_logging`). Option names follow the other Apitally
/// SDKs. Masking, serialisation and compression run on a background thread; the request path
/// only builds the item and queues it.
///
/// Sensitive values are masked before they leave the app, as `******` over the hub and
/// `[REDACTED]` over Apitally 1.x: header names matching `auth`, `api[-_]?key`, `secret`,
/// `token`, `cookie`, `session`, `signature`, `credential`; query parameters (of the URL, of
/// `Referer`/`Location`/`Content-Location` URLs, and of URLs nested in query values) matching
/// `auth`, `api[-_]?key`, `secret`, `token`, `password`, `pwd`, `signature`, `^sig$`,
/// `credential`, `private[-_]?key`, `session`, `cvv`, `cvc`; JSON body fields matching
/// `password`, `pwd`, `token`, `secret`, `auth`, `card[-_ ]?number`, `ccv`, `cvv`, `cvc`, `ssn`,
/// `api[-_]?key`, `private[-_]?key`, `signature`, `^sig$`, `credential`, `^refresh$`, `session`
/// (all case-insensitive, anywhere in the name unless anchored). Captured span attributes, log
/// event fields and request attributes are masked by the header and body-field patterns. Extra
/// patterns add to these.
///
/// ```
/// # use apitally_core as apitally;
/// use apitally::RequestLoggingConfig;
///
/// let logging = RequestLoggingConfig::new()
///     .log_request_headers(true)
///     .log_request_body(true)
///     .log_response_body(true)
///     .mask_headers(["x-internal-.*"])
///     .mask_body_fields(["iban"])
///     .exclude_paths(["/internal/.*"])
///     .exclude(|req, _res| req.method == "HEAD");
/// # let _ = logging;
/// ```
#[derive(Clone)]
#[must_use]
pub struct RequestLoggingConfig {
    pub(crate) log_query_params: bool,
    pub(crate) log_request_headers: bool,
    pub(crate) log_request_body: bool,
    pub(crate) log_response_headers: bool,
    pub(crate) log_response_body: bool,
    pub(crate) log_exception: bool,
    /// `None`: the protocol's default (see `for_protocol`).
    pub(crate) capture_logs: Option<bool>,
    /// `None`: the protocol's default (see `for_protocol`).
    pub(crate) capture_traces: Option<bool>,
    pub(crate) mask_query_params: Vec<String>,
    pub(crate) mask_headers: Vec<String>,
    pub(crate) mask_body_fields: Vec<String>,
    pub(crate) mask_request_body: Option<RequestBodyCallback>,
    pub(crate) mask_response_body: Option<ResponseBodyCallback>,
    pub(crate) exclude_paths: Vec<String>,
    pub(crate) exclude: Option<ExcludeCallback>,
    pub(crate) mask_log_record: Option<LogRecordCallback>,
    pub(crate) mask_span: Option<SpanCallback>,
    pub(crate) max_buffer_bytes: usize,
    pub(crate) max_file_size: u64,
}

impl fmt::Debug for RequestLoggingConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestLoggingConfig")
            .field("log_query_params", &self.log_query_params)
            .field("log_request_headers", &self.log_request_headers)
            .field("log_request_body", &self.log_request_body)
            .field("log_response_headers", &self.log_response_headers)
            .field("log_response_body", &self.log_response_body)
            .field("log_exception", &self.log_exception)
            .field("capture_logs", &self.capture_logs)
            .field("capture_traces", &self.capture_traces)
            .field("mask_query_params", &self.mask_query_params)
            .field("mask_headers", &self.mask_headers)
            .field("mask_body_fields", &self.mask_body_fields)
            .field("mask_request_body", &self.mask_request_body.is_some())
            .field("mask_response_body", &self.mask_response_body.is_some())
            .field("exclude_paths", &self.exclude_paths)
            .field("exclude", &self.exclude.is_some())
            .field("mask_log_record", &self.mask_log_record.is_some())
            .field("mask_span", &self.mask_span.is_some())
            .field("max_buffer_bytes", &self.max_buffer_bytes)
            .finish()
    }
}

impl Default for RequestLoggingConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestLoggingConfig {
    /// Request logging with the defaults of every option.
    pub fn new() -> Self {
        Self {
            log_query_params: true,
            log_request_headers: false,
            log_request_body: false,
            log_response_headers: true,
            log_response_body: false,
            log_exception: true,
            capture_logs: None,
            capture_traces: None,
            mask_query_params: Vec::new(),
            mask_headers: Vec::new(),
            mask_body_fields: Vec::new(),
            mask_request_body: None,
            mask_response_body: None,
            exclude_paths: Vec::new(),
            exclude: None,
            mask_log_record: None,
            mask_span: None,
            max_buffer_bytes: 16 << 20,
            max_file_size: MAX_FILE_SIZE,
        }
    }

    /// Whether the URL keeps its query string (masked). Defaults to true.
    pub fn log_query_params(mut self, on: bool) -> Self {
        self.log_query_params = on;
        self
    }

    /// Whether request headers are logged (masked). Defaults to false.
    pub fn log_request_headers(mut self, on: bool) -> Self {
        self.log_request_headers = on;
        self
    }

    /// Whether request bodies are logged: JSON, text, HTML and ndjson bodies up to 50,000 bytes,
    /// JSON fields masked. Defaults to false.
    pub fn log_request_body(mut self, on: bool) -> Self {
        self.log_request_body = on;
        self
    }

    /// Whether response headers are logged (masked). Defaults to true.
    pub fn log_response_headers(mut self, on: bool) -> Self {
        self.log_response_headers = on;
        self
    }

    /// Whether response bodies are logged, as for request bodies. Defaults to false.
    pub fn log_response_body(mut self, on: bool) -> Self {
        self.log_response_body = on;
        self
    }

    /// Apitally 1.x's name for [`log_request_headers`](Self::log_request_headers).
    pub fn capture_request_headers(self, on: bool) -> Self {
        self.log_request_headers(on)
    }

    /// Apitally 1.x's name for [`log_request_body`](Self::log_request_body).
    pub fn capture_request_body(self, on: bool) -> Self {
        self.log_request_body(on)
    }

    /// Apitally 1.x's name for [`log_response_headers`](Self::log_response_headers).
    pub fn capture_response_headers(self, on: bool) -> Self {
        self.log_response_headers(on)
    }

    /// Apitally 1.x's name for [`log_response_body`](Self::log_response_body).
    pub fn capture_response_body(self, on: bool) -> Self {
        self.log_response_body(on)
    }

    /// The options as Apitally 1.x's startup event lists them (`config`, snake-case 1.x
    /// names; callbacks as `true`, only when set; patterns as given, not the defaults).
    pub(crate) fn startup_config(&self) -> Vec<(String, serde_json::Value)> {
        use serde_json::Value;
        let mut out: Vec<(String, Value)> = vec![
            ("capture_logs".into(), self.get_capture_logs().into()),
            (
                "capture_request_headers".into(),
                self.log_request_headers.into(),
            ),
            ("capture_request_body".into(), self.log_request_body.into()),
            (
                "capture_response_headers".into(),
                self.log_response_headers.into(),
            ),
            (
                "capture_response_body".into(),
                self.log_response_body.into(),
            ),
            (
                "mask_query_params".into(),
                self.mask_query_params.clone().into(),
            ),
            ("mask_headers".into(), self.mask_headers.clone().into()),
            (
                "mask_body_fields".into(),
                self.mask_body_fields.clone().into(),
            ),
            ("exclude_paths".into(), self.exclude_paths.clone().into()),
        ];
        for (name, set) in [
            ("mask_request_body", self.mask_request_body.is_some()),
            ("mask_response_body", self.mask_response_body.is_some()),
            ("mask_log_record", self.mask_log_record.is_some()),
            ("mask_span", self.mask_span.is_some()),
        ] {
            if set {
                out.push((name.into(), true.into()));
            }
        }
        out
    }

    /// Whether a server error's type, message and traceback are attached. Defaults to true.
    pub fn log_exception(mut self, on: bool) -> Self {
        self.log_exception = on;
        self
    }

    /// Whether application log records (`tracing` events, and `log` records through
    /// `tracing-log`) emitted while a request is handled are attached to its log line. Needs the
    /// adapter's tracing layer. Defaults to the protocol's default: true with a write token
    /// (Apitally 1.x), false with a client id (the hub).
    pub fn capture_logs(mut self, on: bool) -> Self {
        self.capture_logs = Some(on);
        self
    }

    /// Whether the request's trace (a root span `METHOD /route` and the `tracing` spans created
    /// inside it) is attached to its log line. Needs the adapter's tracing layer. Defaults to
    /// the protocol's default: true with a write token (Apitally 1.x), false with a client id
    /// (the hub).
    pub fn capture_traces(mut self, on: bool) -> Self {
        self.capture_traces = Some(on);
        self
    }

    /// Whether log records are captured: as set, else the hub's default (false); the config
    /// the client runs with has the protocol's default filled in.
    pub fn get_capture_logs(&self) -> bool {
        self.capture_logs.unwrap_or(false)
    }

    /// Whether traces are captured: as set, else the hub's default (false); the config the
    /// client runs with has the protocol's default filled in.
    pub fn get_capture_traces(&self) -> bool {
        self.capture_traces.unwrap_or(false)
    }

    /// This config with the protocol's defaults for what the user did not set: Apitally 1.x
    /// captures application logs and spans unless told not to (protocol-v1.md §6).
    pub(crate) fn for_protocol(mut self, protocol: crate::Protocol) -> Self {
        let default = protocol == crate::Protocol::Otlp;
        self.capture_logs.get_or_insert(default);
        self.capture_traces.get_or_insert(default);
        self
    }

    /// Leaves out every pattern the regex crate rejects (as `new` does), and returns why each
    /// was left out.
    pub(crate) fn drop_invalid_patterns(&mut self) -> Vec<crate::ConfigError> {
        use super::mask::Patterns;
        let mut errors = Vec::new();
        for (option, patterns) in [
            ("mask_query_params", &mut self.mask_query_params),
            ("mask_headers", &mut self.mask_headers),
            ("mask_body_fields", &mut self.mask_body_fields),
            ("exclude_paths", &mut self.exclude_paths),
        ] {
            patterns.retain(
                |pattern| match Patterns::new(&[], std::slice::from_ref(pattern)) {
                    Ok(_) => true,
                    Err(err) => {
                        errors.push(invalid_pattern(option, pattern, &err));
                        false
                    }
                },
            );
        }
        errors
    }

    /// Extra regexes for query parameter names to mask (case-insensitive, anywhere in the name),
    /// in addition to the defaults. Defaults to none.
    pub fn mask_query_params<I, S>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.mask_query_params
            .extend(patterns.into_iter().map(Into::into));
        self
    }

    /// Extra regexes for header names to mask, in addition to the defaults. Defaults to none.
    pub fn mask_headers<I, S>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.mask_headers
            .extend(patterns.into_iter().map(Into::into));
        self
    }

    /// Extra regexes for JSON body field names to mask, in addition to the defaults. Defaults
    /// to none.
    pub fn mask_body_fields<I, S>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.mask_body_fields
            .extend(patterns.into_iter().map(Into::into));
        self
    }

    /// A callback that returns the request body to log (for example with fields removed), or
    /// `None` to log `<masked>` instead. Runs on the background thread; a panic in it logs
    /// `<masked>`. Defaults to none.
    pub fn mask_request_body<F>(mut self, callback: F) -> Self
    where
        F: Fn(&LoggedRequest) -> Option<Vec<u8>> + Send + Sync + 'static,
    {
        self.mask_request_body = Some(Arc::new(callback));
        self
    }

    /// As [`mask_request_body`](Self::mask_request_body), for response bodies. Defaults to none.
    pub fn mask_response_body<F>(mut self, callback: F) -> Self
    where
        F: Fn(&LoggedRequest, &LoggedResponse) -> Option<Vec<u8>> + Send + Sync + 'static,
    {
        self.mask_response_body = Some(Arc::new(callback));
        self
    }

    /// Extra regexes for paths not to log (matched against the route template, or the URL path
    /// of unmatched requests), in addition to the health-check, favicon and similar defaults.
    /// Exclusions affect logging only, never metrics. Defaults to none.
    pub fn exclude_paths<I, S>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.exclude_paths
            .extend(patterns.into_iter().map(Into::into));
        self
    }

    /// A callback that returns true for requests not to log. Runs on the background thread;
    /// a panic in it counts as false. Defaults to none.
    pub fn exclude<F>(mut self, callback: F) -> Self
    where
        F: Fn(&LoggedRequest, &LoggedResponse) -> bool + Send + Sync + 'static,
    {
        self.exclude = Some(Arc::new(callback));
        self
    }

    /// A callback that sees each captured application log record before it leaves the app: it
    /// may redact it in place (the message, the logger name), and returns false to drop it.
    /// Runs on the background thread, after the record was captured; a panic in it drops the
    /// record (never the request), with one error log. Defaults to none.
    ///
    /// ```
    /// # use apitally_core as apitally;
    /// use apitally::RequestLoggingConfig;
    ///
    /// let logging = RequestLoggingConfig::new()
    ///     .capture_logs(true)
    ///     .mask_log_record(|record| {
    ///         if record.message.contains("card=") {
    ///             record.message = "card details redacted".into();
    ///         }
    ///         record.logger != "noisy_dependency"
    ///     });
    /// # let _ = logging;
    /// ```
    pub fn mask_log_record<F>(mut self, callback: F) -> Self
    where
        F: Fn(&mut CapturedLog) -> bool + Send + Sync + 'static,
    {
        self.mask_log_record = Some(Arc::new(callback));
        self
    }

    /// A callback that sees each captured span of a logged request before it leaves the app,
    /// after attributes whose names match the header and body-field patterns were masked: it
    /// may rewrite or remove attributes (or the name) in place, and returns false to drop the
    /// span. Runs on the background thread; a panic in it drops the span (never the request),
    /// with one error log. Defaults to none.
    ///
    /// ```
    /// # use apitally_core as apitally;
    /// use apitally::RequestLoggingConfig;
    ///
    /// let logging = RequestLoggingConfig::new()
    ///     .capture_traces(true)
    ///     .mask_span(|span| {
    ///         // SQL text can quote what users typed.
    ///         span.attributes.remove("db.statement");
    ///         span.name != "health_probe"
    ///     });
    /// # let _ = logging;
    /// ```
    pub fn mask_span<F>(mut self, callback: F) -> Self
    where
        F: Fn(&mut CapturedSpan) -> bool + Send + Sync + 'static,
    {
        self.mask_span = Some(Arc::new(callback));
        self
    }

    /// Checks that every extra pattern (`mask_query_params`, `mask_headers`,
    /// `mask_body_fields`, `exclude_paths`) is a valid regular expression in the
    /// [`regex`](https://docs.rs/regex) crate's syntax. The client runs it when it starts, so an
    /// invalid pattern is a [`ConfigError`](crate::ConfigError) from `try_new`, naming the
    /// option and the pattern.
    ///
    /// ```
    /// # use apitally_core as apitally;
    /// use apitally::{ConfigError, RequestLoggingConfig};
    ///
    /// let err = RequestLoggingConfig::new().mask_headers(["x-secret-[a-z"]).validate().unwrap_err();
    /// assert!(matches!(err, ConfigError::InvalidOption { option: "mask_headers", .. }));
    /// assert!(err.to_string().contains("x-secret-[a-z"));
    /// ```
    pub fn validate(&self) -> Result<(), crate::ConfigError> {
        use super::mask::{self, Patterns};
        let options: [(&'static str, &[&str], &[String]); 4] = [
            (
                "mask_query_params",
                &mask::QUERY_PARAM_PATTERNS,
                &self.mask_query_params,
            ),
            ("mask_headers", &mask::HEADER_PATTERNS, &self.mask_headers),
            (
                "mask_body_fields",
                &mask::BODY_FIELD_PATTERNS,
                &self.mask_body_fields,
            ),
            ("exclude_paths", &EXCLUDE_PATH_PATTERNS, &self.exclude_paths),
        ];
        for (option, defaults, extra) in options {
            for pattern in extra {
                if let Err(err) = Patterns::new(&[], std::slice::from_ref(pattern)) {
                    return Err(invalid_pattern(option, pattern, &err));
                }
            }
            if let Err(err) = Patterns::new(defaults, extra) {
                return Err(invalid_pattern(option, &extra.join(", "), &err));
            }
        }
        Ok(())
    }

    /// Whether request bodies are logged.
    pub fn get_log_request_body(&self) -> bool {
        self.log_request_body
    }

    /// Whether request headers are logged.
    pub fn get_log_request_headers(&self) -> bool {
        self.log_request_headers
    }

    /// Whether response bodies are logged.
    pub fn get_log_response_body(&self) -> bool {
        self.log_response_body
    }

    /// Whether response headers are logged.
    pub fn get_log_response_headers(&self) -> bool {
        self.log_response_headers
    }

    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    /// For tests (feature `test-util`): the compressed size at which a log file is closed
    /// (1,000,000 bytes).
    pub fn test_max_file_size(mut self, bytes: u64) -> Self {
        self.max_file_size = bytes;
        self
    }

    /// The most memory that requests waiting to be written may take; past it, new requests are
    /// not logged, and the number dropped is logged once per sync. Defaults to 16 MiB.
    pub fn max_buffer_bytes(mut self, bytes: usize) -> Self {
        self.max_buffer_bytes = bytes;
        self
    }
}

/// The error for a pattern the regex crate rejects: its reason, without the multi-line drawing
/// of where in the pattern it failed.
fn invalid_pattern(option: &'static str, pattern: &str, err: &regex::Error) -> crate::ConfigError {
    let reason = match err {
        regex::Error::Syntax(text) => text
            .lines()
            .rev()
            .find_map(|line| line.trim().strip_prefix("error: "))
            .unwrap_or("a syntax error")
            .to_owned(),
        other => other.to_string(),
    };
    crate::ConfigError::InvalidOption {
        option,
        value: crate::error::cut(pattern),
        expected: format!(
            "a regular expression in the regex crate's syntax, but it is not one: {reason}"
        ),
    }
}
