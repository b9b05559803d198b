//! For body documentation, see [`ApitallyBody`].

use std::{
    pin::Pin,
    rc::Rc,
    task::{ready, Context, Poll},
};

use actix_web::{
    body::{BodySize, MessageBody},
    web::Bytes,
};
use pin_project_lite::pin_project;

use crate::{record::Streaming, worker::Worker};

/// Where a response's record waits while its body streams: an entry of its worker's
/// [`Worker::streaming`] slab. The body keeps only this handle, so that the response (moved
/// several times on its way out) stays small.
pub(crate) struct Slot {
    worker: Rc<Worker>,
    key: usize,
}

impl Slot {
    pub(crate) fn new(worker: &Rc<Worker>, streaming: Streaming) -> Self {
        let key = worker.streaming.borrow_mut().insert(streaming);
        Self {
            worker: Rc::clone(worker),
            key,
        }
    }

    fn complete(self, sent: u64) {
        let streaming = self.worker.streaming.borrow_mut().try_remove(self.key);
        if let Some(streaming) = streaming {
            streaming.finish(&self.worker.shared, sent);
        }
    }

    #[inline]
    fn capture(&self, chunk: &[u8]) {
        if let Some(capture) = self
            .worker
            .streaming
            .borrow_mut()
            .get_mut(self.key)
            .and_then(|s| s.record.log.as_mut())
            .and_then(|log| log.response_body.as_mut())
        {
            capture.push(chunk);
        }
    }
}

pin_project! {
    /// The response body wrapper: forwards the body untouched, counts the bytes it yields, and
    /// finishes the request's record when the body ends or is dropped (for example when the
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
                    if slot.worker.shared.pipeline.captures_response_bodies() {
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
