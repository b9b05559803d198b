#![allow(dead_code, unreachable_pub, unused_macros)]

/// Runs a real `HttpServer` with `$workers` workers on a free port of 127.0.0.1, spawned on the
/// current runtime; gives its handle and port.
macro_rules! spawn_server {
    ($workers:expr, $factory:expr) => {{
        let server = actix_web::HttpServer::new($factory)
            .workers($workers)
            .disable_signals()
            .bind(("127.0.0.1", 0))
            .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        (handle, port)
    }};
}

use std::time::Duration;

use apitally_actix::{Apitally, ApitallyConfig};
pub use apitally_test_hub::TestHub;
use serde_json::Value;

/// A config with a client id of its own (tests in one process never share a client), pointed
/// at `hub`, that syncs only at start and on shutdown unless `interval` is shorter.
pub fn config(hub: &TestHub) -> ApitallyConfig {
    ApitallyConfig::new(uuid::Uuid::new_v4().to_string(), "test")
        .hub_base_url(hub.url())
        .test_client_config(|c| {
            c.test_sync_interval(Duration::from_secs(3600))
                .test_retry_backoff(Duration::from_millis(10))
                .test_request_timeout(Duration::from_secs(2))
        })
}

pub fn apitally(hub: &TestHub, f: impl FnOnce(ApitallyConfig) -> ApitallyConfig) -> Apitally {
    Apitally::try_new(f(config(hub))).unwrap()
}

/// All `requests` items of the accepted syncs.
pub fn requests(hub: &TestHub) -> Vec<Value> {
    hub.accepted_syncs()
        .iter()
        .flat_map(|s| s["requests"].as_array().cloned().unwrap_or_default())
        .collect()
}

pub fn items(hub: &TestHub, key: &str) -> Vec<Value> {
    hub.accepted_syncs()
        .iter()
        .flat_map(|s| s[key].as_array().cloned().unwrap_or_default())
        .collect()
}

/// Sum of `request_count` for items matching method, path, status and consumer (`None` to
/// match any; `Some(Value::Null)` for anonymous).
pub fn count(
    hub: &TestHub,
    method: &str,
    path: &str,
    status: Option<u16>,
    consumer: Option<Value>,
) -> u64 {
    requests(hub)
        .iter()
        .filter(|r| r["method"] == method && r["path"] == path)
        .filter(|r| status.is_none_or(|s| r["status_code"] == s))
        .filter(|r| consumer.as_ref().is_none_or(|c| &r["consumer"] == c))
        .map(|r| r["request_count"].as_u64().unwrap())
        .sum()
}

pub fn find(hub: &TestHub, method: &str, path: &str) -> Value {
    requests(hub)
        .into_iter()
        .find(|r| r["method"] == method && r["path"] == path)
        .unwrap_or_else(|| panic!("no item for {method} {path} in {:#?}", requests(hub)))
}

/// The resident set size of this process, in kB.
pub fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
}

/// The decoded request-log lines of the files the hub accepted.
/// The lines of every request-log file the hub accepted, each file once: a file whose upload
/// timed out at the client after the hub had it is sent again with the same `uuid` (which the
/// real hub deduplicates).
pub fn log_lines(hub: &TestHub) -> Vec<Value> {
    let mut seen = std::collections::HashSet::new();
    hub.received_at("log")
        .into_iter()
        .filter(|r| r.accepted() && seen.insert(r.query.clone()))
        .flat_map(|r| r.lines)
        .collect()
}
