//! What the app attaches to a request from inside the layer (its consumer, attributes, errors,
//! the route an inner layer saw), kept where the layer reads it when the request ends: a
//! [`Slot`] in the request's extensions, shared with the layer.

use std::{
    cell::RefCell,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
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

/// The shared place of one request: one allocation, reused through a small per-thread pool
/// once the request is finished and nothing else holds it.
#[derive(Clone)]
pub(crate) struct Slot(Arc<Inner>);

/// How many finished slots a thread keeps for reuse.
const POOL_SIZE: usize = 64;

thread_local! {
    static POOL: RefCell<Vec<Arc<Inner>>> = const { RefCell::new(Vec::new()) };
}

impl Slot {
    /// An empty slot, reused from this thread's pool when it has one.
    pub(crate) fn new() -> Self {
        let reused = POOL.try_with(|pool| pool.borrow_mut().pop()).ok().flatten();
        Self(reused.unwrap_or_default())
    }

    /// Gives the slot back to this thread's pool, emptied, when nothing else holds it (the
    /// request and its body are gone); otherwise it is dropped as usual.
    pub(crate) fn recycle(self) {
        let mut inner = self.0;
        let Some(place) = Arc::get_mut(&mut inner) else {
            return;
        };
        *place.attached.get_mut().unwrap_or_else(|e| e.into_inner()) = Attached::default();
        *place.read.get_mut() = 0;
        let _ = POOL.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.len() < POOL_SIZE {
                pool.push(inner);
            }
        });
    }

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
