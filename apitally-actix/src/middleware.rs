//! For middleware documentation, see [`Apitally`].

use std::{
    cell::{Cell, RefCell},
    future::{ready, Future, Ready},
    marker::PhantomData,
    panic::{catch_unwind, AssertUnwindSafe},
    pin::Pin,
    rc::Rc,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use actix_web::{
    body::{BodySize, MessageBody},
    dev::{forward_ready, Payload, Service, ServiceRequest, ServiceResponse, Transform},
    error::PayloadError,
    http::{header, Method},
    web::Bytes,
    Error, HttpMessage, HttpRequest,
};
use apitally_core::{
    ApitallyClient, ConfigError, Consumer, RequestLogItem, RequestLogger, StartupData,
};
use futures_core::Stream;
use hashbrown::HashMap;
use pin_project_lite::pin_project;

use crate::{
    body::{
        record, record_response, ApitallyBody, Completion, Head, Outcome, RequestSize, Slot, Slots,
    },
    config::{ApitallyConfig, ConsumerCallback},
    errors,
    logging::{
        build_item, copy_headers, header_str, response_capture, BodyCapture, LogEnd, LogStart,
        ObservedPayload, RequestBody,
    },
    route,
};

/// The client string sent to the hub.
pub(crate) const CLIENT: &str = "rust:actix";

/// State shared by every worker's middleware: the process-wide client and the hooks.
pub(crate) struct Shared {
    pub(crate) client: ApitallyClient,
    identify_consumer: Option<ConsumerCallback>,
    catch_panics: bool,
    /// Whether response bodies may be captured for request logs (checked per chunk).
    pub(crate) captures_response_bodies: bool,
}

/// The middleware's state in one worker (one `App` instance).
pub(crate) struct Worker {
    pub(crate) shared: Arc<Shared>,
    /// A request this worker served, kept for its resource map: it gives the route template
    /// of requests whose own `HttpRequest` is gone (a panic or an `Err` from inner services).
    saved: RefCell<Option<HttpRequest>>,
    /// Copies of in-flight requests' paths, for those same requests.
    paths: Paths,
    /// Route templates, shared rather than allocated per request.
    routes: Routes,
    /// Pending records of responses still streaming.
    pub(crate) slots: Slots,
    /// Empty log items taken from the request logger's spares a few at a time (one lock per
    /// [`Worker::SPARES_PER_TAKE`] logged requests rather than one per request): at most that
    /// many per worker, outside the log buffer's bound (a few tens of kilobytes).
    #[allow(
        clippy::vec_box,
        reason = "spares go back to the logger in their own allocation"
    )]
    spares: RefCell<Vec<Box<RequestLogItem>>>,
}

impl Worker {
    const SPARES_PER_TAKE: usize = 32;

    /// An empty log item to fill: a spare with its buffers when the logger has one.
    fn spare_item(&self, logger: &RequestLogger) -> Box<RequestLogItem> {
        let mut spares = self.spares.borrow_mut();
        if spares.is_empty() {
            logger.take_spares(&mut spares, Self::SPARES_PER_TAKE);
        }
        spares.pop().unwrap_or_default()
    }

    fn route_for(&self, path: u32) -> Option<String> {
        let saved = self.saved.borrow();
        let rmap = saved.as_ref()?.resource_map();
        let pattern = self.paths.with(path, |path| rmap.match_pattern(path))?;
        Some(route::normalize(pattern))
    }
}

/// The route templates a worker has seen, so that finding a request's route costs a hash lookup
/// instead of actix-web's `match_pattern()` (a walk of the resource map and a `String`).
///
/// Only requests that routing matched completely (nothing of the path left unprocessed) without
/// capturing a segment use the cache, and a path is only remembered when its template is the
/// path itself: such a request matched a static resource whose pattern is its path, whatever
/// resource (guard) it was. Everything else (segments, unmatched requests, whose template
/// actix-web finds by walking the resource map regardless of guards, multi-pattern resources)
/// asks `match_pattern()` each time, and the templates are interned. Both maps are bounded:
/// past [`Routes::MAX`] entries nothing more is remembered.
#[derive(Default)]
struct Routes {
    by_path: RefCell<HashMap<Box<str>, Rc<str>>>,
    interned: RefCell<HashMap<Rc<str>, ()>>,
}

impl Routes {
    const MAX: usize = 1_024;
    /// Longer paths are not remembered.
    const MAX_PATH: usize = 256;

