//! The middleware's exits: a response, and the exits without one (an `Err` from the inner
//! services, a panic). Each builds the request's [`Record`] and finishes it, at once or when
//! the body ends.

use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    rc::Rc,
    time::{Duration, Instant},
};

use actix_web::{
    body::{BodySize, MessageBody},
    dev::ServiceResponse,
    http::{header, Method},
    Error, HttpMessage,
};
use apitally_core::{
    adapter::{response_capture, LogStart},
    Consumer,
};

use crate::{
    body::{ApitallyBody, Slot},
    errors,
    notes::Tracked,
    record::{Record, Reported, RequestSize, Streaming},
    request::{copy_headers, header_str, ActixHeaders},
    worker::{EarlyRoute, Worker},
};

/// What the middleware keeps from the request while the inner services run: enough to build
/// the request's [`Record`] at whichever exit it takes.
pub(crate) struct Pending {
    pub(crate) worker: Rc<Worker>,
    pub(crate) start: Instant,
    pub(crate) https: bool,
    pub(crate) method: Method,
    pub(crate) early_route: EarlyRoute,
    pub(crate) request_size: RequestSize,
    pub(crate) log: Option<Box<LogStart>>,
    pub(crate) tracked: Tracked,
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
#[inline]
pub(crate) fn on_response<B: MessageBody>(
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
        sent: 0,
    };
    let slot = Slot::new(worker, streaming);
    res.map_body(|_, body| ApitallyBody::new(body, Some(slot)))
}

/// The exits without a response: an `Err` from the inner services (actix renders it with
/// `error_response()`), or a panic (answered with `err`, a 500). actix has dropped the request:
/// the route comes from what was known before routing (see
/// [`Worker::route_without_request`](crate::worker::Worker::route_without_request)), the
/// consumer and the reported validation errors are what the request noted.
pub(crate) fn on_error(
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
