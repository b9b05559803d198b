//! The request pipeline every framework adapter feeds: see [`Pipeline`].
//!
//! ```text
//!  adapter (actix-web, axum)            pipeline (here)                    backend
//!  ─────────────────────────            ───────────────                    ───────
//!  request head ──────────────────────► sample_request, LogStart::new
//!  handler runs (panic hook, capture)
//!  response head / body end / error ──► finish(Finished) ── normalise ──► Backend::record_*
//!                                         sampling (response stage)
//!                                         build_item ──► RequestLogger ──► LogSink
//! ```
//!
//! What names no framework type lives here: the sampling decision and the W3C trace context
//! ([`sampling`]), the log of a request from its start to its item ([`log_start`]), `tracing`
//! capture ([`capture`]), validation and server errors without client values ([`errors`],
//! [`scrub`]), panics ([`panic`](mod@panic)), route templates ([`route`]), proxies and the client address
//! ([`forwarded`]). An adapter reads its framework's request facts and hands them over.

pub(crate) mod attributes;
#[cfg(feature = "tracing")]
pub(crate) mod capture;
pub(crate) mod errors;
pub(crate) mod forwarded;
pub(crate) mod log_start;
pub(crate) mod panic;
pub(crate) mod route;
pub(crate) mod sampling;
pub(crate) mod scrub;

use std::time::{Duration, Instant};

use self::{
    attributes::RequestAttributes,
    forwarded::TrustedProxies,
    log_start::{
        build_item, BodyCapture, LogEnd, LogFacts, LogRequest, LogStart, RequestBody, StartedLog,
    },
    sampling::{Decision, RequestHeaders, SampleRequest, SampleResponse, Sampling, TraceContext},
};
use crate::{
    config::ConsumerCallback, request_log::RequestLogger, ApitallyClient, ApitallyConfig,
    ConfigError, Consumer, Protocol, RequestRecord, ServerError, StartupData, ValidationError,
};

/// Who runs the pipeline: the client string sent to the hub, the framework's name and version.
#[derive(Debug, Clone, Copy)]
pub struct Framework {
    /// `"rust:actix"`, `"rust:axum"`: the hub's client string.
    pub client: &'static str,
    /// `"actix-web"`, `"axum"`: the 1.x startup event's `framework`.
    pub name: &'static str,
    /// The framework's version, sent in `versions`.
    pub version: &'static str,
    /// The adapter's crate name (`"apitally-actix"`): the scope of 1.x SERVER spans.
    pub adapter: &'static str,
    /// The adapter's crate version (`versions.apitally`).
    pub adapter_version: &'static str,
}

/// One app's pipeline: the process-wide client and what decides about each request. Built once
/// from the config; shared by every worker.
pub struct Pipeline {
    client: ApitallyClient,
    sampling: Sampling,
    catch_panics: bool,
    captures_response_bodies: bool,
    otlp: bool,
    trusted_proxies: TrustedProxies,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("client", &self.client)
            .field("catch_panics", &self.catch_panics)
            .finish_non_exhaustive()
    }
}

/// Everything known of a request once its status is, as the adapter read it: handed to
/// [`Pipeline::finish`] once, when the bytes sent are known.
pub struct Finished<'a> {
    /// The method, as sent.
    pub method: &'a str,
    /// The route template, `None` for a request that routing did not match completely (not
    /// an endpoint; logged).
    pub route: Option<&'a str>,
    /// The status sent.
    pub status: u16,
    /// Time to the response head.
    pub elapsed: Duration,
    /// When the adapter saw the request (1.x measures to the last byte).
    pub started: Instant,
    /// Whether it came over HTTPS.
    pub https: bool,
    /// The time to the last byte when already known.
    pub total: Option<Duration>,
    /// Request body bytes, when known.
    pub request_size: Option<u64>,
    /// Response body bytes sent, when known.
    pub response_size: Option<u64>,
    /// Its consumer (anonymous is none).
    pub consumer: Option<&'a Consumer>,
    /// Validation errors of the framework's extractors.
    pub validation_errors: &'a [ValidationError],
    /// Validation errors the app reported.
    pub reported_errors: &'a [ValidationError],
    /// Its server error, if any.
    pub server_error: Option<&'a ServerError>,
    /// Its log, when it is captured.
    pub log: Option<Box<LogStart>>,
    /// Its headers, for the response stage of sampling (gone on some exits).
    pub headers: Option<&'a dyn RequestHeaders>,
    /// The attributes the app set on it.
    pub attributes: Option<&'a RequestAttributes>,
}

