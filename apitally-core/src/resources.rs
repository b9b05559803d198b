//! Process CPU and memory, sampled once per sync (protocol.md §12).

use std::time::Instant;

use serde::Serialize;

/// The `resources` object of a sync payload.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Resources {
    pub(crate) cpu_percent: f64,
    pub(crate) memory_rss: u64,
}

/// Samples CPU time and RSS; the first sample has no baseline and gives `None`.
#[derive(Debug, Default)]
pub(crate) struct ResourceMonitor {
    last: Option<(Instant, f64)>,
}

impl ResourceMonitor {
    pub(crate) fn sample(&mut self) -> Option<Resources> {
        let now = Instant::now();
        let cpu = cpu_seconds();
        let previous = std::mem::replace(&mut self.last, cpu.map(|c| (now, c)));
        let (then, cpu_then) = previous?;
        let cpu_now = cpu?;
        let wall = now.duration_since(then).as_secs_f64();
        if wall <= 0.0 {
            return None;
        }
        Some(Resources {
            cpu_percent: ((cpu_now - cpu_then).max(0.0) / wall * 100.0 * 100.0).round() / 100.0,
            memory_rss: rss_bytes()?,
        })
    }
}

/// User plus system CPU time of this process, in seconds (Linux: `/proc/self/stat`, in clock
/// ticks of USER_HZ, which is 100 on every Linux architecture).
#[cfg(target_os = "linux")]
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_ascii_whitespace();
    // After ')' come state (3), ppid (4) ... utime (14) and stime (15): indices 11 and 12 here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// Resident set size in bytes (Linux: `VmRSS` of `/proc/self/status`).
#[cfg(target_os = "linux")]
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

#[cfg(not(target_os = "linux"))]
fn cpu_seconds() -> Option<f64> {
    None
}

#[cfg(not(target_os = "linux"))]
fn rss_bytes() -> Option<u64> {
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn first_sample_is_none_then_cpu_and_rss() {
        let mut monitor = ResourceMonitor::default();
        assert_eq!(monitor.sample(), None);
        // Burn some CPU so the percentage is measurably above zero.
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed().as_millis() < 300 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let sample = monitor.sample().unwrap();
        assert!(sample.cpu_percent > 10.0, "{sample:?}");
        assert!(sample.cpu_percent < 250.0, "{sample:?}");
        // A test process has at least a megabyte resident and far less than 10 GB.
        assert!(sample.memory_rss > 1 << 20 && sample.memory_rss < 10 << 30);
    }
}
