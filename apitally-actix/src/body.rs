//! For body documentation, see [`ApitallyBody`].

use std::{
    cell::Cell,
    pin::Pin,
    rc::Rc,
    task::{ready, Context, Poll},
    time::Duration,
};

use actix_web::{
    body::{BodySize, MessageBody},
    web::Bytes,
    HttpMessage, HttpRequest,
};
use apitally_core::{Consumer, RequestRecord, ServerError, ValidationError};
use pin_project_lite::pin_project;

use crate::{
    ext::ReportedValidationErrors,
    logging::{build_item, LogEnd, LogStart},
    middleware::Worker,
};

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

/// What the response head says, for [`record_response`].
pub(crate) struct Head<'a> {
    pub(crate) status: u16,
    pub(crate) elapsed: Duration,
    pub(crate) request_size: Option<u64>,
    pub(crate) callback_consumer: Option<&'a Consumer>,
    pub(crate) validation_errors: &'a [ValidationError],
    pub(crate) server_error: Option<&'a ServerError>,
}

/// Records a request that has its response: the consumer is the one the handler set (an
/// extension) or else the callback's; validation errors reported by the handler count too.
pub(crate) fn record_response(
    worker: &Worker,
    req: &HttpRequest,
    route: &str,
    head: &Head<'_>,
    response_size: Option<u64>,
) {
    let ext = req.extensions();
    let consumer = ext.get::<Consumer>().or(head.callback_consumer);
    let reported = ext
        .get::<ReportedValidationErrors>()
        .map(|r| r.0.as_slice());
    record(
        worker,
        &Outcome {
            method: req.method().as_str(),
            route,
            status: head.status,
            elapsed: head.elapsed,
            consumer,
            request_size: head.request_size,
            response_size,
            validation_errors: head.validation_errors,
            reported_validation_errors: reported.unwrap_or_default(),
            server_error: head.server_error,
        },
    );
}

/// What the middleware learnt at the response head, completed with the bytes sent when the body
/// ends or is dropped.
pub(crate) struct Completion {
    pub(crate) worker: Rc<Worker>,
    pub(crate) req: HttpRequest,
    /// `None` for requests that matched no route: not counted, but logged.
    pub(crate) route: Option<Rc<str>>,
    pub(crate) status: u16,
    pub(crate) elapsed: Duration,
    pub(crate) request_size: RequestSize,
    pub(crate) callback_consumer: Option<Consumer>,
    pub(crate) validation_errors: Vec<ValidationError>,
    pub(crate) server_error: Option<ServerError>,
    pub(crate) log: Option<Box<LogStart>>,
}

impl Completion {
    pub(crate) fn complete(self, response_size: Option<u64>) {
        let request_size = self.request_size.get();
        let method = self.req.method().as_str();
        if let Some(route) = &self.route {
            record_response(
                &self.worker,
                &self.req,
                route,
                &Head {
                    status: self.status,
                    elapsed: self.elapsed,
                    request_size,
                    callback_consumer: self.callback_consumer.as_ref(),
                    validation_errors: &self.validation_errors,
                    server_error: self.server_error.as_ref(),
                },
                response_size,
            );
        }
        // Only copied when the request is logged.
        let consumer_id = self.log.as_ref().and_then(|_| {
            let ext = self.req.extensions();
            ext.get::<Consumer>()
                .or(self.callback_consumer.as_ref())
                .map(|c| c.identifier().to_owned())
        });
        // The extensions are released before building the log item: reading the connection
        // info may insert into them.
        if let Some(head) = self.log {
            if let Some(logger) = self.worker.shared.client.request_logger() {
                let item = build_item(
                    *head,
                    LogEnd {
                        method,
                        route: self.route.as_deref(),
                        status: self.status,
                        elapsed: self.elapsed,
                        consumer: consumer_id.as_deref(),
                        request_size,
                        response_size,
                        server_error: self.server_error.as_ref(),
                    },
                );
                logger.log(item);
            }
        }
    }
}

/// Everything recorded for one request.
pub(crate) struct Outcome<'a> {
    pub(crate) method: &'a str,
    pub(crate) route: &'a str,
    pub(crate) status: u16,
    pub(crate) elapsed: Duration,
    pub(crate) consumer: Option<&'a Consumer>,
    pub(crate) request_size: Option<u64>,
    pub(crate) response_size: Option<u64>,
    pub(crate) validation_errors: &'a [ValidationError],
    pub(crate) reported_validation_errors: &'a [ValidationError],
    pub(crate) server_error: Option<&'a ServerError>,
}

