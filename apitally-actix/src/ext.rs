//! For extension documentation, see [`ConsumerExt`] and [`ValidationErrorExt`].

use actix_web::{dev::ServiceRequest, HttpMessage, HttpRequest};
use apitally_core::{
    adapter::{captured_error, RequestAttributes, ServerError},
    AttributeValue, Consumer, ValidationError,
};

mod sealed {
    pub trait Sealed {}
    impl Sealed for actix_web::HttpRequest {}
    impl Sealed for actix_web::dev::ServiceRequest {}
}

/// Sets and reads the consumer of a request, sets request attributes and captures errors,
/// from a handler or a middleware.
///
/// The consumer is stored in the request's extensions as a plain [`Consumer`], so handlers can
/// also read it with `web::ReqData<Consumer>`. A later `set_consumer` replaces an earlier one, and
/// a consumer set this way wins over the [`identify_consumer`] callback.
///
/// ```
/// # use apitally_actix as apitally;
/// use actix_web::{get, HttpRequest, HttpResponse};
/// use apitally::{Consumer, ConsumerExt};
///
/// #[get("/orders")]
/// async fn orders(req: HttpRequest) -> HttpResponse {
///     req.set_consumer(Consumer::new("customer-42").name("Customer 42").group("Enterprise"));
///     HttpResponse::Ok().finish()
/// }
/// ```
///
/// [`identify_consumer`]: crate::ApitallyConfig::identify_consumer
pub trait ConsumerExt: sealed::Sealed {
    /// Attributes the request to `consumer` (a [`Consumer`] or a plain identifier). An anonymous
    /// consumer (empty identifier after trimming) removes the one set before.
    fn set_consumer(&self, consumer: impl Into<Consumer>);

    /// The consumer set on the request so far, if any.
    fn consumer(&self) -> Option<Consumer>;

    /// Sets an attribute of this request (a tenant, a feature flag, a row count): written on
    /// the request's span in Apitally 1.x (with `apitally.request.custom_attribute_keys`), and
    /// visible to [`sample_on_response`] (`res.attribute(key)`) and the masking callbacks
    /// (`LoggedRequest::attributes`). Hub v2 has no field for them: they are not sent there.
    ///
    /// Keys are trimmed and 1 to 128 characters, and cannot be in a namespace Apitally writes
    /// itself (`http.`, `url.`, `client.`, `server.`, `apitally.`, ...); at most 32 per
    /// request; text is cut to 4,096 characters; `None` removes the key. A value whose key
    /// looks sensitive (`password`, `token`, `secret`, ...) is masked before it leaves the app.
    ///
    /// ```
    /// # use apitally_actix as apitally;
    /// use actix_web::{get, HttpRequest, HttpResponse};
    /// use apitally::ConsumerExt;
    ///
    /// #[get("/reports")]
    /// async fn reports(req: HttpRequest) -> HttpResponse {
    ///     req.set_request_attribute("tenant", "acme");
    ///     req.set_request_attribute("rows", 1_250);
    ///     HttpResponse::Ok().finish()
    /// }
    /// ```
    ///
    /// [`sample_on_response`]: crate::ApitallyConfig::sample_on_response
    fn set_request_attribute(&self, key: &str, value: impl Into<AttributeValue>);

    /// Captures an error the app handled: the first one captured on a request becomes its
    /// server error (counted in the errors view, with its message, its sources and a
    /// backtrace of this call) and, in Apitally 1.x, the `exception` event of its span, also
    /// when the handler then answers normally. Later ones are ignored. Its text is scrubbed
    /// like every server error's (quoted values left out, URL passwords and secrets masked).
    /// The backtrace is symbolised off the request path.
    ///
    /// ```
    /// # use apitally_actix as apitally;
    /// use actix_web::{get, HttpRequest, HttpResponse};
    /// use apitally::ConsumerExt;
    ///
    /// #[get("/prices")]
    /// async fn prices(req: HttpRequest) -> HttpResponse {
    ///     match std::fs::read_to_string("/etc/prices.json") {
    ///         Ok(prices) => HttpResponse::Ok().body(prices),
    ///         Err(err) => {
    ///             // Served from the cache, but Apitally hears about it.
    ///             req.capture_exception(&err);
    ///             HttpResponse::Ok().body("[]")
    ///         }
    ///     }
    /// }
    /// ```
    fn capture_exception<E: std::error::Error + ?Sized>(&self, error: &E);
}

