//! With an OpenTelemetry pipeline (tracing-opentelemetry), the request log's `trace_id` is the
//! trace id that pipeline uses. In a binary of its own: the subscriber is process-wide.
#![cfg(feature = "opentelemetry")]

use crate::common;

use actix_web::{test, web, App, HttpResponse};
use apitally_actix::{Apitally, RequestLoggingConfig};
use common::TestHub;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::prelude::*;

#[actix_web::test]
async fn trace_id_is_the_opentelemetry_one() {
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let tracer = provider.tracer("test");
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(tracer))
            .with(apitally_actix::tracing_layer()),
    )
    .unwrap();
    let hub = TestHub::start();
    let apitally = Apitally::try_new(
        common::config(&hub).request_logging(RequestLoggingConfig::new().capture_traces(true)),
    )
    .unwrap();
    let app = test::init_service(App::new().wrap(apitally.clone()).route(
        "/otel",
        web::get().to(|| async {
            // The id the app's own OTel pipeline sees for this request.
            let context = tracing::Span::current().context();
            HttpResponse::Ok().body(context.span().span_context().trace_id().to_string())
        }),
    ))
    .await;
    let body =
        test::call_and_read_body(&app, test::TestRequest::get().uri("/otel").to_request()).await;
    apitally.shutdown().await;
    let otel_trace_id = String::from_utf8(body.to_vec()).unwrap();
    assert_eq!(otel_trace_id.len(), 32);
    assert_ne!(otel_trace_id, "0".repeat(32));
    let lines = common::log_lines(&hub);
    assert_eq!(lines[0]["trace_id"], otel_trace_id);

    // Apitally 1.x exports the request's SERVER span under the same trace id.
    let otlp_hub = TestHub::start();
    let apitally = Apitally::try_new(
        apitally_actix::ApitallyConfig::with_write_token("apt_0123456789abcdefghijABCD", "test")
            .otlp_endpoint(otlp_hub.url()),
    )
    .unwrap();
    let app = test::init_service(App::new().wrap(apitally.clone()).route(
        "/otel",
        web::get().to(|| async {
            tracing::info!("inside");
            let context = tracing::Span::current().context();
            HttpResponse::Ok().body(context.span().span_context().trace_id().to_string())
        }),
    ))
    .await;
    let body =
        test::call_and_read_body(&app, test::TestRequest::get().uri("/otel").to_request()).await;
    apitally.shutdown().await;
    let otel_trace_id = String::from_utf8(body.to_vec()).unwrap();
    let spans: Vec<_> = otlp_hub
        .otlp_spans()
        .into_iter()
        .filter(|s| s.is_server())
        .collect();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].trace_id.as_deref(), Some(otel_trace_id.as_str()));
    // Its log record is linked to it.
    let records: Vec<_> = otlp_hub
        .otlp_log_records()
        .into_iter()
        .filter(|r| r.event_name.is_none())
        .collect();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].body, "inside");
    assert_eq!(records[0].trace_id, spans[0].trace_id);
    assert_eq!(
        records[0].attributes["apitally.request.server_span_id"],
        serde_json::json!(spans[0].span_id.clone().unwrap())
    );
}
