//! For middleware documentation, see [`Apitally`].

use std::{
    cell::Cell,
    future::{ready, Future, Ready},
    marker::PhantomData,
    panic::{catch_unwind, AssertUnwindSafe},
    pin::Pin,
    rc::Rc,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use actix_web::{
    body::{BodySize, MessageBody},
    dev::{forward_ready, Payload, Service, ServiceRequest, ServiceResponse, Transform},
    error::PayloadError,
    http::ConnectionType,
    http::{header, Method},
    web::Bytes,
    Error, HttpMessage,
};
use apitally_core::{
    adapter::{
        in_request, panic_error, response_capture, Framework, LogFacts, LogRequest, LogStart,
        Pipeline,
    },
    ConfigError, Consumer,
};
use futures_core::Stream;
use pin_project_lite::pin_project;

use crate::{
    body::{ApitallyBody, Slot},
    errors,
    notes::Tracked,
    record::{Record, Reported, RequestSize, Streaming},
    request::{
        copy_headers, header_str, https_and_host, ActixHeaders, ObservedPayload, X_FORWARDED_FOR,
    },
    shared::Shared,
    worker::{EarlyRoute, Worker},
    ApitallyConfig,
};

/// Who runs the pipeline.
const FRAMEWORK: Framework = Framework {
    client: "rust:actix",
    name: "actix-web",
    version: env!("APITALLY_ACTIX_WEB_VERSION"),
    adapter: env!("CARGO_PKG_NAME"),
    adapter_version: env!("CARGO_PKG_VERSION"),
};

/// Middleware that reports every request to [Apitally](https://apitally.io): traffic, errors,
/// response times and sizes per endpoint and per consumer.
///
/// Build it once, before the server, and clone it into each worker's `App`; after the server
/// stops, await [`shutdown`](Self::shutdown) for the final sync. Building it inside the
/// `HttpServer::new` closure (`App::new().wrap(Apitally::new(config.clone()))`) works as well:
/// every worker finds the same client, with one sync thread and one instance UUID.
///
/// # What is measured
/// - **Route**: the matched route template (`/items/{id}`, with `{id:\d+}` shown as `{id}`),
///   read after routing, so scopes and guards are right. Only requests that routing matched
///   completely are endpoints: a request that reaches a default service (a 404 for an unknown
///   path, the 404 of a `#[get]` resource asked with another method, or a resource's 405) is
///   not counted (request logs still show it), and neither are `OPTIONS` requests.
/// - **Every exit**: a response, a streamed response, a client that disconnects mid-body, an
///   `Err` from an inner middleware (an auth layer built with `middleware::from_fn`, say) and a
///   handler panic are all recorded with the consumer, the validation errors the request
///   reported and the bytes the client got. (An `Err` or a panic drops the request inside
///   actix, so the [`identify_consumer`](ApitallyConfig::identify_consumer) callback cannot
///   run for them: set the consumer on the request, with
///   [`ConsumerExt::set_consumer`](crate::ConsumerExt::set_consumer), before rejecting it.)
/// - **Status**: the response's status, or the error's for a handler `Err`.
/// - **Response time**: from the middleware to the response head (the body's streaming time is
///   not included).
/// - **Response size**: a body whose size is known up front (anything sent with a
///   `Content-Length`, including sized streams such as actix-files' `NamedFile`) is counted with
///   that size at the response head (the request is recorded then, with no per-chunk
///   bookkeeping); a chunked stream is counted as it streams, and a client that disconnects
///   mid-stream is counted with what it got.
/// - **Request size**: `Content-Length`, or the bytes the handler read of a chunked body.
///
/// # Order with other middleware
/// In actix-web the last `.wrap()` is the outermost layer: it sees the request first and the
/// response last. Wrap Apitally
/// - *after* (outside) the auth layer, so that Apitally sees the requests it rejects: a `401`
///   or `403` is then counted, with the consumer the auth layer set
///   ([`ConsumerExt::set_consumer`](crate::ConsumerExt::set_consumer)) before rejecting;
///   wrapped inside it, Apitally never sees them;
/// - *before* (inside) [`Compress`](https://docs.rs/actix-web/4/actix_web/middleware/struct.Compress.html),
///   so that response sizes are those of the uncompressed bodies (outside it, compressed sizes);
/// - inside [`TracingLogger`](https://docs.rs/tracing-actix-web) (tracing-actix-web), so that
///   the request's root span is open while Apitally and the handler run: captured logs and
///   spans then go with their request as without it;
/// - `Logger` and sentry-actix's `Sentry` can go anywhere outside the auth layer; outside
///   Apitally, as here, they see the `500` Apitally makes of a handler panic.
///
/// ```no_run
/// # use apitally_actix as apitally;
/// use actix_web::{
///     body::MessageBody,
///     dev::{ServiceRequest, ServiceResponse},
///     middleware::{from_fn, Compress, Logger, Next},
///     App, Error, HttpServer,
/// };
/// use apitally::{Apitally, ApitallyConfig, ConsumerExt};
///
/// async fn auth(
///     req: ServiceRequest,
///     next: Next<impl MessageBody>,
/// ) -> Result<ServiceResponse<impl MessageBody>, Error> {
///     match req.headers().get("x-api-key").and_then(|key| key.to_str().ok()) {
///         Some("k-1") => {
///             req.set_consumer("customer-1"); // before next.call, and before rejecting
///             next.call(req).await
///         }
///         _ => Err(actix_web::error::ErrorUnauthorized("no API key")),
///     }
/// }
///
/// #[actix_web::main]
/// async fn main() -> std::io::Result<()> {
///     let apitally = Apitally::try_new(ApitallyConfig::from_env()).map_err(std::io::Error::other)?;
///     HttpServer::new({
///         let apitally = apitally.clone();
///         move || {
///             App::new()
///                 .wrap(from_fn(auth)) // innermost
///                 .wrap(apitally.clone())
///                 .wrap(Compress::default())
///                 .wrap(sentry_actix::Sentry::new())
///                 .wrap(Logger::default())
///                 .wrap(tracing_actix_web::TracingLogger::default()) // outermost
///         }
///     })
///     .bind(("127.0.0.1", 8000))?
///     .run()
///     .await?;
///     apitally.shutdown().await;
///     Ok(())
/// }
/// ```
///
/// # Examples
/// ```no_run
/// # use apitally_actix as apitally;
/// use actix_web::{web, App, HttpServer};
/// use apitally::{Apitally, ApitallyConfig};
///
/// #[actix_web::main]
/// async fn main() -> std::io::Result<()> {
///     let apitally = Apitally::new(ApitallyConfig::from_env().app_version("1.0.0"));
///     HttpServer::new({
///         let apitally = apitally.clone();
///         move || {
///             App::new()
///                 .wrap(apitally.clone())
///                 .route("/items", web::get().to(|| async { "[]" }))
///         }
///     })
///     .bind(("127.0.0.1", 8000))?
///     .run()
///     .await?;
///     apitally.shutdown().await;
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct Apitally {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Apitally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Apitally")
            .field("pipeline", &self.shared.pipeline)
            .finish_non_exhaustive()
    }
}

