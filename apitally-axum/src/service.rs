//! The layer's service: what it reads of a request on the way in, its response future (which
//! catches panics and counts a request dropped before its response), and the response exit.

use std::{
    future::Future,
    panic::{catch_unwind, AssertUnwindSafe},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use apitally_core::adapter::{
    in_request, panic_error, response_capture, LogFacts, LogRequest, LogStart,
};
use axum::{body::Body, extract::MatchedPath, BoxError};
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::{
    body::{ApitallyBody, ObservedBody, Streaming},
    ext::ServerErrorExtension,
    finish::{Finishing, Route},
    rejection,
    request::{client_address, copy_headers, header_str, https_and_host, HttpHeaders},
    shared::Shared,
    slot::Slot,
    RouteTemplate,
};

/// The layer's service; see [`ApitallyLayer`](crate::ApitallyLayer).
#[derive(Clone)]
pub struct ApitallyService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> ApitallyService<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        Self { inner, shared }
    }
}

impl<S> std::fmt::Debug for ApitallyService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApitallyService").finish_non_exhaustive()
    }
}

/// What the layer keeps from the request while the inner service runs.
struct Pending {
    shared: Arc<Shared>,
    start: Instant,
    method: Method,
    route: Option<MatchedPath>,
    https: bool,
    content_length: Option<u64>,
    counted: bool,
    slot: Slot,
    log: Option<Box<LogStart>>,
    /// The request's headers, kept for `sample_on_response` when it decides this log.
    headers: Option<Box<http::HeaderMap>>,
}

impl Pending {
    fn finishing(self, status: u16, route: Option<Route>) -> Finishing {
        Finishing {
            elapsed: self.start.elapsed(),
            shared: self.shared,
            method: self.method,
            route,
            status,
            started: self.start,
            https: self.https,
            content_length: self.content_length,
            counted: self.counted,
            slot: self.slot,
            log: self.log,
            headers: self.headers,
            server_error: None,
            validation_errors: Vec::new(),
        }
    }
}

impl<S, B, ResBody> Service<Request<B>> for ApitallyService<S>
where
    S: Service<Request<Body>, Response = Response<ResBody>>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let pipeline = &self.shared.pipeline;
        let passthrough = |inner: &mut S, req: Request<B>| ResponseFuture {
            fut: inner.call(req.map(Body::new)),
            pending: None,
            catch_panics: false,
        };
        if let Some(slot) = req.extensions().get::<Slot>() {
            // An outer Apitally layer measures this request: tell it the route seen here.
            if let Some(matched) = req.extensions().get::<MatchedPath>() {
                slot.lock().route = Some(matched.clone());
            }
            return passthrough(&mut self.inner, req);
        }
        // `OPTIONS` (CORS preflights) and protocol upgrades (WebSockets: a `101` whose
        // "response time" is the whole session) are not endpoints.
        if req.method() == Method::OPTIONS
            || !pipeline.is_enabled()
            || req.headers().contains_key(header::UPGRADE)
        {
            return passthrough(&mut self.inner, req);
        }
        let start = Instant::now();
        let slot = Slot::new();
        if let Some(callback) = &self.shared.identify_consumer {
            let (parts, body) = req.into_parts();
            match catch_unwind(AssertUnwindSafe(|| callback(&parts))) {
                Ok(consumer) => {
                    slot.lock().consumer = consumer.filter(|c| !c.is_anonymous());
                }
                Err(_) => log::error!(
                    target: "apitally",
                    "apitally: the identify_consumer callback panicked; the request is counted without consumer"
                ),
            }
            req = Request::from_parts(parts, body);
        }
        // The length hyper read from `Content-Length` (or of a body built in memory), without
        // a header lookup; `0` for a request without body.
        let no_body = http_body::Body::is_end_stream(req.body());
        let content_length = http_body::Body::size_hint(req.body()).exact();
        let started = {
            let headers = req.headers();
            let view_headers = HttpHeaders(headers);
            let consumer = || slot.lock().consumer.clone();
            let request = LogRequest {
                method: req.method().as_str(),
                path: req.uri().path(),
                headers: &view_headers,
                content_length,
                has_body: !no_body,
                consumer: &consumer,
            };
            pipeline.start_log(&request, |item, copy| {
                // One pass over the headers: copied when logged, and checked for proxy
                // headers (most requests carry none, which saves seven lookups).
                let proxied = copy_headers(headers, copy, &mut item.request.headers);
                let (https, host) = https_and_host(&req, proxied);
                LogFacts {
                    https,
                    host,
                    path_and_query: req
                        .uri()
                        .path_and_query()
                        .map_or_else(|| req.uri().path(), |pq| pq.as_str()),
                    client: client_address(&req, pipeline.trusted_proxies()),
                }
            })
        };
        let (log, capture) = match started {
            Some(started) => (Some(started.log), started.capture),
            None => (None, None),
        };
        // The handler takes the request: its headers are kept only when the response stage of
        // sampling will read them.
        let headers = log
            .as_deref()
            .filter(|log| pipeline.asks_headers_at_response(log))
            .map(|_| Box::new(req.headers().clone()));
        let counted = content_length.is_none() && !no_body;
        let pending = Pending {
            shared: Arc::clone(&self.shared),
            start,
            method: req.method().clone(),
            route: req.extensions().get::<MatchedPath>().cloned(),
            https: req.uri().scheme_str() == Some("https"),
            content_length: content_length.or(no_body.then_some(0)),
            counted,
            slot: slot.clone(),
            log,
            headers,
        };
        req.extensions_mut().insert(slot.clone());
        let observe = counted || capture.is_some();
        // axum's `Body` passes as it is (no boxing) unless the layer counts or copies it.
        let req = req.map(|body| {
            if observe {
                Body::new(ObservedBody::new(body, counted.then_some(slot), capture))
            } else {
                Body::new(body)
            }
        });
        ResponseFuture {
            fut: self.inner.call(req),
            pending: Some(pending),
            catch_panics: pipeline.catches_panics(),
        }
    }
}

