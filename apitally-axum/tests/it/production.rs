//! A WebSocket open across deliveries, a shutdown under load, and `sample_on_response`
//! reading the request's headers after the handler took the request.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use axum::{
    extract::ws::{Message, WebSocketUpgrade},
    routing::get,
    Router,
};
use futures_util::{SinkExt, StreamExt};

use crate::common::{self, send, TestHub, PROTOCOLS};

/// A WebSocket that stays open across deliveries is not an endpoint: no count, no log, no
/// error, in either protocol; the requests around it are counted exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_open_across_deliveries_is_neither_counted_nor_logged() {
    for protocol in PROTOCOLS {
        let hub = TestHub::start();
        let config = common::config(&hub, protocol)
            .request_logging(apitally_axum::RequestLoggingConfig::new())
            .test_client_config(|c| c.test_sync_interval(Duration::from_millis(400)));
        let apitally = common::layer(config);
        let app = Router::new()
            .route(
                "/ws",
                get(|ws: WebSocketUpgrade| async move {
                    ws.on_upgrade(|mut socket| async move {
                        while let Some(Ok(msg)) = socket.recv().await {
                            if let Message::Text(text) = msg {
                                if socket.send(Message::Text(text)).await.is_err() {
                                    return;
                                }
                            }
                        }
                    })
                }),
            )
            .route("/items", get(|| async { "[]" }))
            .layer(apitally.clone());
        let (port, stop, task) = common::serve(app).await;
        let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws"))
            .await
            .unwrap();
        let before = hub.received().len();
        for i in 0..6 {
            socket
                .send(tokio_tungstenite::tungstenite::Message::text(format!(
                    "ping {i}"
                )))
                .await
                .unwrap();
            let echo = socket.next().await.unwrap().unwrap();
            assert_eq!(echo.into_text().unwrap().as_str(), format!("ping {i}"));
            let reply = tokio::task::spawn_blocking(move || send(port, "GET /items HTTP/1.1", b""))
                .await
                .unwrap();
            assert_eq!(reply.status, 200);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(
            hub.received().len() >= before + 2,
            "{protocol}: no delivery while open"
        );
        let _ = socket.close(None).await;
        drop(socket);
        let _ = stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        apitally.shutdown().await;
        let totals = hub.request_totals();
        assert_eq!(totals.len(), 1, "{protocol}: {totals:?}");
        let (key, t) = totals.iter().next().unwrap();
        assert_eq!((key.2.as_str(), t.count), ("/items", 6), "{protocol}");
        let logged = hub.logged_requests();
        assert_eq!(logged.len(), 6, "{protocol}: {logged:?}");
        assert!(logged.iter().all(|(r, _)| r == "GET /items"), "{logged:?}");
        assert!(hub.server_error_totals().is_empty());
    }
}

/// Requests served right up to a graceful shutdown are all counted, in both protocols.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_under_load_loses_nothing() {
    for protocol in PROTOCOLS {
        let hub = TestHub::start();
        let apitally = common::layer(common::config(&hub, protocol));
        let app = Router::new()
            .route("/work/{n}", get(|| async { "done" }))
            .layer(apitally.clone());
        let (port, stop, task) = common::serve(app).await;
        let served = Arc::new(AtomicU64::new(0));
        let running = Arc::new(AtomicBool::new(true));
        let clients: Vec<_> = (0..4)
            .map(|c| {
                let served = Arc::clone(&served);
                let running = Arc::clone(&running);
                std::thread::spawn(move || {
                    let mut i = 0;
                    // Bounded in count and time.
                    while running.load(Ordering::Relaxed) && i < 5_000 {
                        let reply = send(port, &format!("GET /work/{c}-{i} HTTP/1.1"), b"");
                        if reply.status == 200 {
                            served.fetch_add(1, Ordering::Relaxed);
                        }
                        i += 1;
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        running.store(false, Ordering::Relaxed);
        for client in clients {
            client.join().unwrap();
        }
        let _ = stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        apitally.shutdown().await;
        let served = served.load(Ordering::Relaxed);
        assert!(served > 100, "{served}");
        let counted: u64 = hub.request_totals().values().map(|t| t.count).sum();
        assert_eq!(counted, served, "{protocol}");
    }
}

/// `sample_on_response` sees the request's headers although axum's handler consumed the request
/// (the layer keeps them for it, and only for it): with a rate of 0, exactly the requests that
/// carry `x-debug` are logged, in both protocols.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_on_response_reads_the_request_headers() {
    for protocol in PROTOCOLS {
        let hub = TestHub::start();
        let config = common::config(&hub, protocol)
            .request_logging(apitally_axum::RequestLoggingConfig::new())
            .sample_rate(0.0)
            .sample_on_response(|res| res.header("x-debug").map(|_| 1.0));
        let apitally = common::layer(config);
        let app = Router::new()
            .route("/items/{id}", get(|| async { "item" }))
            .layer(apitally.clone());
        let (port, stop, task) = common::serve(app).await;
        tokio::task::spawn_blocking(move || {
            send(port, "GET /items/1 HTTP/1.1", b"");
            send(port, "GET /items/2 HTTP/1.1\r\nx-debug: 1", b"");
            send(port, "GET /items/3 HTTP/1.1", b"");
        })
        .await
        .unwrap();
        let _ = stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        apitally.shutdown().await;
        assert_eq!(
            hub.logged_requests(),
            vec![("GET /items/2".to_owned(), 200)],
            "{protocol}"
        );
    }
}
