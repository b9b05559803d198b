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

/// Where a response's record waits while its body streams, with the bytes sent so far: an
/// entry of its worker's [`Worker::streaming`] slab. The body keeps only this handle, so that
/// the response (moved several times on its way out, and copied by `memcpy` past 128 bytes)
/// stays small.
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

    fn complete(self) {
        let streaming = self.worker.streaming.borrow_mut().try_remove(self.key);
        if let Some(streaming) = streaming {
            streaming.finish(&self.worker.shared);
        }
    }

    /// Counts a chunk sent, and copies it when response bodies are logged.
    #[inline]
    fn sent(&self, chunk: &[u8]) {
        let mut streaming = self.worker.streaming.borrow_mut();
        let Some(streaming) = streaming.get_mut(self.key) else {
            return;
        };
        streaming.sent += chunk.len() as u64;
        if self.worker.shared.pipeline.captures_response_bodies() {
            if let Some(capture) = streaming
                .record
                .log
                .as_mut()
                .and_then(|log| log.response_body.as_mut())
            {
                capture.push(chunk);
            }
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
        slot: Option<Slot>,
    }

    impl<B> PinnedDrop for ApitallyBody<B> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(slot) = this.project().slot.take() {
                slot.complete();
            }
        }
    }
}

impl<B> ApitallyBody<B> {
    pub(crate) fn new(body: B, slot: Option<Slot>) -> Self {
        Self { body, slot }
    }
}

impl<B: MessageBody> MessageBody for ApitallyBody<B> {
    type Error = B::Error;

    #[inline]
    fn size(&self) -> BodySize {
        self.body.size()
    }

    #[inline]
    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.project();
        let item = ready!(this.body.poll_next(cx));
        if let Some(slot) = this.slot.as_ref() {
            match &item {
                Some(Ok(chunk)) => slot.sent(chunk),
                _ => {
                    if let Some(slot) = this.slot.take() {
                        slot.complete();
                    }
                }
            }
        }
        Poll::Ready(item)
    }
}
