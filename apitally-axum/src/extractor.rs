//! For the extractors, see [`ApitallyConsumer`] and [`ApitallyRequest`].

use std::{convert::Infallible, ops::Deref};

use apitally_core::Consumer;
use axum::{
    extract::{FromRequestParts, OptionalFromRequestParts},
    http::{request::Parts, StatusCode},
    response::{IntoResponse, Response},
};

use crate::{slot::Slot, ConsumerExt};

/// A handle to the request for Apitally, in a handler: set its consumer, attributes, captured
/// errors and validation errors ([`ConsumerExt`]). Never fails; without an
/// [`ApitallyLayer`](crate::ApitallyLayer) around the handler, what is set is not kept.
///
/// ```
/// # use apitally_axum as apitally;
/// use apitally::{ApitallyRequest, Consumer, ConsumerExt};
///
/// async fn orders(apitally: ApitallyRequest) -> &'static str {
///     apitally.set_consumer(Consumer::new("customer-42").name("Customer 42"));
///     apitally.set_request_attribute("rows", 12);
///     "[]"
/// }
/// # let _: axum::Router = axum::Router::new().route("/orders", axum::routing::get(orders));
/// ```
#[derive(Clone, Default)]
pub struct ApitallyRequest {
    pub(crate) slot: Option<Slot>,
}

impl std::fmt::Debug for ApitallyRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApitallyRequest")
            .field("measured", &self.slot.is_some())
            .finish()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ApitallyRequest {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(Self {
            slot: parts.extensions.get::<Slot>().cloned(),
        })
    }
}

/// Extracts the consumer set on the request so far (by a middleware such as an auth layer,
/// with [`ConsumerExt::set_consumer`]). When none was set, extraction fails with
/// [`ConsumerExtractionError`] (a `500`: the app was wired wrongly); use
/// `Option<ApitallyConsumer>` when a request may be anonymous. A consumer named by the
/// [`identify_consumer`](crate::ApitallyConfig::identify_consumer) callback is visible too.
///
/// ```
/// # use apitally_axum as apitally;
/// use apitally::ApitallyConsumer;
///
/// async fn me(consumer: Option<ApitallyConsumer>) -> String {
///     consumer.map_or_else(|| "anonymous".to_owned(), |c| c.get_identifier().to_owned())
/// }
/// # let _: axum::Router = axum::Router::new().route("/me", axum::routing::get(me));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApitallyConsumer(Consumer);

impl ApitallyConsumer {
    /// The consumer.
    pub fn into_inner(self) -> Consumer {
        self.0
    }
}

impl Deref for ApitallyConsumer {
    type Target = Consumer;

    fn deref(&self) -> &Consumer {
        &self.0
    }
}

impl From<ApitallyConsumer> for Consumer {
    fn from(consumer: ApitallyConsumer) -> Self {
        consumer.0
    }
}

/// No consumer was set on the request; see [`ApitallyConsumer`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerExtractionError;

impl std::fmt::Display for ConsumerExtractionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "no Apitally consumer was set on this request (set one with ConsumerExt::set_consumer \
             before the handler, or extract Option<ApitallyConsumer>)",
        )
    }
}

impl std::error::Error for ConsumerExtractionError {}

impl IntoResponse for ConsumerExtractionError {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ApitallyConsumer {
    type Rejection = ConsumerExtractionError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Self, ConsumerExtractionError> {
        parts
            .consumer()
            .map(ApitallyConsumer)
            .ok_or(ConsumerExtractionError)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for ApitallyConsumer {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Infallible> {
        Ok(parts.consumer().map(ApitallyConsumer))
    }
}
