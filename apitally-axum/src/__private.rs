//! Runtime helpers called by the code `#[apitally::consumer]` generates. Not public API: no
//! stability guarantee, hidden from the docs.

pub use apitally_core::adapter::{DisplayValue, OptionValue, Value};

pub use crate::ApitallyRequest as Request;
use crate::ConsumerExt;

/// Sets the consumer unless the identifier is `None` (the request then stays anonymous).
pub fn set_consumer(
    req: &Request,
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
