//! Runs the local hub on `HUB_BIND` (default `127.0.0.1:8001`) until Ctrl-C; with `HUB_TLS=1`,
//! over HTTPS with a certificate from a CA made at start (its PEM is written next to the temp
//! files, for `SSL_CERT_FILE` or `ca_certificates_file`).

fn main() -> std::io::Result<()> {
    let bind = std::env::var("HUB_BIND").unwrap_or_else(|_| "127.0.0.1:8001".into());
    let hub = if std::env::var("HUB_TLS").is_ok_and(|v| v == "1") {
        let ca = apitally_test_hub::TestCa::new();
        let path = std::env::temp_dir().join("apitally-local-hub-ca.pem");
        std::fs::write(&path, ca.pem())?;
        let hub =
            local_hub::LocalHub::start_tls(&bind, ca.server_config(&["127.0.0.1", "localhost"]))?;
        println!("  CA certificate: {} (SSL_CERT_FILE=...)", path.display());
        hub
    } else {
        local_hub::LocalHub::start(&bind)?
    };
    println!("local Apitally hub on {}", hub.url());
    println!("  dashboard:  {}/", hub.url());
    println!(
        "  point the SDK at it with APITALLY_HUB_BASE_URL={} (hub v2, SDK 0.x)",
        hub.url()
    );
    println!(
        "  or APITALLY_OTLP_ENDPOINT={} APITALLY_WRITE_TOKEN=apt_000000000000000000000000 (OTLP, SDK 1.x)",
        hub.url()
    );
    hub.wait();
    Ok(())
}
