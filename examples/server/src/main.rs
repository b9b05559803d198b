//! Runs the example API on `BIND` (default `127.0.0.1:8000`).
//!
//! With `APITALLY_WRITE_TOKEN` set it reports to Apitally 1.x, with `APITALLY_CLIENT_ID` to the
//! hub (`APITALLY_ENV`, `APITALLY_OTLP_ENDPOINT` and `APITALLY_HUB_BASE_URL` are read too).
//! With neither, it starts the local hub on `HUB_BIND` (default `127.0.0.1:8001`) and reports
//! there, so everything works offline and without an account: over hub v2, or over 1.x (OTLP)
//! with `EXAMPLE_PROTOCOL=otlp`. `APITALLY_SHUTDOWN_TIMEOUT` (seconds) bounds the final sync;
//! `EXAMPLE_LOG_FILE_BYTES` closes request-log files at that many compressed bytes instead of
//! 1 MB (a test knob: many files).

use std::time::Duration;

use actix_web::{middleware, web, App, HttpServer};
use apitally::{Apitally, ApitallyConfig};
use example_server::{
    apitally_config, authenticate, configure, request_logging, OfflineProtocol, Store, API_KEYS,
};

/// A number from the environment, when set and valid.
fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    let value = std::env::var(name).ok()?;
    match value.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => {
            eprintln!("ignoring {name}={value:?}: not a number");
            None
        }
    }
}

/// Whether a variable is set and not blank.
fn is_set(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.trim().is_empty())
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    // Logs to the terminal (INFO and above), and Apitally's layer, which attaches each request's
    // logs and spans to its request log. `init` also routes `log` records (actix's own) into
    // tracing.
    {
        use tracing_subscriber::{filter::LevelFilter, prelude::*};
        tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().with_filter(LevelFilter::INFO))
            .with(apitally::tracing_layer())
            .init();
    }
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:8000".into());
    let real = is_set("APITALLY_WRITE_TOKEN") || is_set("APITALLY_CLIENT_ID");
    let (config, local_hub, otlp) = if real {
        let otlp = is_set("APITALLY_WRITE_TOKEN");
        (ApitallyConfig::from_env(), None, otlp)
    } else {
        let protocol = OfflineProtocol::from_env().map_err(std::io::Error::other)?;
        let hub_bind = std::env::var("HUB_BIND").unwrap_or_else(|_| "127.0.0.1:8001".into());
        let hub = local_hub::LocalHub::start(&hub_bind)?;
        let env = std::env::var("APITALLY_ENV").unwrap_or_else(|_| "dev".into());
        let otlp = matches!(protocol, OfflineProtocol::Otlp);
        (protocol.config(hub.url(), &env), Some(hub), otlp)
    };

    let mut config = apitally_config(config);
    if let Some(secs) = env_number::<f64>("APITALLY_SHUTDOWN_TIMEOUT") {
        if let Ok(timeout) = Duration::try_from_secs_f64(secs) {
            config = config.shutdown_timeout(timeout);
        }
    }
    if let Some(bytes) = env_number::<u64>("EXAMPLE_LOG_FILE_BYTES") {
        config = config.request_logging(request_logging().test_max_file_size(bytes));
    }
    let apitally = Apitally::new(config);
    let store = web::Data::new(Store::default());

    let server = HttpServer::new({
        let apitally = apitally.clone();
        move || {
            App::new()
                .app_data(store.clone())
                .wrap(middleware::from_fn(authenticate))
                .wrap(apitally.clone())
                .wrap(middleware::Logger::default())
                .configure(configure)
        }
    })
    .bind(&bind)?;

    println!("example API on http://{bind}");
    let protocol = match (apitally.is_enabled(), otlp) {
        (false, _) => "",
        (true, true) => "OTLP (Apitally 1.x, write token)",
        (true, false) => "hub v2 (client id)",
    };
    match &local_hub {
        _ if protocol.is_empty() => {
            println!("Apitally is off: the configuration is invalid (see the error above)")
        }
        Some(hub) => println!(
            "reporting over {protocol} to the local hub: open {}/ (it refreshes; data arrives \
             every 10 to 15 s)",
            hub.url()
        ),
        None => println!("reporting over {protocol} to Apitally"),
    }
    println!("try:");
    println!(
        "  curl http://{bind}/items -H 'x-api-key: {}'",
        API_KEYS[0].0
    );
    println!(
        "  curl http://{bind}/items -H 'content-type: application/json' -d '{{\"name\":\"Widget\",\"price_cents\":1999}}'"
    );
    println!("  curl http://{bind}/me/orders -H 'authorization: Bearer user-ada'");
    println!("Ctrl-C stops the server and sends the last data.");

    // actix-web stops gracefully on Ctrl-C and SIGTERM; then the final sync.
    server.run().await?;
    apitally.shutdown().await;
    // The local hub printed the final sync's summary; it stops with the process.
    drop(local_hub);
    Ok(())
}
