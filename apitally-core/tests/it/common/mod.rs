#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use apitally_core::adapter::{ApitallyClient, ClientConfig, StartupData};
use apitally_test_hub::TestHub;

/// A client id of its own per test, so that tests in one process never share a client.
pub fn client_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A config pointed at `hub` with short timings.
pub fn config(hub_url: &str) -> ClientConfig {
    ClientConfig::new(client_id(), "test")
        .hub_base_url(hub_url)
        .test_sync_interval(Duration::from_millis(200))
        .test_retry_backoff(Duration::from_millis(10))
        .test_request_timeout(Duration::from_millis(1000))
        .shutdown_timeout(Duration::from_secs(5))
}

pub fn start(hub: &TestHub) -> ApitallyClient {
    ApitallyClient::try_new(config(&hub.url()), StartupData::new("rust:test")).unwrap()
}

pub const WAIT: Duration = Duration::from_secs(15);

/// A directory of its own for a test's request-log files.
pub fn log_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("apitally-test-{}", uuid::Uuid::new_v4()))
}

/// [`config`] with request logging into `dir`, every logged request in a file of its own.
pub fn logging_config(hub_url: &str, dir: &std::path::Path) -> ClientConfig {
    config(hub_url)
        .test_log_dir(dir)
        .request_logging(apitally_core::RequestLoggingConfig::new().test_max_file_size(1))
}

/// Logs a request whose URL carries `n` (`?n=<n>`).
pub fn log_request(client: &ApitallyClient, n: u64) {
    let mut item = apitally_core::adapter::RequestLogItem::default();
    item.request.method.push_str("GET");
    item.request.url = format!("http://localhost/items?n={n}");
    item.response.status_code = 200;
    client
        .request_logger()
        .expect("request logging is on")
        .log(item);
}

/// The `n` of every line in the log files the hub accepted, each file once (by its `uuid`
/// query, as the real hub de-duplicates), sorted.
pub fn logged(hub: &TestHub) -> Vec<u64> {
    let mut seen = std::collections::HashSet::new();
    let mut ns: Vec<u64> = hub
        .received_at("log")
        .into_iter()
        .filter(|r| r.accepted() && seen.insert(r.query.clone()))
        .flat_map(|r| r.lines)
        .filter_map(|line| {
            let url = line["request"]["url"].as_str()?.to_owned();
            url.split_once("?n=")?.1.parse().ok()
        })
        .collect();
    ns.sort_unstable();
    ns
}

/// The `.gz` files in `dir`.
pub fn files_in(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "gz"))
                .collect()
        })
        .unwrap_or_default()
}
