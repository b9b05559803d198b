//! Framework-neutral inputs that adapters hand to the core: one finished request, and the
//! validation and server errors seen on it.

use std::{
    backtrace::Backtrace,
    sync::{Arc, OnceLock},
    time::Duration,
};

use crate::Consumer;

/// One finished request, as an adapter saw it. Borrowed, so building one allocates nothing.
///
/// ```
/// # use apitally_core as apitally;
/// use std::time::Duration;
/// use apitally::Consumer;
/// use apitally::adapter::RequestRecord;
///
/// let consumer = Consumer::new("customer-42");
/// let record = RequestRecord::new("GET", "/items/{id}", 200, Duration::from_millis(12))
///     .consumer(Some(&consumer))
///     .request_size(None)
///     .response_size(Some(2_570));
/// assert_eq!(record.get_route(), "/items/{id}");
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct RequestRecord<'a> {
    pub(crate) method: &'a str,
    pub(crate) route: &'a str,
    pub(crate) status: u16,
    pub(crate) consumer: Option<&'a Consumer>,
    pub(crate) response_time: Duration,
    pub(crate) request_size: Option<u64>,
    pub(crate) response_size: Option<u64>,
    pub(crate) duration: Option<Duration>,
    pub(crate) https: bool,
}

impl<'a> RequestRecord<'a> {
    /// A request with the given uppercase method, route template (never a raw path), final
    /// status code and response time; no consumer and unknown sizes.
    #[inline]
    pub fn new(method: &'a str, route: &'a str, status: u16, response_time: Duration) -> Self {
        Self {
            method,
            route,
            status,
            consumer: None,
            response_time,
            request_size: None,
            response_size: None,
            duration: None,
            https: false,
        }
    }

    /// Sets the time from the request to the response's last byte, which Apitally 1.x
    /// measures (the hub takes the time to the response head). Defaults to the response time.
    #[inline]
    #[must_use]
    pub fn duration(mut self, duration: Option<Duration>) -> Self {
        self.duration = duration;
        self
    }

    /// Sets whether the request came over HTTPS (`url.scheme` in Apitally 1.x). Defaults to
    /// false.
    #[inline]
    #[must_use]
    pub fn https(mut self, https: bool) -> Self {
        self.https = https;
        self
    }

    /// Sets the consumer; an anonymous one (empty identifier) counts as none. Defaults to none.
    #[inline]
    #[must_use]
    pub fn consumer(mut self, consumer: Option<&'a Consumer>) -> Self {
        self.consumer = consumer.filter(|c| !c.is_anonymous());
        self
    }

    /// Sets the request body size in bytes, `None` when unknown. Defaults to unknown.
    #[inline]
    #[must_use]
    pub fn request_size(mut self, size: Option<u64>) -> Self {
        self.request_size = size;
        self
    }

    /// Sets the response body size in bytes, `None` when unknown. Defaults to unknown.
    #[inline]
    #[must_use]
    pub fn response_size(mut self, size: Option<u64>) -> Self {
        self.response_size = size;
        self
    }

    /// The route template.
    pub fn get_route(&self) -> &'a str {
        self.route
    }

    /// The method.
    pub fn get_method(&self) -> &'a str {
        self.method
    }

    /// The status code.
    pub fn get_status(&self) -> u16 {
        self.status
    }

    /// The consumer, if any.
    pub fn get_consumer(&self) -> Option<&'a Consumer> {
        self.consumer
    }
}

/// One validation error of a request: where (`loc`, e.g. `["body", "name"]`), what (`msg`) and
/// its kind (`type`, may be empty).
///
/// ```
/// # use apitally_core as apitally;
/// use apitally::ValidationError;
///
/// let err = ValidationError::new(["body", "name"], "field required", "missing");
/// assert_eq!(err.loc(), ["body", "name"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ValidationError {
    pub(crate) loc: Vec<String>,
    pub(crate) msg: String,
    pub(crate) error_type: String,
}

impl ValidationError {
    /// Creates a validation error.
    pub fn new<L, S>(loc: L, msg: impl Into<String>, error_type: impl Into<String>) -> Self
    where
        L: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            loc: loc.into_iter().map(Into::into).collect(),
            msg: msg.into(),
            error_type: error_type.into(),
        }
    }

    /// Where the error is, outermost first.
    pub fn loc(&self) -> &[String] {
        &self.loc
    }

    /// The message.
    pub fn msg(&self) -> &str {
        &self.msg
    }

    /// The kind of error (may be empty).
    pub fn error_type(&self) -> &str {
        &self.error_type
    }
}

