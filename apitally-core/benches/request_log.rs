//! Request logging's hot pieces: building one item (what the request path does), the background
//! work for one item (masking, serialisation, gzip), and masking a 1 KB JSON body.
//!
//! Run: `cargo bench -p apitally-core --bench request_log`

#![allow(missing_docs)]

use std::{hint::black_box, time::Instant};

use apitally_core::{
    adapter::RequestLogItem, test_util, LoggedRequest, LoggedResponse, RequestLoggingConfig,
};

fn body_1kb() -> Vec<u8> {
    format!(
        r#"{{"name":"Widget","description":"{}","price_cents":1999,"tags":["a","b","c"],"owner":{{"email":"a@example.com","password":"hunter2","api_key":"k"}}}}"#,
        "x".repeat(850)
    )
    .into_bytes()
}

fn item(body: &[u8]) -> RequestLogItem {
    let headers = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    };
    RequestLogItem {
        request: LoggedRequest {
            timestamp: 1_767_225_600.101,
            method: "POST".into(),
            path: Some("/items/{id}".into()),
            url: "http://127.0.0.1:8080/items/5?token=abc&page=2".into(),
            headers: headers(&[
                ("host", "127.0.0.1:8080"),
                ("authorization", "Bearer abc"),
                ("content-type", "application/json"),
                ("user-agent", "curl/8.5.0"),
            ]),
            size: Some(body.len() as u64),
            consumer: Some("customer-42".into()),
            body: Some(body.to_vec()),
            attributes: Vec::new(),
        },
        response: LoggedResponse {
            status_code: 201,
            response_time: 0.012,
            headers: headers(&[
                ("content-type", "application/json"),
                ("content-length", "1024"),
            ]),
            size: Some(body.len() as u64),
            body: Some(body.to_vec()),
        },
        exception: None,
        request_content_type: Some("application/json".into()),
        response_content_type: Some("application/json".into()),
        user_agent: Some("curl/8.5.0".into()),
        ..Default::default()
    }
}

fn time<T>(n: u32, mut f: impl FnMut() -> T) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        black_box(f());
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

fn main() {
    let body = body_1kb();
    println!("{:<52} {:>10}", "case", "ns/op");
    println!(
        "{:<52} {:>10.0}",
        "build one item (headers + 1 KB bodies)",
        time(200_000, || item(&body))
    );
    println!(
        "{:<52} {:>10.0}",
        "mask a 1 KB JSON body",
        time(200_000, || test_util::mask_json(&body))
    );
    let dir = std::env::temp_dir().join(format!("apitally-bench-log-{}", std::process::id()));
    let logger = test_util::logger(
        RequestLoggingConfig::new()
            .log_request_headers(true)
            .log_request_body(true)
            .log_response_body(true)
            .max_buffer_bytes(1 << 30),
        dir.clone(),
    )
    .expect("logger");
    let items: Vec<RequestLogItem> = (0..50_000).map(|_| item(&body)).collect();
    // Queued first, then written in one batch, as the writer thread does every 100 ms.
    let start = Instant::now();
    for it in items {
        test_util::queue(&logger, it);
    }
    test_util::flush(&logger);
    println!(
        "{:<52} {:>10.0}",
        "background work for one item (mask, JSON, gzip)",
        start.elapsed().as_nanos() as f64 / 50_000.0
    );
    drop(logger);
    let _ = std::fs::remove_dir_all(dir);
}
