//! For extension documentation, see [`ConsumerExt`] and [`ValidationErrorExt`].

use actix_web::{dev::ServiceRequest, HttpMessage, HttpRequest};
use apitally_core::{Consumer, ValidationError};

mod sealed {
    pub trait Sealed {}
    impl Sealed for actix_web::HttpRequest {}
    impl Sealed for actix_web::dev::ServiceRequest {}
}

/// Sets and reads the consumer of a request, from a handler or a middleware.
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

/// The validation errors reported on a request.
#[derive(Debug, Default, Clone)]
pub(crate) struct ReportedValidationErrors(pub(crate) Vec<ValidationError>);

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
        }

        impl ValidationErrorExt for $ty {
            fn add_validation_error(&self, error: ValidationError) {
                crate::notes::note_validation_error(self.head(), &error);
                let mut ext = self.extensions_mut();
                match ext.get_mut::<ReportedValidationErrors>() {
                    Some(errors) => errors.0.push(error),
                    None => {
                        ext.insert(ReportedValidationErrors(vec![error]));
                    }
                }
            }
        }
    };
}

impl_ext!(HttpRequest);
impl_ext!(ServiceRequest);