/// What the app reported on a request besides its consumer: validation errors, attributes and
/// the first error captured. One extension, so that finishing a request looks one entry up
/// instead of three.
#[derive(Default)]
pub(crate) struct AppReports {
    pub(crate) validation_errors: Vec<ValidationError>,
    pub(crate) attributes: RequestAttributes,
    /// The first error captured.
    pub(crate) exception: Option<ServerError>,
}

/// Changes the request's [`AppReports`], added on first use.
fn with_reports(ext: &mut actix_web::dev::Extensions, f: impl FnOnce(&mut AppReports)) {
    match ext.get_mut::<AppReports>() {
        Some(reports) => f(reports),
        None => {
            let mut reports = AppReports::default();
            f(&mut reports);
            ext.insert(reports);
        }
    }
}

/// Reports validation errors of a request to Apitally, for the app's own validation.
///
/// actix's own extractor errors (`Json`, `Query`, `Path`, `Form`) are reported without this.
///
/// ```
/// # use apitally_actix as apitally;
/// use actix_web::{post, HttpRequest, HttpResponse};
/// use apitally::{ValidationError, ValidationErrorExt};
///
/// #[post("/items")]
/// async fn create(req: HttpRequest) -> HttpResponse {
///     req.add_validation_error(ValidationError::new(["body", "name"], "too short", "min_length"));
///     HttpResponse::UnprocessableEntity().finish()
/// }
/// ```
pub trait ValidationErrorExt: sealed::Sealed {
    /// Adds a validation error to the request.
    fn add_validation_error(&self, error: ValidationError);

    /// Adds every error of a `validator` result, with `loc` `["body", field, ...]` (nested
    /// structs and list indexes included), the message (or the code when there is none) as
    /// `msg`, and the code as `type`.
    ///
    /// ```
    /// # use apitally_actix as apitally;
    /// use actix_web::test::TestRequest;
    /// use apitally::ValidationErrorExt;
    ///
    /// let mut errors = validator::ValidationErrors::new();
    /// errors.add("email", validator::ValidationError::new("email"));
    /// let req = TestRequest::default().to_http_request();
    /// req.add_validation_errors(&errors);
    /// ```
    #[cfg(feature = "validator")]
    #[cfg_attr(docsrs, doc(cfg(feature = "validator")))]
    fn add_validation_errors(&self, errors: &validator::ValidationErrors) {
        for error in apitally_core::adapter::validation_errors_of(errors) {
            self.add_validation_error(error);
        }
    }
}

macro_rules! impl_ext {
    ($ty:ty) => {
        impl ConsumerExt for $ty {
            fn set_consumer(&self, consumer: impl Into<Consumer>) {
                let consumer = consumer.into();
                let anonymous = consumer.is_anonymous();
                crate::notes::note_consumer(self.head(), (!anonymous).then_some(&consumer));
                let mut ext = self.extensions_mut();
                if anonymous {
                    ext.remove::<Consumer>();
                } else {
                    ext.insert(consumer);
                }
            }

            fn consumer(&self) -> Option<Consumer> {
                self.extensions().get::<Consumer>().cloned()
            }

            fn set_request_attribute(&self, key: &str, value: impl Into<AttributeValue>) {
                let value = value.into();
                crate::notes::note_attribute(self.head(), key, &value);
                with_reports(&mut self.extensions_mut(), |reports| {
                    reports.attributes.set(key, value);
                });
            }

            fn capture_exception<E: std::error::Error + ?Sized>(&self, error: &E) {
                let captured = self
                    .extensions()
                    .get::<AppReports>()
                    .is_some_and(|reports| reports.exception.is_some());
                if captured {
                    return;
                }
                let error = captured_error(error);
                crate::notes::note_exception(self.head(), &error);
                with_reports(&mut self.extensions_mut(), |reports| {
                    reports.exception = Some(error);
                });
            }
        }

        impl ValidationErrorExt for $ty {
            fn add_validation_error(&self, error: ValidationError) {
                crate::notes::note_validation_error(self.head(), &error);
                with_reports(&mut self.extensions_mut(), |reports| {
                    reports.validation_errors.push(error);
                });
            }
        }
    };
}

impl_ext!(HttpRequest);
impl_ext!(ServiceRequest);
