//! A local Apitally hub for trying the SDK without an account and without internet, for both
//! protocols: hub v2 and 1.x (OTLP).
//!
//! It accepts `POST /v2/{client_id}/{env}/startup`, `/sync` and `/log?uuid=`, checks every
//! payload against the protocol (answering `422` with the problems, as the hub does), accepts
//! `POST /v1/traces`, `/v1/logs` and `/v1/metrics` (OTLP/HTTP protobuf with a write token,
//! answering `400` with the problems when the real server would refuse them), and shows
//! what it received on a live dashboard at `/`: requests and errors per minute, per endpoint the
//! request count, status codes and response-time distribution, consumers, validation errors,
//! server errors with their traceback, request logs with decoded bodies, and the raw payloads,
//! so a privacy review can see exactly what leaves the app. The page reads `/api/dashboard`;
//! `/api/summary` serves the [`Summary`]; a text summary is printed after each sync.
//!
//! Receivers (`v2.rs`, `v1.rs`) convert payloads into protocol-neutral values (`model.rs`); the
//! state, the page and the JSON endpoints know only those.

mod check;
mod dashboard;
mod model;
mod page;
mod state;
mod summary;
mod v1;
mod v2;

use std::{
    net::TcpListener,
    sync::{Arc, Mutex},
};

use actix_web::{dev::ServerHandle, web, App, HttpServer};
use state::State;
pub use summary::{AppSummary, ConsumerSummary, EndpointSummary, Summary};

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
                            .route("/dashboard.css", web::get().to(page::css))
                            .route("/dashboard.js", web::get().to(page::js))
                            .route("/api/dashboard", web::get().to(page::dashboard))
                            .route("/api/summary", web::get().to(page::summary))
                            .route(
                                "/v2/{client_id}/{env}/{endpoint}",
                                web::post().to(v2::receive),
                            )
                            .route("/v1/{signal}", web::post().to(v1::receive))
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
