//! The running clients of the process, and how a client's background thread learns that it is
//! to stop: a shutdown, or every handle gone for a grace period. Deferred server errors are
//! recorded here too, off the request path.

use std::{
    cell::RefCell,
    rc::Rc,
    sync::{atomic::Ordering, Arc, LazyLock, Mutex, Weak},
    time::Duration,
};

use tokio::sync::mpsc;

use super::{Command, DeferredError, Inner, Reply};
use crate::{diag::debug, util::lock};

/// Running clients by (client id, env), so that every worker's middleware finds the same one.
///
/// Held strongly: actix may build an `App` (and so the middleware) once and drop it before the
/// workers start, and the workers must still find the same client. The background thread
/// removes its entry once no handle but this one has existed for [`ORPHAN_GRACE`].
pub(super) static CLIENTS: LazyLock<Mutex<Vec<Running>>> = LazyLock::new(Default::default);

/// A running client and its (lowercase client id, env).
pub(super) type Running = ((String, String), Arc<Inner>);

/// How long a client lives on with no handle outside the registry.
pub(crate) const ORPHAN_GRACE: Duration = Duration::from_secs(2);

/// Whether nothing but the registry holds the client.
fn is_orphaned(inner: &Weak<Inner>) -> bool {
    let registered = lock(&CLIENTS)
        .iter()
        .any(|(_, i)| std::ptr::eq(Arc::as_ptr(i), inner.as_ptr()));
    inner.strong_count() <= usize::from(registered)
}

/// Removes the client from the registry if nothing else holds it; true when removed (the
/// background thread then makes its final delivery and ends).
fn release_if_orphaned(inner: &Weak<Inner>) -> bool {
    let mut clients = lock(&CLIENTS);
    let Some(idx) = clients
        .iter()
        .position(|(_, i)| std::ptr::eq(Arc::as_ptr(i), inner.as_ptr()))
    else {
        // Not registered (shut down): orphaned once every handle is gone.
        return inner.strong_count() == 0;
    };
    if Arc::strong_count(&clients[idx].1) > 1 {
        return false;
    }
    clients.swap_remove(idx);
    true
}

/// Resolves when the client is to stop: a shutdown (its reply kept in `reply`), or every
/// handle gone for [`ORPHAN_GRACE`]. Checked every second.
pub(crate) async fn stopped(
    mut commands: mpsc::UnboundedReceiver<Command>,
    handle: Weak<Inner>,
    reply: Rc<RefCell<Option<Reply>>>,
) {
    let mut orphaned_since: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            command = commands.recv() => {
                match command {
                    Some(Command::ServerError(deferred)) => {
                        record_deferred(&handle, *deferred);
                        continue;
                    }
                    Some(Command::Shutdown(r)) => *reply.borrow_mut() = Some(r),
                    None => {}
                }
                return;
            }
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        if is_orphaned(&handle) {
            let since = *orphaned_since.get_or_insert_with(tokio::time::Instant::now);
            if since.elapsed() >= ORPHAN_GRACE && release_if_orphaned(&handle) {
                debug!("every client handle is gone; final delivery");
                return;
            }
        } else {
            orphaned_since = None;
        }
    }
}

/// Symbolises a deferred server error's backtrace and records it.
fn record_deferred(handle: &Weak<Inner>, deferred: DeferredError) {
    let Some(inner) = handle.upgrade() else {
        return;
    };
    inner.deferred.fetch_sub(1, Ordering::Relaxed);
    if let Some(active) = &inner.active {
        let _ = deferred.error.traceback();
        active.backend.record_server_error(
            &deferred.method,
            &deferred.route,
            deferred.consumer.as_ref(),
            &deferred.error,
        );
    }
}