    fn route(&self, req: &HttpRequest) -> Option<Rc<str>> {
        let path = req.path();
        let info = req.match_info();
        let cacheable = info.segment_count() == 0
            && info.unprocessed().is_empty()
            && path.len() <= Self::MAX_PATH;
        if cacheable {
            if let Some(route) = self.by_path.borrow().get(path) {
                return Some(Rc::clone(route));
            }
        }
        let route = req
            .match_pattern()
            .map(|pattern| self.intern(route::normalize(pattern)))?;
        if cacheable && *route == *path {
            let mut by_path = self.by_path.borrow_mut();
            if by_path.len() < Self::MAX {
                by_path.insert(path.into(), Rc::clone(&route));
            }
        }
        Some(route)
    }

    fn intern(&self, route: String) -> Rc<str> {
        let mut interned = self.interned.borrow_mut();
        if let Some((known, ())) = interned.get_key_value(route.as_str()) {
            return Rc::clone(known);
        }
        let route: Rc<str> = route.into();
        if interned.len() < Self::MAX {
            interned.insert(Rc::clone(&route), ());
        }
        route
    }
}

/// Copies of the paths of a worker's in-flight requests, for the rare requests whose route
/// must be found after their `HttpRequest` is gone. Buffers are reused: no allocation per
/// request once the worker has seen its highest concurrency (long paths excepted), and the
/// response future carries a 4-byte index instead of the path.
#[derive(Default)]
struct Paths {
    entries: RefCell<(Vec<String>, Vec<u32>)>,
}

impl Paths {
    /// Paths longer than this are not kept in a reused buffer (their buffer is freed).
    const KEEP_CAPACITY: usize = 512;

    fn store(&self, path: &str) -> u32 {
        let mut entries = self.entries.borrow_mut();
        let (bufs, free) = &mut *entries;
        match free.pop() {
            Some(index) => {
                let buf = &mut bufs[index as usize];
                buf.clear();
                buf.push_str(path);
                index
            }
            None => {
                bufs.push(path.to_owned());
                (bufs.len() - 1) as u32
            }
        }
    }

    fn with<R>(&self, index: u32, f: impl FnOnce(&str) -> Option<R>) -> Option<R> {
        f(self.entries.borrow().0.get(index as usize)?)
    }

    fn release(&self, index: u32) {
        let mut entries = self.entries.borrow_mut();
        let (bufs, free) = &mut *entries;
        if let Some(buf) = bufs.get_mut(index as usize) {
            if buf.capacity() > Self::KEEP_CAPACITY {
                *buf = String::new();
            }
            free.push(index);
        }
    }
}

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
///   read after routing, so scopes and guards are right. Requests that match no route (404 from
///   the default service) and `OPTIONS` requests are not counted.
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
/// `.wrap()` the Apitally middleware *before* (inside) [`Compress`](https://docs.rs/actix-web/4/actix_web/middleware/struct.Compress.html)
/// so that it sees and counts uncompressed bodies; wrapped after it, sizes are compressed sizes.
///
/// # Examples
/// ```no_run
/// use actix_web::{web, App, HttpServer};
/// use apitally_actix::{Apitally, ApitallyConfig};
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
            .field("client", &self.shared.client)
            .field("catch_panics", &self.shared.catch_panics)
            .finish_non_exhaustive()
    }
}

impl Apitally {
    /// Creates the middleware, starting the client (or finding the one already running for the
    /// same client id and env).
    ///
    /// Never panics: an invalid configuration is logged once at error level, naming the bad
    /// value, and the middleware then passes every request through untouched.
    pub fn new(config: ApitallyConfig) -> Self {
        match Self::try_new(config) {
            Ok(apitally) => apitally,
            Err(err) => {
                log::error!(
                    target: "apitally",
                    "apitally: {err}; Apitally is disabled and requests pass through untouched"
                );
                Self::from_client(ApitallyClient::disabled(), None, false)
            }
        }
    }

    /// Like [`new`](Self::new), but fails on an invalid configuration, for apps that want to
    /// stop at startup.
    ///
    /// ```
    /// use apitally_actix::{Apitally, ApitallyConfig};
    ///
    /// assert!(Apitally::try_new(ApitallyConfig::new("not-a-uuid", "prod")).is_err());
    /// ```
    pub fn try_new(config: ApitallyConfig) -> Result<Self, ConfigError> {
        let startup = StartupData::new(CLIENT)
            .paths(config.paths)
            .version("actix-web", env!("APITALLY_ACTIX_WEB_VERSION"))
            .version("apitally", env!("CARGO_PKG_VERSION"));
        let startup = match config.openapi {
            Some(doc) => startup.openapi(doc),
            None => startup,
        };
        let client = ApitallyClient::try_new(config.client, startup)?;
        Ok(Self::from_client(
            client,
            config.identify_consumer,
            config.catch_panics,
        ))
    }

