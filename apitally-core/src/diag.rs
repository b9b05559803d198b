//! Diagnostics of the client itself: the `log` facade, and stderr when no logger would show a
//! line a person must see.

use std::sync::LazyLock;

/// Whether `APITALLY_DEBUG` is `1`, `true`, `yes` or `y` (any case).
pub(crate) static DEBUG: LazyLock<bool> = LazyLock::new(|| truthy("APITALLY_DEBUG"));

/// Whether the environment variable `name` is `1`, `true`, `yes` or `y` (trimmed, any case).
pub(crate) fn truthy(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "y"
        )
    })
}

/// Whether the app's logger shows `level` for the `apitally` target. Without a logger
/// (`log`'s default), nothing is shown.
pub(crate) fn shown(level: log::Level) -> bool {
    log::log_enabled!(target: "apitally", level)
}

/// A line a person must see (a configuration error, the SDK switching itself off): through the
/// app's logger when it shows `level`, else on stderr. Exactly once either way.
pub(crate) fn tell(level: log::Level, line: std::fmt::Arguments<'_>) {
    if shown(level) {
        log::log!(target: "apitally", level, "{line}");
    } else {
        eprintln!("{line}");
    }
}

/// Logs at debug level; with `APITALLY_DEBUG` set, a line the app's logger would not show (it
/// filters debug output, or there is no logger) goes to stderr instead, once.
macro_rules! debug {
    ($($arg:tt)+) => {{
        if *$crate::diag::DEBUG && !$crate::diag::shown(::log::Level::Debug) {
            ::std::eprintln!("apitally: {}", ::std::format_args!($($arg)+));
        } else {
            ::log::debug!(target: "apitally", $($arg)+);
        }
    }};
}

pub(crate) use debug;
