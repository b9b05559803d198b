//! Application logs and trace spans in request logs, through `apitally_actix::tracing_layer()`.
#![cfg(feature = "tracing")]

use crate::common;

use std::{sync::Once, time::Duration};

use actix_web::{test, web, App, HttpResponse};
use apitally_actix::{Apitally, RequestLoggingConfig};
use common::TestHub;
use serde_json::Value;
use tracing::Instrument;
use tracing_subscriber::prelude::*;

fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Not `init()`: with tracing-subscriber's `tracing-log` feature on (as in this
        // workspace) it would install the LogTracer a second time.
        tracing_log::LogTracer::init().unwrap();
        tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(apitally_actix::tracing_layer()),
        )
        .unwrap();
    });
}

use common::log_lines as lines;

/// Request logging with logs and traces captured.
fn capturing(hub: &TestHub) -> Apitally {
    Apitally::try_new(
        common::config(hub).request_logging(
            RequestLoggingConfig::new()
                .capture_logs(true)
                .capture_traces(true),
        ),
    )
    .unwrap()
}

fn line<'a>(lines: &'a [Value], path: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["request"]["url"].as_str().unwrap().ends_with(path))
        .unwrap_or_else(|| panic!("no line for {path}"))
}

fn messages(line: &Value) -> Vec<String> {
    line["logs"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|r| r["message"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[actix_web::test]
async fn logs_and_spans_are_attached_to_their_own_request() {
    init();
    let hub = TestHub::start();
    let apitally = capturing(&hub);
    let app = test::init_service(
        App::new()
            .wrap(apitally.clone())
            .route(
                "/interleaved/{who}",
                web::get().to(|who: web::Path<String>| async move {
                    tracing::info!(step = 1, "{who} first");
                    actix_rt::time::sleep(Duration::from_millis(30)).await;
                    tracing::warn!("{who} second");
                    actix_rt::time::sleep(Duration::from_millis(30)).await;
                    log::error!("{who} third via log");
                    HttpResponse::Ok().finish()
                }),
            )
            .route(
                "/nested",
                web::get().to(|| async {
                    let outer = tracing::info_span!("service.load", item = 7);
                    async {
                        let db = tracing::info_span!(
                            "db.query",
                            db.system = "postgresql",
                            otel.kind = "client",
                            otel.status_code = "ok"
                        );
                        let _g = db.enter();
                        tracing::debug!("inside the query");
                    }
                    .instrument(outer)
                    .await;
                    // Spawned work that carries the request's span is part of it.
                    let (tx, rx) = std::sync::mpsc::channel();
                    actix_web::rt::spawn(
                        async move {
                            tracing::info!("from a spawned task");
                            tx.send(()).unwrap();
                        }
                        .instrument(tracing::Span::current()),
                    )
                    .await
                    .unwrap();
                    rx.recv().unwrap();
                    HttpResponse::Ok().finish()
                }),
            )
            .route(
                "/many",
                web::get().to(|| async {
                    for i in 0..1_100 {
                        tracing::info!("event {i}");
                    }
                    tracing::info!("{}", "x".repeat(5_000));
                    HttpResponse::Ok().finish()
                }),
            ),
    )
    .await;
    // Two requests at once on one worker, their log lines interleaved in time.
    let a = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/interleaved/alice")
            .to_request(),
    );
    let b = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/interleaved/bob")
            .to_request(),
    );
    let (ra, rb) = futures_util::future::join(a, b).await;
    drop((ra, rb));
    // Outside any request: not captured anywhere.
    tracing::info!("outside any request");
    test::call_and_read_body(&app, test::TestRequest::get().uri("/nested").to_request()).await;
    test::call_and_read_body(&app, test::TestRequest::get().uri("/many").to_request()).await;
    apitally.shutdown().await;

    let lines = lines(&hub);
    let alice = line(&lines, "/interleaved/alice");
    let bob = line(&lines, "/interleaved/bob");
    assert_eq!(
        messages(alice),
        ["alice first step=1", "alice second", "alice third via log"]
    );
    assert_eq!(
        messages(bob),
        ["bob first step=1", "bob second", "bob third via log"]
    );
    let first = &alice["logs"][0];
    assert_eq!(first["level"], "INFO");
    assert_eq!(first["logger"], "it::tracing");
    assert!(first["file"]
        .as_str()
        .unwrap()
        .ends_with("tests/it/tracing.rs"));
    assert!(first["line"].as_u64().unwrap() > 0);
    assert!(first["timestamp"].as_f64().unwrap() > 1.7e9);
    let bridged = &alice["logs"][2];
    assert_eq!(bridged["level"], "ERROR");
    assert_eq!(bridged["logger"], "it::tracing");
    assert!(bridged["file"]
        .as_str()
        .unwrap()
        .ends_with("tests/it/tracing.rs"));
    let all = serde_json::to_string(&lines).unwrap();
    assert!(!all.contains("outside any request"));

    let nested = line(&lines, "/nested");
    // "inside the query" is a DEBUG event: below the default level of captured records.
    assert_eq!(messages(nested), ["from a spawned task"]);
    let trace_id = nested["trace_id"].as_str().unwrap();
    assert_eq!(trace_id.len(), 32);
    assert!(trace_id
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    assert_ne!(alice["trace_id"], nested["trace_id"]);
    let spans = nested["spans"].as_array().unwrap();
    let by_name = |name: &str| {
        spans
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name}: {spans:#?}"))
    };
    let root = by_name("GET /nested");
    let outer = by_name("service.load");
    let db = by_name("db.query");
    assert_eq!(root["parent_span_id"], Value::Null);
    assert_eq!(root["kind"], "INTERNAL");
    assert_eq!(outer["parent_span_id"], root["span_id"]);
    assert_eq!(db["parent_span_id"], outer["span_id"]);
    assert_eq!(db["kind"], "CLIENT");
    assert_eq!(db["status"], "OK");
    assert_eq!(db["attributes"]["db.system"], "postgresql");
    assert_eq!(outer["attributes"]["item"], 7);
    for s in spans {
        assert_eq!(s["span_id"].as_str().unwrap().len(), 16);
        assert!(s["start_time"].as_u64().unwrap() <= s["end_time"].as_u64().unwrap());
    }
    let t = |s: &Value, k: &str| s[k].as_u64().unwrap();
    assert!(t(root, "start_time") <= t(outer, "start_time"));
    assert!(
        t(outer, "start_time") <= t(db, "start_time") && t(db, "end_time") <= t(outer, "end_time")
    );
    assert!(t(outer, "end_time") <= t(root, "end_time"));

    let many = line(&lines, "/many");
    let logs = many["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1_000);
    assert_eq!(logs[999]["message"], "event 999");
}

#[actix_web::test]
async fn long_messages_are_truncated_and_nothing_is_captured_when_off() {
    init();
    let hub = TestHub::start();
    let apitally = Apitally::try_new(
        common::config(&hub).request_logging(RequestLoggingConfig::new().capture_logs(true)),
    )
    .unwrap();
    let off_hub = TestHub::start();
    let off =
        Apitally::try_new(common::config(&off_hub).request_logging(RequestLoggingConfig::new()))
            .unwrap();
    let handler = || async {
        tracing::info!("{}", "ü".repeat(5_000));
        HttpResponse::Ok().finish()
    };
    let app = test::init_service(
        App::new()
            .wrap(apitally.clone())
            .route("/long", web::get().to(handler)),
    )
    .await;
    let app_off = test::init_service(
        App::new()
            .wrap(off.clone())
            .route("/long", web::get().to(handler)),
    )
    .await;
    test::call_and_read_body(&app, test::TestRequest::get().uri("/long").to_request()).await;
    test::call_and_read_body(&app_off, test::TestRequest::get().uri("/long").to_request()).await;
    apitally.shutdown().await;
    off.shutdown().await;
    let l = lines(&hub);
    let message = l[0]["logs"][0]["message"].as_str().unwrap();
    assert_eq!(message.chars().count(), 2048);
    assert!(message.ends_with("... (truncated)"));
    // Traces off: no spans and no trace id.
    assert!(l[0].get("spans").is_none() && l[0].get("trace_id").is_none());
    let l = lines(&off_hub);
    assert!(l[0].get("logs").is_none());
}

/// Log items are reused once written: a request that captured nothing shows none of the logs,
/// spans or trace id of the request whose item it reuses.
#[actix_web::test]
async fn reused_items_carry_no_logs_or_spans_over() {
    init();
    let hub = TestHub::start();
    let apitally = capturing(&hub);
    let flush =
        || apitally_core::test_util::flush(apitally.pipeline().client().request_logger().unwrap());
    let app = test::init_service(
        App::new()
            .wrap(apitally.clone())
            .route(
                "/noisy",
                web::get().to(|| async {
                    let span = tracing::info_span!("noisy.work");
                    let _g = span.enter();
                    tracing::warn!("noisy marker");
                    HttpResponse::Ok().finish()
                }),
            )
            .route("/quiet", web::get().to(|| async { "quiet" })),
    )
    .await;
    for _ in 0..3 {
        test::call_and_read_body(&app, test::TestRequest::get().uri("/noisy").to_request()).await;
        flush();
        for _ in 0..2 {
            let req = test::TestRequest::get().uri("/quiet").to_request();
            test::call_and_read_body(&app, req).await;
        }
        flush();
    }
    apitally.shutdown().await;
    let lines = lines(&hub);
    assert_eq!(lines.len(), 9);
    let mut trace_ids = std::collections::HashSet::new();
    for l in &lines {
        assert!(trace_ids.insert(l["trace_id"].as_str().unwrap().to_owned()));
        let spans: Vec<&str> = l["spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        if l["request"]["url"].as_str().unwrap().ends_with("/noisy") {
            assert_eq!(messages(l), ["noisy marker"]);
            assert_eq!(spans.len(), 2, "{spans:?}");
        } else {
            assert!(l.get("logs").is_none(), "{l}");
            assert_eq!(spans, ["GET /quiet"], "{l}");
        }
    }
}

/// A request that matched no route is logged with a root span named by its method alone: a
/// raw path would give a scanner unbounded span names.
#[actix_web::test]
async fn unmatched_requests_root_span_is_named_by_the_method() {
    init();
    let hub = TestHub::start();
    let apitally = capturing(&hub);
    let app = test::init_service(
        App::new()
            .wrap(apitally.clone())
            .route("/items/{id}", web::get().to(|| async { "item" })),
    )
    .await;
    for uri in ["/items/1", "/wp-admin/setup-config.php", "/.env"] {
        test::call_and_read_body(&app, test::TestRequest::get().uri(uri).to_request()).await;
    }
    let req = test::TestRequest::delete().uri("/items/2").to_request();
    test::call_and_read_body(&app, req).await;
    apitally.shutdown().await;
    let mut roots: Vec<String> = lines(&hub)
        .iter()
        .map(|l| {
            let root = l["spans"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["parent_span_id"].is_null())
                .unwrap();
            root["name"].as_str().unwrap().to_owned()
        })
        .collect();
    roots.sort();
    assert_eq!(roots, ["DELETE", "GET", "GET", "GET /items/{id}"]);
}

/// Captured records default to INFO and above; the level can be lowered, records can be masked
/// or dropped by `mask_log_record`, and per-target filters compose with `with_filter`.
#[actix_web::test]
async fn levels_filters_and_masked_log_records() {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    init();
    let app_with = |apitally: Apitally| {
        App::new().wrap(apitally).route(
            "/work",
            web::get().to(|| async {
                tracing::debug!(target: "hyper::proto", "dependency chatter");
                tracing::info!(target: "sqlx::query", "SELECT 1");
                tracing::info!("charged card=4111111111111111");
                tracing::warn!("drop me: internal detail");
                tracing::error!("kept as it is");
                HttpResponse::Ok().finish()
            }),
        )
    };
    let capturing_masked = |hub: &TestHub| {
        Apitally::try_new(
            common::config(hub).request_logging(
                RequestLoggingConfig::new()
                    .capture_logs(true)
                    .mask_log_record(|record| {
                        if record.message.contains("card=") {
                            record.message = "charged card=<redacted>".into();
                        }
                        if record.message.starts_with("drop me") {
                            return false;
                        }
                        if record.message == "kept as it is" && record.logger == "nobody" {
                            panic!("never reached");
                        }
                        true
                    }),
            ),
        )
        .unwrap()
    };
    let run = |subscriber: Option<tracing::Dispatch>| async move {
        let hub = TestHub::start();
        let apitally = capturing_masked(&hub);
        let _guard = subscriber.as_ref().map(tracing::dispatcher::set_default);
        let app = test::init_service(app_with(apitally.clone())).await;
        test::call_and_read_body(&app, test::TestRequest::get().uri("/work").to_request()).await;
        apitally.shutdown().await;
        let lines = lines(&hub);
        assert_eq!(lines.len(), 1);
        let all = serde_json::to_string(&lines).unwrap();
        assert!(!all.contains("4111111111111111"), "{all}");
        assert!(!all.contains("internal detail"), "{all}");
        messages(&lines[0])
    };
    // The default layer (installed globally by `init`): INFO and above.
    assert_eq!(
        run(None).await,
        ["SELECT 1", "charged card=<redacted>", "kept as it is"]
    );
    // Lowered to DEBUG: the dependency's DEBUG event is captured.
    let debug = tracing_subscriber::registry()
        .with(apitally_actix::tracing_layer().max_level(LevelFilter::DEBUG));
    assert_eq!(
        run(Some(debug.into())).await,
        [
            "dependency chatter",
            "SELECT 1",
            "charged card=<redacted>",
            "kept as it is"
        ]
    );
    // A per-target filter on the layer: `sqlx` only from WARN, the root span let through.
    let filtered = tracing_subscriber::registry().with(
        apitally_actix::tracing_layer()
            .max_level(LevelFilter::DEBUG)
            .with_filter(
                Targets::new()
                    .with_default(LevelFilter::DEBUG)
                    .with_target("apitally", LevelFilter::INFO)
                    .with_target("sqlx", LevelFilter::WARN),
            ),
    );
    assert_eq!(
        run(Some(filtered.into())).await,
        [
            "dependency chatter",
            "charged card=<redacted>",
            "kept as it is"
        ]
    );
}

/// A panic in `mask_log_record` drops that record, never the request or its other records.
#[actix_web::test]
async fn a_panicking_log_record_mask_drops_only_the_record() {
    init();
    let hub = TestHub::start();
    let apitally = Apitally::try_new(
        common::config(&hub).request_logging(
            RequestLoggingConfig::new()
                .capture_logs(true)
                .mask_log_record(|record| {
                    assert!(!record.message.contains("boom"), "the mask panics");
                    true
                }),
        ),
    )
    .unwrap();
    let app = test::init_service(App::new().wrap(apitally.clone()).route(
        "/mixed",
        web::get().to(|| async {
            tracing::info!("fine");
            tracing::info!("boom");
            tracing::info!("also fine");
            HttpResponse::Ok().finish()
        }),
    ))
    .await;
    // (The response is dropped at once: its record is finished when its body goes.)
    let status = test::call_service(&app, test::TestRequest::get().uri("/mixed").to_request())
        .await
        .status();
    assert_eq!(status, 200);
    apitally.shutdown().await;
    let lines = lines(&hub);
    assert_eq!(messages(&lines[0]), ["fine", "also fine"]);
    assert_eq!(common::count(&hub, "GET", "/mixed", Some(200), None), 1);
}

/// The auth layer of the ordering test: `k-1` is a customer in good standing, `k-2` one whose
/// plan expired (named, then rejected), anything else is rejected anonymously.
async fn auth(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    use apitally_actix::{Consumer, ConsumerExt};
    match req.headers().get("x-api-key").and_then(|v| v.to_str().ok()) {
        Some("k-1") => {
            req.set_consumer(Consumer::new("customer-1").name("Customer 1"));
            next.call(req).await
        }
        Some("k-2") => {
            req.set_consumer("customer-2");
            Err(actix_web::error::ErrorForbidden("plan expired"))
        }
        _ => Err(actix_web::error::ErrorUnauthorized("no API key")),
    }
}

/// The order the middleware docs recommend, with every layer they name: TracingLogger outermost,
/// then Logger, Sentry, Compress, Apitally, and the auth layer innermost.
#[actix_web::test]
async fn the_recommended_middleware_order() {
    use actix_web::middleware::{from_fn, Compress, Logger};
    use serde_json::json;
    init();
    let hub = TestHub::start();
    let apitally = capturing(&hub);
    let app = test::init_service(
        App::new()
            .wrap(from_fn(auth))
            .wrap(apitally.clone())
            .wrap(Compress::default())
            .wrap(sentry_actix::Sentry::new())
            .wrap(Logger::default())
            .wrap(tracing_actix_web::TracingLogger::default())
            .route(
                "/orders",
                web::get().to(|| async {
                    tracing::info!("listing orders");
                    HttpResponse::Ok().body("o".repeat(5_000))
                }),
            ),
    )
    .await;
    let get = |key: Option<&str>| {
        let req = test::TestRequest::get()
            .uri("/orders")
            .insert_header(("accept-encoding", "gzip"));
        match key {
            Some(key) => req.insert_header(("x-api-key", key)),
            None => req,
        }
        .to_request()
    };
    let res = test::call_service(&app, get(Some("k-1"))).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers().get("content-encoding").unwrap(), "gzip");
    assert!(test::read_body(res).await.len() < 5_000);
    // The auth layer's `Err`s pass through every layer; the server renders them.
    for (key, status) in [(Some("k-2"), 403), (None, 401)] {
        let err = test::try_call_service(&app, get(key)).await.err().unwrap();
        assert_eq!(err.as_response_error().status_code(), status);
    }
    apitally.shutdown().await;

    // Apitally, inside Compress, counts the uncompressed body; outside auth, it sees its
    // rejections with the consumer the auth layer set before rejecting.
    let ok = common::requests(&hub)
        .into_iter()
        .find(|r| r["path"] == "/orders" && r["status_code"] == 200)
        .unwrap();
    assert_eq!(ok["consumer"], "customer-1");
    assert_eq!(ok["response_size_sum"], 5_000);
    assert_eq!(
        common::count(&hub, "GET", "/orders", Some(403), Some(json!("customer-2"))),
        1
    );
    assert_eq!(
        common::count(&hub, "GET", "/orders", Some(401), Some(Value::Null)),
        1
    );
    // Inside TracingLogger's span, the handler's log is still captured with its request.
    let lines = lines(&hub);
    let ok = lines
        .iter()
        .find(|l| l["response"]["status_code"] == 200)
        .unwrap();
    assert_eq!(messages(ok), ["listing orders"]);
    assert_eq!(lines.len(), 3);
}
