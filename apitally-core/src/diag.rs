//! Diagnostics of the client itself: the `log` facade, plus stderr when `APITALLY_DEBUG` is set.

use std::sync::LazyLock;

/// Whether `APITALLY_DEBUG` is `1`, `true`, `yes` or `y` (any case).
pub(crate) static DEBUG: LazyLock<bool> = LazyLock::new(|| {
    std::env::var("APITALLY_DEBUG").is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "y"
        )
    })
});

/// Logs at debug level; with `APITALLY_DEBUG` set, also writes the line to stderr, so that it
/// shows even when the app's logger filters debug output or no logger is installed.
macro_rules! debug {
    ($($arg:tt)+) => {{
        ::log::debug!(target: "apitally", $($arg)+);
        if *$crate::diag::DEBUG {
            ::std::eprintln!("apitally: {}", ::std::format_args!($($arg)+));
        }
    }};
}

pub(crate) use debug;
