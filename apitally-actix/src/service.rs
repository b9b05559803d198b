//! The middleware's service: what it reads of a request on the way in ([`Pending`]), and its
//! response future, which catches panics and hands the outcome to the exits (`exits.rs`).

use std::{
    cell::Cell,
    future::Future,
    marker::PhantomData,
    panic::{catch_unwind, AssertUnwindSafe},
    pin::Pin,
    rc::Rc,
    task::{Context, Poll},
    time::Instant,
};

use actix_web::{
    body::MessageBody,
    dev::{forward_ready, Payload, Service, ServiceRequest, ServiceResponse},
    error::PayloadError,
    http::ConnectionType,
    http::{header, Method},
    web::Bytes,
    Error, HttpMessage,
};
use apitally_core::{
    adapter::{in_request, panic_error, LogFacts, LogRequest},
    Consumer,
};
use futures_core::Stream;
use pin_project_lite::pin_project;

use crate::{
    body::ApitallyBody,
    exits::{on_error, on_response, Pending},
    notes::Tracked,
    record::RequestSize,
    request::{copy_headers, https_and_host, ActixHeaders, ObservedPayload, X_FORWARDED_FOR},
    worker::Worker,
};

/// The middleware service; see [`Apitally`](crate::Apitally).
#[doc(hidden)]
pub struct ApitallyMiddleware<S> {
    service: S,
    worker: Rc<Worker>,
}

impl<S> ApitallyMiddleware<S> {
    pub(crate) fn new(service: S, worker: Rc<Worker>) -> Self {
        Self { service, worker }
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
