//! Streamed and chunked bodies, and a client that disconnects mid-body, on a real server.

use crate::common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use actix_web::{web, App, HttpResponse};
use common::{apitally, find, TestHub};
use futures_util::stream;
use serde_json::json;

fn chunks(n: usize, size: usize, delay_ms: u64) -> HttpResponse {
    let body = stream::unfold(0usize, move |i| async move {
        if i == n {
            return None;
        }
        if delay_ms > 0 {
            actix_rt::time::sleep(Duration::from_millis(delay_ms)).await;
        }
        Some((
            Ok::<_, actix_web::Error>(web::Bytes::from(vec![b'x'; size])),
            i + 1,
        ))
    });
    HttpResponse::Ok().streaming(body)
}

async fn serve(apitally: apitally_actix::Apitally) -> (actix_web::dev::ServerHandle, u16) {
    spawn_server!(1, move || {
        App::new()
            .wrap(apitally.clone())
            .route("/stream", web::get().to(|| async { chunks(10, 1000, 0) }))
            .route(
                "/slow-stream",
                web::get().to(|| async { chunks(2000, 1000, 5) }),
            )
            .route(
                "/upload",
                web::post().to(|body: web::Bytes| async move { format!("{}", body.len()) }),
            )
    })
}

#[actix_web::test]
async fn streamed_response_counts_bytes_sent() {
    let hub = TestHub::start();
    let apitally = apitally(&hub, |c| c);
    let (server, port) = serve(apitally.clone()).await;
    let client = awc::Client::default();
    let mut res = client
        .get(format!("http://127.0.0.1:{port}/stream"))
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("content-length").is_none());
    assert_eq!(res.body().await.unwrap().len(), 10_000);

    // A chunked request body: its size is what the handler read.
    let upload =
        stream::iter((0..5).map(|_| Ok::<_, actix_web::Error>(web::Bytes::from(vec![b'y'; 700]))));
    let mut res = client
        .post(format!("http://127.0.0.1:{port}/upload"))
        .send_stream(upload)
        .await
        .unwrap();
    assert_eq!(res.body().await.unwrap(), "3500");
    server.stop(true).await;
    apitally.shutdown().await;
    let item = find(&hub, "GET", "/stream");
    assert_eq!(item["response_size_sum"], 10_000);
    assert_eq!(item["response_sizes"], json!({"10": 1}));
    let upload = find(&hub, "POST", "/upload");
    assert_eq!(upload["request_size_sum"], 3500);
    assert_eq!(upload["request_sizes"], json!({"3": 1}));
}

#[actix_web::test]
async fn client_disconnect_mid_body_is_recorded_with_what_was_sent() {
    let hub = TestHub::start();
    let apitally = apitally(&hub, |c| {
        c.test_client_config(|c| c.test_sync_interval(Duration::from_millis(100)))
    });
    let (server, port) = serve(apitally.clone()).await;
    let got = actix_web::rt::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .write_all(b"GET /slow-stream HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut buf = vec![0; 30_000];
        let mut got = 0;
        while got < 20_000 {
            got += stream.read(&mut buf).unwrap();
        }
        got
        // Dropped here: the connection closes mid-body.
    })
    .await
    .unwrap();
    assert!(got >= 20_000);
    // The server notices the closed connection on its next write and drops the body, which
    // completes the record with the bytes sent so far; the next sync carries it.
    // (Blocking here is fine: the server and the sync run on threads of their own.)
    assert!(hub.wait_until(Duration::from_secs(10), |_| {
        common::count(&hub, "GET", "/slow-stream", None, None) == 1
    }));
    server.stop(false).await;
    apitally.shutdown().await;
    let item = find(&hub, "GET", "/slow-stream");
    assert_eq!(item["request_count"], 1);
    let sent = item["response_size_sum"].as_u64().unwrap();
    assert!(sent >= 15_000, "{sent}");
    assert!(sent < 2_000_000, "the full body was never sent: {sent}");
}