impl Apitally {
    /// Creates the middleware, starting the client (or finding the one already running for the
    /// same credential and env).
    ///
    /// Never panics, and keeps monitoring on whenever it can: a bad optional setting (a sample
    /// rate out of range, a pattern the `regex` crate rejects, a bad proxy URL, an OpenAPI
    /// document that is not JSON, ...) is reported in one line naming it and replaced by its
    /// default, and everything else works. Only a missing or malformed credential, env or
    /// endpoint URL disables Apitally; the middleware then passes every request through
    /// untouched. The lines go to the app's `log` logger at error level, or to stderr when no
    /// logger would show them. [`ApitallyConfig::disabled`] (or `APITALLY_DISABLED`) switches it
    /// off on purpose.
    pub fn new(config: ApitallyConfig) -> Self {
        let (pipeline, identify_consumer) = Pipeline::new(config, FRAMEWORK);
        Self::with(pipeline, identify_consumer)
    }

    /// Like [`new`](Self::new), but fails on an invalid configuration (every option is
    /// checked, see [`ApitallyConfig::validate`]), for apps that want to stop at startup.
    ///
    /// In a `main` that returns `std::io::Result`, `map_err(std::io::Error::other)` turns the
    /// error into an `io::Error` whose message names the option, the value and what is
    /// expected:
    ///
    /// ```no_run
    /// # use apitally_actix as apitally;
    /// use actix_web::{App, HttpServer};
    /// use apitally::{Apitally, ApitallyConfig};
    ///
    /// #[actix_web::main]
    /// async fn main() -> std::io::Result<()> {
    ///     let apitally = Apitally::try_new(ApitallyConfig::from_env()).map_err(std::io::Error::other)?;
    ///     HttpServer::new({
    ///         let apitally = apitally.clone();
    ///         move || App::new().wrap(apitally.clone())
    ///     })
    ///     .bind(("127.0.0.1", 8000))?
    ///     .run()
    ///     .await?;
    ///     apitally.shutdown().await;
    ///     Ok(())
    /// }
    /// ```
    ///
    /// ```
    /// # use apitally_actix as apitally;
    /// use apitally::{Apitally, ApitallyConfig};
    ///
    /// let err = Apitally::try_new(ApitallyConfig::new("not-a-uuid", "prod")).unwrap_err();
    /// assert!(err.to_string().starts_with("invalid client id \"not-a-uuid\""));
    /// ```
    pub fn try_new(config: ApitallyConfig) -> Result<Self, ConfigError> {
        let (pipeline, identify_consumer) = Pipeline::try_new(config, FRAMEWORK)?;
        Ok(Self::with(pipeline, identify_consumer))
    }