pub(crate) fn record(worker: &Worker, o: &Outcome<'_>) {
    let client = &worker.shared.client;
    client.record_request(
        &RequestRecord::new(o.method, o.route, o.status, o.elapsed)
            .consumer(o.consumer)
            .request_size(o.request_size)
            .response_size(o.response_size),
    );
    for error in o
        .validation_errors
        .iter()
        .chain(o.reported_validation_errors)
    {
        client.record_validation_error(o.method, o.route, o.consumer, error);
    }
    if let Some(error) = o.server_error {
        client.record_server_error(o.method, o.route, o.consumer, error);
    }
}

/// Where a response's pending record waits: a slot in its worker's [`Slots`]. The body keeps
/// only this handle, so that the response (moved several times on its way out) stays small.
pub(crate) struct Slot {
    worker: Rc<Worker>,
    index: u32,
}

impl Slot {
    pub(crate) fn new(worker: &Rc<Worker>, completion: Completion) -> Self {
        let index = worker.slots.insert(completion);
        Self {
            worker: Rc::clone(worker),
            index,
        }
    }

    fn complete(self, sent: u64) {
        if let Some(completion) = self.worker.slots.take(self.index) {
            completion.complete(Some(sent));
        }
    }

    #[inline]
    fn capture(&self, chunk: &[u8]) {
        self.worker.slots.with(self.index, |c| {
            if let Some(capture) = c.log.as_mut().and_then(|log| log.response_body.as_mut()) {
                capture.push(chunk);
            }
        });
    }
}

/// Pending records of one worker's in-flight responses, reused slot by slot: no allocation per
/// request, and as many slots as the worker ever had responses in flight at once.
#[derive(Default)]
pub(crate) struct Slots {
    entries: std::cell::RefCell<(Vec<Option<Completion>>, Vec<u32>)>,
}

impl Slots {
    fn insert(&self, completion: Completion) -> u32 {
        let mut entries = self.entries.borrow_mut();
        let (slots, free) = &mut *entries;
        match free.pop() {
            Some(index) => {
                slots[index as usize] = Some(completion);
                index
            }
            None => {
                slots.push(Some(completion));
                (slots.len() - 1) as u32
            }
        }
    }

    fn take(&self, index: u32) -> Option<Completion> {
        let mut entries = self.entries.borrow_mut();
        let (slots, free) = &mut *entries;
        let completion = slots.get_mut(index as usize)?.take();
        if completion.is_some() {
            free.push(index);
        }
        completion
    }

    fn with(&self, index: u32, f: impl FnOnce(&mut Completion)) {
        if let Some(Some(completion)) = self.entries.borrow_mut().0.get_mut(index as usize) {
            f(completion);
        }
    }
}

pin_project! {
    /// The response body wrapper: forwards the body untouched, counts the bytes it yields, and
    /// completes the request's record when the body ends or is dropped (for example when the
    /// client disconnects mid-body), so streamed and chunked responses are measured as sent.
    pub struct ApitallyBody<B> {
        #[pin]
        body: B,
        sent: u64,
        slot: Option<Slot>,
    }

    impl<B> PinnedDrop for ApitallyBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(slot) = this.slot.take() {
                slot.complete(*this.sent);
            }
        }
    }
}

impl<B> ApitallyBody<B> {
    pub(crate) fn new(body: B, slot: Option<Slot>) -> Self {
        Self {
            body,
            sent: 0,
            slot,
        }
    }
}

impl<B: MessageBody> MessageBody for ApitallyBody<B> {
    type Error = B::Error;

    #[inline]
    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.project();
        let item = ready!(this.body.poll_next(cx));
        match &item {
            Some(Ok(chunk)) => {
                *this.sent += chunk.len() as u64;
                if let Some(slot) = this.slot.as_ref() {
                    if slot.worker.shared.captures_response_bodies {
                        slot.capture(chunk);
                    }
                }
            }
            _ => {
                if let Some(slot) = this.slot.take() {
                    slot.complete(*this.sent);
                }
            }
        }
        Poll::Ready(item)
    }
}
