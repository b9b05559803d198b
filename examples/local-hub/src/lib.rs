//! A local Apitally hub (hub v2) for trying the SDK without an account and without internet.
//!
//! It accepts `POST /v2/{client_id}/{env}/startup`, `/sync` and `/log?uuid=`, checks every
//! payload against the protocol (answering `422` with the problems, as the hub does), and shows
//! what it received: per endpoint and per consumer the request count, error rate, p50 and p95
//! response time, request and response sizes; validation errors; server errors with their
//! traceback; consumers; request logs; and the raw payloads, so a privacy review can see exactly
//! what leaves the app. A summary is printed after each sync and served as an HTML page at `/`
//! (and as JSON at `/api/summary`).

mod check;
mod page;
mod state;

use std::{
    io::Read,
    net::TcpListener,
    sync::{Arc, Mutex},
};

use actix_web::{dev::ServerHandle, web, App, HttpRequest, HttpResponse, HttpServer};
use state::State;
pub use state::{ConsumerSummary, EndpointSummary, Summary};

/// A running local hub. Stops when dropped.
#[derive(Debug)]
pub struct LocalHub {
    url: String,
    state: Arc<Mutex<State>>,
    handle: Option<ServerHandle>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LocalHub {
    /// Starts the hub on `addr` (such as `127.0.0.1:8001`, or port 0 for any free port) on a
    /// thread of its own.
    pub fn start(addr: &str) -> std::io::Result<Self> {
        Self::start_with(addr, None)
    }

    /// Like [`start`](Self::start), serving HTTPS with this rustls configuration (to try the
    /// SDK's certificate options; `main` makes a CA and a certificate when `HUB_TLS=1`).
    pub fn start_tls(addr: &str, tls: rustls::ServerConfig) -> std::io::Result<Self> {
        Self::start_with(addr, Some(tls))
    }

    fn start_with(addr: &str, tls: Option<rustls::ServerConfig>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}", listener.local_addr()?);
        let state = Arc::new(Mutex::new(State::default()));
        let (tx, rx) = std::sync::mpsc::channel();
        let data = web::Data::from(Arc::clone(&state));
        let thread = std::thread::Builder::new()
            .name("local-hub".into())
            .spawn(move || {
                let system = actix_rt::System::new();
                system.block_on(async move {
                    let server = HttpServer::new(move || {
                        App::new()
                            .app_data(data.clone())
                            .app_data(web::PayloadConfig::new(16 << 20))
                            .route("/", web::get().to(page::html))
                            .route("/api/summary", web::get().to(page::json))
                            .route("/v2/{client_id}/{env}/{endpoint}", web::post().to(receive))
                    })
                    .workers(1)
                    .disable_signals();
                    let server = match tls {
                        Some(tls) => server.listen_rustls_0_23(listener, tls),
                        None => server.listen(listener),
                    };
                    let server = match server {
                        Ok(server) => server.run(),
                        Err(err) => {
                            eprintln!("local hub: {err}");
                            return;
                        }
                    };
                    let _ = tx.send(server.handle());
                    let _ = server.await;
                });
            })?;
        let handle = rx
            .recv()
            .map_err(|_| std::io::Error::other("the local hub did not start"))?;
        Ok(Self {
            url,
            state,
            handle: Some(handle),
            thread: Some(thread),
        })
    }

    /// The base URL, e.g. `http://127.0.0.1:8001`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// What the hub received so far, summarised.
    pub fn summary(&self) -> Summary {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .summary()
    }

    /// Blocks until the server stops (it runs until the process ends).
    pub fn wait(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for LocalHub {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            drop(handle.stop(false));
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn receive(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    body: web::Bytes,
    state: web::Data<Mutex<State>>,
) -> HttpResponse {
    let (client_id, env, endpoint) = path.into_inner();
    let app = format!("{client_id}/{env}");
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    let problems = match endpoint.as_str() {
        "startup" | "sync" => match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(json) => {
                let problems = if endpoint == "startup" {
                    check::startup(&json)
                } else {
                    check::sync(&json)
                };
                if problems.is_empty() {
                    if endpoint == "startup" {
                        state.startup(&app, json);
                    } else {
                        state.sync(&app, json);
                        println!("{}", state.terminal_summary(&app));
                    }
                }
                problems
            }
            Err(err) => vec![format!("body is not JSON: {err}")],
        },
        "log" => {
            let mut text = String::new();
            match flate2::read::MultiGzDecoder::new(&body[..]).read_to_string(&mut text) {
                Ok(_) => {
                    let lines: Vec<serde_json::Value> = text
                        .lines()
                        .filter_map(|l| serde_json::from_str(l).ok())
                        .collect();
                    let problems = check::log_lines(&lines);
                    if problems.is_empty() {
                        let query = req.query_string().to_owned();
                        state.logs(&app, &query, lines);
                    }
                    problems
                }
                Err(err) => vec![format!("body is not a gzip file: {err}")],
            }
        }
        other => return HttpResponse::NotFound().body(format!("no endpoint {other:?}")),
    };
    if problems.is_empty() {
        HttpResponse::Accepted().finish()
    } else {
        eprintln!("local hub: rejected {endpoint} from {app}: {problems:?}");
        state.rejected(&app, &endpoint, &problems);
        HttpResponse::UnprocessableEntity().json(serde_json::json!({ "detail": problems }))
    }
}