    fn with(
        pipeline: Pipeline,
        identify_consumer: Option<apitally_core::adapter::ConsumerCallback<actix_web::HttpRequest>>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                pipeline,
                identify_consumer,
            }),
        }
    }

    /// Whether Apitally records and reports: false for an invalid configuration, after the hub
    /// answered 404 for the client id, and after [`shutdown`](Self::shutdown).
    pub fn is_enabled(&self) -> bool {
        self.shared.pipeline.is_enabled()
    }

    /// The pipeline (for tests of this crate and of the SDK).
    #[doc(hidden)]
    pub fn pipeline(&self) -> &Pipeline {
        &self.shared.pipeline
    }

    /// Stops the client after a final sync of everything recorded, within the shutdown timeout
    /// (10 s by default). Call it after `HttpServer::run().await` returns.
    pub async fn shutdown(&self) {
        self.shared.pipeline.client().shutdown().await;
    }
}

impl<S, B> Transform<S, ServiceRequest> for Apitally
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<ApitallyBody<B>>;
    type Error = Error;
    type Transform = ApitallyMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(ApitallyMiddleware {
            service,
            worker: Rc::new(Worker::new(Arc::clone(&self.shared))),
        }))
    }
}

/// The middleware service; see [`Apitally`].
#[doc(hidden)]
pub struct ApitallyMiddleware<S> {
    service: S,
    worker: Rc<Worker>,
}

/// What the middleware keeps from the request while the inner services run: enough to build
/// the request's [`Record`] at whichever exit it takes.
struct Pending {
    worker: Rc<Worker>,
    start: Instant,
    https: bool,
    method: Method,
    early_route: EarlyRoute,
    request_size: RequestSize,
    log: Option<Box<LogStart>>,
    tracked: Tracked,
}

fn content_length(req: &ServiceRequest) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn is_chunked(req: &ServiceRequest) -> bool {
    req.headers()
        .get(header::TRANSFER_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.as_bytes()
                .windows(7)
                .any(|w| w.eq_ignore_ascii_case(b"chunked"))
        })
}

