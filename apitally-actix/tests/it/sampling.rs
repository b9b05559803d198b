//! Sampling of request logs: the rate, the two callbacks, the trace id the decision is made on,
//! and metrics that count every request whatever is sampled.
#![cfg(feature = "tracing")]

use crate::common;

use std::{
    collections::{BTreeSet, HashSet},
    sync::{Arc, Mutex, Once},
    time::Duration,
};

use actix_web::{test, web, App, HttpResponse};
use apitally_actix::{Apitally, ApitallyConfig, Consumer, ConsumerExt, RequestLoggingConfig};
use common::{log_lines, TestHub};
use serde_json::Value;
use tracing_subscriber::prelude::*;

fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(apitally_actix::tracing_layer()),
        )
        .unwrap();
    });
}

fn logging(hub: &TestHub, f: impl FnOnce(ApitallyConfig) -> ApitallyConfig) -> Apitally {
    Apitally::try_new(f(common::config(hub).request_logging(
        RequestLoggingConfig::new()
            .log_request_headers(true)
            .capture_logs(true)
            .capture_traces(true),
    )))
    .unwrap()
}

fn app(
    apitally: Apitally,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .wrap(apitally)
        .route(
            "/items/{n}",
            web::get().to(|n: web::Path<u32>| async move {
                let span = tracing::info_span!("load.item", n = *n);
                let _g = span.enter();
                tracing::info!("loading item {n}");
                HttpResponse::Ok().body(format!("item {n}"))
            }),
        )
        .route(
            "/fail/{n}",
            web::get().to(|n: web::Path<u32>| async move {
                tracing::error!("failing {n}");
                HttpResponse::InternalServerError().body("failed")
            }),
        )
        .route(
            "/who",
            web::get().to(|req: actix_web::HttpRequest| async move {
                req.set_consumer(Consumer::new("customer-7"));
                HttpResponse::Ok().finish()
            }),
        )
}

