//! Runs the example axum API on `BIND` (default `127.0.0.1:8000`).
//!
//! With `APITALLY_WRITE_TOKEN` or `APITALLY_CLIENT_ID` set it reports to Apitally. With
//! neither, it starts the local hub on `HUB_BIND` (default `127.0.0.1:8001`) and reports
//! there, offline and without an account: over hub v2, or over Apitally 1.x (OTLP) with
//! `EXAMPLE_PROTOCOL=otlp`.

use apitally::{ApitallyConfig, ApitallyLayer};
use example_axum::{apitally_config, app, offline_config, API_KEYS};

fn is_set(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.trim().is_empty())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    {
        use tracing_subscriber::{filter::LevelFilter, prelude::*};
        tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().with_filter(LevelFilter::INFO))
            .with(apitally::tracing_layer())
            .init();
    }
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:8000".into());
    let real = is_set("APITALLY_WRITE_TOKEN") || is_set("APITALLY_CLIENT_ID");
    let otlp_offline = match std::env::var("EXAMPLE_PROTOCOL").unwrap_or_default().trim() {
        "" | "hub" | "v2" => false,
        "otlp" | "1.x" => true,
        other => {
            return Err(std::io::Error::other(format!(
                "EXAMPLE_PROTOCOL={other:?}: expected `hub` (the default) or `otlp`"
            )))
        }
    };
    let (config, local_hub) = if real {
        (ApitallyConfig::from_env(), None)
    } else {
        let hub_bind = std::env::var("HUB_BIND").unwrap_or_else(|_| "127.0.0.1:8001".into());
        let hub = local_hub::LocalHub::start(&hub_bind)?;
        (offline_config(hub.url(), otlp_offline), Some(hub))
    };
    let apitally = ApitallyLayer::new(apitally_config(config));
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("example axum API on http://{bind}");
    match &local_hub {
        Some(hub) => println!(
            "reporting over {} to the local hub: open {}/ (data arrives every 10 to 15 s)",
            if otlp_offline {
                "OTLP (Apitally 1.x)"
            } else {
                "hub v2"
            },
            hub.url()
        ),
        None => println!("reporting to Apitally"),
    }
    println!("try:");
    println!(
        "  curl http://{bind}/items -H 'x-api-key: {}'",
        API_KEYS[0].0
    );
    println!(
        "  curl http://{bind}/items -H 'content-type: application/json' -d '{{\"name\":\"Widget\",\"price_cents\":1999}}'"
    );
    println!("  curl 'http://{bind}/me?user=ada'");
    println!("Ctrl-C stops the server and sends the last data.");
    axum::serve(
        listener,
        app(apitally.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    apitally.shutdown().await;
    drop(local_hub);
    Ok(())
}
