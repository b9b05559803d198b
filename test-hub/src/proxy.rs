//! A real HTTP `CONNECT` proxy on 127.0.0.1 for the tests: checks `Proxy-Authorization`,
//! counts tunnels and bytes, and can refuse, stay silent, or be stopped and started again on
//! the same port.

use std::{
    io::{Read, Write},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    thread::JoinHandle,
    time::Duration,
};

use base64::Engine as _;

/// How the proxy answers `CONNECT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Opens the tunnel (after checking the credentials, when it has some).
    Tunnel,
    /// Answers with this status (407 comes with `Proxy-Authenticate`) and closes.
    Refuse(u16),
    /// Reads the request and never answers (until stopped).
    Silent,
}

#[derive(Debug)]
struct State {
    mode: Mutex<ProxyMode>,
    /// The `Proxy-Authorization` value required, if any.
    authorization: Option<String>,
    stopped: AtomicBool,
    connections: AtomicU64,
    tunnels: AtomicU64,
    refused: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    requests: Mutex<Vec<String>>,
    upstream_locals: Mutex<Vec<SocketAddr>>,
    /// Every socket in use, shut down on stop.
    open: Mutex<Vec<TcpStream>>,
}

/// The running proxy. Stopped on drop.
#[derive(Debug)]
pub struct TestProxy {
    addr: SocketAddr,
    state: Arc<State>,
    thread: Option<JoinHandle<()>>,
}

impl TestProxy {
    /// Starts a proxy on a free port of 127.0.0.1; with `credentials`, it requires
    /// `Proxy-Authorization: Basic` with them and answers 407 otherwise.
    pub fn start(credentials: Option<(&str, &str)>) -> Self {
        Self::start_on(0, credentials)
    }

    /// Like [`start`](Self::start), on `port` (to start a stopped proxy again on its port).
    pub fn start_on(port: u16, credentials: Option<(&str, &str)>) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind test proxy");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("test proxy address");
        let state = Arc::new(State {
            mode: Mutex::new(ProxyMode::Tunnel),
            authorization: credentials.map(|(user, password)| {
                let raw = format!("{user}:{password}");
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                )
            }),
            stopped: AtomicBool::new(false),
            connections: AtomicU64::new(0),
            tunnels: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
            requests: Mutex::default(),
            upstream_locals: Mutex::default(),
            open: Mutex::default(),
        });
        let accept_state = Arc::clone(&state);
        let thread = std::thread::spawn(move || {
            while !accept_state.stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let state = Arc::clone(&accept_state);
                        std::thread::spawn(move || serve(&state, conn));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            addr,
            state,
            thread: Some(thread),
        }
    }

    /// The proxy's URL without credentials, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Changes how the next `CONNECT`s are answered.
    pub fn set_mode(&self, mode: ProxyMode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    /// TCP connections accepted.
    pub fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::Relaxed)
    }

    /// Tunnels opened.
    pub fn tunnels(&self) -> u64 {
        self.state.tunnels.load(Ordering::Relaxed)
    }

    /// `CONNECT`s answered with anything but 200 (407 for wrong credentials included).
    pub fn refused(&self) -> u64 {
        self.state.refused.load(Ordering::Relaxed)
    }

    /// Bytes carried from the client to the target, and from the target to the client.
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.state.bytes_up.load(Ordering::Relaxed),
            self.state.bytes_down.load(Ordering::Relaxed),
        )
    }

    /// The request heads received (the `CONNECT` line and headers).
    pub fn requests(&self) -> Vec<String> {
        self.state.requests.lock().unwrap().clone()
    }

    /// The local addresses of the proxy's connections to targets: what a target sees as the
    /// peer of a tunnelled request.
    pub fn upstream_addrs(&self) -> Vec<SocketAddr> {
        self.state.upstream_locals.lock().unwrap().clone()
    }

    /// Stops accepting, closes every connection, and waits for the accept loop.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.state.stopped.store(true, Ordering::Relaxed);
        for conn in self.state.open.lock().unwrap().drain(..) {
            let _ = conn.shutdown(Shutdown::Both);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn track(state: &State, conn: &TcpStream) {
    if let Ok(clone) = conn.try_clone() {
        state.open.lock().unwrap().push(clone);
    }
    if state.stopped.load(Ordering::Relaxed) {
        let _ = conn.shutdown(Shutdown::Both);
    }
}

fn serve(state: &State, mut conn: TcpStream) {
    state.connections.fetch_add(1, Ordering::Relaxed);
    let _ = conn.set_nonblocking(false);
    track(state, &conn);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    // Byte by byte, so that nothing after the head (the client's TLS hello) is consumed here.
    while !head.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) if head.len() < 16 * 1024 => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    state.requests.lock().unwrap().push(head.clone());
    let mode = *state.mode.lock().unwrap();
    let refuse = |conn: &mut TcpStream, status: u16| {
        state.refused.fetch_add(1, Ordering::Relaxed);
        let extra = if status == 407 {
            "Proxy-Authenticate: Basic realm=\"test\"\r\n"
        } else {
            ""
        };
        let _ = write!(
            conn,
            "HTTP/1.1 {status} Refused\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
    };
    match mode {
        ProxyMode::Silent => {
            while !state.stopped.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
            }
            return;
        }
        ProxyMode::Refuse(status) => return refuse(&mut conn, status),
        ProxyMode::Tunnel => {}
    }
    let mut lines = head.split("\r\n");
    let target = lines
        .next()
        .and_then(|l| l.strip_prefix("CONNECT "))
        .and_then(|l| l.strip_suffix(" HTTP/1.1"))
        .map(str::to_owned);
    let Some(target) = target else {
        return refuse(&mut conn, 400);
    };
    if let Some(expected) = &state.authorization {
        let given = lines.find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("proxy-authorization")
                .then(|| value.trim().to_owned())
        });
        if given.as_deref() != Some(expected.as_str()) {
            return refuse(&mut conn, 407);
        }
    }
    let Ok(upstream) = TcpStream::connect(&target) else {
        return refuse(&mut conn, 502);
    };
    track(state, &upstream);
    if let Ok(local) = upstream.local_addr() {
        state.upstream_locals.lock().unwrap().push(local);
    }
    if conn
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    state.tunnels.fetch_add(1, Ordering::Relaxed);
    let _ = conn.set_read_timeout(None);
    let (Ok(conn_r), Ok(up_r)) = (conn.try_clone(), upstream.try_clone()) else {
        return;
    };
    std::thread::scope(|s| {
        s.spawn(|| pipe(conn_r, upstream, &state.bytes_up));
        s.spawn(|| pipe(up_r, conn, &state.bytes_down));
    });
}

/// Copies until either side ends, counting bytes; then ends the other side's writing.
fn pipe(mut from: TcpStream, mut to: TcpStream, counter: &AtomicU64) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
                counter.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