impl<S, B> Service<ServiceRequest> for ApitallyMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<ApitallyBody<B>>;
    type Error = Error;
    type Future = ApitallyResponse<S, B>;

    forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let worker = &self.worker;
        let shared = &worker.shared;
        // `OPTIONS` (CORS preflights) and protocol upgrades (WebSockets: a `101` whose
        // "response time" is the whole session) are not endpoints: passed through untouched,
        // neither counted nor logged, as the official SDKs do. (actix's parser flags a
        // `Connection: upgrade` request; reading the flag costs no header lookup.)
        if *req.method() == Method::OPTIONS
            || !shared.pipeline.is_enabled()
            || req.head().connection_type() == ConnectionType::Upgrade
        {
            return ApitallyResponse {
                fut: self.service.call(req),
                pending: None,
                catch_panics: false,
                _body: PhantomData,
            };
        }
        let content_length = content_length(&req);
        // `Payload::None`: what actix-http gives a request with neither `Content-Length` nor
        // `Transfer-Encoding`, which has no body to count or capture.
        let no_payload = matches!(req.parts_mut().1, Payload::None);
        let pipeline = &shared.pipeline;
        let started = {
            let headers = req.headers();
            let view_headers = ActixHeaders(headers);
            let consumer = || req.extensions().get::<Consumer>().cloned();
            let request = LogRequest {
                method: req.method().as_str(),
                path: req.path(),
                headers: &view_headers,
                content_length,
                has_body: !no_payload,
                consumer: &consumer,
            };
            pipeline.start_log(&request, |item, copy| {
                // One pass over the headers: copied when logged, and checked for proxy
                // headers (most requests carry none, which saves a dozen lookups).
                let proxied = copy_headers(headers, copy, &mut item.request.headers);
                let (https, host) = https_and_host(&req, proxied);
                LogFacts {
                    https,
                    host,
                    path_and_query: req
                        .uri()
                        .path_and_query()
                        .map_or_else(|| req.path(), |pq| pq.as_str()),
                    client: req.peer_addr().map(|addr| {
                        // The peer, or behind trusted proxies the client they forward for.
                        let trusted = pipeline.trusted_proxies();
                        if trusted.is_empty() {
                            return addr.ip();
                        }
                        trusted.client_address_of(
                            addr.ip(),
                            headers.get_all(header::FORWARDED).map(|v| v.as_bytes()),
                            headers.get_all(X_FORWARDED_FOR).map(|v| v.as_bytes()),
                        )
                    }),
                }
            })
        };
        let (log, capture) = match started {
            Some(started) => (Some(started.log), started.capture),
            None => (None, None),
        };
        // A request without a body needs no second header lookup. (A chunked request whose
        // payload an outer middleware already took is counted without size, as its handler can
        // read nothing.)
        let counter = (content_length.is_none() && !no_payload && is_chunked(&req))
            .then(|| Rc::new(Cell::new(0)));
        if counter.is_some() || capture.is_some() {
            let observed = ObservedPayload {
                inner: req.take_payload(),
                counter: counter.clone(),
                capture,
            };
            req.set_payload(Payload::from(
                Box::pin(observed) as Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>
            ));
        }
        let request_size = match (content_length, counter) {
            (Some(len), _) => RequestSize::Known(Some(len)),
            (None, Some(counter)) => RequestSize::Counted(counter),
            (None, None) => RequestSize::Known(None),
        };
        let pending = Pending {
            early_route: worker.early_route(&req),
            tracked: Tracked::begin(req.head()),
            worker: Rc::clone(worker),
            start: Instant::now(),
            https: req.app_config().secure(),
            method: req.method().clone(),
            request_size,
            log,
        };
        ApitallyResponse {
            fut: self.service.call(req),
            pending: Some(pending),
            catch_panics: shared.pipeline.catches_panics(),
            _body: PhantomData,
        }
    }
}

pin_project! {
    /// The middleware's response future.
    #[doc(hidden)]
    pub struct ApitallyResponse<S, B>
    where
        S: Service<ServiceRequest>,
    {
        #[pin]
        fut: S::Future,
        pending: Option<Pending>,
        catch_panics: bool,
        _body: PhantomData<fn() -> B>,
    }
}

type Inner<B> = Result<ServiceResponse<B>, Error>;

