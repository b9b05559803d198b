//! For middleware documentation, see [`Apitally`]; its service (one request's way in and
//! out) is in `service.rs`, and the exits that build the request's record in `exits.rs`.

use std::{
    future::{ready, Ready},
    rc::Rc,
    sync::Arc,
};

use actix_web::{
    body::MessageBody,
    dev::{Service, ServiceRequest, ServiceResponse, Transform},
    Error,
};
use apitally_core::{adapter::Framework, adapter::Pipeline, ConfigError};

use crate::{
    body::ApitallyBody, service::ApitallyMiddleware, shared::Shared, worker::Worker, ApitallyConfig,
};

/// Who runs the pipeline.
const FRAMEWORK: Framework = Framework {
    client: "rust:actix",
    name: "actix-web",
    version: env!("APITALLY_ACTIX_WEB_VERSION"),
    adapter: env!("CARGO_PKG_NAME"),
    adapter_version: env!("CARGO_PKG_VERSION"),
};

/// Middleware that reports every request to [Apitally](https://apitally.io): traffic, errors,
/// response times and sizes per endpoint and per consumer.
///
/// Build it once, before the server, and clone it into each worker's `App`; after the server
/// stops, await [`shutdown`](Self::shutdown) for the final sync. Building it inside the
/// `HttpServer::new` closure (`App::new().wrap(Apitally::new(config.clone()))`) works as well:
/// every worker finds the same client, with one sync thread and one instance UUID.
///
/// # What is measured
/// - **Route**: the matched route template (`/items/{id}`, with `{id:\d+}` shown as `{id}`),
///   read after routing, so scopes and guards are right. Only requests that routing matched
///   completely are endpoints: a request that reaches a default service (a 404 for an unknown
///   path, the 404 of a `#[get]` resource asked with another method, or a resource's 405) is
///   not counted (request logs still show it), and neither are `OPTIONS` requests.
/// - **Every exit**: a response, a streamed response, a client that disconnects mid-body, an
///   `Err` from an inner middleware (an auth layer built with `middleware::from_fn`, say) and a
///   handler panic are all recorded with the consumer, the validation errors the request
///   reported and the bytes the client got. (An `Err` or a panic drops the request inside
///   actix, so the [`identify_consumer`](ApitallyConfig::identify_consumer) callback cannot
///   run for them: set the consumer on the request, with
///   [`ConsumerExt::set_consumer`](crate::ConsumerExt::set_consumer), before rejecting it.)
/// - **Status**: the response's status, or the error's for a handler `Err`.
/// - **Response time**: from the middleware to the response head (the body's streaming time is
///   not included).
/// - **Response size**: a body whose size is known up front (anything sent with a
///   `Content-Length`, including sized streams such as actix-files' `NamedFile`) is counted with
///   that size at the response head (the request is recorded then, with no per-chunk
///   bookkeeping); a chunked stream is counted as it streams, and a client that disconnects
///   mid-stream is counted with what it got.
/// - **Request size**: `Content-Length`, or the bytes the handler read of a chunked body.
///
/// # Order with other middleware
/// In actix-web the last `.wrap()` is the outermost layer: it sees the request first and the
/// response last. Wrap Apitally
/// - *after* (outside) the auth layer, so that Apitally sees the requests it rejects: a `401`
///   or `403` is then counted, with the consumer the auth layer set
///   ([`ConsumerExt::set_consumer`](crate::ConsumerExt::set_consumer)) before rejecting;
///   wrapped inside it, Apitally never sees them;
/// - *before* (inside) [`Compress`](https://docs.rs/actix-web/4/actix_web/middleware/struct.Compress.html),
///   so that response sizes are those of the uncompressed bodies (outside it, compressed sizes);
/// - inside [`TracingLogger`](https://docs.rs/tracing-actix-web) (tracing-actix-web), so that
///   the request's root span is open while Apitally and the handler run: captured logs and
///   spans then go with their request as without it;
/// - `Logger` and sentry-actix's `Sentry` can go anywhere outside the auth layer; outside
///   Apitally, as here, they see the `500` Apitally makes of a handler panic.
///
/// ```no_run
/// # use apitally_actix as apitally;
/// use actix_web::{
///     body::MessageBody,
///     dev::{ServiceRequest, ServiceResponse},
///     middleware::{from_fn, Compress, Logger, Next},
///     App, Error, HttpServer,
/// };
/// use apitally::{Apitally, ApitallyConfig, ConsumerExt};
///
/// async fn auth(
///     req: ServiceRequest,
///     next: Next<impl MessageBody>,
/// ) -> Result<ServiceResponse<impl MessageBody>, Error> {
///     match req.headers().get("x-api-key").and_then(|key| key.to_str().ok()) {
///         Some("k-1") => {
///             req.set_consumer("customer-1"); // before next.call, and before rejecting
///             next.call(req).await
///         }
///         _ => Err(actix_web::error::ErrorUnauthorized("no API key")),
///     }
/// }
///
/// #[actix_web::main]
/// async fn main() -> std::io::Result<()> {
///     let apitally = Apitally::try_new(ApitallyConfig::from_env()).map_err(std::io::Error::other)?;
///     HttpServer::new({
///         let apitally = apitally.clone();
///         move || {
///             App::new()
///                 .wrap(from_fn(auth)) // innermost
///                 .wrap(apitally.clone())
///                 .wrap(Compress::default())
///                 .wrap(sentry_actix::Sentry::new())
///                 .wrap(Logger::default())
///                 .wrap(tracing_actix_web::TracingLogger::default()) // outermost
///         }
///     })
///     .bind(("127.0.0.1", 8000))?
///     .run()
///     .await?;
///     apitally.shutdown().await;
///     Ok(())
/// }
/// ```
///
/// # Examples
/// ```no_run
/// # use apitally_actix as apitally;
/// use actix_web::{web, App, HttpServer};
/// use apitally::{Apitally, ApitallyConfig};
///
/// #[actix_web::main]
/// async fn main() -> std::io::Result<()> {
///     let apitally = Apitally::new(ApitallyConfig::from_env().app_version("1.0.0"));
///     HttpServer::new({
///         let apitally = apitally.clone();
///         move || {
///             App::new()
///                 .wrap(apitally.clone())
///                 .route("/items", web::get().to(|| async { "[]" }))
///         }
///     })
///     .bind(("127.0.0.1", 8000))?
///     .run()
///     .await?;
///     apitally.shutdown().await;
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct Apitally {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Apitally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Apitally")
            .field("pipeline", &self.shared.pipeline)
            .finish_non_exhaustive()
    }
}

