//! The framework-neutral core of the [Apitally](https://apitally.io) SDK for Rust.
//!
//! Most users want the actix-web middleware, `apitally-actix`, which is built on this crate. This
//! crate holds what does not depend on a web framework:
//!
//! - [`ClientConfig`]: client id, env, app version and hub URL, validated as the official SDKs do;
//! - [`Consumer`]: who made a request, normalised (trimmed, cut at `char` boundaries);
//! - [`ApitallyClient`]: the process-wide client. Adapters hand it one [`RequestRecord`] per
//!   finished request (and [`ValidationError`]s and [`ServerError`]s); it aggregates them per
//!   (consumer, method, route, status) with response-time and size histograms, and a background
//!   thread sends them to the Apitally hub every 10 s in the first hour and every 60 s after,
//!   retrying and queueing what the hub does not take.
//!
//! Recording is cheap and concurrent: no I/O, no lock held by a sync, and an allocation only
//! when a key is new in the window. Memory is bounded whatever the traffic (see
//! [`ClientConfig::max_request_keys`]).
//!
//! ```no_run
//! use std::time::Duration;
//! use apitally_core::{ApitallyClient, ClientConfig, RequestRecord, StartupData, PathItem};
//!
//! # async fn run() {
//! let client = ApitallyClient::new(
//!     ClientConfig::from_env(),
//!     StartupData::new("rust:custom").paths([PathItem::new("GET", "/items")]),
//! );
//! client.record_request(&RequestRecord::new("GET", "/items", 200, Duration::from_millis(3)));
//! client.shutdown().await;
//! # }
//! ```
//!
//! Diagnostics go through the [`log`](https://docs.rs/log) facade under the target `apitally`;
//! set `APITALLY_DEBUG=1` to also get the debug lines on stderr.

mod backend;
mod client;
mod config;
mod consumer;
mod diag;
mod error;
mod forwarded;
mod process;
mod record;
mod request_log;
mod scrub;
mod startup;
mod transport;
mod util;

pub use uuid::Uuid;

pub use self::{
    backend::hub::{MAX_MSG_CHARS, MAX_TRACEBACK_CHARS},
    client::ApitallyClient,
    config::{ClientConfig, Protocol, DEFAULT_ENV, DEFAULT_HUB_BASE_URL, DEFAULT_OTLP_ENDPOINT},
    consumer::{Consumer, MAX_IDENTIFIER_CHARS, MAX_NAME_CHARS},
    error::ConfigError,
    record::{RequestRecord, ServerError, ValidationError},
    request_log::{CapturedLog, Headers, LoggedRequest, LoggedResponse, RequestLoggingConfig},
    startup::{PathItem, StartupData},
};

pub mod adapter {
    //! What a framework adapter (such as `apitally-actix`) uses to feed the client: the request
    //! logger and the item it fills on the request path, and helpers to read requests the way
    //! the official SDKs do. Apps do not need this module.

    pub use crate::{
        forwarded::TrustedProxies,
        request_log::{
            forwarded_https, is_supported_content_type, truncate_log_message, url_path,
            CapturedSpan, LoggedException, RequestLogItem, RequestLogger, TraceIds, BODY_MASKED,
            BODY_TOO_LARGE, MAX_BODY_SIZE, MAX_CAPTURED_PER_REQUEST, MAX_FIELDS, MAX_FIELD_CHARS,
            MAX_LOG_MESSAGE_CHARS,
        },
        scrub::without_values,
        startup::DEFAULT_CLIENT,
    };
}

#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod test_util {
    //! Internals for tests and benchmarks (feature `test-util`): no stability guarantee.

    use std::sync::LazyLock;

    use crate::{
        adapter::{RequestLogItem, RequestLogger},
        request_log::mask,
        RequestLoggingConfig,
    };

    static BODY_FIELDS: LazyLock<Option<mask::Patterns>> =
        LazyLock::new(|| mask::Patterns::new(&mask::BODY_FIELD_PATTERNS, &[]).ok());

    /// Masks a JSON body with the default body-field patterns.
    pub fn mask_json(body: &[u8]) -> Option<Vec<u8>> {
        mask::mask_json(body, BODY_FIELDS.as_ref()?).map(std::borrow::Cow::into_owned)
    }

    /// A request logger writing into `dir`, for measuring the background work per item.
    pub fn logger(config: RequestLoggingConfig, dir: std::path::PathBuf) -> Option<RequestLogger> {
        crate::backend::hub::files::logger(config, dir)
            .ok()
            .map(|(logger, _)| logger)
    }

    /// Queues an item, as the request path does.
    pub fn queue(logger: &RequestLogger, item: RequestLogItem) {
        logger.log(item);
    }

    /// The background work for what is queued: exclusions, masking, serialisation, gzip.
    pub fn flush(logger: &RequestLogger) {
        logger.flush();
    }
}