impl<S, B> Future for ApitallyResponse<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    type Output = Result<ServiceResponse<ApitallyBody<B>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut fut = this.fut;
        // Inside the request's root span while the handler runs, when logs or traces are
        // captured, so that its events and spans are attributed to it.
        #[cfg(feature = "tracing")]
        let entered = this
            .pending
            .as_ref()
            .and_then(|p| p.log.as_ref())
            .and_then(|l| l.enter());
        let outcome: Result<Inner<B>, Box<dyn std::any::Any + Send>> = if *this.catch_panics {
            match in_request(|| catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx)))) {
                Ok(Poll::Pending) => return Poll::Pending,
                Ok(Poll::Ready(result)) => Ok(result),
                Err(panic) => Err(panic),
            }
        } else {
            match fut.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(result) => Ok(result),
            }
        };
        #[cfg(feature = "tracing")]
        drop(entered);
        let Some(pending) = this.pending.as_mut() else {
            // Not measured (OPTIONS, or the client is disabled); no panic was caught either.
            return Poll::Ready(match outcome {
                Ok(result) => {
                    result.map(|res| res.map_body(|_, body| ApitallyBody::new(body, None)))
                }
                Err(panic) => std::panic::resume_unwind(panic),
            });
        };
        // The state stays in place (it is large, and moving it costs more than the rest of
        // the bookkeeping); it is dropped below.
        let elapsed = pending.start.elapsed();
        let output = match outcome {
            Ok(Ok(res)) => Ok(on_response(pending, elapsed, res)),
            Ok(Err(err)) => {
                on_error(pending, elapsed, &err, None);
                Err(err)
            }
            Err(panic) => {
                let server_error = panic_error(&*panic);
                log::error!(
                    target: "apitally",
                    "apitally: a handler panicked ({}); answered 500 Internal Server Error",
                    server_error.msg()
                );
                let err = actix_web::error::ErrorInternalServerError("Internal Server Error");
                on_error(pending, elapsed, &err, Some(server_error));
                Err(err)
            }
        };
        *this.pending = None;
        Poll::Ready(output)
    }
}

/// Whether `method` is one of HTTP's own methods. Methods are client-chosen strings, and an
/// app route without a method guard takes any: only these are endpoints.
#[inline]
fn is_standard(method: &Method) -> bool {
    *method == Method::GET
        || *method == Method::POST
        || *method == Method::PUT
        || *method == Method::DELETE
        || *method == Method::PATCH
        || *method == Method::HEAD
        || *method == Method::TRACE
        || *method == Method::CONNECT
}

