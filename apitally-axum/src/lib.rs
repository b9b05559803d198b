//! [Apitally](https://apitally.io) for [axum](https://docs.rs/axum) and tower services: API
//! monitoring and analytics with one layer.
//!
//! Apitally shows traffic, errors, response times and payload sizes per endpoint and per API
//! consumer, and request logs. This crate's [`ApitallyLayer`] measures every request; a
//! background thread reports to Apitally, and the request path does no I/O. It is the same SDK
//! as [apitally-actix](https://docs.rs/apitally-actix), on the same core: the same
//! configuration, credentials, environment variables, defaults and masking.
//!
//! ```toml
//! [dependencies]
//! apitally = { package = "apitally-axum", version = "0.1" }
//! ```
//!
//! ```no_run
//! # use apitally_axum as apitally;
//! use apitally::{ApitallyConfig, ApitallyLayer, Consumer, ConsumerExt};
//! use axum::{extract::Request, middleware::{self, Next}, response::Response, routing::get, Router};
//!
//! async fn auth(req: Request, next: Next) -> Response {
//!     if let Some(key) = req.headers().get("x-api-key").and_then(|k| k.to_str().ok()) {
//!         // Name consumers by who they are, never by their credential.
//!         req.set_consumer(Consumer::new(format!("customer-of-{}", key.len())));
//!     }
//!     next.run(req).await
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     // APITALLY_WRITE_TOKEN (or APITALLY_CLIENT_ID), and APITALLY_ENV.
//!     let apitally = ApitallyLayer::new(ApitallyConfig::from_env());
//!     let app = Router::new()
//!         .route("/items/{id}", get(|| async { "{}" }))
//!         .layer(middleware::from_fn(auth)) // may call req.set_consumer(...)
//!         .layer(apitally.clone()); // last: outermost
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//!     axum::serve(listener, app).await?;
//!     apitally.shutdown().await; // final delivery
//!     Ok(())
//! }
//! ```
//!
//! Consumers are named, the first that applies winning, by the `#[apitally::consumer]` macro
//! or [`ConsumerExt::set_consumer`] (on the request in a middleware, or through the
//! [`ApitallyRequest`] extractor in a handler), else by the
//! [`identify_consumer`](ApitallyConfig::identify_consumer) callback, which here runs when the
//! layer sees the request (before the layers inside it and the handler) on its `Parts`.
//! Handlers read the consumer with the [`ApitallyConsumer`] extractor.
//!
//! Diagnostics go through the `log` facade under the target `apitally`; set `APITALLY_DEBUG=1`
//! to also print debug lines to stderr.

mod body;
mod ext;
mod extractor;
mod finish;
mod layer;
mod rejection;
mod request;
mod service;
mod shared;
mod slot;

#[doc(hidden)]
pub mod __private;

/// Sets the request's consumer from values the handler already has:
/// `#[apitally::consumer(identifier, name = .., group = .., attributes(key = .., ..))]` on an
/// `async fn` handler, with expressions over its arguments (extractors: `Query<Who>` →
/// `q.user.clone()`), evaluated once when the handler starts. Accepted values: `&str`,
/// `String`, numbers and any other `Display` value, and `Option`s of them; a `None` identifier
/// leaves the request anonymous. It adds one first argument to the handler (a request handle,
/// an extractor that reads no body), so a handler can have at most 15 extractors of its own.
///
/// The macro crate serves apitally-actix and apitally-axum: it generates code for the one of
/// the two your `Cargo.toml` depends on (renamed or not); with both, say which with
/// `crate = "apitally_axum"`.
///
/// ```
/// # use apitally_axum as apitally;
/// use axum::{extract::Query, routing::get, Router};
///
/// #[derive(serde::Deserialize)]
/// struct Who { user: String, plan: Option<String> }
///
/// #[apitally::consumer(q.user.clone(), group = q.plan.clone())]
/// async fn items(q: Query<Who>) -> String {
///     format!("items of {}", q.user)
/// }
/// # let _: Router = Router::new().route("/items", get(items));
/// ```
#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
pub use apitally_actix_macros::consumer;
#[cfg(feature = "tracing")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
pub use apitally_core::tracing_layer;
pub use apitally_core::{ConfigError, Consumer, RequestLoggingConfig, ValidationError};

pub use self::{
    ext::{ConsumerExt, ServerErrorExtension},
    extractor::{ApitallyConsumer, ApitallyRequest, ConsumerExtractionError},
    layer::ApitallyLayer,
};

/// The configuration of the [`ApitallyLayer`]: the one configuration of Apitally's Rust SDK,
/// for `http` requests (its [`identify_consumer`](apitally_core::ApitallyConfig::identify_consumer)
/// callback reads the request's `Parts` when the layer sees it).
///
/// ```
/// # use apitally_axum as apitally;
/// use apitally::{ApitallyConfig, Consumer};
///
/// let config = ApitallyConfig::new("3cd8948c-b589-40a2-a33f-a4e604425c81", "prod")
///     .identify_consumer(|parts| {
///         let tenant = parts.headers.get("x-tenant")?.to_str().ok()?;
///         Some(Consumer::new(tenant))
///     });
/// assert!(config.validate().is_ok());
/// ```
pub type ApitallyConfig = apitally_core::ApitallyConfig<http::request::Parts>;

/// The route template of a response from a service that has no router (a plain hyper or tower
/// service): inserted into the response's extensions, it names the endpoint. axum's router
/// needs none (its `MatchedPath` does).
///
/// ```
/// # use apitally_axum as apitally;
/// use apitally::RouteTemplate;
///
/// let mut res = http::Response::new(String::from("{}"));
/// res.extensions_mut().insert(RouteTemplate::new("/items/{id}"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTemplate(std::borrow::Cow<'static, str>);

impl RouteTemplate {
    /// A route template, such as `/items/{id}`.
    pub fn new(template: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        Self(template.into())
    }
}

pub mod config {
    //! What the configuration's inputs and callbacks name: routes for the startup data, the
    //! views the sampling callbacks decide on, the request-log types the masking and
    //! exclusion callbacks see, and the values of consumer and request attributes.

    pub use apitally_core::{
        AttributeValue, CapturedLog, CapturedSpan, Headers, LoggedRequest, LoggedResponse,
        PathItem, SampleRequest, SampleResponse,
    };
}

pub mod dev {
    //! The types the layer's `Service` names (its service and its future), for code that
    //! composes services by type; apps do not need them. The service hands the inner service
    //! axum's `Body` and answers with it, so that bodies pass without boxing.

    #[cfg(feature = "tracing")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
    pub use apitally_core::TracingLayer;

    pub use crate::service::{ApitallyService, ResponseFuture};
}
