//! Reference layers that measure the floor under any metrics layer for axum, as `floor.rs` does
//! for actix-web.
//!
//! `axum-noop` only forwards the request: what any layer added with `Router::layer` costs
//! (axum boxes and clones each route's service once more, and boxes its future). `axum-floor`
//! does the least a layer that reports response times and sizes must do: two clock reads, the
//! response size from the body's size hint or, when it is unknown, a wrapper that counts the
//! bytes the body yields, and one add into a per-thread counter. Neither records anything that
//! could be reported.

use std::{
    cell::Cell,
    future::Future,
    pin::Pin,
    task::{ready, Context, Poll},
    time::Instant,
};

use axum::{
    body::{Body, Bytes},
    extract::Request,
    response::Response,
};
use pin_project_lite::pin_project;

thread_local! {
    /// Where `floor` adds its numbers, so that the compiler cannot drop the work.
    static SINK: Cell<u64> = const { Cell::new(0) };
}

fn sink(n: u64) {
    SINK.with(|s| s.set(s.get().wrapping_add(n)));
}

/// The layer of `axum-noop` (`noop: true`) and `axum-floor`.
#[derive(Clone, Copy)]
pub(crate) struct FloorLayer {
    pub(crate) noop: bool,
}

impl<S> tower::Layer<S> for FloorLayer {
    type Service = Floor<S>;

    fn layer(&self, inner: S) -> Floor<S> {
        Floor {
            inner,
            noop: self.noop,
        }
    }
}

#[derive(Clone)]
pub(crate) struct Floor<S> {
    inner: S,
    noop: bool,
}

impl<S> tower::Service<Request> for Floor<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = FloorFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        FloorFuture {
            fut: self.inner.call(req),
            start: (!self.noop).then(Instant::now),
        }
    }
}

pin_project! {
    pub(crate) struct FloorFuture<F> {
        #[pin]
        fut: F,
        start: Option<Instant>,
    }
}

impl<F, E> Future for FloorFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let res = ready!(this.fut.poll(cx))?;
        let Some(start) = this.start.take() else {
            return Poll::Ready(Ok(res));
        };
        let micros = start.elapsed().as_micros() as u64;
        Poll::Ready(Ok(match http_body::Body::size_hint(res.body()).exact() {
            Some(size) => {
                sink(micros + size);
                res
            }
            None => res.map(|body| Body::new(Counted { body, sent: micros })),
        }))
    }
}

pin_project! {
    /// A response body that counts the bytes it yields, added to the sink when it ends.
    struct Counted {
        #[pin]
        body: Body,
        sent: u64,
    }
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = self.project();
        let frame = ready!(this.body.poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => *this.sent += frame.data_ref().map_or(0, |d| d.len() as u64),
            _ => sink(*this.sent),
        }
        Poll::Ready(frame)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }
}
