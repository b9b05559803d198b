//! What a request says about itself (its consumer, the validation errors it reported), kept
//! outside the request too, for the exits where actix drops the request before the middleware
//! sees a response: an `Err` from an inner service and a panic.
//!
//! The consumer and the reported errors live in the request's extensions (handlers read them
//! with `web::ReqData<Consumer>`). While the middleware tracks a request, [`ConsumerExt`] and
//! [`ValidationErrorExt`] also note them here, in a registry of the worker thread keyed by the
//! address of the request's head (stable for the request's life; a request never leaves its
//! worker thread). A request that ends with a response is read from its extensions and its
//! notes are dropped unread.
//!
//! Cost: a tracked request touches the registry twice (begin and end, a counter and an
//! emptiness check). Only requests that set a consumer or report an error store a note.
//!
//! [`ConsumerExt`]: crate::ConsumerExt
//! [`ValidationErrorExt`]: crate::ValidationErrorExt

use std::cell::{Cell, RefCell};

use actix_web::dev::RequestHead;
use apitally_core::{
    adapter::{RequestAttributes, ServerError},
    AttributeValue, Consumer, ValidationError,
};
use hashbrown::HashMap;

/// What one request noted.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Notes {
    pub(crate) consumer: Option<Consumer>,
    pub(crate) validation_errors: Vec<ValidationError>,
    pub(crate) attributes: RequestAttributes,
    /// The first error captured.
    pub(crate) exception: Option<ServerError>,
}

#[derive(Default)]
struct Registry {
    notes: HashMap<usize, Notes>,
}

impl Registry {
    /// Notes of requests that are not tracked can only come from a request the middleware did
    /// not see (an `OPTIONS` request, an app without the middleware on the same thread); they
    /// are removed when a tracked request reuses their head. Past this many (or as many as
    /// there are tracked requests), no new note is kept, so they cannot accumulate.
    const MAX_NOTES: usize = 4_096;

    fn note(&mut self, key: usize, f: impl FnOnce(&mut Notes)) {
        let tracked = TRACKED.with(Cell::get);
        if tracked == 0 {
            return;
        }
        if let Some(notes) = self.notes.get_mut(&key) {
            f(notes);
        } else if self.notes.len() < Self::MAX_NOTES.max(tracked) {
            f(self.notes.entry(key).or_default());
            HAS_NOTES.with(|h| h.set(true));
        }
    }

    fn remove(&mut self, key: usize) -> Option<Notes> {
        let notes = self.notes.remove(&key);
        if self.notes.is_empty() {
            HAS_NOTES.with(|h| h.set(false));
        }
        notes
    }
}

