//! What the app attaches to a request from inside the layer (its consumer, attributes, errors,
//! the route an inner layer saw), kept where the layer reads it when the request ends: a
//! [`Slot`] in the request's extensions, shared with the layer.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc, Mutex, MutexGuard,
};

use apitally_core::{
    adapter::{RequestAttributes, ServerError},
    Consumer, ValidationError,
};

/// What one request attached.
#[derive(Default)]
pub(crate) struct Attached {
    pub(crate) consumer: Option<Consumer>,
    pub(crate) validation_errors: Vec<ValidationError>,
    pub(crate) attributes: RequestAttributes,
    /// The first error captured.
    pub(crate) exception: Option<ServerError>,
    /// The route template an inner Apitally layer saw (a router nested with `nest_service`).
    pub(crate) route: Option<axum::extract::MatchedPath>,
}

#[derive(Default)]
struct Inner {
    attached: Mutex<Attached>,
    /// Request body bytes the handler read.
    read: AtomicU64,
}

/// The shared place of one request (one allocation per measured request).
#[derive(Clone, Default)]
pub(crate) struct Slot(Arc<Inner>);

impl Slot {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Attached> {
        self.0.attached.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[inline]
    pub(crate) fn add_read(&self, n: u64) {
        self.0.read.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn read(&self) -> u64 {
        self.0.read.load(Ordering::Relaxed)
    }
}