/// Whether `method` is one of HTTP's own methods. Methods are client-chosen strings, and an
/// app route without a method guard takes any: only these are endpoints.
#[inline]
pub fn is_standard_method(method: &str) -> bool {
    matches!(
        method,
        "GET" | "POST" | "PUT" | "DELETE" | "PATCH" | "HEAD" | "TRACE" | "CONNECT"
    )
}

impl Pipeline {
    /// Starts the pipeline for `config`, as an adapter's `new` does: never fails. A bad optional
    /// setting (a sample rate out of range, a pattern the regex crate rejects, a bad proxy URL,
    /// ...) is reported in one line and replaced by its default, and the rest works; only what
    /// Apitally cannot run without (a missing or malformed credential, env or endpoint URL)
    /// gives a disabled pipeline, with one line saying so. The lines go to the app's logger,
    /// or to stderr when no logger would show them.
    pub fn new<R>(
        mut config: ApitallyConfig<R>,
        framework: Framework,
    ) -> (Self, Option<ConsumerCallback<R>>) {
        if let Some(by) = config.disabled_by() {
            return (Self::switched_off(by), None);
        }
        for line in config.repair() {
            crate::diag::tell(log::Level::Error, format_args!("apitally: {line}"));
        }
        match Self::try_new(config, framework) {
            Ok(started) => started,
            Err(err) => {
                crate::diag::tell(
                    log::Level::Error,
                    format_args!(
                        "apitally: {err}; Apitally is disabled and requests pass through untouched"
                    ),
                );
                (Self::disabled(), None)
            }
        }
    }

    /// Starts the pipeline for `config` (or joins the client already running for the same
    /// credential and env), as an adapter's `try_new` does; the `identify_consumer` callback is
    /// handed back to the adapter, which calls it with its request. A config switched off (see
    /// [`ApitallyConfig::disabled`]) is not checked, and gives a disabled pipeline.
    ///
    /// # Errors
    ///
    /// Every invalid option, as [`ApitallyConfig::validate`] finds it.
    pub fn try_new<R>(
        config: ApitallyConfig<R>,
        framework: Framework,
    ) -> Result<(Self, Option<ConsumerCallback<R>>), ConfigError> {
        if let Some(by) = config.disabled_by() {
            return Ok((Self::switched_off(by), None));
        }
        config.validate()?;
        let trusted_proxies = config.parse_trusted_proxies()?;
        let mut startup = StartupData::new(framework.client)
            .framework(framework.name)
            .config("sample_rate", config.sampling.rate.into())
            .paths(config.paths)
            .version(framework.name, framework.version)
            .version("apitally", framework.adapter_version)
            .adapter(framework.adapter, framework.adapter_version);
        for (name, set) in [
            ("sample_on_request", config.sampling.on_request.is_some()),
            ("sample_on_response", config.sampling.on_response.is_some()),
        ] {
            if set {
                startup = startup.config(name, true.into());
            }
        }
        let startup = match config.openapi {
            Some(doc) => startup.openapi(doc),
            None => startup,
        };
        let client = ApitallyClient::try_new(config.client, startup)?;
        let mut pipeline = Self::with_client(client, config.catch_panics, config.sampling);
        pipeline.trusted_proxies = trusted_proxies;
        Ok((pipeline, config.identify_consumer))
    }

    /// A pipeline that records nothing: every request passes through.
    pub fn disabled() -> Self {
        Self::with_client(ApitallyClient::disabled(), false, Sampling::new(1.0))
    }

