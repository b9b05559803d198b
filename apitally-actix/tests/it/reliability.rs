//! Faults, floods and bad input: the app keeps serving, unchanged, and nothing counted is lost.

use crate::common;

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    sync::{
        atomic::{AtomicBool, AtomicU8, Ordering},
        Arc,
    },
    time::Duration,
};

use actix_web::{web, App, HttpRequest, HttpResponse};
use apitally_actix::{Apitally, Consumer, ConsumerExt, RequestLoggingConfig};
use apitally_core::adapter::RequestRecord;
use common::{config, count, TestHub};

/// A hub that misbehaves at the TCP level: `GARBAGE` answers bytes that are not HTTP, `CLOSE`
/// closes the connection without answering, `PARTIAL` closes it in the middle of the response,
/// `SLOW` answers after longer than the client's timeout.
struct FaultyHub {
    stop: Arc<AtomicBool>,
    mode: Arc<AtomicU8>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const GARBAGE: u8 = 0;
const CLOSE: u8 = 1;
const SLOW: u8 = 2;
const PARTIAL: u8 = 3;

impl FaultyHub {
    fn start(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let mode = Arc::new(AtomicU8::new(GARBAGE));
        let (s, m) = (Arc::clone(&stop), Arc::clone(&mode));
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        conn.set_nonblocking(false).unwrap();
                        conn.set_read_timeout(Some(Duration::from_millis(200))).ok();
                        let mut buf = [0; 4096];
                        let _ = conn.read(&mut buf);
                        match m.load(Ordering::Relaxed) {
                            GARBAGE => {
                                let _ = conn.write_all(b"\x00\xffNOT HTTP AT ALL\r\n\r\n{{{");
                            }
                            CLOSE => {}
                            PARTIAL => {
                                // Closes in the middle of the response head.
                                let _ = conn.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Le");
                            }
                            _ => std::thread::sleep(Duration::from_millis(900)),
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            stop,
            mode,
            thread: Some(thread),
        }
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

async fn spawn_server(apitally: Apitally) -> (actix_web::dev::ServerHandle, u16) {
    spawn_server!(2, move || {
        App::new()
            .wrap(apitally.clone())
            .route("/ok/{n}", web::get().to(|| async { "ok" }))
            .route(
                "/echo",
                web::post().to(|body: web::Bytes| async move { HttpResponse::Ok().body(body) }),
            )
            .route(
                "/consumer",
                web::get().to(|req: HttpRequest| async move {
                    let id = req
                        .headers()
                        .get("x-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    req.set_consumer(Consumer::new(id.to_owned()));
                    "ok"
                }),
            )
    })
}

#[actix_web::test]
async fn hub_faults_never_touch_the_app_and_lose_nothing() {
    let port = TestHub::start().port();
    let faulty = FaultyHub::start(port);
    let apitally = Apitally::try_new(
        config(&TestHub::start())
            .hub_base_url(format!("http://127.0.0.1:{port}"))
            .request_logging(RequestLoggingConfig::new().log_request_headers(true))
            .test_client_config(|c| {
                c.test_sync_interval(Duration::from_millis(200))
                    .test_request_timeout(Duration::from_millis(400))
                    .test_retry_backoff(Duration::from_millis(10))
            }),
    )
    .unwrap();
    let (server, app_port) = spawn_server(apitally.clone()).await;
    let client = awc::Client::default();
    let mut served = 0u64;
    for mode in [GARBAGE, CLOSE, PARTIAL, SLOW] {
        faulty.mode.store(mode, Ordering::Relaxed);
        for n in 0..150 {
            let mut res = client
                .get(format!(
                    "http://127.0.0.1:{app_port}/ok/{n}?token=TOPSECRET"
                ))
                .insert_header(("authorization", "Bearer TOPSECRET"))
                .insert_header(("cookie", "session=TOPSECRET"))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            assert_eq!(res.body().await.unwrap(), "ok");
            served += 1;
            if n % 50 == 0 {
                actix_rt::time::sleep(Duration::from_millis(120)).await;
            }
        }
    }
    faulty.stop();
    // The hub comes back on the same port: everything counted meanwhile arrives.
    let hub = TestHub::start_on(port);
    assert!(hub.wait_until(Duration::from_secs(30), |_| count(
        &hub,
        "GET",
        "/ok/{n}",
        Some(200),
        None
    ) == served));
    server.stop(true).await;
    apitally.shutdown().await;
    assert_eq!(count(&hub, "GET", "/ok/{n}", Some(200), None), served);
    assert!(apitally.pipeline().client().instance_uuid().is_some());
    // The request logs kept through the faults arrive too, with every secret masked.
    let lines = common::log_lines(&hub);
    assert_eq!(lines.len() as u64, served);
    let all = serde_json::to_string(&lines).unwrap();
    assert!(!all.contains("TOPSECRET"));
}

#[actix_web::test]
async fn hub_404_disables_but_the_app_keeps_serving() {
    let hub = TestHub::start();
    hub.set_default("startup", apitally_test_hub::Reply::Status(404));
    hub.set_default("sync", apitally_test_hub::Reply::Status(404));
    let apitally = Apitally::try_new(
        config(&hub).test_client_config(|c| c.test_sync_interval(Duration::from_millis(100))),
    )
    .unwrap();
    let (server, port) = spawn_server(apitally.clone()).await;
    assert!(hub.wait_until(Duration::from_secs(10), |r| r
        .iter()
        .any(|r| r.status == 404)));
    let client = awc::Client::default();
    for n in 0..50 {
        let mut res = client
            .get(format!("http://127.0.0.1:{port}/ok/{n}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.body().await.unwrap(), "ok");
    }
    assert!(!apitally.is_enabled());
    server.stop(true).await;
    apitally.shutdown().await;
}

#[actix_web::test]
async fn a_million_consumers_and_unmatched_paths_stay_bounded() {
    let logs = apitally_test_hub::capture_logs();
    let hub = TestHub::start();
    let apitally = Apitally::try_new(
        config(&hub)
            .max_request_keys(10_000)
            .max_consumers(10_000)
            .test_client_config(|c| c.test_sync_interval(Duration::from_secs(3600))),
    )
    .unwrap();
    let client = apitally.pipeline().client().clone();
    // The first sync runs at once; the next one only at shutdown. The test hub runs in this
    // process and decodes what it gets (a sync of 10,000 keys takes it ~30 MB), so measure
    // after the first sync is in: what grows below is the SDK's alone.
    assert!(hub.wait_until(Duration::from_secs(30), |r| r
        .iter()
        .any(|r| r.endpoint == "sync" && r.accepted())));
    let rss = common::rss_kb;
    let before = rss();
    // A million distinct consumers, named (so the registry is exercised too).
    for i in 0..1_000_000u32 {
        let consumer = Consumer::new(format!("attacker-{i}")).name("Attacker");
        client.record_request(
            &RequestRecord::new("GET", "/attack", 200, Duration::from_millis(3))
                .consumer(Some(&consumer)),
        );
    }
    let grown_kb = rss().saturating_sub(before);
    // 10,000 keys and 10,000 registered consumers: ~7 MB, not the ~300 MB a million would take.
    assert!(grown_kb < 32 * 1024, "RSS grew by {grown_kb} kB");
    // Unmatched paths through a real server are never keys.
    let (server, port) = spawn_server(apitally.clone()).await;
    let http = awc::Client::default();
    for i in 0..2_000 {
        let res = http
            .get(format!("http://127.0.0.1:{port}/random/{i}/{}", i * 7))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
    }
    server.stop(true).await;
    apitally.shutdown().await;
    // Every request is still counted: past the cap, consumers are folded into the anonymous key.
    let total: u64 = common::requests(&hub)
        .iter()
        .map(|r| r["request_count"].as_u64().unwrap())
        .sum();
    let syncs: Vec<_> = hub
        .received_at("sync")
        .iter()
        .map(|r| (r.status, r.body.len(), r.problems.clone()))
        .collect();
    assert_eq!(
        total,
        1_000_000,
        "syncs (status, bytes, problems): {syncs:?}; the SDK logged: {:#?}",
        logs.lines()
    );
    // The cap holds per sync window (the first, immediate sync took a window of its own).
    for sync in hub.accepted_syncs() {
        let keys = sync["requests"].as_array().unwrap().len();
        assert!(keys <= 10_001, "{keys}");
    }
    assert!(common::items(&hub, "consumers").len() <= 10_000);
    assert!(common::requests(&hub)
        .iter()
        .all(|r| r["path"] == "/attack"));
}

#[actix_web::test]
async fn bad_input_is_passed_through() {
    let hub = TestHub::start();
    let apitally = Apitally::try_new(
        config(&hub)
            .request_logging(
                RequestLoggingConfig::new()
                    .log_request_body(true)
                    .log_request_headers(true)
                    .mask_request_body(|_| panic!("mask callback bug")),
            )
            .test_client_config(|c| {
                c.test_log_dir(
                    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
                        .join(format!("apitally-bad-{}", std::process::id())),
                )
            }),
    )
    .unwrap();
    let (server, port) = spawn_server(apitally.clone()).await;
    // Off the runtime thread: blocking it would stall the server's own future.
    let raw = move |request: Vec<u8>| {
        actix_web::rt::task::spawn_blocking(move || {
            let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            conn.write_all(&request).unwrap();
            let mut out = Vec::new();
            let _ = conn.read_to_end(&mut out);
            String::from_utf8_lossy(&out).into_owned()
        })
    };
    let long_id = "a".repeat(10_000);
    let cases: Vec<Vec<u8>> = vec![
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\nConnection: close\r\n\r\nhello".to_vec(),
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\nConnection: close\r\n\r\nhello".to_vec(),
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nConnection: close\r\n\r\nshort".to_vec(),
        b"GET /ok/1 HTTP/1.1\r\nHost: x\r\nX-Bin: \xff\xfe\x80\r\nX-Utf8: caf\xc3\xa9\r\nAuthorization: \xff secret\r\nConnection: close\r\n\r\n".to_vec(),
        format!("GET /consumer HTTP/1.1\r\nHost: x\r\nX-Id: {long_id}\r\nConnection: close\r\n\r\n").into_bytes(),
        b"GET /consumer HTTP/1.1\r\nHost: x\r\nX-Id: ctl\tchars\tand\ttabs\r\nConnection: close\r\n\r\n".to_vec(),
        format!("GET /ok/2 HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n", "a".repeat(60_000)).into_bytes(),
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 17\r\nConnection: close\r\n\r\n{\"password\":\"pw\"}".to_vec(),
    ];
    let mut statuses = Vec::new();
    for case in cases {
        let out = raw(case).await.unwrap();
        statuses.push(out.split(' ').nth(1).unwrap_or("none").to_owned());
    }
    // actix answers (or drops) malformed requests itself; the app answers the rest unchanged.
    // (actix itself answers 400 to an unparsable Content-Length or a control character in a
    // header value, before any middleware runs.)
    assert_eq!(statuses[3], "200", "{statuses:?}");
    assert_eq!(statuses[4], "200");
    assert_eq!(statuses[5], "200");
    assert_eq!(statuses[7], "200", "{statuses:?}");
    // The server still serves normally.
    let mut res = awc::Client::default()
        .get(format!("http://127.0.0.1:{port}/ok/3"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.body().await.unwrap(), "ok");
    server.stop(true).await;
    apitally.shutdown().await;
    let consumers: Vec<String> = common::requests(&hub)
        .iter()
        .filter(|r| r["path"] == "/consumer")
        .filter_map(|r| r["consumer"].as_str().map(str::to_owned))
        .collect();
    assert!(
        consumers
            .iter()
            .any(|c| c.len() == 128 && c.bytes().all(|b| b == b'a')),
        "{consumers:?}"
    );
    assert!(consumers.iter().any(|c| c.starts_with("ctl")));
    // The panicking mask callback logged `<masked>` instead of the body; no secret left.
    let lines: Vec<serde_json::Value> = hub
        .received_at("log")
        .into_iter()
        .flat_map(|r| r.lines)
        .collect();
    let all = serde_json::to_string(&lines).unwrap();
    assert!(!all.contains("secret") && !all.contains("\"pw\""), "{all}");
    assert!(all.contains("PG1hc2tlZD4="), "masked body marker");
    // Header values that are not visible ASCII are logged as UTF-8, or lossily.
    let ok1 = lines
        .iter()
        .find(|l| {
            l["request"]["url"]
                .as_str()
                .unwrap_or("")
                .ends_with("/ok/1")
        })
        .expect("/ok/1 logged");
    let header = |name: &str| {
        ok1["request"]["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h[0] == name)
            .map(|h| h[1].clone())
    };
    assert_eq!(header("x-utf8"), Some("caf\u{e9}".into()));
    assert_eq!(header("x-bin"), Some("\u{fffd}\u{fffd}\u{fffd}".into()));
    assert_eq!(header("authorization"), Some("******".into()));
}

#[actix_web::test]
async fn sustained_load_gives_exact_totals_and_flat_memory() {
    use futures_util::StreamExt;
    // A hub that tallies and keeps nothing, so the process's memory is the app's and the client's.
    let hub = TestHub::start_tallying();
    let apitally = Apitally::try_new(
        config(&hub).test_client_config(|c| c.test_sync_interval(Duration::from_millis(200))),
    )
    .unwrap();
    let (server, port) = spawn_server(apitally.clone()).await;
    let rss = common::rss_kb;
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    let mut samples = Vec::new();
    let mut served = 0u64;
    // Bounded: 12 slices of 1,500 requests, 16 at a time, with many consumers.
    for slice in 0..12u64 {
        let ok = futures_util::stream::iter(0..1_500u64)
            .map(|i| {
                let client = client.clone();
                async move {
                    let mut res = client
                        .get(format!("http://127.0.0.1:{port}/consumer"))
                        .insert_header(("x-id", format!("c{}", (slice * 1_500 + i) % 500)))
                        .send()
                        .await
                        .ok()?;
                    res.body().await.ok()?;
                    Some(())
                }
            })
            .buffer_unordered(16)
            .filter(|r| std::future::ready(r.is_some()))
            .count()
            .await;
        served += ok as u64;
        samples.push(rss());
    }
    server.stop(true).await;
    apitally.shutdown().await;
    eprintln!("RSS samples (kB): {samples:?}");
    assert_eq!(served, 18_000);
    assert_eq!(hub.tallied("/consumer"), served);
    let third = samples.len() / 3;
    let first: u64 = samples[..third].iter().sum::<u64>() / third as u64;
    let last: u64 = samples[samples.len() - third..].iter().sum::<u64>() / third as u64;
    // Flat: the last third within 10 % (plus 4 MB of allocator noise) of the first.
    assert!(last <= first + first / 10 + 4 * 1024, "RSS {samples:?}");
}

/// A million distinct unmatched paths (in-process, ~10 s in a debug build): none becomes a key,
/// memory stays flat.
#[actix_web::test]
async fn a_million_unmatched_paths_add_nothing() {
    let hub = TestHub::start_tallying();
    let apitally = Apitally::try_new(config(&hub)).unwrap();
    let app = actix_web::test::init_service(
        App::new()
            .wrap(apitally.clone())
            .route("/ok/{n}", web::get().to(|| async { "ok" })),
    )
    .await;
    let rss = common::rss_kb;
    let mut samples = Vec::new();
    for i in 0..1_000_000u32 {
        let req = actix_web::test::TestRequest::get()
            .uri(&format!("/bot/{i}/wp-login.php"))
            .to_request();
        let res = actix_web::test::call_service(&app, req).await;
        assert_eq!(res.status(), 404);
        if i % 100_000 == 0 {
            samples.push(rss());
        }
    }
    actix_web::test::call_service(
        &app,
        actix_web::test::TestRequest::get()
            .uri("/ok/1")
            .to_request(),
    )
    .await;
    apitally.shutdown().await;
    assert_eq!(hub.tallied("/ok/{n}"), 1);
    let (first, last) = (samples[1], *samples.last().unwrap());
    assert!(last <= first + first / 10 + 4 * 1024, "RSS {samples:?}");
}
