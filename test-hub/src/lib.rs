//! A hub v2 server on 127.0.0.1 for the workspace's tests.
//!
//! It runs a real actix-web `HttpServer` on its own thread, records every request it receives
//! (JSON bodies parsed, gzip log files decoded) and answers `202 Accepted`, or what a test
//! scripted for the next requests to an endpoint. [`TestHub::start_tls`] serves HTTPS with a
//! certificate signed by a CA made for the test. The crate also has a real `CONNECT` proxy
//! ([`TestProxy`]) and a capture of the SDK's log lines ([`capture_logs`]).

mod logs;
mod proxy;
mod tls;

pub use self::{
    logs::{capture_logs, CapturedLogs},
    proxy::{ProxyMode, TestProxy},
    tls::TestCa,
};

use std::{
    collections::{HashMap, VecDeque},
    io::Read,
    net::{SocketAddr, TcpListener},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use actix_web::{dev::ServerHandle, web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::Value;

/// How the hub answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Answer with this status and an empty body.
    Status(u16),
    /// Answer with this status and these headers.
    WithHeaders(u16, Vec<(String, String)>),
    /// Answer with this status and JSON body.
    Body(u16, String),
    /// Wait, then answer with this status.
    Delay(Duration, u16),
}

impl Reply {
    fn status(&self) -> u16 {
        match self {
            Reply::Status(s)
            | Reply::WithHeaders(s, _)
            | Reply::Body(s, _)
            | Reply::Delay(_, s) => *s,
        }
    }
}

/// One request the hub received.
#[derive(Debug, Clone)]
pub struct Received {
    /// `startup`, `sync` or `log`.
    pub endpoint: String,
    /// The client id segment of the URL.
    pub client_id: String,
    /// The env segment of the URL.
    pub env: String,
    /// The query string.
    pub query: String,
    /// Request headers, names lowercase.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
    /// The body parsed as JSON (startup and sync).
    pub json: Option<Value>,
    /// The decoded lines of a gzip JSON-lines body (log).
    pub lines: Vec<Value>,
    /// The status the hub answered with.
    pub status: u16,
    /// The address the request came from (the proxy's, when it came through one).
    pub peer: Option<SocketAddr>,
}

impl Received {
    /// Whether the hub accepted it (2xx).
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A header value by lowercase name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    /// When set, syncs are only tallied (request counts per path), not kept: for load tests
    /// that watch the process's memory.
    tally_only: std::sync::atomic::AtomicBool,
    tally: Mutex<HashMap<String, u64>>,
    received: Mutex<Vec<Received>>,
    /// (endpoint, query) of every request as it arrived, before it is answered (not kept
    /// when tallying).
    arrived: Mutex<Vec<(String, String)>>,
    scripts: Mutex<HashMap<String, VecDeque<Reply>>>,
    defaults: Mutex<HashMap<String, Reply>>,
}

/// The running test hub. Stopped on drop.
pub struct TestHub {
    addr: SocketAddr,
    ca: Option<TestCa>,
    state: Arc<State>,
    handle: Option<ServerHandle>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for TestHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestHub").field("addr", &self.addr).finish()
    }
}

impl TestHub {
    /// Starts a hub on a free port of 127.0.0.1.
    pub fn start() -> Self {
        Self::start_on(0)
    }

    /// Starts a hub that only tallies `request_count` per path of accepted syncs (each
    /// `message_uuid` once) and keeps nothing else, so that its memory stays flat.
    pub fn start_tallying() -> Self {
        let hub = Self::start_on(0);
        hub.state
            .tally_only
            .store(true, std::sync::atomic::Ordering::Relaxed);
        hub
    }

