//! The benchmark server: one actix-web worker with the same routes in every mode.
//!
//! `MODE` is one of `bare`, `prom` (actix-web-prom), `apitally` (metrics only),
//! `apitally-consumer` (a consumer on every request), `log-headers` (request logging of
//! headers), `log-sampled-out` (the same with every request sampled out), `log-bodies`
//! (headers and bodies), `log-traces` (headers, with logs and traces
//! captured through the tracing layer), `otlp-metrics` and `otlp` (Apitally 1.x with a write
//! token: metrics only, and the defaults), and two reference middlewares that report nothing (see
//! `floor.rs`): `noop` (forwards each request) and `floor` (times each request and counts its
//! response bytes through a body wrapper, the least a metrics middleware does); `disabled`
//! (the middleware switched off with `disabled(true)`); `err-500` and `err-panic` (metrics,
//! for the driver's error comparison: `GET /fail` answers a handler error, `GET /panic`
//! panics, both answered 500). `PORT` (default 18080) and `APITALLY_HUB_BASE_URL`
//! (the local hub) are read too. `GET /__allocs` answers the number of heap allocations so far.

#![allow(missing_docs)]

mod floor;

use std::alloc::System;

use actix_web::{web, App, HttpResponse, HttpServer};
use apitally::{Apitally, ApitallyConfig, Consumer, RequestLoggingConfig};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const CLIENT_ID: &str = "00000000-0000-4000-8000-00000000be4c";

/// Looking a custom header up by `&str` makes actix build (allocate) a `HeaderName` on every
/// call; a constant does not.
const X_API_KEY: actix_web::http::header::HeaderName =
    actix_web::http::header::HeaderName::from_static("x-api-key");

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/hello", web::get().to(|| async { "Hello, world!" }))
        .route(
            "/users/{id}",
            web::get().to(|id: web::Path<u32>| async move {
                HttpResponse::Ok()
                    .json(serde_json::json!({"id": *id, "name": "Ada", "active": true}))
            }),
        )
        .route(
            "/echo",
            web::post().to(|body: web::Json<serde_json::Value>| async move {
                HttpResponse::Ok().json(body.into_inner())
            }),
        )
        .service(web::scope("/api").route(
            "/items",
            web::get().to(|| async { HttpResponse::Ok().json([1, 2, 3]) }),
        ))
        // For the error modes: a handler error answered 500, and a panic Apitally answers 500.
        .route(
            "/fail",
            web::get().to(|| async {
                Err::<HttpResponse, _>(actix_web::error::ErrorInternalServerError("db is down"))
            }),
        )
        .route(
            "/panic",
            web::get().to(|| async {
                if std::hint::black_box(true) {
                    panic!("db is down");
                }
                HttpResponse::Ok().finish()
            }),
        )
        .route(
            "/__allocs",
            web::get().to(|| async { GLOBAL.stats().allocations.to_string() }),
        );
}

/// Apitally 1.x, exporting to the local hub the driver starts.
fn otlp() -> ApitallyConfig {
    let hub = std::env::var("APITALLY_HUB_BASE_URL").unwrap_or_default();
    ApitallyConfig::with_write_token("apt_000000000000000000000000", "bench").otlp_endpoint(hub)
}

fn apitally_for(mode: &str) -> Option<Apitally> {
    let base = ApitallyConfig::new(CLIENT_ID, "bench");
    let config = match mode {
        "apitally" | "err-500" | "err-panic" => base,
        // Switched off: what a request costs against bare actix-web.
        "disabled" => base.disabled(true),
        "apitally-consumer" => base.identify_consumer(|req| {
            req.headers()
                .get(&X_API_KEY)?
                .to_str()
                .ok()
                .map(Consumer::new)
        }),
        "log-headers" => {
            base.request_logging(RequestLoggingConfig::new().log_request_headers(true))
        }
        // Request logging of headers, every request sampled out: what a request costs that
        // sampling drops.
        "log-sampled-out" => base
            .request_logging(RequestLoggingConfig::new().log_request_headers(true))
            .sample_rate(0.0),
        // Apitally 1.x: metrics only (every request sampled out), and the defaults (a SERVER
        // span per request with response headers, application logs).
        "otlp-metrics" => otlp().sample_rate(0.0),
        "otlp" => otlp(),
        // Apitally 1.x with its defaults and a consumer on every request.
        "otlp-consumer" => otlp().identify_consumer(|req| {
            req.headers()
                .get(&X_API_KEY)?
                .to_str()
                .ok()
                .map(Consumer::new)
        }),
        "log-traces" => base.request_logging(
            RequestLoggingConfig::new()
                .log_request_headers(true)
                .capture_logs(true)
                .capture_traces(true),
        ),
        "log-bodies" => base.request_logging(
            RequestLoggingConfig::new()
                .log_request_headers(true)
                .log_request_body(true)
                .log_response_body(true),
        ),
        _ => return None,
    };
    Some(Apitally::new(config))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mode = std::env::var("MODE").unwrap_or_else(|_| "bare".into());
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(18080);
    if mode == "log-traces" {
        // As apps run it: with a level filter (actix-http emits TRACE events on every request,
        // which no production setup records).
        use tracing_subscriber::{filter::LevelFilter, prelude::*};
        tracing_subscriber::registry()
            .with(apitally::tracing_layer().with_filter(LevelFilter::INFO))
            .init();
    }
    let apitally = apitally_for(&mode);
    // Each mode builds its own App type, so that `bare` has no middleware at all.
    macro_rules! serve {
        ($($wrap:expr),*) => {
            HttpServer::new(move || App::new()$(.wrap($wrap))*.configure(routes))
                .workers(1)
                .bind(("127.0.0.1", port))?
                .run()
        };
    }
    let server = match (&apitally, mode.as_str()) {
        (Some(apitally), _) => {
            let apitally = apitally.clone();
            serve!(apitally.clone())
        }
        (None, "prom") => {
            let prom = actix_web_prom::PrometheusMetricsBuilder::new("bench")
                .endpoint("/metrics")
                .build()
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            serve!(prom.clone())
        }
        (None, "noop") => serve!(floor::Noop),
        (None, "floor") => serve!(floor::Floor),
        _ => serve!(),
    };
    eprintln!("bench-server: mode {mode} on 127.0.0.1:{port}");
    server.await?;
    if let Some(apitally) = apitally {
        apitally.shutdown().await;
    }
    Ok(())
}
