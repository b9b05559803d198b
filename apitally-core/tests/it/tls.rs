//! HTTPS to a real TLS hub whose certificate a CA made in the test signed: refused without
//! that CA (one warning naming the host and the reason), accepted with it from the config or
//! from `SSL_CERT_FILE`, with exact counts. The environment is passed through the test hook, so
//! that these tests can run in parallel.

use crate::common;

use std::time::{Duration, Instant};

use apitally_core::adapter::{ApitallyClient, ClientConfig, RequestRecord, StartupData};
use apitally_test_hub::{capture_logs, TestHub};
use common::{config, WAIT};
use log::Level;

/// No proxy and no certificate variables, whatever the machine's environment has.
fn clean_env(config: ClientConfig) -> ClientConfig {
    config.test_net_env(Vec::<(String, String)>::new())
}

fn wait_for(what: &str, pred: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn record(client: &ApitallyClient, n: usize) {
    for i in 0..n {
        client.record_request(&RequestRecord::new(
            "GET",
            "/items",
            200,
            Duration::from_millis(i as u64),
        ));
    }
}

#[test]
fn an_untrusted_certificate_is_one_warning_naming_the_host() {
    let logs = capture_logs();
    let hub = TestHub::start_tls();
    let client =
        ApitallyClient::try_new(clean_env(config(&hub.url())), StartupData::new("rust:test"))
            .unwrap();
    let host = format!("127.0.0.1:{}", hub.port());
    // Every failed attempt is a debug line (3 for startup and 3 for sync per cycle): wait
    // for three cycles' worth.
    wait_for("failed attempts", || {
        logs.matching(Level::Debug, &format!("TLS with {host} failed"))
            .len()
            >= 18
    });
    let warnings = logs.matching(Level::Warn, &host);
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    let warning = &warnings[0];
    assert!(warning.contains("startup failed"), "{warning}");
    assert!(
        warning.contains(&format!("TLS with {host} failed: invalid peer certificate")),
        "{warning}"
    );
    assert!(warning.contains("UnknownIssuer"), "{warning}");
    assert!(warning.contains("SSL_CERT_FILE"), "{warning}");
    assert!(hub.received().is_empty());
    client.shutdown_blocking();
}

#[test]
fn the_ca_from_the_config_is_trusted() {
    let hub = TestHub::start_tls();
    let cfg = clean_env(config(&hub.url())).ca_certificates_pem(hub.ca_pem().unwrap());
    let client = ApitallyClient::try_new(cfg, StartupData::new("rust:test")).unwrap();
    record(&client, 25);
    client.shutdown_blocking();
    assert_eq!(hub.received_at("startup").len(), 1);
    assert_eq!(hub.request_count(Some("/items")), 25);
    assert!(hub.received().iter().all(|r| r.accepted()));
}

#[test]
fn the_ca_from_ssl_cert_file_or_a_file_option_is_trusted() {
    let hub = TestHub::start_tls();
    let dir = std::env::temp_dir().join(format!("apitally-ca-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ca.pem");
    std::fs::write(&file, hub.ca_pem().unwrap()).unwrap();

    let cfg = config(&hub.url()).test_net_env([("SSL_CERT_FILE", file.to_str().unwrap())]);
    let client = ApitallyClient::try_new(cfg, StartupData::new("rust:test")).unwrap();
    record(&client, 7);
    client.shutdown_blocking();
    assert_eq!(hub.request_count(Some("/items")), 7);

    // SSL_CERT_DIR: every file in the directory.
    let cfg = config(&hub.url()).test_net_env([("SSL_CERT_DIR", dir.to_str().unwrap())]);
    let client = ApitallyClient::try_new(cfg, StartupData::new("rust:test")).unwrap();
    record(&client, 5);
    client.shutdown_blocking();
    assert_eq!(hub.request_count(Some("/items")), 12);

    let cfg = clean_env(config(&hub.url())).ca_certificates_file(&file);
    let client = ApitallyClient::try_new(cfg, StartupData::new("rust:test")).unwrap();
    record(&client, 3);
    client.shutdown_blocking();
    assert_eq!(hub.request_count(Some("/items")), 15);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_ca_options_are_configuration_errors() {
    let err = ApitallyClient::try_new(
        config("https://127.0.0.1:9").ca_certificates_pem("no certificate here"),
        StartupData::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("ca_certificates_pem"), "{err}");
    let err = config("https://127.0.0.1:9")
        .ca_certificates_file("/nonexistent/ca.pem")
        .validate()
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}