    /// The tally of a hub from [`start_tallying`](Self::start_tallying) for one path.
    pub fn tallied(&self, path: &str) -> u64 {
        self.state
            .tally
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Starts a hub on the given port of 127.0.0.1 (0 for any free port).
    pub fn start_on(port: u16) -> Self {
        Self::start_with(port, None)
    }

    /// Starts an HTTPS hub on a free port of 127.0.0.1, with a certificate for `127.0.0.1`
    /// and `localhost` signed by a CA made now; [`ca_pem`](Self::ca_pem) is that CA.
    pub fn start_tls() -> Self {
        Self::start_with(0, Some(TestCa::new()))
    }

    /// The PEM of the CA that signed an HTTPS hub's certificate.
    pub fn ca_pem(&self) -> Option<String> {
        self.ca.as_ref().map(TestCa::pem)
    }

    fn start_with(port: u16, ca: Option<TestCa>) -> Self {
        let tls = ca
            .as_ref()
            .map(|ca| ca.server_config(&["127.0.0.1", "localhost"]));
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind test hub");
        let addr = listener.local_addr().expect("test hub address");
        let state = Arc::new(State::default());
        let (tx, rx) = std::sync::mpsc::channel();
        let server_state = Arc::clone(&state);
        let thread = std::thread::spawn(move || {
            let system = actix_rt::System::new();
            system.block_on(async move {
                let data = web::Data::from(server_state);
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .app_data(web::PayloadConfig::new(64 << 20))
                        .route("/v2/{client_id}/{env}/{endpoint}", web::post().to(handle))
                })
                .workers(1)
                .disable_signals()
                .shutdown_timeout(1);
                let server = match tls {
                    Some(tls) => server.listen_rustls_0_23(listener, tls),
                    None => server.listen(listener),
                }
                .expect("listen")
                .run();
                tx.send(server.handle()).expect("send handle");
                let _ = server.await;
            });
        });
        let handle = rx.recv().expect("test hub started");
        Self {
            addr,
            ca,
            state,
            handle: Some(handle),
            thread: Some(thread),
        }
    }

    /// The base URL to configure the client with, e.g. `http://127.0.0.1:41234` (`https://`
    /// for a hub from [`start_tls`](Self::start_tls)).
    pub fn url(&self) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The port the hub listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The next requests to `endpoint` (`startup`, `sync` or `log`) get these replies, in order;
    /// after them, the default.
    pub fn script(&self, endpoint: &str, replies: impl IntoIterator<Item = Reply>) {
        self.state
            .scripts
            .lock()
            .unwrap()
            .entry(endpoint.to_owned())
            .or_default()
            .extend(replies);
    }

    /// The reply for `endpoint` once its script is used up (initially `202`).
    pub fn set_default(&self, endpoint: &str, reply: Reply) {
        self.state
            .defaults
            .lock()
            .unwrap()
            .insert(endpoint.to_owned(), reply);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// The query strings of the requests to `endpoint` in the order they arrived, recorded
    /// before the hub answers (and before a scripted [`Reply::Delay`]): a request the client
    /// stopped waiting for is here even when [`received`](Self::received) never gets it. A
    /// tallying hub keeps none.
    pub fn arrivals(&self, endpoint: &str) -> Vec<String> {
        self.state
            .arrived
            .lock()
            .unwrap()
            .iter()
            .filter(|(e, _)| e == endpoint)
            .map(|(_, q)| q.clone())
            .collect()
    }

    /// Received requests to `endpoint`.
    pub fn received_at(&self, endpoint: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.endpoint == endpoint)
            .collect()
    }

    /// The JSON of sync payloads the hub accepted, each `message_uuid` once (as the real hub
    /// de-duplicates).
    pub fn accepted_syncs(&self) -> Vec<Value> {
        let mut seen = std::collections::HashSet::new();
        self.received_at("sync")
            .into_iter()
            .filter(|r| r.accepted())
            .filter_map(|r| r.json)
            .filter(|j| seen.insert(j["message_uuid"].as_str().unwrap_or_default().to_owned()))
            .collect()
    }

    /// The sum of `request_count` over accepted syncs, optionally for one path only.
    pub fn request_count(&self, path: Option<&str>) -> u64 {
        self.accepted_syncs()
            .iter()
            .flat_map(|s| s["requests"].as_array().cloned().unwrap_or_default())
            .filter(|r| path.is_none_or(|p| r["path"] == p))
            .map(|r| r["request_count"].as_u64().unwrap_or(0))
            .sum()
    }

    /// Polls until `pred` holds for what was received, or `timeout` passes; returns whether it held.
    pub fn wait_until(&self, timeout: Duration, pred: impl Fn(&[Received]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            // Copy first: `pred` may call back into the hub.
            let received = self.received();
            if pred(&received) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(handle) = self.handle.take() {
            // The stop command is sent when `stop` is called; the server's own thread then
            // ends, which `join` below waits for. (Blocking on the future here would fail
            // inside a test's runtime.)
            drop(handle.stop(false));
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn handle(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    body: web::Bytes,
    state: web::Data<State>,
) -> HttpResponse {
    let (client_id, env, endpoint) = path.into_inner();
    let reply = state
        .scripts
        .lock()
        .unwrap()
        .get_mut(&endpoint)
        .and_then(VecDeque::pop_front)
        .or_else(|| state.defaults.lock().unwrap().get(&endpoint).cloned())
        .unwrap_or(Reply::Status(202));
    if state.tally_only.load(std::sync::atomic::Ordering::Relaxed) {
        if let Ok(json) = serde_json::from_slice::<serde_json::Value>(&body) {
            let mut tally = state.tally.lock().unwrap();
            let uuid = format!("uuid:{}", json["message_uuid"].as_str().unwrap_or_default());
            if endpoint == "sync" && !tally.contains_key(&uuid) {
                tally.insert(uuid, 1);
                for r in json["requests"].as_array().into_iter().flatten() {
                    *tally
                        .entry(r["path"].as_str().unwrap_or_default().to_owned())
                        .or_default() += r["request_count"].as_u64().unwrap_or(0);
                }
            }
        }
        return HttpResponse::Accepted().finish();
    }
    state
        .arrived
        .lock()
        .unwrap()
        .push((endpoint.clone(), req.query_string().to_owned()));
    let json = serde_json::from_slice(&body).ok();
    let lines = if endpoint == "log" {
        let mut text = String::new();
        let _ = flate2::read::MultiGzDecoder::new(&body[..]).read_to_string(&mut text);
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    } else {
        Vec::new()
    };
    if let Reply::Delay(wait, _) = &reply {
        actix_rt::time::sleep(*wait).await;
    }
    state.received.lock().unwrap().push(Received {
        endpoint,
        client_id,
        env,
        query: req.query_string().to_owned(),
        headers: req
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
        json,
        lines,
        status: reply.status(),
        peer: req.peer_addr(),
    });
    let status = actix_web::http::StatusCode::from_u16(reply.status()).unwrap();
    let mut response = HttpResponse::build(status);
    match reply {
        Reply::WithHeaders(_, headers) => {
            for (name, value) in headers {
                response.insert_header((name, value));
            }
            response.finish()
        }
        Reply::Body(_, body) => response.content_type("application/json").body(body),
        _ => response.finish(),
    }
}