pin_project! {
    /// The layer's response future.
    pub struct ResponseFuture<F> {
        #[pin]
        fut: F,
        pending: Option<Pending>,
        catch_panics: bool,
    }

    impl<F> PinnedDrop for ResponseFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            // Dropped before a response: the client went away (hyper drops the request's
            // future), counted as nginx logs it, `499`, with nothing sent.
            if let Some(pending) = this.project().pending.take() {
                let route = pending.route.clone().map(Route::Matched);
                pending.finishing(499, route).finish(Some(0), None);
            }
        }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut fut = this.fut;
        // Inside the request's root span while the handler runs, when logs or traces are
        // captured.
        #[cfg(feature = "tracing")]
        let entered = this
            .pending
            .as_ref()
            .and_then(|p| p.log.as_ref())
            .and_then(|l| l.enter());
        let outcome = if *this.catch_panics {
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
        let Some(pending) = this.pending.take() else {
            return Poll::Ready(match outcome {
                Ok(result) => result.map(|res| res.map(Body::new)),
                Err(panic) => std::panic::resume_unwind(panic),
            });
        };
        Poll::Ready(match outcome {
            Ok(Ok(res)) => Ok(on_response(pending, res)),
            Ok(Err(err)) => {
                // The connection fails without a response.
                let route = pending.route.clone().map(Route::Matched);
                pending.finishing(500, route).finish(None, None);
                Err(err)
            }
            Err(panic) => {
                let error = panic_error(&*panic);
                log::error!(
                    target: "apitally",
                    "apitally: a handler panicked ({}); answered 500 Internal Server Error",
                    error.msg()
                );
                const BODY: &str = "Internal Server Error";
                let route = pending.route.clone().map(Route::Matched);
                let mut finishing = pending.finishing(500, route);
                finishing.server_error = Some(error);
                if let Some(log) = finishing.log.as_mut() {
                    log.item.response_content_type = None;
                }
                let elapsed = finishing.elapsed;
                finishing.finish(Some(BODY.len() as u64), Some(elapsed));
                let mut res = Response::new(Body::from(BODY));
                *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                Ok(res)
            }
        })
    }
}

/// The response exit: the route, the errors the response carries, and the body, passed
/// through or counted as it streams.
fn on_response<ResBody>(pending: Pending, res: Response<ResBody>) -> Response<Body>
where
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    let status = res.status().as_u16();
    // A `405` without a body (or with `Allow`) is axum's answer for a path whose method has no
    // route (axum adds `Allow` outside the route's layers).
    let method_not_routed = status == 405
        && (res.headers().contains_key(header::ALLOW)
            || http_body::Body::size_hint(res.body()).exact() == Some(0));
    let route = match res.extensions().get::<RouteTemplate>() {
        Some(named) => Some(Route::Named(named.clone())),
        None if method_not_routed => None,
        None => pending.route.clone().map(Route::Matched),
    };
    let inner_route = pending.slot.lock().route.is_some();
    if status == 101 || (route.is_none() && !inner_route && pending.log.is_none()) {
        // Not an endpoint, and not logged.
        drop(pending);
        return res.map(Body::new);
    }
    let headers = res.headers();
    let size = http_body::Body::size_hint(res.body()).exact();
    let inspect = rejection::may_be_rejection(
        status,
        || headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes()),
        size,
    );
    let mut finishing = pending.finishing(status, route);
    if status >= 500 {
        finishing.server_error = res
            .extensions()
            .get::<ServerErrorExtension>()
            .map(|e| e.0.clone());
    }
    let mut capture = None;
    if let Some(log) = finishing.log.as_mut() {
        let config = finishing
            .shared
            .pipeline
            .client()
            .request_logger()
            .map(|l| l.config());
        let content_type = header_str(headers, header::CONTENT_TYPE);
        capture = response_capture(
            config.is_some_and(|c| c.get_log_response_body()),
            content_type,
            size,
        );
        let copy = config.is_some_and(|c| c.get_log_response_headers());
        if copy {
            copy_headers(headers, copy, &mut log.item.response.headers);
        } else {
            log.item.response.headers.clear();
        }
        log.item.response_content_type = capture.as_ref().and(content_type).map(str::to_owned);
        log.item.response_content_encoding = capture
            .as_ref()
            .and(header_str(headers, header::CONTENT_ENCODING))
            .map(str::to_owned);
        log.error_response = inspect;
    }
    let head = finishing.method == Method::HEAD;
    if finishing.log.is_none() && !inspect && (head || size.is_some()) {
        // Everything is known at the head: finished now, the body passes through.
        let elapsed = finishing.elapsed;
        finishing.finish(
            Some(if head { 0 } else { size.unwrap_or(0) }),
            Some(elapsed),
        );
        // axum's `Body` passes as it is.
        return res.map(Body::new);
    }
    let streaming = Box::new(Streaming {
        finishing,
        sent: 0,
        capture,
        inspect,
    });
    res.map(|body| Body::new(ApitallyBody::new(body, streaming)))
}
