//! Runtime helpers called by the code `#[apitally::consumer]` generates. Not public API: no
//! stability guarantee, hidden from the docs.

pub use actix_web::HttpRequest;
pub use actix_web::HttpRequest as Request;
pub use apitally_core::adapter::{DisplayValue, OptionValue, Value};

use crate::ConsumerExt;

/// Sets the consumer unless the identifier is `None` (the request then stays anonymous).
pub fn set_consumer(
    req: &HttpRequest,
    identifier: Option<String>,
    name: Option<String>,
    group: Option<String>,
    attributes: &[(&str, Option<String>)],
) {
    if let Some(consumer) = apitally_core::adapter::consumer_of(identifier, name, group, attributes)
    {
        req.set_consumer(consumer);
    }
}
