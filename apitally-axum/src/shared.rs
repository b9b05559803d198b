//! What every clone of the layer shares: the pipeline and the consumer callback.

use apitally_core::adapter::{ConsumerCallback, Pipeline};
use http::request::Parts;

pub(crate) struct Shared {
    pub(crate) pipeline: Pipeline,
    pub(crate) identify_consumer: Option<ConsumerCallback<Parts>>,
}