impl Apitally {
    /// Creates the middleware, starting the client (or finding the one already running for the
    /// same credential and env).
    ///
    /// Never panics, and keeps monitoring on whenever it can: a bad optional setting (a sample
    /// rate out of range, a pattern the `regex` crate rejects, a bad proxy URL, an OpenAPI
    /// document that is not JSON, ...) is reported in one line naming it and replaced by its
    /// default, and everything else works. Only a missing or malformed credential, env or
    /// endpoint URL disables Apitally; the middleware then passes every request through
    /// untouched. The lines go to the app's `log` logger at error level, or to stderr when no
    /// logger would show them. [`ApitallyConfig::disabled`] (or `APITALLY_DISABLED`) switches it
    /// off on purpose.
    pub fn new(config: ApitallyConfig) -> Self {
        let (pipeline, identify_consumer) = Pipeline::new(config, FRAMEWORK);
        Self::with(pipeline, identify_consumer)
    }

    /// Like [`new`](Self::new), but fails on an invalid configuration (every option is
    /// checked, see [`ApitallyConfig::validate`]), for apps that want to stop at startup.
    ///
    /// In a `main` that returns `std::io::Result`, `map_err(std::io::Error::other)` turns the
    /// error into an `io::Error` whose message names the option, the value and what is
    /// expected:
    ///
    /// ```no_run
    /// # use apitally_actix as apitally;
    /// use actix_web::{App, HttpServer};
    /// use apitally::{Apitally, ApitallyConfig};
    ///
    /// #[actix_web::main]
    /// async fn main() -> std::io::Result<()> {
    ///     let apitally = Apitally::try_new(ApitallyConfig::from_env()).map_err(std::io::Error::other)?;
    ///     HttpServer::new({
    ///         let apitally = apitally.clone();
    ///         move || App::new().wrap(apitally.clone())
    ///     })
    ///     .bind(("127.0.0.1", 8000))?
    ///     .run()
    ///     .await?;
    ///     apitally.shutdown().await;
    ///     Ok(())
    /// }
    /// ```
    ///
    /// ```
    /// # use apitally_actix as apitally;
    /// use apitally::{Apitally, ApitallyConfig};
    ///
    /// let err = Apitally::try_new(ApitallyConfig::new("not-a-uuid", "prod")).unwrap_err();
    /// assert!(err.to_string().starts_with("invalid client id \"not-a-uuid\""));
    /// ```
    pub fn try_new(config: ApitallyConfig) -> Result<Self, ConfigError> {
        let (pipeline, identify_consumer) = Pipeline::try_new(config, FRAMEWORK)?;
        Ok(Self::with(pipeline, identify_consumer))
    }

    fn with(
        pipeline: Pipeline,
        identify_consumer: Option<apitally_core::adapter::ConsumerCallback<actix_web::HttpRequest>>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                pipeline,
                identify_consumer,
            }),
        }
    }

    /// Whether Apitally records and reports: false for an invalid configuration, after the hub
    /// answered 404 for the client id, and after [`shutdown`](Self::shutdown).
    pub fn is_enabled(&self) -> bool {
        self.shared.pipeline.is_enabled()
    }

    /// The pipeline (for tests of this crate and of the SDK).
    #[doc(hidden)]
    pub fn pipeline(&self) -> &Pipeline {
        &self.shared.pipeline
    }

    /// Stops the client after a final sync of everything recorded, within the shutdown timeout
    /// (10 s by default). Call it after `HttpServer::run().await` returns.
    pub async fn shutdown(&self) {
        self.shared.pipeline.client().shutdown().await;
    }
}

impl<S, B> Transform<S, ServiceRequest> for Apitally
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<ApitallyBody<B>>;
    type Error = Error;
    type Transform = ApitallyMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(ApitallyMiddleware::new(
            service,
            Rc::new(Worker::new(Arc::clone(&self.shared))),
        )))
    }
}
