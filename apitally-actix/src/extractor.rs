//! For extractor documentation, see [`ApitallyConsumer`].

use std::{future::Ready, ops::Deref};

use actix_web::{
    dev::Payload, http::StatusCode, FromRequest, HttpMessage, HttpRequest, ResponseError,
};
use apitally_core::Consumer;

/// Extracts the consumer set on the request so far (by a middleware such as an auth layer,
/// with [`ConsumerExt::set_consumer`](crate::ConsumerExt::set_consumer)).
///
/// # Extractor behaviour
/// When no consumer was set, extraction fails with [`ConsumerExtractionError`] (a `500`,
/// because it means the app was wired wrongly); use `Option<ApitallyConsumer>` when a request
/// may be anonymous. The [`identify_consumer`](crate::ApitallyConfig::identify_consumer)
/// callback runs after the handler, so its result is not visible here.
///
/// ```
/// # use apitally_actix as apitally;
/// use actix_web::{get, HttpResponse};
/// use apitally::ApitallyConsumer;
///
/// #[get("/me")]
/// async fn me(consumer: Option<ApitallyConsumer>) -> HttpResponse {
///     match consumer {
///         Some(consumer) => HttpResponse::Ok().body(consumer.get_identifier().to_owned()),
///         None => HttpResponse::Unauthorized().finish(),
///     }
/// }
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
        f.write_str("no Apitally consumer was set on this request")
    }
}

impl std::error::Error for ConsumerExtractionError {}

impl ResponseError for ConsumerExtractionError {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

impl FromRequest for ApitallyConsumer {
    type Error = ConsumerExtractionError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            req.extensions()
                .get::<Consumer>()
                .cloned()
                .map(ApitallyConsumer)
                .ok_or(ConsumerExtractionError),
        )
    }
}
