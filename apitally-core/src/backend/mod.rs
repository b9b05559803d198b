//! The two protocols, siblings behind one seam: [`hub`] (hub v2, a client id) and [`otlp`]
//! (Apitally 1.x, a write token). Each owns its aggregation, encoding and delivery; the client
//! picks one from the credential when it starts and then only talks to the [`Backend`] trait.
//!
//! ```text
//!  pipeline ──► Backend::record_*        (request path: aggregate, no I/O)
//!           └─► RequestLogger ──► LogSink (writer thread: encode what is kept)
//!  background thread: Backend::deliver   (sync loop / export loop, until stopped)
//! ```

pub(crate) mod hub;
pub(crate) mod otlp;

use std::{
    future::Future,
    pin::Pin,
    sync::{atomic::AtomicBool, Arc},
    time::Duration,
};

use uuid::Uuid;

use crate::{
    config::ResolvedConfig,
    request_log::{RequestLogItem, RequestLogger},
    transport::NetSettings,
    Consumer, Protocol, RequestRecord, ServerError, StartupData, ValidationError,
};

/// A future of the background thread (the transport is not `Send`).
pub(crate) type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// What a protocol does with what the pipeline records, and how it delivers it.
pub(crate) trait Backend: Send + Sync {
    /// One finished request, normalised by the pipeline. No I/O; allocates only for a key
    /// new in the interval.
    fn record_request(&self, record: &RequestRecord<'_>);

    /// A validation error of a request to `route`.
    fn record_validation_error(
        &self,
        method: &str,
        route: &str,
        consumer: Option<&Consumer>,
        error: &ValidationError,
    );

    /// A server error of a request to `route`.
    fn record_server_error(
        &self,
        method: &str,
        route: &str,
        consumer: Option<&Consumer>,
        error: &ServerError,
    );

    /// Replaces the startup data (sent again by the hub; 1.x sends its startup event once).
    fn set_startup_data(&self, startup: &StartupData);

    /// The protocol it speaks.
    fn protocol(&self) -> Protocol;

    /// The instance id it reports under.
    fn instance_uuid(&self) -> Uuid;

    /// Delivers on the client's background thread until `stop` resolves, then makes the final
    /// delivery within `budget`. Resolves to whether everything recorded reached Apitally.
    fn deliver(
        self: Arc<Self>,
        net: NetSettings,
        stop: LocalFuture<()>,
        budget: Duration,
    ) -> LocalFuture<bool>;
}

/// Where the request logger's writer thread puts the items it kept and masked: hub v2 writes
/// gzip NDJSON files, 1.x encodes spans and log records into its spool.
pub(crate) trait LogSink: Send + Sync {
    /// Writes `items` for delivery; returns how many requests were written.
    fn write(&self, items: &[&RequestLogItem]) -> u64;

    /// Requests written and then dropped undelivered, since the start.
    fn lost(&self) -> u64;

    /// This protocol's word for a masked value.
    fn masked(&self) -> &'static str;

    /// Whether nothing waits for delivery.
    fn is_empty(&self) -> bool {
        true
    }

    /// Deletes what waits for delivery (shutdown, suspension); the files and requests deleted.
    fn clear(&self) -> (usize, usize) {
        (0, 0)
    }
}

/// A started backend: what records, what logs, and the flag both turn off.
pub(crate) struct Started {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) logger: Option<Arc<RequestLogger>>,
}

/// Starts the backend the credential chose, with request logging when the config asks (1.x:
/// by default).
pub(crate) fn start(
    resolved: &ResolvedConfig,
    startup: StartupData,
    enabled: &Arc<AtomicBool>,
) -> Started {
    match &resolved.target {
        crate::config::Target::Hub { hub_url } => {
            hub::start(resolved, hub_url, startup, Arc::clone(enabled))
        }
        crate::config::Target::Otlp { .. } => otlp::start(resolved, startup),
    }
}
