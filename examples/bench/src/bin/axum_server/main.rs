//! The benchmark server for axum: one current-thread runtime, the same routes and request mix
//! as `bench-server` (actix-web), in each mode.
//!
//! `MODE` is `axum-bare` (no layer), `axum-noop` and `axum-floor` (reference layers that report
//! nothing: see `floor.rs`), `axum-apitally` (metrics only), `axum-prom` (axum-prometheus, what
//! axum apps pick for metrics today), `axum-log-headers` (request logging of headers) or
//! `axum-otlp` (Apitally 1.x with its defaults). `PORT` and
//! `APITALLY_HUB_BASE_URL` are read as by `bench-server`. `GET /__allocs` answers the number of
//! heap allocations so far.

#![allow(missing_docs)]

mod floor;

use std::alloc::System;

use apitally_axum::{ApitallyConfig, ApitallyLayer, RequestLoggingConfig};
use axum::{extract::Path, routing::get, routing::post, Json, Router};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const CLIENT_ID: &str = "00000000-0000-4000-8000-00000000be4c";

fn routes() -> Router {
    Router::new()
        .route("/hello", get(|| async { "Hello, world!" }))
        .route(
            "/users/{id}",
            get(|Path(id): Path<u32>| async move {
                Json(serde_json::json!({"id": id, "name": "Ada", "active": true}))
            }),
        )
        .route(
            "/echo",
            post(|Json(body): Json<serde_json::Value>| async move { Json(body) }),
        )
        .nest(
            "/api",
            Router::new().route("/items", get(|| async { Json([1, 2, 3]) })),
        )
        .route(
            "/__allocs",
            get(|| async { GLOBAL.stats().allocations.to_string() }),
        )
}

fn apitally_for(mode: &str) -> Option<ApitallyLayer> {
    let hub = std::env::var("APITALLY_HUB_BASE_URL").unwrap_or_default();
    let base = ApitallyConfig::new(CLIENT_ID, "bench").hub_base_url(hub.clone());
    let config = match mode {
        "axum-apitally" => base,
        "axum-log-headers" => {
            base.request_logging(RequestLoggingConfig::new().log_request_headers(true))
        }
        "axum-otlp" => ApitallyConfig::with_write_token("apt_000000000000000000000000", "bench")
            .otlp_endpoint(hub),
        _ => return None,
    };
    Some(ApitallyLayer::new(config))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let mode = std::env::var("MODE").unwrap_or_else(|_| "axum-bare".into());
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(18080);
    let apitally = apitally_for(&mode);
    let app = match (&apitally, mode.as_str()) {
        (Some(apitally), _) => routes().layer(apitally.clone()),
        (None, "axum-prom") => {
            let (layer, handle) = axum_prometheus::PrometheusMetricLayer::pair();
            routes()
                .route("/metrics", get(move || async move { handle.render() }))
                .layer(layer)
        }
        (None, "axum-noop") => routes().layer(floor::FloorLayer { noop: true }),
        (None, "axum-floor") => routes().layer(floor::FloorLayer { noop: false }),
        _ => routes(),
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("bench-axum-server: mode {mode} on 127.0.0.1:{port}");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let mut sigint =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).unwrap();
            sigint.recv().await;
        })
        .await?;
    if let Some(apitally) = apitally {
        apitally.shutdown().await;
    }
    Ok(())
}
