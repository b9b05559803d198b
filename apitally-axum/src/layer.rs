//! For the layer, see [`ApitallyLayer`]; its service (one request's way in and out) is in
//! `service.rs`.

use std::sync::Arc;

use apitally_core::{
    adapter::{ConsumerCallback, Framework, Pipeline},
    ConfigError,
};
use http::request::Parts;
use tower_layer::Layer;

use crate::{service::ApitallyService, shared::Shared, ApitallyConfig, RouteTemplate};

/// Who runs the pipeline.
const FRAMEWORK: Framework = Framework {
    client: "rust:axum",
    name: "axum",
    version: env!("APITALLY_AXUM_VERSION"),
    adapter: env!("CARGO_PKG_NAME"),
    adapter_version: env!("CARGO_PKG_VERSION"),
};

/// A [tower](https://docs.rs/tower) layer that reports every request to
/// [Apitally](https://apitally.io): traffic, errors, response times and sizes per endpoint and
/// per consumer.
///
/// Build it once and add it to the router last (`Router::layer`, so that it is the outermost
/// layer and runs after routing, where axum's `MatchedPath` names the route); clone it
/// freely (clones share one client). After the server stops, await
/// [`shutdown`](Self::shutdown) for the final delivery.
///
/// # What is measured
/// - **Route**: the matched route template (`MatchedPath`: `/items/{id}`, with `nest` and
///   `merge` prefixes). Requests no route matched (the fallback, unknown paths), `405`s of a
///   path whose method has no route, `OPTIONS` and WebSocket upgrades are not endpoints
///   (request logs still show the first two). A router nested with `nest_service` hides its
///   routes from an outer layer: add the layer to that router as well (an inner layer only
///   reports the route it sees to the outer one, nothing is counted twice). Plain tower
///   services name their route with a [`RouteTemplate`] in the response's extensions.
/// - **Every exit**: a response, a streamed response, a client that goes away (mid-body with
///   the bytes it got; before any response as `499`), an error of the inner service and a
///   handler panic (answered `500`, reported with its backtrace).
/// - **Sizes**: request bodies as the handler reads them (or `Content-Length`), response
///   bodies as they stream (data frames; trailers are not counted).
///
/// ```no_run
/// # use apitally_axum as apitally;
/// use apitally::{ApitallyConfig, ApitallyLayer};
/// use axum::{routing::get, Router};
///
/// #[tokio::main]
/// async fn main() -> std::io::Result<()> {
///     let apitally = ApitallyLayer::new(ApitallyConfig::from_env());
///     let app = Router::new()
///         .route("/items/{id}", get(|| async { "{}" }))
///         .layer(apitally.clone());
///     let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
///     axum::serve(listener, app).await?;
///     apitally.shutdown().await;
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct ApitallyLayer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ApitallyLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApitallyLayer")
            .field("pipeline", &self.shared.pipeline)
            .finish_non_exhaustive()
    }
}

impl ApitallyLayer {
    /// Creates the layer, starting the client (or finding the one already running for the
    /// same credential and env). Never fails, and keeps monitoring on whenever it can: a bad
    /// optional setting is named in one line and replaced by its default; only a missing or
    /// malformed credential, env or endpoint URL disables Apitally (requests then pass through
    /// untouched). The lines go to the `log` logger, or to stderr when none would show them.
    pub fn new(config: ApitallyConfig) -> Self {
        let (pipeline, identify_consumer) = Pipeline::new(config, FRAMEWORK);
        Self::with(pipeline, identify_consumer)
    }

    /// Like [`new`](Self::new), but fails on any invalid option (see
    /// [`ApitallyConfig::validate`](apitally_core::ApitallyConfig::validate)).
    ///
    /// ```
    /// # use apitally_axum as apitally;
    /// use apitally::{ApitallyConfig, ApitallyLayer};
    ///
    /// let err = ApitallyLayer::try_new(ApitallyConfig::new("not-a-uuid", "prod")).unwrap_err();
    /// assert!(err.to_string().starts_with("invalid client id \"not-a-uuid\""));
    /// ```
    pub fn try_new(config: ApitallyConfig) -> Result<Self, ConfigError> {
        let (pipeline, identify_consumer) = Pipeline::try_new(config, FRAMEWORK)?;
        Ok(Self::with(pipeline, identify_consumer))
    }

    fn with(pipeline: Pipeline, identify_consumer: Option<ConsumerCallback<Parts>>) -> Self {
        Self {
            shared: Arc::new(Shared {
                pipeline,
                identify_consumer,
            }),
        }
    }

    /// Whether Apitally records and reports: false for an invalid configuration, a disabled
    /// one, after the hub answered 404 for the client id, and after [`shutdown`](Self::shutdown).
    pub fn is_enabled(&self) -> bool {
        self.shared.pipeline.is_enabled()
    }

    /// The pipeline (for tests of the SDK).
    #[doc(hidden)]
    pub fn pipeline(&self) -> &Pipeline {
        &self.shared.pipeline
    }

    /// Stops the client after a final delivery of everything recorded, within the shutdown
    /// timeout (10 s by default). Call it after `axum::serve(..).await` returns.
    pub async fn shutdown(&self) {
        self.shared.pipeline.client().shutdown().await;
    }
}

impl<S> Layer<S> for ApitallyLayer {
    type Service = ApitallyService<S>;

    fn layer(&self, inner: S) -> ApitallyService<S> {
        ApitallyService::new(inner, Arc::clone(&self.shared))
    }
}

impl RouteTemplate {
    /// The template.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
