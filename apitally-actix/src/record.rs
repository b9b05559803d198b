//! For the record of one request, see [`Record`].

use std::{
    cell::Cell,
    rc::Rc,
    time::{Duration, Instant},
};

use actix_web::{http::Method, HttpMessage, HttpRequest};
use apitally_core::{
    adapter::{Finished, LogStart, ServerError},
    Consumer, ValidationError,
};

use crate::{ext::AppReports, notes::Notes, request::ActixHeaders, shared::Shared};

/// How the request body size is known.
pub(crate) enum RequestSize {
    /// From `Content-Length` (or unknown, for a body-less request).
    Known(Option<u64>),
    /// Counted as the handler read a chunked body.
    Counted(Rc<Cell<u64>>),
}

impl RequestSize {
    /// The size now: known, or what the handler has read so far.
    pub(crate) fn get(&self) -> Option<u64> {
        match self {
            RequestSize::Known(size) => *size,
            RequestSize::Counted(counter) => Some(counter.get()),
        }
    }
}

/// Where the consumer and the validation errors the app reported are read from when the
/// record is finished.
#[derive(Clone, Copy)]
pub(crate) enum Reported<'a> {
    /// The response's request: its extensions, else the consumer the `identify_consumer`
    /// callback named.
    Request {
        req: &'a HttpRequest,
        callback_consumer: Option<&'a Consumer>,
    },
    /// The request is gone (an inner service returned `Err`, or a handler panicked): what it
    /// noted while it was alive. The `identify_consumer` callback cannot run without it.
    Noted(&'a Notes),
}

/// The record of a response whose body is still streaming, with its request (alive as long
/// as the response is) to read the consumer and reported errors from when the body ends.
pub(crate) struct Streaming {
    pub(crate) record: Record,
    pub(crate) req: HttpRequest,
    pub(crate) callback_consumer: Option<Consumer>,
    /// Body bytes sent so far.
    pub(crate) sent: u64,
}

impl Streaming {
    pub(crate) fn finish(self, shared: &Shared) {
        let reported = Reported::Request {
            req: &self.req,
            callback_consumer: self.callback_consumer.as_ref(),
        };
        self.record.finish(shared, reported, Some(self.sent));
    }
}

/// Everything known about one request once its status is: built by each of the middleware's
/// three exits (a response, an `Err` from the inner services, a panic) and finished in one
/// place, [`Record::finish`], when the bytes sent are known.
pub(crate) struct Record {
    pub(crate) method: Method,
    /// `None` for a request that routing did not match completely: not counted, but logged.
    pub(crate) route: Option<Rc<str>>,
    pub(crate) status: u16,
    /// Time to the response head.
    pub(crate) elapsed: Duration,
    /// When the middleware saw the request (Apitally 1.x measures to the last byte).
    pub(crate) started: Instant,
    /// Whether the request came over TLS (as the app's listener says).
    pub(crate) https: bool,
    /// The time to the last byte when it is already known: a body of known size recorded at
    /// the response head counts to the head (writing it is not awaited; no clock is read).
    pub(crate) total: Option<Duration>,
    pub(crate) request_size: RequestSize,
    /// Validation errors of actix's extractors (the app's own are [`Reported`]).
    pub(crate) validation_errors: Vec<ValidationError>,
    pub(crate) server_error: Option<ServerError>,
    pub(crate) log: Option<Box<LogStart>>,
}

impl Record {
    /// Hands the request to the pipeline (which counts and logs it), now that `response_size`
    /// bytes were sent: with the consumer and the reported validation errors read where they
    /// are.
    pub(crate) fn finish(
        self,
        shared: &Shared,
        reported: Reported<'_>,
        response_size: Option<u64>,
    ) {
        let ext = match reported {
            Reported::Request { req, .. } => Some(req.extensions()),
            Reported::Noted(_) => None,
        };
        let reports = ext.as_ref().and_then(|ext| ext.get::<AppReports>());
        let (consumer, reported_errors): (Option<&Consumer>, &[ValidationError]) =
            match (reported, &ext) {
                (
                    Reported::Request {
                        callback_consumer, ..
                    },
                    Some(ext),
                ) => (
                    ext.get::<Consumer>().or(callback_consumer),
                    reports.map_or(&[][..], |r| r.validation_errors.as_slice()),
                ),
                (Reported::Noted(notes), _) => (notes.consumer.as_ref(), &notes.validation_errors),
                (Reported::Request { .. }, None) => (None, &[]),
            };
        let headers = match reported {
            Reported::Request { req, .. } => Some(ActixHeaders(req.headers())),
            Reported::Noted(_) => None,
        };
        // What the app attached: its attributes, and the first error it captured (which wins
        // over the response's: it came first).
        let (attributes, captured) = match (reported, &ext) {
            (Reported::Request { .. }, Some(_)) => (
                reports.map(|r| &r.attributes).filter(|a| !a.is_empty()),
                reports.and_then(|r| r.exception.as_ref()),
            ),
            (Reported::Noted(notes), _) => (
                Some(&notes.attributes).filter(|a| !a.is_empty()),
                notes.exception.as_ref(),
            ),
            (Reported::Request { .. }, None) => (None, None),
        };
        shared.pipeline.finish(Finished {
            method: self.method.as_str(),
            route: self.route.as_deref(),
            status: self.status,
            elapsed: self.elapsed,
            started: self.started,
            https: self.https,
            total: self.total,
            request_size: self.request_size.get(),
            response_size,
            consumer,
            validation_errors: &self.validation_errors,
            reported_errors,
            server_error: captured.or(self.server_error.as_ref()),
            log: self.log,
            headers: headers
                .as_ref()
                .map(|h| h as &dyn apitally_core::adapter::RequestHeaders),
            attributes,
        });
    }
}
