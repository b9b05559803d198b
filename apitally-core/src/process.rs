//! Process CPU and memory, sampled once per sync (protocol.md §12); the readings are shared with
//! the v1 process gauges (`otlp::metrics`).

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
pub(crate) fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let mut fields = stat_fields(&stat)?;
    // After ')' come state (3), ppid (4) ... utime (14) and stime (15): indices 11 and 12 here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// The fields of `/proc/self/stat` from the state (field 3) on. The command name may hold
/// spaces and parentheses: fields start after the last ')'.
#[cfg(target_os = "linux")]
fn stat_fields(stat: &str) -> Option<std::str::SplitAsciiWhitespace<'_>> {
    Some(stat.get(stat.rfind(')')? + 2..)?.split_ascii_whitespace())
}

/// How long this process has been running (Linux: `/proc/uptime` minus the process's
/// `starttime`, field 22 of `/proc/self/stat`, in ticks of USER_HZ = 100).
#[cfg(target_os = "linux")]
pub(crate) fn process_uptime() -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let start_ticks: u64 = stat_fields(&stat)?.nth(19)?.parse().ok()?;
    let uptime = std::fs::read_to_string("/proc/uptime").ok()?;
    let system_up: f64 = uptime.split_ascii_whitespace().next()?.parse().ok()?;
    let up = system_up - start_ticks as f64 / 100.0;
    (up.is_finite() && up >= 0.0).then(|| std::time::Duration::from_secs_f64(up))
}

/// Resident set size in bytes (Linux: `VmRSS` of `/proc/self/status`).
#[cfg(target_os = "linux")]
pub(crate) fn rss_bytes() -> Option<u64> {
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
pub(crate) fn cpu_seconds() -> Option<f64> {
    None
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn rss_bytes() -> Option<u64> {
    None
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn process_uptime() -> Option<std::time::Duration> {
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

    #[test]
    fn process_uptime_is_read() {
        // The test process started less than a day ago, and the kernel counts ticks of 10 ms.
        let up = process_uptime().unwrap();
        assert!(up < std::time::Duration::from_secs(86_400), "{up:?}");
    }
}
