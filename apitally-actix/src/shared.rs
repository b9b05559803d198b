//! For the state every worker shares, see [`Shared`].

use apitally_core::ApitallyClient;

use crate::{config::ConsumerCallback, sampling::Sampling};

/// State shared by every worker's middleware: the process-wide client and the hooks.
pub(crate) struct Shared {
    pub(crate) client: ApitallyClient,
    pub(crate) identify_consumer: Option<ConsumerCallback>,
    pub(crate) catch_panics: bool,
    /// Whether response bodies may be captured for request logs (checked per chunk).
    pub(crate) captures_response_bodies: bool,
    /// Which requests' logs are kept.
    pub(crate) sampling: Sampling,
    /// The client speaks Apitally 1.x (OTLP): requests carry what its spans need.
    pub(crate) otlp: bool,
}
