//! The example's API, served for real, in both protocols: what the quickstart promises shows
//! up at the hub.

use std::{
    future::IntoFuture,
    io::{Read, Write},
    time::Duration,
};

use apitally_test_hub::TestHub;

fn get(port: u16, target: &str, headers: &str) -> u16 {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nhost: localhost\r\n{headers}connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = stream.read_to_string(&mut out);
    out[9..12].parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_reports_in_both_protocols() {
    for otlp in [false, true] {
        let hub = TestHub::start();
        let config = example_axum::apitally_config(example_axum::offline_config(&hub.url(), otlp));
        let apitally = apitally::ApitallyLayer::try_new(config).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(
            axum::serve(listener, example_axum::app(apitally.clone()))
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .into_future(),
        );
        let statuses = tokio::task::spawn_blocking(move || {
            [
                get(port, "/items", "x-api-key: key-acme\r\n"),
                get(port, "/me?user=ada", ""),
                get(port, "/items/abc", ""),
                get(port, "/fail", ""),
                get(port, "/panic", ""),
            ]
        })
        .await
        .unwrap();
        assert_eq!(statuses, [200, 200, 400, 500, 500]);
        let _ = stop.send(());
        let _ = server.await;
        apitally.shutdown().await;
        let totals = hub.request_totals();
        let consumers: Vec<_> = totals.keys().filter_map(|k| k.0.clone()).collect();
        assert_eq!(consumers, ["ada", "customer-1"], "otlp: {otlp}");
        assert_eq!(totals.values().map(|t| t.count).sum::<u64>(), 5);
        assert_eq!(hub.server_error_totals().len(), 2, "otlp: {otlp}");
        assert_eq!(hub.validation_error_totals().len(), 1, "otlp: {otlp}");
    }
}
