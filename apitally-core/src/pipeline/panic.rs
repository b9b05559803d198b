//! Handler panics: a panic hook that captures the location and backtrace of panics in
//! requests (and calls the hook installed before it), and the server error made of one.

use std::{
    any::Any,
    backtrace::Backtrace,
    cell::{Cell, RefCell},
    sync::{Arc, Once},
    time::{Duration, Instant},
};

use crate::{record::Deferred, ServerError};

/// A panic location's backtrace is reused for this long: a handler that panics on every
/// request walks its stack once, not per request.
const REUSE_BACKTRACE_FOR: Duration = Duration::from_secs(60);
/// Panic locations remembered per thread.
const MAX_RECENT: usize = 32;

thread_local! {
    /// Set while the middleware polls the inner service, so the hook captures only those panics.
    static IN_REQUEST: Cell<bool> = const { Cell::new(false) };
    /// The traceback of the last panic in a request on this thread: its location and its
    /// backtrace, captured unresolved (symbolised off the request path).
    static LAST_PANIC: RefCell<Option<Arc<Deferred>>> = const { RefCell::new(None) };
    /// The latest panic locations of this thread and their tracebacks.
    static RECENT: RefCell<Vec<(String, Arc<Deferred>, Instant)>> = const { RefCell::new(Vec::new()) };
}

/// The traceback of a panic at `location`: the one captured for the same location within
/// [`REUSE_BACKTRACE_FOR`], else a new capture.
fn trace_at(location: String) -> Arc<Deferred> {
    RECENT.with(|recent| {
        let mut recent = recent.borrow_mut();
        let now = Instant::now();
        if let Some((_, trace, at)) = recent.iter().find(|(l, _, _)| *l == location) {
            if now.duration_since(*at) < REUSE_BACKTRACE_FOR {
                return Arc::clone(trace);
            }
        }
        let trace = Deferred::new(
            location.clone(),
            Backtrace::force_capture(),
            trim_panic_frames,
        );
        recent.retain(|(l, _, at)| *l != location && now.duration_since(*at) < REUSE_BACKTRACE_FOR);
        if recent.len() >= MAX_RECENT {
            recent.remove(0);
        }
        recent.push((location, Arc::clone(&trace), now));
        trace
    })
}

/// Installs, once, a panic hook that records the location and backtrace of panics in requests
/// and then calls the hook that was installed before (the app's, or the default that prints).
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_REQUEST.with(Cell::get) {
                let location = info
                    .location()
                    .map(|l| format!("panicked at {}:{}:{}", l.file(), l.line(), l.column()))
                    .unwrap_or_default();
                let trace = trace_at(location);
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(trace));
            }
            previous(info);
        }));
    });
}

/// Runs `f` marked as request code, for the panic hook.
#[inline]
pub fn in_request<T>(f: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            IN_REQUEST.with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(IN_REQUEST.with(|c| c.replace(true)));
    f()
}

/// The server error of a caught panic: type `panic`, the panic message, and the location and
/// backtrace without the frames of the panic machinery.
pub fn panic_error(payload: &(dyn Any + Send)) -> ServerError {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "Box<dyn Any>".to_owned());
    match LAST_PANIC.with(|p| p.borrow_mut().take()) {
        // Symbolised off the request path, when first read.
        Some(trace) => ServerError::with_trace("panic", msg, trace),
        None => ServerError::new("panic", msg, ""),
    }
}

/// A server error for an error the app captured (`capture_exception`): its type name, its
/// message, its chain of sources (`Caused by: ...`, most recent first) and a backtrace of the
/// call, captured here and symbolised off the request path.
pub fn captured_error<E: std::error::Error + ?Sized>(error: &E) -> ServerError {
    let name = std::any::type_name::<E>();
    let error_type = if name.starts_with("dyn ") || name.starts_with('&') {
        // A trait object names no type: the leading name of its `Debug` text does.
        let debug = format!("{error:?}");
        let lead: String = debug
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .take(128)
            .collect();
        if lead.is_empty() || lead.starts_with(|c: char| c.is_ascii_digit()) {
            "Error".to_owned()
        } else {
            lead
        }
    } else {
        name.to_owned()
    };
    let mut chain = String::new();
    let mut source = error.source();
    let mut depth = 0;
    while let Some(cause) = source {
        depth += 1;
        if depth > 16 {
            break;
        }
        if !chain.is_empty() {
            chain.push('\n');
        }
        chain.push_str("Caused by: ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    ServerError::with_backtrace(
        error_type,
        error.to_string(),
        chain,
        Backtrace::force_capture(),
        trim_panic_frames,
    )
}

/// Drops the leading frames that belong to the backtrace capture, the panic machinery, this
/// hook and the SDK's own calls.
fn trim_panic_frames(backtrace: &str) -> &str {
    const MACHINERY: [&str; 14] = [
        "std::",
        "core::",
        "alloc::",
        "<std::",
        "<core::",
        "<alloc::",
        "__rustc::",
        "rust_begin_unwind",
        "__rust_",
        "apitally_core::",
        "apitally_actix::",
        "apitally_axum::",
        "<apitally_actix::",
        "<apitally_axum::",
    ];
    // Frame headers (`  12: name`) with their byte offsets.
    let mut frames = Vec::new();
    let mut offset = 0;
    for line in backtrace.split_inclusive('\n') {
        let frame = line.trim_start();
        if let Some((n, name)) = frame.split_once(": ") {
            if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) {
                frames.push((offset, name.trim_end()));
            }
        }
        offset += line.len();
    }
    // A panic's frames end with the panic machinery (`core::panicking::panic_fmt`,
    // `rust_begin_unwind`): the app's frames start after the last of them.
    let is_panic_machinery = |name: &str| {
        name.contains("rust_begin_unwind")
            || name.contains("__rust_end_short_backtrace")
            || name.starts_with("core::panicking::")
            || name.starts_with("std::panicking::")
            || name.starts_with("std::panic::panic_any")
    };
    let after_panic = frames
        .iter()
        .take(32)
        .rposition(|(_, name)| is_panic_machinery(name))
        .map(|i| i + 1);
    // Else (a captured error), the leading frames of the capture and the SDK. Names without a
    // path (`try_with<..>`) are std's, inlined, as line-tables-only debug info names them.
    let is_machinery = |name: &str| {
        MACHINERY.iter().any(|m| name.starts_with(m))
            || !name.split('<').next().unwrap_or(name).contains("::")
    };
    let first = after_panic.unwrap_or_else(|| {
        frames
            .iter()
            .position(|(_, name)| !is_machinery(name))
            .unwrap_or(frames.len())
    });
    let start = frames
        .get(first)
        .map_or(backtrace.len(), |(offset, _)| *offset);
    backtrace[start..].trim_end()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_frames_are_trimmed() {
        let bt = "   0: std::backtrace::Backtrace::force_capture\n             at /rustc/x\n   1: apitally_core::pipeline::panic::install_panic_hook::{{closure}}\n   2: std::panicking::rust_panic_with_hook\n   3: my_app::handler\n             at ./src/main.rs:3:5\n   4: main\n";
        assert_eq!(
            trim_panic_frames(bt),
            "   3: my_app::handler\n             at ./src/main.rs:3:5\n   4: main"
        );
    }
}
