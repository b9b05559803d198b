//! [Apitally](https://apitally.io) for [actix-web](https://actix.rs): API monitoring and
//! analytics with one middleware.
//!
//! Apitally shows traffic, errors, response times and payload sizes per endpoint and per API
//! consumer. This crate's [`Apitally`] middleware measures every request and a background thread
//! reports aggregated data to Apitally every 10 to 60 seconds; the request path does no I/O.
//!
//! ```toml
//! [dependencies]
//! apitally = { package = "apitally-actix", version = "0.1" }
//! ```
//!
//! ```no_run
//! # use apitally_actix as apitally;
//! use actix_web::{get, App, HttpMessage, HttpServer, Responder};
//! use apitally::{Apitally, ApitallyConfig, Consumer};
//!
//! /// What the app's auth layer stores in the request once it has checked the API key.
//! #[derive(Clone)]
//! struct Customer {
//!     id: u64,
//!     name: String,
//! }
//!
//! #[get("/items")]
//! async fn items() -> impl Responder {
//!     "[]"
//! }
//!
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     // APITALLY_WRITE_TOKEN (or APITALLY_CLIENT_ID), and APITALLY_ENV.
//!     let config = ApitallyConfig::from_env()
//!         .app_version("1.4.0")
//!         // Name consumers by who they are, never by their credential: the identifier is
//!         // sent as it is.
//!         .identify_consumer(|req| {
//!             let customer = req.extensions().get::<Customer>()?.clone();
//!             Some(Consumer::new(customer.id.to_string()).name(customer.name))
//!         });
//!     let apitally = Apitally::new(config);
//!     HttpServer::new({
//!         let apitally = apitally.clone();
//!         move || App::new().wrap(apitally.clone()).service(items)
//!     })
//!     .bind(("127.0.0.1", 8000))?
//!     .run()
//!     .await?;
//!     apitally.shutdown().await; // final sync
//!     Ok(())
//! }
//! ```
//!
//! Consumers can be set by the [`identify_consumer`](ApitallyConfig::identify_consumer)
//! callback, by any handler or middleware with [`ConsumerExt::set_consumer`], and read with the
//! [`ApitallyConsumer`] extractor (or `web::ReqData<Consumer>`).
//!
//! Diagnostics go through the `log` facade under the target `apitally`; set `APITALLY_DEBUG=1`
//! to also print debug lines to stderr.

mod body;
mod errors;
mod exits;
mod ext;
mod extractor;
mod middleware;
mod notes;
mod record;
mod request;
mod service;
mod shared;
mod worker;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

/// Sets the request's consumer from values the handler already has.
///
/// `#[apitally::consumer(identifier, name = .., group = .., attributes(key = .., ..))]` goes on
/// an `async fn` handler. Each argument is an expression over the handler's arguments,
/// evaluated once when the handler starts, by reference (the handler keeps its arguments).
/// Accepted values: `&str`, `String`, numbers and any other `Display` value, and `Option`s of
/// them; a `None` identifier leaves the request anonymous, a `None` attribute deletes it.
/// `attributes(..)` sets [`Consumer::attribute`]s (Apitally 1.x shows them with the consumer;
/// hub v2 ignores them). The consumer set this way wins over the
/// [`identify_consumer`](ApitallyConfig::identify_consumer) callback.
///
/// It works above or below actix's route macros (`#[get]`, `#[post]`, `#[route]`) and on
/// handlers registered with `web::get().to(handler)`, whatever name the dependency has (the
/// runtime crate is found in `Cargo.toml`; `crate = "path"` overrides it). It adds one
/// `HttpRequest` argument to the handler, so a handler can have at most 15 extractors of its own.
///
/// ```
/// # use apitally_actix as apitally;
/// use actix_web::{get, web, HttpResponse, Responder};
///
/// #[derive(Clone)]
/// struct User { id: u64, name: String, plan: Option<String>, seats: u32 }
///
/// #[apitally::consumer(user.id, name = user.name, group = user.plan, attributes(seats = user.seats))]
/// #[get("/orders")]
/// async fn orders(user: web::ReqData<User>) -> impl Responder {
///     HttpResponse::Ok().body(format!("orders of {}", user.name))
/// }
///
/// #[derive(serde::Deserialize)]
/// struct Claims { sub: String }
///
/// #[apitally::consumer(claims.sub)]
/// async fn create(claims: web::Query<Claims>) -> HttpResponse {
///     HttpResponse::Created().finish()
/// }
/// # let _ = actix_web::App::new().service(orders).route("/c", web::post().to(create));
/// ```
///
/// On a route where authentication is optional, take the user as an `Option` and name the
/// consumer with an `Option` too: anonymous requests stay anonymous.
///
/// ```
/// # use apitally_actix as apitally;
/// use actix_web::{get, web, HttpResponse};
///
/// #[derive(Clone)]
/// struct User { id: u64, name: String }
///
/// #[apitally::consumer(user.as_ref().map(|u| u.id), name = user.as_ref().map(|u| u.name.clone()))]
/// #[get("/catalog")]
/// async fn catalog(user: Option<web::ReqData<User>>) -> HttpResponse {
///     match user {
///         Some(user) => HttpResponse::Ok().body(format!("prices for {}", user.name)),
///         None => HttpResponse::Ok().body("list prices"),
///     }
/// }
/// # let _ = actix_web::App::new().service(catalog);
/// ```
#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
pub use apitally_actix_macros::consumer;
#[cfg(feature = "tracing")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
pub use apitally_core::tracing_layer;
pub use apitally_core::{ConfigError, Consumer, RequestLoggingConfig, ValidationError};

pub use self::{
    ext::{ConsumerExt, ValidationErrorExt},
    extractor::{ApitallyConsumer, ConsumerExtractionError},
    middleware::Apitally,
};

/// The configuration of the [`Apitally`] middleware: the one configuration of Apitally's Rust
/// SDK, for actix-web's requests (its
/// [`identify_consumer`](apitally_core::ApitallyConfig::identify_consumer) callback reads an
/// [`HttpRequest`](actix_web::HttpRequest)).
///
/// ```
/// # use apitally_actix as apitally;
/// use actix_web::HttpMessage;
/// use apitally::{ApitallyConfig, Consumer};
///
/// // Set by the app's auth layer once it has checked the credential.
/// #[derive(Clone)]
/// struct CustomerId(u64);
///
/// let config = ApitallyConfig::new("3cd8948c-b589-40a2-a33f-a4e604425c81", "prod")
///     .app_version("1.4.0")
///     .identify_consumer(|req| {
///         let CustomerId(id) = req.extensions().get::<CustomerId>()?.clone();
///         Some(Consumer::new(id.to_string()))
///     });
/// assert!(config.validate().is_ok());
/// ```
pub type ApitallyConfig = apitally_core::ApitallyConfig<actix_web::HttpRequest>;

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
    //! The types the middleware's `Transform` names (its service, future and response body),
    //! for code that composes middleware by type; apps do not need them.

    #[cfg(feature = "tracing")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
    pub use apitally_core::TracingLayer;

    pub use crate::{
        body::ApitallyBody,
        service::{ApitallyMiddleware, ApitallyResponse},
    };
}