    fn from_client(
        client: ApitallyClient,
        identify_consumer: Option<ConsumerCallback>,
        catch_panics: bool,
    ) -> Self {
        if catch_panics && client.is_enabled() {
            errors::install_panic_hook();
        }
        let captures_response_bodies = client
            .request_logger()
            .is_some_and(|l| l.config().logs_response_body());
        Self {
            shared: Arc::new(Shared {
                client,
                identify_consumer,
                catch_panics,
                captures_response_bodies,
            }),
        }
    }

    /// The underlying client, to record from elsewhere or to check it is enabled.
    pub fn client(&self) -> &ApitallyClient {
        &self.shared.client
    }

    /// Stops the client after a final sync of everything recorded, within the shutdown timeout
    /// (10 s by default). Call it after `HttpServer::run().await` returns.
    pub async fn shutdown(&self) {
        self.shared.client.shutdown().await;
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
            worker: Rc::new(Worker {
                shared: Arc::clone(&self.shared),
                saved: RefCell::new(None),
                paths: Paths::default(),
                routes: Routes::default(),
                slots: Slots::default(),
                spares: RefCell::default(),
            }),
        }))
    }
}

/// The middleware service; see [`Apitally`].
#[doc(hidden)]
pub struct ApitallyMiddleware<S> {
    service: S,
    worker: Rc<Worker>,
}

/// What the middleware keeps from the request while the inner services run.
struct Start {
    worker: Rc<Worker>,
    /// The route matched from the path before routing, only while the worker has no saved
    /// request yet (its first requests), for a panic or `Err` there.
    early_route: Option<String>,
    start: Instant,
    /// The index of the path's copy in the worker's [`Paths`].
    path: u32,
    method: Method,
    request_size: RequestSize,
    log: Option<Box<LogStart>>,
}

impl Drop for Start {
    fn drop(&mut self) {
        self.worker.paths.release(self.path);
    }
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
        let shared = &self.worker.shared;
        if *req.method() == Method::OPTIONS || !shared.client.is_enabled() {
            return ApitallyResponse {
                fut: self.service.call(req),
                start: None,
                catch_panics: false,
                _body: PhantomData,
            };
        }
        let content_length = content_length(&req);
        // `Payload::None`: what actix-http gives a request with neither `Content-Length` nor
        // `Transfer-Encoding`, which has no body to count or capture.
        let no_payload = matches!(req.parts_mut().1, Payload::None);
        let mut capture = None;
        let log = shared
            .client
            .request_logger()
            .filter(|logger| logger.is_logging())
            .map(|logger| {
                let log_body = logger.config().logs_request_body()
                    && !no_payload
                    && header_str(req.headers(), header::CONTENT_TYPE)
                        .is_some_and(apitally_core::is_supported_content_type);
                let request_body = if !log_body {
                    RequestBody::None
                } else if content_length.is_some_and(|n| n > apitally_core::MAX_BODY_SIZE as u64) {
                    // Not read at all: the marker is all that is logged.
                    RequestBody::TooLarge
                } else {
                    let shared_capture = Rc::new(std::cell::RefCell::new(BodyCapture::default()));
                    capture = Some(Rc::clone(&shared_capture));
                    RequestBody::Captured(shared_capture)
                };
                let item = self.worker.spare_item(logger);
                Box::new(LogStart::new(&req, request_body, logger.config(), item))
            });
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
        let early_route = if self.worker.saved.borrow().is_none() {
            req.match_pattern()
        } else {
            None
        };
        let start = Start {
            early_route,
            worker: Rc::clone(&self.worker),
            start: Instant::now(),
            path: self.worker.paths.store(req.path()),
            method: req.method().clone(),
            request_size,
            log,
        };
        ApitallyResponse {
            fut: self.service.call(req),
            start: Some(start),
            catch_panics: shared.catch_panics,
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
        start: Option<Start>,
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
            .start
            .as_ref()
            .and_then(|s| s.log.as_ref())
            .and_then(|l| l.trace.as_ref())
            .map(|t| t.span().enter());
        let outcome: Result<Inner<B>, Box<dyn std::any::Any + Send>> = if *this.catch_panics {
            match errors::in_request(|| catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx)))) {
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
        let Some(start) = this.start.as_mut() else {
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
        let elapsed = start.start.elapsed();
        let output = match outcome {
            Ok(Ok(res)) => Ok(on_response(start, elapsed, res)),
            Ok(Err(err)) => {
                on_error(start, elapsed, &err);
                Err(err)
            }
            Err(panic) => {
                let server_error = errors::panic_error(&*panic);
                log::error!(
                    target: "apitally",
                    "apitally: a handler panicked ({}); answered 500 Internal Server Error",
                    server_error.msg()
                );
                record_without_request(start, elapsed, 500, Some(&server_error));
                Err(actix_web::error::ErrorInternalServerError(
                    "Internal Server Error",
                ))
            }
        };
        *this.start = None;
        Poll::Ready(output)
    }
}