    /// Switched off on purpose: said once, at info level (or on stderr without a logger).
    fn switched_off(by: &str) -> Self {
        crate::diag::tell(
            log::Level::Info,
            format_args!("apitally: switched off by {by}; requests pass through untouched"),
        );
        Self::disabled()
    }

    fn with_client(client: ApitallyClient, catch_panics: bool, sampling: Sampling) -> Self {
        if catch_panics && client.is_enabled() {
            panic::install_panic_hook();
        }
        let captures_response_bodies = client
            .request_logger()
            .is_some_and(|l| l.config().get_log_response_body());
        let otlp = client.protocol() == Some(Protocol::Otlp);
        Self {
            client,
            sampling,
            catch_panics,
            captures_response_bodies,
            otlp,
            trusted_proxies: TrustedProxies::none(),
        }
    }

    /// The proxies whose forwarding headers give the client's address.
    #[inline]
    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.trusted_proxies
    }

    /// The client.
    #[inline]
    pub fn client(&self) -> &ApitallyClient {
        &self.client
    }

    /// Whether the client records and reports.
    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.client.is_enabled()
    }

    /// Whether handler panics are caught (answered 500 and reported).
    #[inline]
    pub fn catches_panics(&self) -> bool {
        self.catch_panics
    }

    /// Whether response bodies may be captured for request logs.
    #[inline]
    pub fn captures_response_bodies(&self) -> bool {
        self.captures_response_bodies
    }

    /// Whether the client speaks Apitally 1.x (requests then carry what its spans need).
    #[inline]
    pub fn is_otlp(&self) -> bool {
        self.otlp
    }

    /// Whether sampling drops every request's log whatever its trace id (a zero rate and no
    /// callback): then no trace id is looked up at all.
    #[inline]
    pub fn drops_all_logs(&self) -> bool {
        self.sampling.drops_all()
    }

    /// Whether the response stage of sampling will read the request's headers for `log`
    /// (a `sample_on_response` callback decides it): an adapter whose request is gone by the
    /// response keeps its headers for [`Finished::headers`] then, and only then.
    pub fn asks_headers_at_response(&self, log: &LogStart) -> bool {
        matches!(log.decision, Decision::AtResponse(_)) && self.sampling.on_response.is_some()
    }

    /// Whether the log of a request to `path` from `user_agent` may be kept at all, asked
    /// before its trace id is looked up: not when the path or the user agent is excluded
    /// (counted as excluded: exclusions come before sampling), nor when sampling drops every
    /// log (counted as sampled out).
    #[inline]
    pub fn wants_log(&self, path: &str, user_agent: Option<&str>) -> bool {
        let Some(logger) = self.client.request_logger() else {
            return false;
        };
        if logger.excludes(path, user_agent) {
            return false;
        }
        if self.sampling.drops_all() {
            logger.note_sampled_out();
            return false;
        }
        true
    }

    /// Starts the log of a request, when request logging is on and exclusions and the request
    /// stage of sampling keep it: the one place every adapter starts a log. `facts` fills the
    /// item's request headers (when the config logs them; the second argument) and reads the
    /// rest of the request's facts; it runs only for a request whose log is kept. A body that
    /// is logged gets a capture the adapter's body wrapper feeds as the handler reads it.
    ///
    /// Inlined up to the first check, so that a request costs no call when logging is off.
    #[inline]
    pub fn start_log<'r>(
        &self,
        req: &LogRequest<'r>,
        facts: impl FnOnce(&mut crate::request_log::RequestLogItem, bool) -> LogFacts<'r>,
    ) -> Option<StartedLog> {
        let logger = self.client.request_logger().filter(|l| l.is_logging())?;
        self.start_kept_log(logger, req, facts)
    }

    fn start_kept_log<'r>(
        &self,
        logger: &RequestLogger,
        req: &LogRequest<'r>,
        facts: impl FnOnce(&mut crate::request_log::RequestLogItem, bool) -> LogFacts<'r>,
    ) -> Option<StartedLog> {
        // Exclusions first, then sampling on the request's trace id, before anything is
        // captured.
        let user_agent = req.headers.get("user-agent");
        if !self.wants_log(req.path, user_agent) {
            return None;
        }
        let trace = TraceContext::of(req.headers.get("traceparent").map(str::as_bytes));
        let view = SampleRequest::new(req.method, req.path, req.headers, req.consumer);
        let decision = self.sample_request(&view, trace.trace_id())?;
        let config = logger.config();
        let content_type = (config.get_log_request_body() && req.has_body)
            .then(|| req.headers.get("content-type"))
            .flatten();
        let log_body = content_type.is_some_and(crate::request_log::is_supported_content_type);
        let (request_body, capture) = if !log_body {
            (RequestBody::None, None)
        } else if req
            .content_length
            .is_some_and(|n| n > crate::request_log::MAX_BODY_SIZE as u64)
        {
            // Not read at all: the marker is all that is logged.
            (RequestBody::TooLarge, None)
        } else {
            let capture = std::sync::Arc::new(std::sync::Mutex::new(BodyCapture::default()));
            (
                RequestBody::Captured(std::sync::Arc::clone(&capture)),
                Some(capture),
            )
        };
        let mut item = log_start::spare_item(logger);
        let facts = facts(&mut item, config.get_log_request_headers());
        let own = log_start::OwnFacts {
            request_body,
            user_agent,
            content_type,
            content_encoding: log_body
                .then(|| req.headers.get("content-encoding"))
                .flatten(),
        };
        let log = LogStart::new(&facts, own, config, item, trace, decision, self.otlp);
        Some(StartedLog {
            log: Box::new(log),
            capture,
        })
    }

    /// The request stage of sampling, on the request's trace id: `None` drops its log here
    /// (nothing is captured; counted as sampled out).
    pub fn sample_request(&self, view: &SampleRequest<'_>, trace_id: u128) -> Option<Decision> {
        let decision = self.sampling.on_request(view, trace_id);
        if decision.is_none() {
            if let Some(logger) = self.client.request_logger() {
                logger.note_sampled_out();
            }
        }
        decision
    }

    /// Records a finished request and logs it: the one place every exit of every adapter ends.
    /// Only a standard method with a route is an endpoint (counted, with its validation and
    /// server errors); any request may be logged, after the response stage of sampling.
    pub fn finish(&self, f: Finished<'_>) {
        let client = &self.client;
        // Apitally 1.x's duration runs to the last byte sent (one more clock read).
        let duration = self
            .otlp
            .then(|| f.total.unwrap_or_else(|| f.started.elapsed()));
        let consumer = f.consumer.filter(|c| !c.is_anonymous());
        let route = f.route.filter(|_| is_standard_method(f.method));
        if let Some(route) = route {
            client.record_request(
                &RequestRecord::new(f.method, route, f.status, f.elapsed)
                    .duration(duration)
                    .https(f.https)
                    .consumer(consumer)
                    .request_size(f.request_size)
                    .response_size(f.response_size),
            );
            for error in f.validation_errors.iter().chain(f.reported_errors) {
                client.record_validation_error(f.method, route, consumer, error);
            }
            if let Some(error) = f.server_error {
                client.record_server_error(f.method, route, consumer, error);
            }
        }
        let Some(log) = f.log else {
            return;
        };
        let Some(logger) = client.request_logger() else {
            return;
        };
        // The response stage of sampling, now that everything about the request is known.
        let view = SampleResponse {
            method: f.method,
            path: crate::request_log::url_path(&log.item.request.url),
            route,
            status: f.status,
            duration: f.elapsed,
            consumer,
            headers: f.headers,
            attributes: f.attributes,
        };
        if !self
            .sampling
            .on_response(log.decision, log.trace_context.trace_id, &view)
        {
            logger.note_sampled_out();
            return;
        }
        let item = build_item(
            *log,
            LogEnd {
                method: f.method,
                route,
                status: f.status,
                elapsed: f.elapsed,
                duration,
                consumer: consumer.map(Consumer::get_identifier),
                request_size: f.request_size,
                response_size: f.response_size,
                server_error: f.server_error,
                attributes: f.attributes,
            },
        );
        logger.log(item);
    }
}
