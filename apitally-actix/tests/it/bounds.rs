//! Attacker-chosen strings cannot grow memory or payloads: long methods and long path segments,
//! on a real server with request logging on: 1,000 distinct 60 KB methods and 600 path
//! segments of 60 KB. (A binary of its own: it measures its RSS.)

use crate::common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use actix_web::{web, App, HttpResponse};
use apitally_actix::RequestLoggingConfig;
use common::{rss_kb, TestHub};

fn send(port: u16, head: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream.write_all(head.as_bytes()).ok()?;
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    Some(String::from_utf8_lossy(&out[..out.len().min(12)]).into_owned())
}

/// The largest payload the hub received, and the total.
fn payload_sizes(hub: &TestHub) -> (usize, usize) {
    let sizes: Vec<usize> = hub.received().iter().map(|r| r.body.len()).collect();
    (sizes.iter().copied().max().unwrap_or(0), sizes.iter().sum())
}

#[actix_web::test]
async fn long_methods_and_path_segments_stay_bounded() {
    let hub = TestHub::start();
    let apitally = common::apitally(&hub, |c| {
        c.request_logging(
            RequestLoggingConfig::new()
                .log_request_headers(true)
                .log_request_body(true),
        )
    });
    let (server, port) = spawn_server!(2, {
        let apitally = apitally.clone();
        move || {
            App::new()
                .wrap(apitally.clone())
                // A resource without a method guard takes any method.
                .service(web::resource("/any").to(|| async { HttpResponse::Ok().body("any") }))
                .route(
                    "/items/{id}",
                    web::get().to(|id: web::Path<u32>| async move { format!("item {id}") }),
                )
        }
    });
    let before = rss_kb();
    let statuses = actix_web::rt::task::spawn_blocking(move || {
        let mut statuses = Vec::new();
        // 7. Distinct 60 KB methods.
        for i in 0..1_000 {
            let method = format!("M{i:05}{}", "X".repeat(60_000));
            statuses.push(send(
                port,
                &format!("{method} /any HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"),
            ));
        }
        // 8. Path segments of 60 KB of digits (and of letters) that the `Path<u32>` extractor
        // rejects: a validation error each.
        for i in 0..600 {
            let segment = if i % 2 == 0 {
                format!("{i}{}", "9".repeat(60_000))
            } else {
                format!("{i}{}", "z".repeat(60_000))
            };
            statuses.push(send(
                port,
                &format!("GET /items/{segment} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"),
            ));
        }
        statuses
    })
    .await
    .unwrap();
    let answered = statuses.iter().flatten().count();
    let grown_kb = rss_kb().saturating_sub(before);
    server.stop(true).await;
    apitally.shutdown().await;
    // The server took them (they are not refused at the HTTP layer), so what follows is the
    // SDK's doing.
    assert!(
        answered >= 1_500,
        "{answered} of 1,600 answered: {:?}",
        &statuses[..3]
    );
    // Nothing counted for the methods: they are not endpoints.
    let requests = common::requests(&hub);
    assert!(!requests.is_empty(), "the syncs were accepted");
    assert!(
        requests.iter().all(|r| r["method"] == "GET"),
        "{:?}",
        requests
            .iter()
            .map(|r| r["method"].as_str().unwrap_or("").len())
            .collect::<Vec<_>>()
    );
    // The validation errors group into one per message, each message short.
    let errors = common::items(&hub, "validation_errors");
    let count: u64 = errors
        .iter()
        .map(|e| e["error_count"].as_u64().unwrap())
        .sum();
    assert_eq!(count, 600, "{errors:#?}");
    assert!(errors.len() <= 4, "{errors:#?}");
    for e in &errors {
        assert!(e["msg"].as_str().unwrap().len() <= 200, "{e}");
    }
    // Logged methods are cut, the URLs are what the client sent.
    let lines = common::log_lines(&hub);
    assert_eq!(lines.len(), 1_600);
    assert!(lines
        .iter()
        .all(|l| l["request"]["method"].as_str().unwrap().len() <= 32));
    // Payloads stay small: the sync payloads, and the log files (60 KB URLs compress well).
    let (largest, total) = payload_sizes(&hub);
    let syncs: usize = hub.received_at("sync").iter().map(|r| r.body.len()).sum();
    assert!(syncs < 64 << 10, "sync payloads: {syncs} bytes");
    assert!(
        largest < 2 << 20,
        "largest payload {largest} bytes (total {total})"
    );
    // And so does memory (before the fix, 2,000 such methods took +245 MB: 60 KB per key in
    // the window, and as much per message). The bound leaves room for the request-log
    // buffer (16 MiB) and the server's own buffers.
    assert!(grown_kb < 40_000, "RSS grew by {grown_kb} kB");
}
