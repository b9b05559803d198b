//! The client against a real HTTP hub on 127.0.0.1: payload shapes, hub answers, retries,
//! queue bounds, startup lifecycle, shutdown and concurrency.

use crate::common;

use std::{collections::HashSet, sync::Arc, time::Duration};

use apitally_core::adapter::{ApitallyClient, RequestRecord, ServerError, StartupData};
use apitally_core::{Consumer, PathItem, ValidationError};
use apitally_test_hub::{Reply, TestHub};
use common::{config, start, WAIT};
use serde_json::{json, Value};

fn get(route: &str, status: u16, ms: u64) -> RequestRecord<'_> {
    RequestRecord::new("GET", route, status, Duration::from_millis(ms))
}

fn is_uuid(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 36 && uuid::Uuid::try_parse(s).is_ok() && s == s.to_lowercase())
}

#[test]
fn startup_payload_shape() {
    let hub = TestHub::start();
    let cfg = config(&hub.url()).app_version(" 2.0.1 ");
    let startup = StartupData::new("rust:actix")
        .paths([
            PathItem::new("get", "/items"),
            PathItem::new("POST", "/items")
                .summary("Create")
                .description(""),
            PathItem::new("GET", "/items"),
            PathItem::new("HEAD", "/items"),
            PathItem::new("OPTIONS", "/items"),
        ])
        .version("actix-web", "4.18.1")
        .version("apitally", "0.1.0")
        .openapi(r#"{"openapi":"3.1.0"}"#);
    let client = ApitallyClient::try_new(cfg.clone(), startup).unwrap();
    assert!(hub.wait_until(WAIT, |r| r.iter().any(|r| r.endpoint == "startup")));
    let startup = &hub.received_at("startup")[0];
    assert_eq!(startup.client_id, cfg.get_client_id());
    assert_eq!(startup.env, "test");
    assert_eq!(startup.header("content-type"), Some("application/json"));
    assert!(startup.header("content-encoding").is_none());
    let body = startup.json.clone().unwrap();
    let keys: HashSet<_> = body.as_object().unwrap().keys().cloned().collect();
    let expected: HashSet<_> = [
        "instance_uuid",
        "message_uuid",
        "paths",
        "versions",
        "client",
        "openapi",
    ]
    .map(String::from)
    .into();
    assert_eq!(keys, expected);
    assert!(is_uuid(&body["instance_uuid"]));
    assert!(is_uuid(&body["message_uuid"]));
    assert_eq!(
        body["instance_uuid"],
        client.instance_uuid().unwrap().to_string()
    );
    assert_eq!(
        body["paths"],
        json!([
            {"method": "GET", "path": "/items"},
            {"method": "POST", "path": "/items", "summary": "Create"},
        ])
    );
    assert_eq!(body["client"], "rust:actix");
    assert_eq!(body["openapi"], r#"{"openapi":"3.1.0"}"#);
    let versions = body["versions"].as_object().unwrap();
    assert_eq!(versions["actix-web"], "4.18.1");
    assert_eq!(versions["apitally"], "0.1.0");
    assert_eq!(versions["app"], "2.0.1");
    let rust = versions["rust"].as_str().unwrap();
    assert!(
        rust.split('.').count() == 3 && rust.starts_with("1."),
        "{rust}"
    );
    // Accepted once: never sent again, by the next cycles nor by the final sync (which sends
    // startup data still pending).
    let syncs = hub.received_at("sync").len();
    assert!(
        hub.wait_until(WAIT, |r| r.iter().filter(|r| r.endpoint == "sync").count()
            >= syncs + 2)
    );
    client.shutdown_blocking();
    assert_eq!(hub.received_at("startup").len(), 1);
}

#[test]
fn sync_payload_shape() {
    let hub = TestHub::start();
    let client = start(&hub);
    // Let the first (empty) sync go, so the next one carries resources.
    assert!(hub.wait_until(WAIT, |r| r.iter().any(|r| r.endpoint == "sync")));
    let first = hub.received_at("sync")[0].json.clone().unwrap();
    assert_eq!(first["resources"], Value::Null);
    assert_eq!(first["requests"], json!([]));
    assert_eq!(first["validation_errors"], json!([]));
    assert_eq!(first["server_errors"], json!([]));
    assert_eq!(first["consumers"], json!([]));

    let consumer = Consumer::new("customer-42")
        .name("Customer 42")
        .group("Enterprise");
    client.record_request(
        &get("/items/{item_id}", 200, 9)
            .consumer(Some(&consumer))
            .response_size(Some(999)),
    );
    client.record_request(
        &get("/items/{item_id}", 200, 10)
            .consumer(Some(&consumer))
            .response_size(Some(1000))
            .request_size(Some(0)),
    );
    client.record_request(&get("/items/{item_id}", 200, 123).consumer(Some(&consumer)));
    client.record_request(
        &RequestRecord::new("POST", "/items", 422, Duration::from_micros(7_500))
            .request_size(Some(25))
            .response_size(Some(180)),
    );
    client.record_validation_error(
        "POST",
        "/items",
        None,
        &ValidationError::new(["body", "name"], "field required", "missing"),
    );
    client.record_server_error(
        "GET",
        "/items/{item_id}",
        Some(&consumer),
        &ServerError::new(
            "sqlx_core::error::Error",
            "  pool timed out  ",
            "   0: a\n   1: b",
        ),
    );

    let has_requests = |r: &[apitally_test_hub::Received]| {
        r.iter().any(|r| {
            r.endpoint == "sync" && r.json.as_ref().is_some_and(|j| j["requests"] != json!([]))
        })
    };
    assert!(hub.wait_until(WAIT, has_requests));
    let sync = hub
        .received_at("sync")
        .into_iter()
        .filter_map(|r| r.json)
        .find(|j| j["requests"] != json!([]))
        .unwrap();
    let keys: HashSet<_> = sync.as_object().unwrap().keys().cloned().collect();
    let expected: HashSet<_> = [
        "timestamp",
        "instance_uuid",
        "message_uuid",
        "requests",
        "validation_errors",
        "server_errors",
        "consumers",
        "resources",
    ]
    .map(String::from)
    .into();
    assert_eq!(keys, expected);
    let ts = sync["timestamp"].as_f64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - ts).abs() < 60.0, "{ts} vs {now}");
    assert_eq!(ts, (ts * 1000.0).round() / 1000.0, "ms precision");
    assert_eq!(sync["instance_uuid"], first["instance_uuid"]);
    assert_ne!(sync["message_uuid"], first["message_uuid"]);
    assert_eq!(
        sync["requests"],
        json!([
            {
                "consumer": null, "method": "POST", "path": "/items", "status_code": 422,
                "request_count": 1, "request_size_sum": 25, "response_size_sum": 180,
                "response_times": {"0": 1}, "request_sizes": {"0": 1}, "response_sizes": {"0": 1}
            },
            {
                "consumer": "customer-42", "method": "GET", "path": "/items/{item_id}",
                "status_code": 200, "request_count": 3, "request_size_sum": 0,
                "response_size_sum": 1999,
                "response_times": {"0": 1, "10": 1, "120": 1},
                "request_sizes": {"0": 1}, "response_sizes": {"0": 1, "1": 1}
            }
        ])
    );
    assert_eq!(
        sync["validation_errors"],
        json!([{
            "consumer": null, "method": "POST", "path": "/items", "loc": ["body", "name"],
            "msg": "field required", "type": "missing", "error_count": 1
        }])
    );
    assert_eq!(
        sync["server_errors"],
        json!([{
            "consumer": "customer-42", "method": "GET", "path": "/items/{item_id}",
            "type": "sqlx_core::error::Error", "msg": "pool timed out",
            "traceback": "   0: a\n   1: b", "sentry_event_id": null, "error_count": 1
        }])
    );
    assert_eq!(
        sync["consumers"],
        json!([{"identifier": "customer-42", "name": "Customer 42", "group": "Enterprise"}])
    );
    let resources = sync["resources"].as_object().unwrap();
    assert!(resources["cpu_percent"].is_f64());
    assert!(resources["memory_rss"].as_u64().unwrap() > 0);

    // The consumer is sent once, not with every sync.
    client.record_request(&get("/items/{item_id}", 200, 1).consumer(Some(&consumer)));
    assert!(hub.wait_until(WAIT, |_| hub.request_count(None) == 5));
    let later: Vec<_> = hub
        .accepted_syncs()
        .into_iter()
        .filter(|s| s["consumers"] != json!([]))
        .collect();
    assert_eq!(later.len(), 1);
    client.shutdown_blocking();
}

