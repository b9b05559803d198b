//! A real `axum::serve` on 127.0.0.1, a raw HTTP/1.1 client, and configs pointed at the test
//! hub in either protocol.
#![allow(dead_code)]

use std::{
    io::{Read, Write},
    net::SocketAddr,
    time::Duration,
};

use apitally_axum::{ApitallyConfig, ApitallyLayer};
pub use apitally_test_hub::TestHub;
use axum::Router;

pub const TOKEN: &str = "apt_0123456789abcdefghijABCD";

/// Both protocols, by name.
pub const PROTOCOLS: [&str; 2] = ["hub", "otlp"];

/// A config for `protocol` pointed at `hub`, delivering only at start and shutdown.
pub fn config(hub: &TestHub, protocol: &str) -> ApitallyConfig {
    let config = match protocol {
        "hub" => {
            ApitallyConfig::new(uuid::Uuid::new_v4().to_string(), "test").hub_base_url(hub.url())
        }
        _ => ApitallyConfig::with_write_token(TOKEN, "test").otlp_endpoint(hub.url()),
    };
    config.test_client_config(|c| {
        c.test_sync_interval(Duration::from_secs(3600))
            .test_retry_backoff(Duration::from_millis(10))
            .test_request_timeout(Duration::from_secs(2))
    })
}

pub fn layer(config: ApitallyConfig) -> ApitallyLayer {
    ApitallyLayer::try_new(config).unwrap()
}

/// Serves `app` on a free port (with the peer's address for `ConnectInfo`); gives the port and
/// a handle that stops it gracefully.
pub async fn serve(
    app: Router,
) -> (
    u16,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (port, stop, task)
}

/// A response: status, headers (lowercase names) and the body (chunked bodies decoded).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

/// Sends one raw request (`head` is the request line and headers, without the final empty
/// line) with `body`, on a new connection; reads the whole response.
pub fn send(port: u16, head: &str, body: &[u8]) -> Reply {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut request = format!("{head}\r\nhost: api.example.com\r\nconnection: close\r\n");
    if !head.to_ascii_lowercase().contains("transfer-encoding") && !body.is_empty() {
        request.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&out[..split]).to_ascii_lowercase();
    let raw = &out[split + 4..];
    let status = head[9..12].parse().unwrap();
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(raw)
    } else {
        raw.to_vec()
    };
    Reply { status, head, body }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(std::str::from_utf8(&raw[..end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[end + 2 + size + 2..];
    }
}

/// A chunked request body of `chunks`.
pub fn chunked(chunks: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in chunks {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}
