//! The framework-neutral core of the [Apitally](https://apitally.io) SDK for Rust: one request
//! pipeline that every framework adapter feeds, and the two protocols Apitally speaks as
//! sibling backends behind it.
//!
//! Apps use an adapter, not this crate: [`apitally-actix`](https://docs.rs/apitally-actix) for
//! actix-web, [`apitally-axum`](https://docs.rs/apitally-axum) for axum and tower. Both
//! re-export what an app names from here: [`ApitallyConfig`] (the one configuration, whose type
//! parameter is the framework's request type), [`RequestLoggingConfig`], [`Consumer`],
//! [`ValidationError`], [`ConfigError`] and, with the `tracing` feature, `tracing_layer`.
//!
//! ```text
//!  src/pipeline/   the request path: sampling, trace context, log capture, errors, panics,
//!                  proxies; one neutral record per request, normalised once at its entry
//!  src/request_log/ what leaves as request logs: the item, masking, bodies, the bounded queue
//!                  and its writer thread
//!  src/backend/hub/  hub v2 (a client id): sync windows, JSON, request-log files, sync loop
//!  src/backend/otlp/ Apitally 1.x (a write token): histograms, spans, events, spool, export
//!  src/transport/  the one HTTP seam both delivery loops use (proxies, TLS)
//!  src/client.rs   the process-wide client: picks the backend from the credential, once
//! ```
//!
//! Recording is cheap and concurrent: no I/O, no lock held by a delivery, and an allocation
//! only when a key is new in the window. Memory is bounded whatever the traffic.
//!
//! Diagnostics go through the [`log`](https://docs.rs/log) facade under the target `apitally`;
//! set `APITALLY_DEBUG=1` to also get the debug lines on stderr.

mod backend;
mod client;
mod config;
mod consumer;
mod diag;
mod error;
mod macro_support;
mod pipeline;
mod process;
mod record;
mod request_log;
mod startup;
mod transport;
mod util;

#[cfg(feature = "tracing")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
pub use self::pipeline::capture::{tracing_layer, TracingLayer};
pub use self::{
    config::ApitallyConfig,
    consumer::{AttributeValue, Consumer},
    error::ConfigError,
    pipeline::sampling::{SampleRequest, SampleResponse},
    record::ValidationError,
    request_log::{
        CapturedLog, CapturedSpan, Headers, LoggedRequest, LoggedResponse, RequestLoggingConfig,
    },
    startup::PathItem,
};

// Used across the crate by their short paths.
pub(crate) use self::{
    client::ApitallyClient,
    config::{ClientConfig, Protocol},
    consumer::MAX_IDENTIFIER_CHARS,
    record::{RequestRecord, ServerError},
    startup::StartupData,
};

#[doc(hidden)]
pub mod adapter {
    //! What a framework adapter (`apitally-actix`, `apitally-axum`) uses to feed the pipeline.
    //! Not for apps: no stability guarantee.

    pub use uuid::Uuid;

    pub use crate::macro_support::{consumer_of, DisplayValue, OptionValue, Value};

    #[cfg(feature = "validator")]
    pub use crate::pipeline::errors::validation_errors_of;
    pub use crate::{
        backend::hub::{MAX_MSG_CHARS, MAX_TRACEBACK_CHARS},
        client::ApitallyClient,
        config::{
            ClientConfig, ConsumerCallback, Protocol, DEFAULT_ENV, DEFAULT_HUB_BASE_URL,
            DEFAULT_OTLP_ENDPOINT,
        },
        consumer::{MAX_IDENTIFIER_CHARS, MAX_NAME_CHARS},
        pipeline::{
            attributes::{
                RequestAttributes, MAX_REQUEST_ATTRIBUTES, MAX_REQUEST_ATTRIBUTE_KEY_CHARS,
                MAX_REQUEST_ATTRIBUTE_VALUE_CHARS,
            },
            errors::{validation_error_from_serde, warn_if_secret_consumer},
            forwarded::TrustedProxies,
            is_standard_method,
            log_start::{
                push_host, response_capture, BodyCapture, LogFacts, LogRequest, LogStart,
                RequestBody, StartedLog,
            },
            panic::{captured_error, in_request, install_panic_hook, panic_error},
            route::normalize as normalize_route,
            sampling::{Decision, RequestHeaders, TraceContext},
            scrub::without_values,
            Finished, Framework, Pipeline,
        },
        record::{RequestRecord, ServerError},
        request_log::{
            forwarded_https, is_forwarded_https_header, is_supported_content_type,
            truncate_log_message, url_path, LoggedException, RequestLogItem, RequestLogger,
            TraceIds, BODY_MASKED, BODY_TOO_LARGE, MAX_BODY_SIZE, MAX_CAPTURED_PER_REQUEST,
            MAX_FIELDS, MAX_FIELD_CHARS, MAX_LOG_MESSAGE_CHARS,
        },
        startup::{StartupData, DEFAULT_CLIENT},
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