#[test]
fn hub_404_disables_the_client() {
    let hub = TestHub::start();
    hub.set_default("startup", Reply::Status(404));
    hub.set_default("sync", Reply::Status(404));
    let client = start(&hub);
    assert!(hub.wait_until(WAIT, |r| r.iter().any(|r| r.status == 404)));
    let deadline = std::time::Instant::now() + WAIT;
    while client.is_enabled() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!client.is_enabled());
    // Recording is a no-op and nothing more reaches the hub, not even a final sync: the sync
    // thread is gone (the unit tests check on paused time that no cycle follows a 404).
    client.record_request(&get("/a", 200, 1));
    client.shutdown_blocking();
    assert_eq!(hub.received().len(), 1, "one 404, no retries");
}

#[test]
fn hub_422_drops_the_payload() {
    let hub = TestHub::start();
    let client = start(&hub);
    assert!(hub.wait_until(WAIT, |r| r.iter().any(|r| r.endpoint == "sync")));
    hub.script("sync", [Reply::Body(422, r#"{"detail":"bad"}"#.into())]);
    client.record_request(&get("/dropped", 200, 1));
    assert!(hub.wait_until(WAIT, |r| r.iter().any(|r| r.status == 422)));
    client.record_request(&get("/kept", 200, 1));
    assert!(hub.wait_until(WAIT, |_| hub.request_count(Some("/kept")) == 1));
    // The final sync would send it if it were still queued.
    client.shutdown_blocking();
    // The rejected payload was sent once and never again.
    let rejected = hub
        .received_at("sync")
        .into_iter()
        .filter(|r| r.json.as_ref().unwrap().to_string().contains("/dropped"))
        .count();
    assert_eq!(rejected, 1);
    assert_eq!(hub.request_count(Some("/dropped")), 0);
}

#[test]
fn hub_413_drops_startup_sync_and_log_payloads_with_one_warning_each() {
    let logs = apitally_test_hub::capture_logs();
    let hub = TestHub::start();
    for endpoint in ["startup", "sync", "log"] {
        hub.script(endpoint, [Reply::Status(413)]);
    }
    let dir = common::log_dir();
    let client = ApitallyClient::try_new(
        common::logging_config(&hub.url(), &dir),
        StartupData::new("rust:test"),
    )
    .unwrap();
    common::log_request(&client, 1);
    assert!(hub.wait_until(WAIT, |r| r
        .iter()
        .any(|r| r.endpoint == "log" && r.status == 413)));
    common::log_request(&client, 2);
    assert!(hub.wait_until(WAIT, |_| common::logged(&hub) == [2]));
    client.record_request(&get("/after", 200, 1));
    assert!(hub.wait_until(WAIT, |_| hub.request_count(Some("/after")) == 1));
    // A few more cycles: nothing refused comes back.
    let syncs = hub.received_at("sync").len();
    assert!(
        hub.wait_until(WAIT, |r| r.iter().filter(|r| r.endpoint == "sync").count()
            >= syncs + 3)
    );
    client.shutdown_blocking();
    // Startup: refused once, marked sent, never re-sent.
    assert_eq!(hub.received_at("startup").len(), 1);
    // The refused sync payload was sent once.
    let refused = hub
        .received_at("sync")
        .into_iter()
        .find(|r| r.status == 413)
        .unwrap();
    let uuid = &refused.json.as_ref().unwrap()["message_uuid"];
    let sent = hub
        .received_at("sync")
        .iter()
        .filter(|r| &r.json.as_ref().unwrap()["message_uuid"] == uuid)
        .count();
    assert_eq!(sent, 1);
    // The refused log file was sent once, and deleted.
    let refused = hub
        .received_at("log")
        .into_iter()
        .find(|r| r.status == 413)
        .unwrap();
    assert_eq!(
        hub.arrivals("log")
            .iter()
            .filter(|q| **q == refused.query)
            .count(),
        1
    );
    assert_eq!(common::logged(&hub), [2]);
    assert!(common::files_in(&dir).is_empty());
    // One warning each, naming the status and the size.
    let warnings = logs.matching(log::Level::Warn, "HTTP 413");
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
    for (what, received) in [
        ("the startup data", &hub.received_at("startup")[0]),
        ("a sync payload", &hub.received_at("sync")[0]),
        ("a request log file with 1 request(s)", &refused),
    ] {
        let expected = format!(
            "apitally: the hub refused {what} ({} bytes) as too large (HTTP 413 Payload Too \
             Large); it is dropped",
            received.body.len()
        );
        assert!(warnings.contains(&expected), "{expected} in {warnings:#?}");
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn server_errors_are_retried_then_queued_with_the_same_message_uuid() {
    let hub = TestHub::start();
    let client = start(&hub);
    assert!(hub.wait_until(WAIT, |r| r.iter().any(|r| r.endpoint == "sync")));
    // Three attempts of one cycle fail, then the next two cycles' first attempts, too.
    hub.script("sync", [500, 502, 503, 503, 504].map(Reply::Status));
    for _ in 0..7 {
        client.record_request(&get("/retry", 201, 1));
    }
    assert!(hub.wait_until(WAIT, |_| hub.request_count(Some("/retry")) == 7));
    let attempts: Vec<_> = hub
        .received_at("sync")
        .into_iter()
        .filter(|r| r.json.as_ref().unwrap().to_string().contains("/retry"))
        .collect();
    assert!(attempts.len() >= 4, "{}", attempts.len());
    // Byte for byte the same payload every time.
    assert!(attempts.iter().all(|a| a.body == attempts[0].body));
    assert!(attempts.last().unwrap().accepted());
    assert!(attempts[..attempts.len() - 1].iter().all(|a| !a.accepted()));
    client.shutdown_blocking();
}

#[test]
fn hub_down_then_back_delivers_everything() {
    // Reserve a port, then free it: nothing listens there while the hub is "down".
    let port = TestHub::start().port();
    let client = ApitallyClient::try_new(
        config(&format!("http://127.0.0.1:{port}")),
        StartupData::new("rust:test"),
    )
    .unwrap();
    let mut served = 0;
    for round in 0..5 {
        for _ in 0..(round + 1) * 10 {
            client.record_request(&get("/down", 200, 1));
            served += 1;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let hub = TestHub::start_on(port);
    assert!(hub.wait_until(WAIT, |_| hub.request_count(Some("/down")) == served));
    // Startup was re-sent until it got through.
    assert!(hub.wait_until(WAIT, |r| r.iter().any(|r| r.endpoint == "startup")));
    client.shutdown_blocking();
    assert_eq!(hub.request_count(Some("/down")), served);
}

#[test]
fn startup_is_resent_until_accepted_with_the_same_message_uuid() {
    let hub = TestHub::start();
    hub.script(
        "startup",
        [500, 500, 500, 503, 503, 503, 400].map(Reply::Status),
    );
    let client = start(&hub);
    assert!(hub.wait_until(WAIT, |r| r
        .iter()
        .any(|r| r.endpoint == "startup" && r.accepted())));
    let startups = hub.received_at("startup");
    assert_eq!(startups.len(), 8);
    let uuids: HashSet<_> = startups
        .iter()
        .map(|r| r.json.as_ref().unwrap()["message_uuid"].clone())
        .collect();
    assert_eq!(uuids.len(), 1);
    // Accepted, it is not sent again (the final sync would send it if it were pending).
    client.shutdown_blocking();
    assert_eq!(hub.received_at("startup").len(), 8);
}

/// Waits until the hub has seen `n` more sync attempts than now: with one attempt per cycle,
/// the second of them is from a cycle that started after this call, so its window holds what
/// was recorded before.
fn wait_for_sync_attempts(hub: &TestHub, n: usize) {
    let seen = hub.received_at("sync").len();
    assert!(
        hub.wait_until(WAIT, |r| r.iter().filter(|r| r.endpoint == "sync").count()
            >= seen + n)
    );
}

#[test]
fn queue_is_bounded_by_count() {
    let hub = TestHub::start();
    // Refused with a status that keeps the payload and is not retried: one attempt per cycle.
    hub.set_default("sync", Reply::Status(400));
    let client = ApitallyClient::try_new(
        config(&hub.url()).test_max_queue_len(2),
        StartupData::default(),
    )
    .unwrap();
    // Six payloads with one request each.
    for _ in 0..6 {
        client.record_request(&get("/q", 200, 1));
        wait_for_sync_attempts(&hub, 2);
    }
    hub.set_default("sync", Reply::Status(202));
    client.shutdown_blocking();
    // At most the two payloads the queue holds were delivered; the others were dropped.
    let delivered = hub.request_count(Some("/q"));
    assert!(delivered <= 2, "{delivered}");
}

#[test]
fn queue_is_bounded_by_age() {
    let hub = TestHub::start();
    // Refused with a status that keeps the payload and is not retried: one attempt per cycle.
    hub.set_default("sync", Reply::Status(400));
    let max_age = Duration::from_millis(700);
    let client = ApitallyClient::try_new(
        config(&hub.url()).test_max_queue_age(max_age),
        StartupData::default(),
    )
    .unwrap();
    client.record_request(&get("/old", 200, 1));
    // Its payload exists now, so it is older than `max_age` once that much time has passed
    // (a lower bound on its age whatever the load: no wait for the client here).
    wait_for_sync_attempts(&hub, 2);
    std::thread::sleep(max_age + Duration::from_millis(100));
    client.record_request(&get("/new", 200, 1));
    hub.set_default("sync", Reply::Status(202));
    assert!(hub.wait_until(WAIT, |_| hub.request_count(Some("/new")) == 1));
    client.shutdown_blocking();
    assert_eq!(hub.request_count(Some("/old")), 0);
}

#[test]
fn shutdown_delivers_the_last_window() {
    let hub = TestHub::start();
    let client = ApitallyClient::try_new(
        config(&hub.url()).test_sync_interval(Duration::from_secs(3600)),
        StartupData::default(),
    )
    .unwrap();
    assert!(hub.wait_until(WAIT, |r| r.iter().any(|r| r.endpoint == "sync")));
    for _ in 0..42 {
        client.record_request(&get("/last", 200, 1));
    }
    let runtime = actix_rt::System::new();
    runtime.block_on(client.shutdown());
    assert_eq!(hub.request_count(Some("/last")), 42);
    assert!(!client.is_enabled());
    // A second shutdown returns at once; recording after shutdown is a no-op.
    client.shutdown_blocking();
    client.record_request(&get("/last", 200, 1));
}

#[test]
fn shutdown_with_the_hub_down_returns_within_its_budget() {
    let port = TestHub::start().port();
    let client = ApitallyClient::try_new(
        config(&format!("http://127.0.0.1:{port}")).shutdown_timeout(Duration::from_millis(300)),
        StartupData::default(),
    )
    .unwrap();
    client.record_request(&get("/x", 200, 1));
    // Returns (the budget bounds the flush); not a timing assertion, only that it ends.
    client.shutdown_blocking();
    assert!(!client.is_enabled());
}

#[test]
fn dropping_every_handle_flushes_and_ends_the_thread() {
    let hub = TestHub::start();
    let client = ApitallyClient::try_new(
        config(&hub.url()).test_sync_interval(Duration::from_secs(3600)),
        StartupData::default(),
    )
    .unwrap();
    client.record_request(&get("/dropped-handle", 200, 1));
    let clone = client.clone();
    drop(client);
    drop(clone);
    assert!(hub.wait_until(WAIT, |_| hub.request_count(Some("/dropped-handle")) == 1));
}

#[test]
fn one_client_per_client_id_and_env() {
    let hub = TestHub::start();
    let cfg = config(&hub.url());
    let a = ApitallyClient::try_new(cfg.clone(), StartupData::new("rust:test")).unwrap();
    let b = ApitallyClient::new(cfg.clone(), StartupData::new("rust:test"));
    assert_eq!(a.instance_uuid(), b.instance_uuid());
    a.record_request(&get("/one", 200, 1));
    b.record_request(&get("/one", 200, 1));
    assert!(hub.wait_until(WAIT, |_| hub.request_count(Some("/one")) == 2));
    a.shutdown_blocking();
    assert_eq!(hub.received_at("startup").len(), 1);
    let instances: HashSet<_> = hub
        .received_at("sync")
        .iter()
        .map(|r| r.json.as_ref().unwrap()["instance_uuid"].clone())
        .collect();
    assert_eq!(instances.len(), 1);
}

#[test]
fn concurrent_recording_gives_exact_totals() {
    let hub = TestHub::start();
    let client = start(&hub);
    let consumers: Arc<Vec<Consumer>> =
        Arc::new((0..50).map(|i| Consumer::new(format!("c{i}"))).collect());
    const THREADS: usize = 4;
    const PER_THREAD: usize = 100_000;
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let client = client.clone();
            let consumers = Arc::clone(&consumers);
            std::thread::spawn(move || {
                let routes = ["/a", "/b/{id}", "/c"];
                for i in 0..PER_THREAD {
                    let consumer = (i % 3 != 0).then(|| &consumers[(i + t) % consumers.len()]);
                    client.record_request(
                        &get(
                            routes[i % routes.len()],
                            200 + (i % 2) as u16,
                            (i % 50) as u64,
                        )
                        .consumer(consumer)
                        .response_size(Some((i % 3000) as u64)),
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    client.shutdown_blocking();
    let total = (THREADS * PER_THREAD) as u64;
    assert_eq!(hub.request_count(None), total);
    let syncs = hub.accepted_syncs();
    let items: Vec<Value> = syncs
        .iter()
        .flat_map(|s| s["requests"].as_array().unwrap().clone())
        .collect();
    // Histograms and size sums add up exactly too.
    let hist_total: u64 = items
        .iter()
        .flat_map(|i| i["response_times"].as_object().unwrap().values())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(hist_total, total);
    let expected_size_sum: u64 =
        (0..PER_THREAD as u64).map(|i| i % 3000).sum::<u64>() * THREADS as u64;
    let size_sum: u64 = items
        .iter()
        .map(|i| i["response_size_sum"].as_u64().unwrap())
        .sum();
    assert_eq!(size_sum, expected_size_sum);
    let b_count: u64 = items
        .iter()
        .filter(|i| i["path"] == "/b/{id}")
        .map(|i| i["request_count"].as_u64().unwrap())
        .sum();
    assert_eq!(
        b_count,
        (0..PER_THREAD).filter(|i| i % 3 == 1).count() as u64 * THREADS as u64
    );
}

#[test]
fn invalid_config_gives_a_disabled_client() {
    let client = ApitallyClient::new(
        apitally_core::adapter::ClientConfig::new("not-a-uuid", "prod"),
        StartupData::default(),
    );
    assert!(!client.is_enabled());
    assert_eq!(client.instance_uuid(), None);
    client.record_request(&get("/a", 200, 1));
    client.shutdown_blocking();
}

/// A hub on 127.0.0.1 that answers every request `202` on a keep-alive connection, except that
/// once armed it reads the next request whole and closes its connection without an answer:
/// what a server (or a load balancer) closing an idle keep-alive connection does to a request
/// that was already on its way.
struct ClosingHub {
    port: u16,
    bodies: Arc<std::sync::Mutex<Vec<(String, Value)>>>,
    armed: Arc<std::sync::atomic::AtomicBool>,
    closed: Arc<std::sync::atomic::AtomicUsize>,
}

impl ClosingHub {
    fn start() -> Self {
        use std::{
            io::{BufRead, BufReader, Read, Write},
            sync::atomic::Ordering,
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let hub = Self {
            port: listener.local_addr().unwrap().port(),
            bodies: Arc::default(),
            armed: Arc::default(),
            closed: Arc::default(),
        };
        let (bodies, armed, closed) = (
            Arc::clone(&hub.bodies),
            Arc::clone(&hub.armed),
            Arc::clone(&hub.closed),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let (bodies, armed, closed) =
                    (Arc::clone(&bodies), Arc::clone(&armed), Arc::clone(&closed));
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    loop {
                        let mut request_line = String::new();
                        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                            return;
                        }
                        let path = request_line.split(' ').nth(1).unwrap_or("").to_owned();
                        let mut length = 0;
                        loop {
                            let mut line = String::new();
                            reader.read_line(&mut line).unwrap();
                            if line == "\r\n" {
                                break;
                            }
                            if let Some((name, value)) = line.split_once(':') {
                                if name.eq_ignore_ascii_case("content-length") {
                                    length = value.trim().parse().unwrap();
                                }
                            }
                        }
                        let mut body = vec![0; length];
                        reader.read_exact(&mut body).unwrap();
                        if armed.swap(false, Ordering::SeqCst) {
                            closed.fetch_add(1, Ordering::SeqCst);
                            return; // closes the connection, unanswered
                        }
                        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        bodies.lock().unwrap().push((path, json));
                        stream
                            .write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
                            .unwrap();
                    }
                });
            }
        });
        hub
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn syncs(&self) -> Vec<Value> {
        let bodies = self.bodies.lock().unwrap();
        bodies
            .iter()
            .filter(|(path, _)| path.ends_with("/sync"))
            .map(|(_, json)| json.clone())
            .collect()
    }
}

#[test]
fn a_connection_closed_under_a_request_is_sent_again_on_a_new_one() {
    use std::sync::atomic::Ordering;
    let hub = ClosingHub::start();
    let client = ApitallyClient::try_new(
        config(&hub.url()).test_sync_interval(Duration::from_secs(3600)),
        StartupData::default(),
    )
    .unwrap();
    // The startup data and the first sync, answered on a connection the client keeps.
    let deadline = std::time::Instant::now() + WAIT;
    while hub.syncs().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(hub.syncs().len(), 1);
    for _ in 0..42 {
        client.record_request(&get("/last", 200, 1));
    }
    // The final sync (one attempt per payload) meets a connection closed under it.
    hub.armed.store(true, Ordering::SeqCst);
    client.shutdown_blocking();
    assert_eq!(hub.closed.load(Ordering::SeqCst), 1);
    let counted: u64 = hub
        .syncs()
        .iter()
        .flat_map(|sync| sync["requests"].as_array().cloned().unwrap_or_default())
        .filter(|r| r["path"] == "/last")
        .map(|r| r["request_count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 42);
}
