//! Graceful shutdown under load: the example server gets SIGTERM while clients are sending, and
//! its final sync carries every request it served.

use std::{
    io::{Read, Write},
    net::TcpStream,
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use apitally_test_hub::TestHub;

fn get(port: u16, path: &str) -> bool {
    let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nx-api-key: demo-key-acme\r\nConnection: close\r\n\r\n"
    );
    if conn.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut out = Vec::new();
    let _ = conn.read_to_end(&mut out);
    out.starts_with(b"HTTP/1.1 200")
}

#[test]
fn sigterm_under_load_syncs_every_request_served() {
    let hub = TestHub::start();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_example-server"))
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("APITALLY_CLIENT_ID", uuid::Uuid::new_v4().to_string())
        .env("APITALLY_ENV", "test")
        .env("APITALLY_HUB_BASE_URL", hub.url())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let served = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|t| {
            let (served, stop) = (Arc::clone(&served), Arc::clone(&stop));
            std::thread::spawn(move || {
                let paths = ["/items", "/health", "/items/1", "/report"];
                let mut i = t;
                // Bounded: at most 20,000 requests or 20 s per client.
                let end = Instant::now() + Duration::from_secs(20);
                while !stop.load(Ordering::Relaxed) && i < 20_000 && Instant::now() < end {
                    if get(port, paths[i % paths.len()]) {
                        served.fetch_add(1, Ordering::Relaxed);
                    } else if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    i += 4;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    // Clients keep going until the server refuses connections.
    let deadline = Instant::now() + Duration::from_secs(40);
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "server did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    assert!(status.success(), "{status:?}");
    let served = served.load(Ordering::Relaxed);
    assert!(served > 100, "{served}");
    let counted: u64 = hub
        .accepted_syncs()
        .iter()
        .flat_map(|s| s["requests"].as_array().cloned().unwrap_or_default())
        .filter(|r| r["status_code"] == 200)
        .map(|r| r["request_count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, served);
}
