#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use apitally_core::{ApitallyClient, ClientConfig, StartupData};
use apitally_test_hub::TestHub;

/// A client id of its own per test, so that tests in one process never share a client.
pub fn client_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A config pointed at `hub` with short timings.
pub fn config(hub_url: &str) -> ClientConfig {
    ClientConfig::new(client_id(), "test")
        .hub_base_url(hub_url)
        .__sync_interval(Duration::from_millis(200))
        .__retry_backoff(Duration::from_millis(10))
        .__request_timeout(Duration::from_millis(1000))
        .shutdown_timeout(Duration::from_secs(5))
}

pub fn start(hub: &TestHub) -> ApitallyClient {
    ApitallyClient::try_new(config(&hub.url()), StartupData::new("rust:test")).unwrap()
}

pub const WAIT: Duration = Duration::from_secs(15);
