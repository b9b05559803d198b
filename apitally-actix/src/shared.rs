//! For the state every worker shares, see [`Shared`].

use actix_web::HttpRequest;
use apitally_core::adapter::{ConsumerCallback, Pipeline};

/// State shared by every worker's middleware: the pipeline and the app's consumer callback.
pub(crate) struct Shared {
    pub(crate) pipeline: Pipeline,
    pub(crate) identify_consumer: Option<ConsumerCallback<HttpRequest>>,
}
