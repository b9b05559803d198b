//! Handler panics: a panic hook that captures the location and backtrace of panics in
//! requests (and calls the hook installed before it), and the server error made of one.

use std::{
    any::Any,
    backtrace::Backtrace,
    cell::{Cell, RefCell},
    sync::Once,
};

use crate::ServerError;

thread_local! {
    /// Set while the middleware polls the inner service, so the hook captures only those panics.
    static IN_REQUEST: Cell<bool> = const { Cell::new(false) };
    /// Where the last panic in a request on this thread happened, and its backtrace.
    /// Captured unresolved (cheap); symbols are resolved after the response time is taken.
    static LAST_PANIC: RefCell<Option<(String, Backtrace)>> = const { RefCell::new(None) };
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
                let backtrace = Backtrace::force_capture();
                LAST_PANIC.with(|p| *p.borrow_mut() = Some((location, backtrace)));
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
        Some((location, backtrace)) => {
            ServerError::with_backtrace("panic", msg, location, backtrace, trim_panic_frames)
        }
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
    let mut start = 0;
    let mut offset = 0;
    for line in backtrace.split_inclusive('\n') {
        let frame = line.trim_start();
        let is_frame_header = frame
            .split_once(": ")
            .is_some_and(|(n, _)| n.chars().all(|c| c.is_ascii_digit()));
        if is_frame_header {
            let name = frame.split_once(": ").map_or("", |(_, name)| name);
            if !MACHINERY.iter().any(|m| name.starts_with(m)) {
                start = offset;
                break;
            }
        }
        offset += line.len();
        start = offset;
    }
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