/// The response exit: everything is read from the response and its request.
fn on_response<B: MessageBody>(
    pending: &mut Pending,
    elapsed: Duration,
    res: ServiceResponse<B>,
) -> ServiceResponse<ApitallyBody<B>> {
    let req = res.request();
    let worker = &pending.worker;
    let status = res.status().as_u16();
    if status == 101 {
        // Switching protocols without an `Upgrade` request header: not an endpoint either.
        return res.map_body(|_, body| ApitallyBody::new(body, None));
    }
    // A 405 without an error object is a resource's default service: the path matched, no
    // route took the method. (A handler that means 405 returns it as an error.)
    let route =
        if (status == 405 && res.response().error().is_none()) || !is_standard(&pending.method) {
            None
        } else {
            worker.routes.matched(req, &pending.early_route)
        };
    if route.is_none() && pending.log.is_none() {
        // Not an endpoint, not counted (and not logged: logging is off).
        return res.map_body(|_, body| ApitallyBody::new(body, None));
    }
    let callback_consumer = match &worker.shared.identify_consumer {
        Some(callback) if !req.extensions().contains::<Consumer>() => {
            match catch_unwind(AssertUnwindSafe(|| callback(req))) {
                Ok(consumer) => consumer.filter(|c| !c.is_anonymous()),
                Err(_) => {
                    log::error!(
                        target: "apitally",
                        "apitally: the identify_consumer callback panicked; the request is counted without consumer"
                    );
                    None
                }
            }
        }
        _ => None,
    };
    if worker.check_consumer() {
        let ext = req.extensions();
        if let Some(consumer) = ext.get::<Consumer>().or(callback_consumer.as_ref()) {
            apitally_core::adapter::warn_if_secret_consumer(
                &ActixHeaders(req.headers()),
                req.query_string(),
                consumer.get_identifier(),
            );
        }
    }
    let (validation_errors, server_error) = match res.response().error() {
        Some(err) => (
            errors::validation_errors(err).unwrap_or_default(),
            (status == 500).then(|| errors::server_error(err)),
        ),
        None => (Vec::new(), None),
    };
    let log = pending.log.take().map(|mut log| {
        let headers = res.headers();
        let content_type = header_str(headers, header::CONTENT_TYPE);
        let config = worker
            .shared
            .pipeline
            .client()
            .request_logger()
            .map(|l| l.config());
        let body = response_capture(
            config.is_some_and(|c| c.get_log_response_body()),
            content_type,
            match res.response().body().size() {
                BodySize::Sized(n) => Some(n),
                _ => None,
            },
        );
        copy_headers(
            headers,
            config.is_some_and(|c| c.get_log_response_headers()),
            &mut log.item.response.headers,
        );
        log.item.response_content_type = body.as_ref().and(content_type).map(str::to_owned);
        log.item.response_content_encoding = body
            .as_ref()
            .and(header_str(headers, header::CONTENT_ENCODING))
            .map(str::to_owned);
        log.response_body = body;
        log.error_response = res.response().error().is_some();
        log
    });
    let mut record = Record {
        method: std::mem::replace(&mut pending.method, Method::GET),
        route,
        status,
        elapsed,
        started: pending.start,
        https: pending.https,
        total: None,
        request_size: std::mem::replace(&mut pending.request_size, RequestSize::Known(None)),
        validation_errors,
        server_error,
        log,
    };
    // A body of known size that is not logged: everything is known now, so the request is
    // finished at once and the body passes through without bookkeeping. (HEAD responses are
    // left to the body wrapper: their body is never sent.)
    if record.log.is_none() && req.method() != Method::HEAD {
        if let BodySize::Sized(size) = res.response().body().size() {
            record.total = Some(elapsed);
            let reported = Reported::Request {
                req,
                callback_consumer: callback_consumer.as_ref(),
            };
            record.finish(&worker.shared, reported, Some(size));
            return res.map_body(|_, body| ApitallyBody::new(body, None));
        }
    }
    let streaming = Streaming {
        record,
        req: req.clone(),
        callback_consumer,
    };
    let slot = Slot::new(worker, streaming);
    res.map_body(|_, body| ApitallyBody::new(body, Some(slot)))
}

/// The exits without a response: an `Err` from the inner services (actix renders it with
/// `error_response()`), or a panic (answered with `err`, a 500). actix has dropped the request:
/// the route comes from what was known before routing (see [`Worker::route_without_request`]),
/// the consumer and the reported validation errors are what the request noted.
fn on_error(
    pending: &mut Pending,
    elapsed: Duration,
    err: &Error,
    panic: Option<apitally_core::adapter::ServerError>,
) {
    // What the client gets: the error's own response.
    let response = err.error_response();
    let status = response.status().as_u16();
    let response_size = if pending.method == Method::HEAD {
        Some(0)
    } else {
        match response.body().size() {
            BodySize::Sized(n) => Some(n),
            BodySize::None => Some(0),
            BodySize::Stream => None,
        }
    };
    let server_error = panic.or_else(|| (status == 500).then(|| errors::server_error(err)));
    let record = Record {
        method: std::mem::replace(&mut pending.method, Method::GET),
        // (Core counts only standard methods as endpoints, whatever the exit.)
        route: pending.worker.route_without_request(&pending.early_route),
        status,
        elapsed,
        started: pending.start,
        https: pending.https,
        total: Some(elapsed),
        request_size: std::mem::replace(&mut pending.request_size, RequestSize::Known(None)),
        validation_errors: errors::validation_errors(err).unwrap_or_default(),
        server_error,
        log: pending.log.take(),
    };
    let notes = pending.tracked.take();
    record.finish(
        &pending.worker.shared,
        Reported::Noted(&notes),
        response_size,
    );
}