thread_local! {
    /// Requests the middleware tracks on this thread now. (A plain cell, read and written
    /// twice per request: cheaper than the registry's lazily initialised map.)
    static TRACKED: Cell<usize> = const { Cell::new(0) };
    /// Whether the registry holds any note: most requests note nothing, and then never touch
    /// the registry.
    static HAS_NOTES: Cell<bool> = const { Cell::new(false) };
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

/// Drops the note of `key`, if there may be one.
#[inline]
fn forget(key: usize) {
    if HAS_NOTES.with(Cell::get) {
        let _ = REGISTRY.try_with(|r| r.borrow_mut().remove(key));
    }
}

fn key_of(head: &RequestHead) -> usize {
    std::ptr::from_ref(head) as usize
}

/// A request the middleware tracks. Dropping it ends the tracking and drops its notes.
#[derive(Debug)]
pub(crate) struct Tracked(usize);

impl Tracked {
    #[inline]
    pub(crate) fn begin(head: &RequestHead) -> Self {
        let key = key_of(head);
        TRACKED.with(|t| t.set(t.get() + 1));
        // A note left by an untracked request whose head this one reuses.
        forget(key);
        Self(key)
    }

    /// Takes what the request noted.
    pub(crate) fn take(&self) -> Notes {
        if !HAS_NOTES.with(Cell::get) {
            return Notes::default();
        }
        REGISTRY
            .try_with(|r| r.borrow_mut().remove(self.0))
            .ok()
            .flatten()
            .unwrap_or_default()
    }
}

impl Drop for Tracked {
    #[inline]
    fn drop(&mut self) {
        TRACKED.with(|t| t.set(t.get().saturating_sub(1)));
        forget(self.0);
    }
}

/// Notes the request's consumer (`None`: anonymous again).
pub(crate) fn note_consumer(head: &RequestHead, consumer: Option<&Consumer>) {
    let key = key_of(head);
    let _ = REGISTRY.try_with(|r| {
        r.borrow_mut()
            .note(key, |notes| notes.consumer = consumer.cloned());
    });
}

/// Notes an attribute the request set.
pub(crate) fn note_attribute(head: &RequestHead, key: &str, value: &AttributeValue) {
    let key_of = key_of(head);
    let _ = REGISTRY.try_with(|r| {
        r.borrow_mut().note(key_of, |notes| {
            notes.attributes.set(key, value.clone());
        });
    });
}

/// Notes the first error the request captured.
pub(crate) fn note_exception(head: &RequestHead, error: &ServerError) {
    let key = key_of(head);
    let _ = REGISTRY.try_with(|r| {
        r.borrow_mut().note(key, |notes| {
            notes.exception.get_or_insert_with(|| error.clone());
        });
    });
}

/// Notes a validation error the request reported.
pub(crate) fn note_validation_error(head: &RequestHead, error: &ValidationError) {
    let key = key_of(head);
    let _ = REGISTRY.try_with(|r| {
        r.borrow_mut()
            .note(key, |notes| notes.validation_errors.push(error.clone()));
    });
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn len() -> usize {
        REGISTRY.with(|r| r.borrow().notes.len())
    }

    #[test]
    fn notes_are_kept_only_while_tracked_and_end_with_the_request() {
        let req = TestRequest::default().to_http_request();
        let head = req.head();
        let consumer = Consumer::new("c-1");
        // Untracked: nothing is kept.
        note_consumer(head, Some(&consumer));
        assert_eq!(len(), 0);
        let tracked = Tracked::begin(head);
        note_consumer(head, Some(&consumer));
        let error = ValidationError::new(["body", "x"], "bad", "t");
        note_validation_error(head, &error);
        note_validation_error(head, &error);
        let notes = tracked.take();
        assert_eq!(notes.consumer, Some(consumer.clone()));
        assert_eq!(notes.validation_errors.len(), 2);
        assert_eq!(len(), 0);
        // Not taken: dropped with the tracking.
        note_consumer(head, None);
        assert_eq!(len(), 1);
        drop(tracked);
        assert_eq!(len(), 0);
    }

    #[test]
    fn requests_do_not_see_each_others_notes_and_stale_notes_go() {
        let a = TestRequest::default().to_http_request();
        let b = TestRequest::default().to_http_request();
        let ta = Tracked::begin(a.head());
        let tb = Tracked::begin(b.head());
        note_consumer(a.head(), Some(&Consumer::new("a")));
        assert_eq!(tb.take(), Notes::default());
        assert_eq!(ta.take().consumer, Some(Consumer::new("a")));
        // A note left for a head that a new tracked request reuses is not its note.
        note_consumer(b.head(), Some(&Consumer::new("stale")));
        drop(ta);
        drop(tb);
        let tb2 = Tracked::begin(b.head());
        assert_eq!(tb2.take(), Notes::default());
    }

    #[test]
    fn untracked_notes_are_bounded() {
        let keep = TestRequest::default().to_http_request();
        let _tracked = Tracked::begin(keep.head());
        let requests: Vec<_> = (0..Registry::MAX_NOTES + 10)
            .map(|_| TestRequest::default().to_http_request())
            .collect();
        for req in &requests {
            note_consumer(req.head(), Some(&Consumer::new("x")));
        }
        assert_eq!(len(), Registry::MAX_NOTES);
        REGISTRY.with(|r| r.borrow_mut().notes.clear());
        HAS_NOTES.with(|h| h.set(false));
    }
}
