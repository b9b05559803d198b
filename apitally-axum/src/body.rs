//! The request body as the handler reads it ([`ObservedBody`]), and the response body as it
//! streams ([`ApitallyBody`]), which finishes the request's record when it ends or is dropped.

use std::{
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use apitally_core::adapter::BodyCapture;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::{finish::Finishing, rejection, slot::Slot};

pin_project! {
    /// A request body as the handler reads it: counted (a body without `Content-Length`) and
    /// copied into a bounded capture (a logged body) on the way. What the inner service gets
    /// (inside axum's `Body`) when the layer counts or copies the body.
    pub(crate) struct ObservedBody<B> {
        #[pin]
        inner: B,
        counter: Option<Slot>,
        capture: Option<Arc<Mutex<BodyCapture>>>,
    }
}

impl<B> ObservedBody<B> {
    pub(crate) fn new(
        inner: B,
        counter: Option<Slot>,
        capture: Option<Arc<Mutex<BodyCapture>>>,
    ) -> Self {
        Self {
            inner,
            counter,
            capture,
        }
    }
}

impl<B: std::fmt::Debug> std::fmt::Debug for ObservedBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObservedBody")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<B: Body<Data = Bytes>> Body for ObservedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let frame = std::task::ready!(this.inner.poll_frame(cx));
        if let Some(Ok(frame)) = &frame {
            if let Some(data) = frame.data_ref() {
                if let Some(slot) = this.counter {
                    slot.add_read(data.len() as u64);
                }
                if let Some(capture) = this.capture {
                    capture.lock().unwrap_or_else(|e| e.into_inner()).push(data);
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project! {
    /// A response body counted as it streams, for a request still to be finished (a body of
    /// unknown size, a logged body, a possible extractor rejection); the request is recorded
    /// when the body ends, or with the bytes sent when it is dropped before (the client went
    /// away). Other bodies pass as they are.
    pub(crate) struct ApitallyBody<B> {
        #[pin]
        body: B,
        state: Option<Box<Streaming>>,
    }

    impl<B> PinnedDrop for ApitallyBody<B> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(state) = this.project().state.take() {
                state.finish();
            }
        }
    }
}

/// A request whose body still streams.
pub(crate) struct Streaming {
    pub(crate) finishing: Finishing,
    pub(crate) sent: u64,
    /// The logged response body.
    pub(crate) capture: Option<BodyCapture>,
    /// Whether the first frame is read as a possible extractor rejection.
    pub(crate) inspect: bool,
}

impl Streaming {
    fn finish(self: Box<Self>) {
        let Streaming {
            mut finishing,
            sent,
            capture,
            ..
        } = *self;
        if let Some(log) = finishing.log.as_mut() {
            log.response_body = capture;
        }
        finishing.finish(Some(sent), None);
    }
}

impl<B> ApitallyBody<B> {
    pub(crate) fn new(body: B, state: Box<Streaming>) -> Self {
        Self {
            body,
            state: Some(state),
        }
    }
}

impl<B> std::fmt::Debug for ApitallyBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApitallyBody")
            .field("streaming", &self.state.is_some())
            .finish_non_exhaustive()
    }
}

impl<B: Body<Data = Bytes>> Body for ApitallyBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let frame = std::task::ready!(this.body.poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let (Some(state), Some(data)) = (this.state.as_mut(), frame.data_ref()) {
                    state.sent += data.len() as u64;
                    if let Some(capture) = &mut state.capture {
                        capture.push(data);
                    }
                    if std::mem::take(&mut state.inspect) {
                        if let Some(error) = std::str::from_utf8(data)
                            .ok()
                            .and_then(rejection::validation_error)
                        {
                            state.finishing.validation_errors.push(error);
                        }
                    }
                }
            }
            // The end, or a body that failed mid-stream: recorded with what was sent.
            None | Some(Err(_)) => {
                if let Some(state) = this.state.take() {
                    state.finish();
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
