//! `SSL_CERT_FILE` read from the process environment. One test in its own binary, because it
//! changes the process environment.

use crate::common;

use std::time::Duration;

use apitally_core::adapter::{ApitallyClient, RequestRecord, StartupData};
use apitally_test_hub::{capture_logs, TestHub};
use common::{config, WAIT};
use log::Level;

#[test]
fn ssl_cert_file_from_the_environment() {
    let logs = capture_logs();
    let hub = TestHub::start_tls();
    for name in [
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        std::env::remove_var(name);
    }

    // The platform's roots do not include the test's CA.
    let client =
        ApitallyClient::try_new(config(&hub.url()), StartupData::new("rust:test")).unwrap();
    let needle = format!("TLS with 127.0.0.1:{} failed", hub.port());
    assert!(hub.wait_until(WAIT, |_| !logs.matching(Level::Warn, &needle).is_empty()));
    client.shutdown_blocking();
    assert!(hub.received().is_empty());

    let file = std::env::temp_dir().join(format!("apitally-ca-{}.pem", uuid::Uuid::new_v4()));
    std::fs::write(&file, hub.ca_pem().unwrap()).unwrap();
    std::env::set_var("SSL_CERT_FILE", &file);
    let client =
        ApitallyClient::try_new(config(&hub.url()), StartupData::new("rust:test")).unwrap();
    for _ in 0..9 {
        client.record_request(&RequestRecord::new(
            "GET",
            "/env",
            200,
            Duration::from_millis(1),
        ));
    }
    client.shutdown_blocking();
    assert_eq!(hub.request_count(Some("/env")), 9);
    std::fs::remove_file(&file).unwrap();
}
