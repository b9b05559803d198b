//! Proxies from the process environment: `https_proxy` (over `HTTPS_PROXY`) with credentials,
//! then `NO_PROXY` matching the hub, then `no_proxy()` in the config. One test in its own binary,
//! because it changes the process environment.

use crate::common;

use std::time::Duration;

use apitally_core::adapter::{ApitallyClient, ClientConfig, RequestRecord, StartupData};
use apitally_test_hub::{capture_logs, TestHub, TestProxy};
use common::config;

fn run(hub: &TestHub, cfg: ClientConfig, n: usize) {
    let cfg = cfg.ca_certificates_pem(hub.ca_pem().unwrap());
    let client = ApitallyClient::try_new(cfg, StartupData::new("rust:test")).unwrap();
    for _ in 0..n {
        client.record_request(&RequestRecord::new(
            "GET",
            "/env",
            200,
            Duration::from_millis(1),
        ));
    }
    client.shutdown_blocking();
}

#[test]
fn proxies_from_the_environment() {
    let logs = capture_logs();
    let hub = TestHub::start_tls();
    let proxy = TestProxy::start(Some(("envuser", "s3cr:t@")));
    for name in [
        "NO_PROXY",
        "no_proxy",
        "ALL_PROXY",
        "all_proxy",
        "HTTP_PROXY",
        "http_proxy",
    ] {
        std::env::remove_var(name);
    }
    // Lowercase wins: the uppercase one points at nothing.
    std::env::set_var("HTTPS_PROXY", "http://127.0.0.1:9");
    std::env::set_var(
        "https_proxy",
        format!("http://envuser:s3cr%3At%40@127.0.0.1:{}", proxy.port()),
    );
    std::env::set_var("NO_PROXY", "example.com,10.0.0.0/8");
    run(&hub, config(&hub.url()), 10);
    assert_eq!(hub.request_count(Some("/env")), 10);
    assert!(proxy.tunnels() >= 1);
    let through: Vec<_> = proxy.upstream_addrs();
    assert!(hub
        .received()
        .iter()
        .all(|r| through.contains(&r.peer.unwrap())));
    assert!(
        proxy.requests()[0].starts_with(&format!("CONNECT 127.0.0.1:{} HTTP/1.1\r\n", hub.port()))
    );

    // NO_PROXY (lowercase over uppercase) matching the hub: direct.
    let before = proxy.connections();
    std::env::set_var("no_proxy", " other.example , 127.0.0.1 ");
    run(&hub, config(&hub.url()), 4);
    assert_eq!(hub.request_count(Some("/env")), 14);
    assert_eq!(proxy.connections(), before);
    std::env::remove_var("no_proxy");

    // no_proxy() in the config: direct, whatever the environment says.
    run(&hub, config(&hub.url()).no_proxy(), 3);
    assert_eq!(hub.request_count(Some("/env")), 17);
    assert_eq!(proxy.connections(), before);

    for (_, line) in logs.lines() {
        assert!(
            !line.contains("s3cr") && !line.contains("envuser"),
            "{line}"
        );
    }
}