/// A server error (a request that ended with status 500 and an error object): a stable type
/// name to group by, the message and the stack or source chain, most recent first.
///
/// Error text can quote what a client sent or a secret the app held, and it leaves the
/// process in both protocols: the message and the traceback are scrubbed when the error is
/// made. Values quoted with `"` (and serde's backtick-quoted values) are left out, the
/// user-info of URLs is masked (`postgres://******@db/app`), and so is the value of every
/// `name=value` pair whose name is a secret's (`password=******`). The message is also trimmed
/// and cut to 2048 characters, the traceback to 65536, when recorded.
///
/// ```
/// # use apitally_core as apitally;
/// use apitally::adapter::ServerError;
///
/// let err = ServerError::new("std::io::Error", "disk full", "   0: app::save\n   1: app::handler");
/// assert_eq!(err.error_type(), "std::io::Error");
///
/// let err = ServerError::new(
///     "sqlx::Error",
///     "cannot connect to postgres://admin:hunter2@db:5432/app",
///     "",
/// );
/// assert_eq!(err.msg(), "cannot connect to postgres://******@db:5432/app");
/// ```
#[derive(Clone)]
pub struct ServerError {
    pub(crate) error_type: String,
    pub(crate) msg: String,
    /// Read through `traceback()`, which symbolises a deferred backtrace.
    traceback: String,
    /// A backtrace captured on the request path and symbolised off it, when first read.
    deferred: Option<Arc<Deferred>>,
}

/// A backtrace captured unresolved (cheap), with the text that goes before its frames.
/// Symbolising takes milliseconds (a debug build: hundreds), so it happens on the client's
/// background thread or the request logger's, never while a request waits.
pub(crate) struct Deferred {
    prefix: String,
    backtrace: Backtrace,
    /// Frames before the first of these are the capture's own machinery.
    skip_before: fn(&str) -> &str,
    text: OnceLock<String>,
}

impl Deferred {
    /// A traceback of `prefix` and then the frames of `backtrace` after those `skip_before`
    /// trims.
    pub(crate) fn new(
        prefix: String,
        backtrace: Backtrace,
        skip_before: fn(&str) -> &str,
    ) -> Arc<Self> {
        Arc::new(Self {
            prefix,
            backtrace,
            skip_before,
            text: OnceLock::new(),
        })
    }
}

impl ServerError {
    /// Creates a server error.
    pub fn new(
        error_type: impl Into<String>,
        msg: impl Into<String>,
        traceback: impl Into<String>,
    ) -> Self {
        Self {
            error_type: error_type.into(),
            msg: crate::pipeline::scrub::error_text(&msg.into()),
            traceback: crate::pipeline::scrub::error_text(&traceback.into()),
            deferred: None,
        }
    }

    /// A server error whose traceback is `prefix` and then the frames of `backtrace` after
    /// those `skip_before` trims, symbolised when first read.
    pub(crate) fn with_backtrace(
        error_type: impl Into<String>,
        msg: impl Into<String>,
        prefix: String,
        backtrace: Backtrace,
        skip_before: fn(&str) -> &str,
    ) -> Self {
        Self::with_trace(
            error_type,
            msg,
            Deferred::new(prefix, backtrace, skip_before),
        )
    }

    /// A server error with a deferred traceback, possibly shared with earlier errors (the
    /// same panic location: symbolised once).
    pub(crate) fn with_trace(
        error_type: impl Into<String>,
        msg: impl Into<String>,
        trace: Arc<Deferred>,
    ) -> Self {
        let mut error = Self::new(error_type, msg, "");
        error.deferred = Some(trace);
        error
    }

    /// The type name errors are grouped by.
    pub fn error_type(&self) -> &str {
        &self.error_type
    }

    /// The message.
    pub fn msg(&self) -> &str {
        &self.msg
    }

    /// The traceback. A backtrace captured on the request path is symbolised here, once (off
    /// the request path: the client and the request logger read it in the background).
    pub fn traceback(&self) -> &str {
        match &self.deferred {
            None => &self.traceback,
            Some(deferred) => deferred.text.get_or_init(|| {
                let frames = deferred.backtrace.to_string();
                let frames = (deferred.skip_before)(&frames);
                let mut text = deferred.prefix.clone();
                if !frames.is_empty() {
                    if !text.is_empty() {
                        text.push('\n');
                    }
                    text.push_str(frames);
                }
                crate::pipeline::scrub::error_text(&text)
            }),
        }
    }

    /// Whether reading the traceback would symbolise a backtrace now.
    pub(crate) fn is_deferred(&self) -> bool {
        self.deferred
            .as_ref()
            .is_some_and(|d| d.text.get().is_none())
    }

    /// The same error without its unresolved backtrace (its prefix kept): when too many wait
    /// to be symbolised.
    pub(crate) fn without_backtrace(&self) -> Self {
        match &self.deferred {
            Some(deferred) if deferred.text.get().is_none() => Self {
                error_type: self.error_type.clone(),
                msg: self.msg.clone(),
                traceback: crate::pipeline::scrub::error_text(&deferred.prefix),
                deferred: None,
            },
            _ => self.clone(),
        }
    }
}

impl std::fmt::Debug for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerError")
            .field("error_type", &self.error_type)
            .field("msg", &self.msg)
            .field("traceback", &self.traceback())
            .finish()
    }
}

impl PartialEq for ServerError {
    fn eq(&self, other: &Self) -> bool {
        self.error_type == other.error_type
            && self.msg == other.msg
            && self.traceback() == other.traceback()
    }
}

impl Eq for ServerError {}
