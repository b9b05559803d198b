//! Reference middlewares that measure the floor under any metrics middleware for actix-web.
//!
//! `noop` only forwards the request (the cost of one `Transform` layer). `floor` does the least
//! a middleware that reports response times and sizes must do: two clock reads, a wrapper around
//! the response body that counts the bytes it yields, and one add into a per-thread counter when
//! the body is done. Neither records anything that could be reported; they exist so that the
//! benchmark can say how much of Apitally's cost any middleware of this shape would have.

use std::{
    cell::Cell,
    future::{ready, Future, Ready},
    pin::Pin,
    task::{ready, Context, Poll},
    time::Instant,
};

use actix_web::{
    body::{BodySize, MessageBody},
    dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform},
    web::Bytes,
    Error,
};
use pin_project_lite::pin_project;

thread_local! {
    /// Where `floor` adds its numbers, so that the compiler cannot drop the work.
    static SINK: Cell<u64> = const { Cell::new(0) };
}

/// Forwards every request unchanged.
pub(crate) struct Noop;

impl<S, B> Transform<S, ServiceRequest> for Noop
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = NoopService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(NoopService { service }))
    }
}

pub(crate) struct NoopService<S> {
    service: S,
}

impl<S, B> Service<ServiceRequest> for NoopService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = S::Future;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        self.service.call(req)
    }
}

/// Times each request from its call to the end of its body and counts the body's bytes.
pub(crate) struct Floor;

impl<S, B> Transform<S, ServiceRequest> for Floor
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<Counted<B>>;
    type Error = Error;
    type Transform = FloorService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(FloorService { service }))
    }
}

pub(crate) struct FloorService<S> {
    service: S,
}

impl<S, B> Service<ServiceRequest> for FloorService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<Counted<B>>;
    type Error = Error;
    type Future = FloorFuture<S::Future>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        FloorFuture {
            start: Instant::now(),
            inner: self.service.call(req),
        }
    }
}

pin_project! {
    pub(crate) struct FloorFuture<F> {
        start: Instant,
        #[pin]
        inner: F,
    }
}

impl<F, B> Future for FloorFuture<F>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
{
    type Output = Result<ServiceResponse<Counted<B>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx))?;
        let start = *this.start;
        Poll::Ready(Ok(response.map_body(move |_, body| Counted {
            body,
            start,
            bytes: 0,
        })))
    }
}

pin_project! {
    pub(crate) struct Counted<B> {
        #[pin]
        body: B,
        start: Instant,
        bytes: u64,
    }

    impl<B> PinnedDrop for Counted<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let nanos = this.start.elapsed().as_nanos() as u64;
            let bytes = *this.bytes;
            SINK.with(|sink| sink.set(sink.get().wrapping_add(nanos ^ bytes)));
        }
    }
}

impl<B: MessageBody> MessageBody for Counted<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.project();
        let next = ready!(this.body.poll_next(cx));
        if let Some(Ok(chunk)) = &next {
            *this.bytes += chunk.len() as u64;
        }
        Poll::Ready(next)
    }
}
