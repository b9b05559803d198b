//! Graceful shutdown under load: the example server (request logging on) gets SIGTERM while
//! clients are sending, and its final sync carries every request it served: counted in the
//! syncs, and logged exactly once in the request-log files.

use std::{
    collections::{HashMap, HashSet},
    io::{Read, Write},
    net::TcpStream,
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use apitally_test_hub::TestHub;

/// Client threads, and the most requests each sends.
const CLIENTS: usize = 4;
const PER_CLIENT: usize = 1_500;
/// SIGTERM once this many requests were served (or after a bounded time).
const SIGTERM_AFTER: u64 = 1_500;
/// Small request-log files, so that more than a cycle's 10 wait when SIGTERM arrives, and
/// fewer than the 50 kept.
const LOG_FILE_BYTES: &str = "8192";

/// GETs `path` on a new connection; true for a 200.
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

/// The `req` query parameter of a logged URL.
fn request_id(url: &str) -> Option<&str> {
    url.split_once("req=")
        .map(|(_, id)| id.split('&').next().unwrap_or(id))
}

#[test]
fn sigterm_under_load_syncs_and_logs_every_request_served() {
    let hub = TestHub::start();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = std::env::temp_dir().join(format!("example-sigterm-{}.log", uuid::Uuid::new_v4()));
    let out = std::fs::File::create(&output).unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_example-server"))
        .env("BIND", format!("127.0.0.1:{port}"))
        .env_remove("APITALLY_WRITE_TOKEN")
        .env("APITALLY_CLIENT_ID", uuid::Uuid::new_v4().to_string())
        .env("APITALLY_ENV", "test")
        .env("APITALLY_HUB_BASE_URL", hub.url())
        // Generous: the budget bounds the final flush, it is no timing assertion.
        .env("APITALLY_SHUTDOWN_TIMEOUT", "60")
        .env("EXAMPLE_LOG_FILE_BYTES", LOG_FILE_BYTES)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .unwrap();
    let server_output = || std::fs::read_to_string(&output).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let served = Arc::new(AtomicU64::new(0));
    // The id of every request answered 200, with its path.
    let ok_ids = Arc::new(Mutex::new(Vec::<(String, &'static str)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|t| {
            let (served, ok_ids, stop) =
                (Arc::clone(&served), Arc::clone(&ok_ids), Arc::clone(&stop));
            std::thread::spawn(move || {
                let paths = ["/items", "/health", "/items/1", "/report"];
                // Bounded: at most PER_CLIENT requests or 60 s per client.
                let end = Instant::now() + Duration::from_secs(60);
                for i in 0..PER_CLIENT {
                    if stop.load(Ordering::Relaxed) || Instant::now() >= end {
                        break;
                    }
                    let path = paths[(i + t) % paths.len()];
                    // A unique query parameter, to find the request in the logs.
                    let id = format!("{t}-{i}");
                    if get(port, &format!("{path}?req={id}")) {
                        served.fetch_add(1, Ordering::Relaxed);
                        ok_ids.lock().unwrap().push((id, path));
                    } else if stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
            })
        })
        .collect();
    // Mid-load: once some requests were served (bounded in time).
    let deadline = Instant::now() + Duration::from_secs(30);
    while served.load(Ordering::Relaxed) < SIGTERM_AFTER && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    // Clients keep going until the server refuses connections.
    let deadline = Instant::now() + Duration::from_secs(120);
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
    let log = server_output();
    std::fs::remove_file(&output).ok();
    assert!(status.success(), "{status:?}\n{log}");
    let served = served.load(Ordering::Relaxed);
    assert!(served > 100, "{served}");

    // Counted: every 200 in the syncs.
    let counted: u64 = hub
        .accepted_syncs()
        .iter()
        .flat_map(|s| s["requests"].as_array().cloned().unwrap_or_default())
        .filter(|r| r["status_code"] == 200)
        .map(|r| r["request_count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, served);

    // Logged: each request in the accepted files, each file once (the hub de-duplicates
    // files by their `uuid`), the line uuids of each request.
    let mut files = HashSet::new();
    let mut lines: HashMap<String, Vec<String>> = HashMap::new();
    for upload in hub.received_at("log") {
        if !upload.accepted() || !files.insert(upload.query.clone()) {
            continue;
        }
        for line in &upload.lines {
            let url = line["request"]["url"].as_str().unwrap_or_default();
            if let Some(id) = request_id(url) {
                let uuid = line["uuid"].as_str().unwrap_or_default().to_owned();
                lines.entry(id.to_owned()).or_default().push(uuid);
            }
        }
    }
    let ok_ids = ok_ids.lock().unwrap();
    let mut missing = Vec::new();
    for (id, path) in ok_ids.iter() {
        let logged = lines.get(id).map_or(0, Vec::len);
        match *path {
            // Health checks are never logged.
            "/health" => assert_eq!(logged, 0, "{id} {path}"),
            _ if logged == 0 => missing.push(id.as_str()),
            _ => assert_eq!(logged, 1, "{id} {path} logged {logged} times"),
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} served requests not logged ({} files uploaded), e.g. {:?}\n{}",
        missing.len(),
        ok_ids.len(),
        files.len(),
        &missing[..missing.len().min(10)],
        log.lines()
            .filter(|l| l.contains("apitally"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    for (id, uuids) in &lines {
        let distinct: HashSet<_> = uuids.iter().collect();
        assert_eq!(distinct.len(), uuids.len(), "{id}: {uuids:?}");
        assert_eq!(uuids.len(), 1, "{id} logged more than once");
    }
    // Every upload of a file is one file: none was sent twice.
    let arrivals = hub.arrivals("log");
    assert_eq!(arrivals.len(), files.len(), "a file was sent twice");
    eprintln!(
        "served {served}, logged {} requests in {} files",
        lines.len(),
        files.len()
    );
    assert!(!log.contains("apitally: shutdown:"), "{log}");
}
