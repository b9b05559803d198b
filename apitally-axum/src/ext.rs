//! For the request extension trait, see [`ConsumerExt`].

use apitally_core::{
    adapter::{captured_error, ServerError},
    AttributeValue, Consumer, ValidationError,
};

use crate::ApitallyRequest;

mod sealed {
    // The trait is unnameable outside the crate (a sealed trait), so the slot it hands out is
    // too.
    #[allow(private_interfaces)]
    pub trait Sealed {
        fn slot(&self) -> Option<&crate::slot::Slot>;
    }
    #[allow(private_interfaces)]
    impl<B> Sealed for http::Request<B> {
        fn slot(&self) -> Option<&crate::slot::Slot> {
            self.extensions().get()
        }
    }
    #[allow(private_interfaces)]
    impl Sealed for http::request::Parts {
        fn slot(&self) -> Option<&crate::slot::Slot> {
            self.extensions.get()
        }
    }
    #[allow(private_interfaces)]
    impl Sealed for crate::ApitallyRequest {
        fn slot(&self) -> Option<&crate::slot::Slot> {
            self.slot.as_ref()
        }
    }
}

/// Sets and reads the consumer of a request, sets request attributes, captures errors and
/// reports validation errors: on an [`axum::extract::Request`] in a `from_fn` middleware
/// (before `next.run(req)`), on `Parts`, or from a handler through the [`ApitallyRequest`]
/// extractor.
///
/// What is set goes to the request's place in the [`ApitallyLayer`](crate::ApitallyLayer)
/// around it (without the layer, nothing is kept). The first consumer-setting way that applies
/// wins, in this order: the `#[apitally::consumer]` macro or a `set_consumer` (the latest
/// one), then the [`identify_consumer`](crate::ApitallyConfig::identify_consumer) callback.
///
/// ```
/// # use apitally_axum as apitally;
/// use axum::{extract::Request, http::StatusCode, middleware::Next, response::Response};
/// use apitally::{Consumer, ConsumerExt};
///
/// async fn auth(req: Request, next: Next) -> Result<Response, StatusCode> {
///     match req.headers().get("x-api-key").and_then(|v| v.to_str().ok()) {
///         Some("k-1") => {
///             req.set_consumer(Consumer::new("customer-1").name("Customer 1"));
///             Ok(next.run(req).await)
///         }
///         _ => Err(StatusCode::UNAUTHORIZED),
///     }
/// }
/// ```
pub trait ConsumerExt: sealed::Sealed {
    /// Attributes the request to `consumer` (a [`Consumer`] or a plain identifier). An anonymous
    /// consumer (empty identifier after trimming) removes the one set before.
    fn set_consumer(&self, consumer: impl Into<Consumer>) {
        if let Some(slot) = self.slot() {
            let consumer = consumer.into();
            slot.lock().consumer = (!consumer.is_anonymous()).then_some(consumer);
        }
    }

    /// The consumer set on the request so far, if any.
    fn consumer(&self) -> Option<Consumer> {
        self.slot()?.lock().consumer.clone()
    }

    /// Sets an attribute of this request: written on the request's span in Apitally 1.x (with
    /// `apitally.request.custom_attribute_keys`), visible to `sample_on_response` and the
    /// masking callbacks; hub v2 has no field for them. Keys are trimmed and 1 to 128
    /// characters, not in a namespace Apitally writes itself (`http.`, `url.`, `apitally.`,
    /// ...); at most 32; text cut to 4,096 characters; `None` removes the key; a value whose
    /// key looks sensitive is masked before it leaves the app.
    fn set_request_attribute(&self, key: &str, value: impl Into<AttributeValue>) {
        if let Some(slot) = self.slot() {
            slot.lock().attributes.set(key, value.into());
        }
    }

    /// Captures an error the app handled: the first one captured on a request is its server
    /// error (message, sources, a backtrace of this call symbolised off the request path) and
    /// its span's `exception` event in Apitally 1.x, also when the response is a `200`.
    fn capture_exception<E: std::error::Error + ?Sized>(&self, error: &E) {
        if let Some(slot) = self.slot() {
            if slot.lock().exception.is_some() {
                return;
            }
            let error = captured_error(error);
            slot.lock().exception.get_or_insert(error);
        }
    }

    /// Reports a validation error of the app's own validation (axum's extractor rejections
    /// are reported without this).
    fn add_validation_error(&self, error: ValidationError) {
        if let Some(slot) = self.slot() {
            slot.lock().validation_errors.push(error);
        }
    }

    /// Reports every error of a `validator` result, with `loc` `["body", field, ...]`.
    #[cfg(feature = "validator")]
    #[cfg_attr(docsrs, doc(cfg(feature = "validator")))]
    fn add_validation_errors(&self, errors: &validator::ValidationErrors) {
        for error in apitally_core::adapter::validation_errors_of(errors) {
            self.add_validation_error(error);
        }
    }
}

impl<B> ConsumerExt for http::Request<B> {}
impl ConsumerExt for http::request::Parts {}
impl ConsumerExt for ApitallyRequest {}

/// An error a response carries for Apitally: the app's `IntoResponse` for its error type
/// inserts it into the response's extensions, and a `5xx` response that has one is the
/// request's server error (with the error's type, message and sources).
///
/// ```
/// # use apitally_axum as apitally;
/// use axum::{http::StatusCode, response::{IntoResponse, Response}};
/// use apitally::ServerErrorExtension;
///
/// #[derive(Debug)]
/// struct AppError(std::io::Error);
///
/// impl IntoResponse for AppError {
///     fn into_response(self) -> Response {
///         let mut res = (StatusCode::INTERNAL_SERVER_ERROR, "something went wrong").into_response();
///         res.extensions_mut().insert(ServerErrorExtension::new(&self.0));
///         res
///     }
/// }
/// ```
#[derive(Clone)]
pub struct ServerErrorExtension(pub(crate) ServerError);

impl ServerErrorExtension {
    /// The error, as a server error: its type name, its message, its sources and a backtrace
    /// of this call (symbolised off the request path), scrubbed of quoted values and secrets.
    pub fn new<E: std::error::Error + ?Sized>(error: &E) -> Self {
        Self(captured_error(error))
    }
}

impl std::fmt::Debug for ServerErrorExtension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ServerErrorExtension")
            .field(&self.0.error_type())
            .finish()
    }
}