fn on_response<B: MessageBody>(
    start: &mut Start,
    elapsed: std::time::Duration,
    res: ServiceResponse<B>,
) -> ServiceResponse<ApitallyBody<B>> {
    let req = res.request();
    let worker = &start.worker;
    if worker.saved.borrow().is_none() {
        *worker.saved.borrow_mut() = Some(req.clone());
    }
    let route = worker.routes.route(req);
    if route.is_none() && start.log.is_none() {
        // No route matched: not an endpoint, not counted (and not logged: logging is off).
        return res.map_body(|_, body| ApitallyBody::new(body, None));
    }
    let status = res.status().as_u16();
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
    let (validation_errors, server_error) = match res.response().error() {
        Some(err) => (
            errors::validation_errors(err).unwrap_or_default(),
            (status == 500).then(|| errors::server_error(err)),
        ),
        None => (Vec::new(), None),
    };
    let log = start.log.take().and_then(|mut log| {
        let logger = worker.shared.client.request_logger()?;
        let config = logger.config();
        let headers = res.headers();
        let content_type = header_str(headers, header::CONTENT_TYPE);
        let body = response_capture(
            config.logs_response_body(),
            content_type,
            res.response().body().size(),
        );
        copy_headers(
            headers,
            config.logs_response_headers(),
            &mut log.item.response.headers,
        );
        log.item.response_content_type = body.as_ref().and(content_type).map(str::to_owned);
        log.response_body = body;
        Some(log)
    });
    // A body of known size that is not logged: everything is known now, so the request is
    // recorded at once, without building a pending record, and the body passes through
    // without bookkeeping. (HEAD responses are left to the body wrapper: their body is never
    // sent.)
    if log.is_none() && req.method() != Method::HEAD {
        if let (BodySize::Sized(size), Some(route)) = (res.response().body().size(), &route) {
            record_response(
                worker,
                req,
                route,
                &Head {
                    status,
                    elapsed,
                    request_size: start.request_size.get(),
                    callback_consumer: callback_consumer.as_ref(),
                    validation_errors: &validation_errors,
                    server_error: server_error.as_ref(),
                },
                Some(size),
            );
            return res.map_body(|_, body| ApitallyBody::new(body, None));
        }
    }
    let completion = Completion {
        log,
        worker: Rc::clone(worker),
        req: req.clone(),
        route,
        status,
        elapsed,
        request_size: std::mem::replace(&mut start.request_size, RequestSize::Known(None)),
        callback_consumer,
        validation_errors,
        server_error,
    };
    let slot = Slot::new(worker, completion);
    res.map_body(|_, body| ApitallyBody::new(body, Some(slot)))
}

/// An `Err` from the inner services: counted with the error's status.
fn on_error(start: &mut Start, elapsed: std::time::Duration, err: &Error) {
    let status = err.as_response_error().status_code().as_u16();
    let server_error = (status == 500).then(|| errors::server_error(err));
    record_without_request(start, elapsed, status, server_error.as_ref());
}

/// Records (and logs) a request whose `HttpRequest` is gone: the route comes from the worker's
/// resource map, the consumer is unknown and the response size too.
fn record_without_request(
    start: &mut Start,
    elapsed: std::time::Duration,
    status: u16,
    server_error: Option<&apitally_core::ServerError>,
) {
    let route = start
        .worker
        .route_for(start.path)
        .or_else(|| start.early_route.clone().map(route::normalize));
    let request_size = start.request_size.get();
    if let Some(route) = &route {
        record(
            &start.worker,
            &Outcome {
                method: start.method.as_str(),
                route,
                status,
                elapsed,
                consumer: None,
                request_size,
                response_size: None,
                validation_errors: &[],
                reported_validation_errors: &[],
                server_error,
            },
        );
    }
    if let (Some(log), Some(logger)) = (
        start.log.take(),
        start.worker.shared.client.request_logger(),
    ) {
        let item = build_item(
            *log,
            LogEnd {
                method: start.method.as_str(),
                route: route.as_deref(),
                status,
                elapsed,
                consumer: None,
                request_size,
                response_size: None,
                server_error,
            },
        );
        logger.log(item);
    }
}
