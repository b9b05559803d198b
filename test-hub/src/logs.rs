//! A `log` logger that keeps the SDK's lines (target `apitally`), for tests that check what
//! is logged and what never is.

use std::sync::{Mutex, OnceLock};

/// The lines logged under the `apitally` target since the capture was installed, by every
/// client in the process (tests in one binary share it: look for what is unique to a test,
/// such as its hub's port).
#[derive(Debug, Default)]
pub struct CapturedLogs {
    lines: Mutex<Vec<(log::Level, String)>>,
}

impl CapturedLogs {
    /// Every line so far, with its level.
    pub fn lines(&self) -> Vec<(log::Level, String)> {
        self.lines.lock().unwrap().clone()
    }

    /// Lines that contain `needle`, at `level` or more severe.
    pub fn matching(&self, level: log::Level, needle: &str) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|(l, line)| *l <= level && line.contains(needle))
            .map(|(_, line)| line)
            .collect()
    }
}

impl log::Log for CapturedLogs {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target().starts_with("apitally")
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let line = record.args().to_string();
            self.lines.lock().unwrap().push((record.level(), line));
        }
    }

    fn flush(&self) {}
}

static LOGS: OnceLock<&'static CapturedLogs> = OnceLock::new();

/// Installs the capture as the process's logger (once; later calls return the same one) at
/// every level. Panics if another logger was installed first.
pub fn capture_logs() -> &'static CapturedLogs {
    LOGS.get_or_init(|| {
        let logs: &'static CapturedLogs = Box::leak(Box::default());
        log::set_logger(logs).expect("no other logger installed");
        log::set_max_level(log::LevelFilter::Trace);
        logs
    })
}