fn url_of(line: &Value) -> String {
    line["request"]["url"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn a_zero_rate_with_a_response_callback_keeps_exactly_the_5xx() {
    init();
    let hub = TestHub::start();
    let apitally = logging(&hub, |c| {
        c.sample_rate(0.0)
            .sample_on_response(|res| (res.status() >= 500).then_some(1.0))
    });
    let app = test::init_service(app(apitally.clone())).await;
    let mut failed = BTreeSet::new();
    for n in 0..300u32 {
        let uri = if n % 7 == 0 {
            failed.insert(format!("/fail/{n}"));
            format!("/fail/{n}")
        } else {
            format!("/items/{n}")
        };
        test::call_and_read_body(&app, test::TestRequest::get().uri(&uri).to_request()).await;
    }
    apitally.shutdown().await;
    let logged: BTreeSet<String> = log_lines(&hub)
        .iter()
        .map(|l| apitally_core::adapter::url_path(&url_of(l)).to_owned())
        .collect();
    assert_eq!(logged, failed);
    // Metrics count every request.
    assert_eq!(
        common::count(&hub, "GET", "/items/{n}", Some(200), None),
        300 - 43
    );
    assert_eq!(common::count(&hub, "GET", "/fail/{n}", Some(500), None), 43);
}

/// The test's own implementation of the rule (OpenTelemetry's ratio sampler): the trace id's
/// last 8 bytes, read big-endian, below rate × 2^64.
fn expected_kept(trace_id: &str, rate: f64) -> bool {
    let low = u64::from_str_radix(&trace_id[16..], 16).unwrap();
    (low as f64) < rate * 2f64.powi(64)
}

#[actix_web::test]
async fn a_quarter_is_kept_by_trace_id_with_logs_and_spans_together() {
    init();
    let hub = TestHub::start();
    let apitally = logging(&hub, |c| c.sample_rate(0.25));
    let app = test::init_service(app(apitally.clone())).await;
    // 4,000 requests without a trace context (random trace ids), then 400 with one.
    for n in 0..4_000u32 {
        let req = test::TestRequest::get()
            .uri(&format!("/items/{n}"))
            .to_request();
        test::call_and_read_body(&app, req).await;
    }
    let mut incoming = Vec::new();
    for n in 0..400u32 {
        let trace_id = format!("{:032x}", fastrand::u128(1..));
        let req = test::TestRequest::get()
            .uri(&format!("/items/{}", 10_000 + n))
            .insert_header(("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01")))
            .to_request();
        test::call_and_read_body(&app, req).await;
        incoming.push((10_000 + n, trace_id));
    }
    apitally.shutdown().await;
    let lines = log_lines(&hub);
    let item = |l: &Value| -> u32 {
        apitally_core::adapter::url_path(&url_of(l))
            .trim_start_matches("/items/")
            .parse()
            .unwrap()
    };
    // Random trace ids: the count kept is binomial (n = 4,000, p = 0.25): mean 1,000, standard
    // deviation 27.4. Six deviations (±164) are exceeded once in 500 million runs.
    let random = lines.iter().filter(|l| item(l) < 10_000).count();
    assert!((1_000 - 164..=1_000 + 164).contains(&random), "{random}");
    // Given trace ids: exactly the ones the rule keeps, and the line carries that trace id.
    let kept: HashSet<u32> = lines.iter().map(item).filter(|n| *n >= 10_000).collect();
    for (n, trace_id) in &incoming {
        assert_eq!(
            kept.contains(n),
            expected_kept(trace_id, 0.25),
            "{trace_id}"
        );
    }
    for line in lines.iter().filter(|l| item(l) >= 10_000) {
        let (_, trace_id) = incoming.iter().find(|(n, _)| *n == item(line)).unwrap();
        assert_eq!(line["trace_id"], trace_id.as_str());
    }
    // A kept request has its log records and spans; a dropped one has them nowhere.
    for line in &lines {
        let n = item(line);
        let messages: Vec<&str> = line["logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["message"].as_str().unwrap())
            .collect();
        assert_eq!(messages, [format!("loading item {n}")]);
        assert!(line["spans"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "load.item"));
    }
    let all = serde_json::to_string(&lines).unwrap();
    let kept_all: HashSet<u32> = lines.iter().map(item).collect();
    for n in (0..4_000).filter(|n| !kept_all.contains(n)).take(50) {
        assert!(!all.contains(&format!("\"loading item {n}\"")));
    }
    // Metrics count all 4,400.
    assert_eq!(
        common::count(&hub, "GET", "/items/{n}", Some(200), None),
        4_400
    );
}

#[actix_web::test]
async fn callbacks_see_the_request_and_response_and_a_panic_drops_only_the_log() {
    init();
    let hub = TestHub::start();
    let seen_requests = Arc::new(Mutex::new(Vec::new()));
    let seen_responses = Arc::new(Mutex::new(Vec::new()));
    let apitally = logging(&hub, {
        let seen_requests = Arc::clone(&seen_requests);
        let seen_responses = Arc::clone(&seen_responses);
        move |c| {
            c.sample_on_request(move |req| {
                seen_requests.lock().unwrap().push(format!(
                    "{} {} {:?} {:?}",
                    req.method(),
                    req.path(),
                    req.header("x-tag").map(str::to_owned),
                    req.consumer().map(|c| c.get_identifier().to_owned()),
                ));
                if req.path() == "/items/13" {
                    panic!("unlucky request callback");
                }
                (req.path() == "/items/2").then_some(0.0)
            })
            .sample_on_response(move |res| {
                seen_responses.lock().unwrap().push(format!(
                    "{} {} {:?} {} {:?} {}",
                    res.method(),
                    res.path(),
                    res.route(),
                    res.status(),
                    res.consumer().map(|c| c.get_identifier().to_owned()),
                    res.duration() < Duration::from_secs(60),
                ));
                if res.path() == "/items/14" {
                    panic!("unlucky response callback");
                }
                None
            })
        }
    });
    let app = test::init_service(
        App::new()
            // An outer layer names the consumer before Apitally sees the request.
            .wrap(Apitally::clone(&apitally))
            .wrap_fn(|req, srv| {
                use actix_web::dev::Service as _;
                if req.path() == "/items/1" {
                    req.set_consumer(Consumer::new("outer-1"));
                }
                srv.call(req)
            })
            .route(
                "/items/{n}",
                web::get().to(|n: web::Path<u32>| async move { format!("item {n}") }),
            ),
    )
    .await;
    for n in 1..=3 {
        let req = test::TestRequest::get()
            .uri(&format!("/items/{n}"))
            .insert_header(("x-tag", format!("t{n}")))
            .to_request();
        test::call_and_read_body(&app, req).await;
    }
    for n in [13, 14] {
        let req = test::TestRequest::get()
            .uri(&format!("/items/{n}"))
            .to_request();
        let body = test::call_and_read_body(&app, req).await;
        assert_eq!(body, format!("item {n}").as_bytes());
    }
    apitally.shutdown().await;
    // The outer layer named the consumer before Apitally saw the request.
    assert_eq!(
        seen_requests.lock().unwrap()[..3],
        [
            "GET /items/1 Some(\"t1\") Some(\"outer-1\")",
            "GET /items/2 Some(\"t2\") None",
            "GET /items/3 Some(\"t3\") None",
        ]
    );
    let responses = seen_responses.lock().unwrap().clone();
    assert_eq!(
        responses[..2],
        [
            "GET /items/1 Some(\"/items/{n}\") 200 Some(\"outer-1\") true",
            "GET /items/3 Some(\"/items/{n}\") 200 None true",
        ]
    );
    // Dropped by the request callback (2) and by the panics (13, 14); all counted.
    let logged: BTreeSet<String> = log_lines(&hub)
        .iter()
        .map(|l| apitally_core::adapter::url_path(&url_of(l)).to_owned())
        .collect();
    assert_eq!(
        logged,
        BTreeSet::from(["/items/1".to_owned(), "/items/3".to_owned()])
    );
    assert_eq!(common::count(&hub, "GET", "/items/{n}", Some(200), None), 5);
}

#[actix_web::test]
async fn a_rate_outside_zero_to_one_is_refused_by_try_new() {
    let hub = TestHub::start();
    for rate in [-0.1, 1.5, f64::NAN] {
        let err = Apitally::try_new(common::config(&hub).sample_rate(rate)).unwrap_err();
        assert!(err.to_string().contains("sample_rate"), "{err}");
    }
    assert!(Apitally::try_new(common::config(&hub).sample_rate(0.0)).is_ok());
}

/// Exclusions come before sampling (protocol-v1.md §3.9): an excluded request is counted as
/// excluded, never as sampled out, and the sampling callbacks never see it.
#[actix_web::test]
async fn excluded_requests_are_never_sampled_nor_shown_to_the_callbacks() {
    init();
    let hub = TestHub::start();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let apitally = logging(&hub, |c| {
        let seen = Arc::clone(&seen);
        c.sample_rate(0.0).sample_on_request(move |req| {
            seen.lock().unwrap().push(req.path().to_owned());
            None
        })
    });
    let app = test::init_service(
        app(apitally.clone()).route("/health", web::get().to(|| async { "ok" })),
    )
    .await;
    for req in [
        test::TestRequest::get().uri("/health"),
        test::TestRequest::get()
            .uri("/items/1")
            .insert_header(("user-agent", "kube-probe/1.29")),
        test::TestRequest::get().uri("/items/2"),
    ] {
        test::call_and_read_body(&app, req.to_request()).await;
    }
    apitally.shutdown().await;
    assert_eq!(*seen.lock().unwrap(), ["/items/2"]);
    let totals = hub
        .received_at("sync")
        .into_iter()
        .rfind(|r| r.accepted())
        .and_then(|r| r.header("apitally-request-logs").map(str::to_owned));
    assert_eq!(
        totals.as_deref(),
        Some("logged=0, sampled-out=1, excluded=2, dropped=0")
    );
    // Metrics count every request, excluded or not.
    assert_eq!(common::count(&hub, "GET", "/items/{n}", Some(200), None), 2);
    assert_eq!(common::count(&hub, "GET", "/health", Some(200), None), 1);
}
