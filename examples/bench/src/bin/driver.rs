//! Runs the benchmark: every mode of `bench-server` in interleaved rounds under wrk, then under
//! callgrind for instruction counts, and prints one table with ratios to bare actix-web.
//!
//! Run through `examples/bench/run.sh`, which builds the release binaries first. Options (all
//! optional): `--rounds 9 --duration 5 --connections 32 --modes bare,prom,... --no-callgrind
//! --calls 2000,12000 --keep` (`--keep` keeps the callgrind files for `callgrind_annotate`;
//! `--rounds 0` runs callgrind only). `--sustained 30` adds one long run of each logging mode at
//! full load (does the logger keep up, with the default 16 MiB buffer?); `--consumers 60` adds a
//! run of that many seconds with 100,000 distinct consumers, sampling RSS, against bare.
//!
//! The servers report to a sink on 127.0.0.1:18001 that reads each post and answers `202` (see
//! [`sink`]); `--local-hub` runs the local hub there instead, to look at what was sent.

#![allow(missing_docs)]

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

const PORT: u16 = 18080;
const HUB: &str = "127.0.0.1:18001";
const MODES: [&str; 13] = [
    "bare",
    "disabled",
    "noop",
    "floor",
    "prom",
    "apitally",
    "apitally-consumer",
    "log-sampled-out",
    "log-headers",
    "log-bodies",
    "log-traces",
    "otlp-metrics",
    "otlp",
];

struct Args {
    rounds: usize,
    duration: u64,
    connections: usize,
    modes: Vec<String>,
    callgrind: bool,
    calls: (usize, usize),
    keep: bool,
    sustained: u64,
    consumers: u64,
    delivered: u64,
    errors: bool,
    local_hub: bool,
}

fn args() -> Args {
    let mut a = Args {
        rounds: 9,
        duration: 5,
        connections: 32,
        modes: MODES.iter().map(|m| m.to_string()).collect(),
        callgrind: true,
        calls: (2_000, 12_000),
        keep: false,
        sustained: 0,
        consumers: 0,
        delivered: 0,
        errors: false,
        local_hub: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().expect("a value after the flag");
        match flag.as_str() {
            "--rounds" => a.rounds = value().parse().expect("rounds"),
            "--duration" => a.duration = value().parse().expect("duration"),
            "--connections" => a.connections = value().parse().expect("connections"),
            "--modes" => a.modes = value().split(',').map(str::to_owned).collect(),
            "--no-callgrind" => a.callgrind = false,
            "--keep" => a.keep = true,
            "--local-hub" => a.local_hub = true,
            "--sustained" => a.sustained = value().parse().expect("sustained seconds"),
            "--consumers" => a.consumers = value().parse().expect("consumers seconds"),
            "--delivered" => a.delivered = value().parse().expect("delivered seconds"),
            "--errors" => a.errors = true,
            "--calls" => {
                let v = value();
                let (x, y) = v.split_once(',').expect("--calls N1,N2");
                a.calls = (x.parse().expect("N1"), y.parse().expect("N2"));
            }
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.with_file_name(name)
}

fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn start_server(mode: &str, wrapper: &[&str], log: &Path) -> Child {
    start_server_at(mode, wrapper, log, &format!("http://{HUB}"))
}

fn start_server_at(mode: &str, wrapper: &[&str], log: &Path, hub: &str) -> Child {
    let mut cmd = Command::new(wrapper.first().copied().unwrap_or("taskset"));
    if wrapper.is_empty() {
        cmd.args(["-c", "0"]);
    } else {
        cmd.args(&wrapper[1..]);
    }
    let stderr = std::fs::File::create(log).expect("server log");
    let server = if mode.starts_with("axum-") {
        "bench-axum-server"
    } else {
        "bench-server"
    };
    cmd.arg(bin(server))
        .env("MODE", mode)
        .env("PORT", PORT.to_string())
        .env("APITALLY_HUB_BASE_URL", hub)
        .env("RUST_LOG", "warn")
        // As servers run: the default panic hook then prints one line, not a symbolised
        // backtrace (which would be the app's own cost, not Apitally's).
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start bench-server")
}

fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    num(11) + num(12)
}

/// A `kB` field of `/proc/<pid>/status` (`VmHWM`: peak RSS, `VmRSS`: current RSS).
fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn peak_rss_kb(pid: u32) -> u64 {
    status_kb(pid, "VmHWM")
}

/// The request mix, as raw HTTP/1.1 (same as mix.lua).
fn mix() -> Vec<Vec<u8>> {
    let body = format!(
        r#"{{"name":"Widget","description":"{}","price_cents":1999,"tags":["a","b","c"],"password":"hunter2"}}"#,
        "x".repeat(900)
    );
    let h = "Host: 127.0.0.1\r\nx-api-key: bench-consumer-1\r\ncontent-type: application/json\r\n";
    vec![
        format!("GET /hello HTTP/1.1\r\n{h}\r\n").into_bytes(),
        format!("GET /users/42 HTTP/1.1\r\n{h}\r\n").into_bytes(),
        format!(
            "POST /echo HTTP/1.1\r\n{h}content-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
        format!("GET /api/items HTTP/1.1\r\n{h}\r\n").into_bytes(),
    ]
}

/// Sends `n` requests of the mix over one keep-alive connection and reads each response.
fn send(n: usize) -> std::io::Result<()> {
    send_mix(n, &mix())
}

fn send_mix(n: usize, mix: &[Vec<u8>]) -> std::io::Result<()> {
    let stream = TcpStream::connect(("127.0.0.1", PORT))?;
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    for i in 0..n {
        writer.write_all(&mix[i % mix.len()])?;
        read_response(&mut reader)?;
    }
    Ok(())
}

fn read_response(reader: &mut BufReader<TcpStream>) -> std::io::Result<Vec<u8>> {
    let mut len = 0;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                len = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    Ok(body)
}

fn get_allocs() -> u64 {
    let stream = TcpStream::connect(("127.0.0.1", PORT)).expect("connect");
    let mut writer = stream.try_clone().expect("clone");
    writer
        .write_all(b"GET /__allocs HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let body = read_response(&mut BufReader::new(stream)).expect("response");
    String::from_utf8_lossy(&body).trim().parse().unwrap_or(0)
}

#[derive(Debug, Clone, Default)]
struct Sample {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_us: f64,
    rss_mb: f64,
    allocs: f64,
    dropped: u64,
}

fn parse_ms(v: &str) -> f64 {
    let v = v.trim();
    if let Some(x) = v.strip_suffix("us") {
        x.parse::<f64>().unwrap_or(0.0) / 1000.0
    } else if let Some(x) = v.strip_suffix("ms") {
        x.parse().unwrap_or(0.0)
    } else if let Some(x) = v.strip_suffix('s') {
        x.parse::<f64>().unwrap_or(0.0) * 1000.0
    } else {
        0.0
    }
}

fn wrk(args: &Args, seconds: u64) -> (f64, f64, f64, u64) {
    wrk_with(args, seconds, "mix.lua")
}

fn wrk_with(args: &Args, seconds: u64, script: &str) -> (f64, f64, f64, u64) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(script);
    let out = Command::new("taskset")
        .args(["-c", "1", "wrk", "-t1"])
        .arg(format!("-c{}", args.connections))
        .arg(format!("-d{seconds}s"))
        .args(["--latency", "-s"])
        .arg(&script)
        .arg(format!("http://127.0.0.1:{PORT}"))
        .output()
        .expect("wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut rps = 0.0;
    let mut p50 = 0.0;
    let mut p99 = 0.0;
    let mut requests = 0;
    for line in text.lines() {
        let t = line.trim();
        if let Some(v) = t.strip_prefix("Requests/sec:") {
            rps = v.trim().parse().unwrap_or(0.0);
        } else if let Some(v) = t.strip_prefix("50%") {
            p50 = parse_ms(v);
        } else if let Some(v) = t.strip_prefix("99%") {
            p99 = parse_ms(v);
        } else if t.contains(" requests in ") {
            requests = t
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        }
    }
    (rps, p50, p99, requests)
}

fn measure(args: &Args, mode: &str, dir: &Path) -> Sample {
    let log = dir.join(format!("server-{mode}.log"));
    let mut server = start_server(mode, &[], &log);
    assert!(
        wait_for_port(PORT, Duration::from_secs(20)),
        "{mode} did not start"
    );
    wrk(args, 1); // warm-up
    let allocs0 = get_allocs();
    let cpu0 = cpu_ticks(server.id());
    let (rps, p50, p99, requests) = wrk(args, args.duration);
    let cpu1 = cpu_ticks(server.id());
    let allocs1 = get_allocs();
    let rss = peak_rss_kb(server.id());
    stop(&mut server);
    let dropped = dropped_in(&log);
    let n = requests.max(1) as f64;
    Sample {
        rps,
        p50_ms: p50,
        p99_ms: p99,
        cpu_us: (cpu1 - cpu0) as f64 * 10_000.0 / n,
        rss_mb: rss as f64 / 1024.0,
        allocs: allocs1.saturating_sub(allocs0) as f64 / n,
        dropped,
    }
}

fn rss_kb(pid: u32) -> u64 {
    status_kb(pid, "VmRSS")
}

/// Logged requests lost, as the server's log reports them: `apitally: request logs lost since
/// the last sync (or export): N request(s) not logged because the request log buffer was full;
/// deleted F request log file(s) (M requests) over the limit ...`.
fn dropped_in(log: &Path) -> u64 {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split("request logs lost since the last ").nth(1))
        .flat_map(|l| l.split("; "))
        .filter_map(|part| {
            let part = part.split_once(": ").map_or(part, |(_, p)| p);
            if part.contains("not logged because the request log buffer was full") {
                part.split_whitespace().next()?.parse::<u64>().ok()
            } else if part.starts_with("deleted ") || part.contains("could not be read") {
                let (_, requests) = part.split_once(" (")?;
                requests.split_whitespace().next()?.parse::<u64>().ok()
            } else {
                None
            }
        })
        .sum()
}

/// One long run of each logging mode at full load: requests/s and dropped items.
fn sustained(args: &Args, dir: &Path) {
    println!();
    println!(
        "Sustained request logging, {} s at full load (32 connections, default 16 MiB buffer):",
        args.sustained
    );
    println!();
    println!("| mode | req/s | requests | log items dropped | peak RSS MB |");
    println!("|---|---|---|---|---|");
    for mode in ["log-headers", "log-bodies", "otlp"] {
        let log = dir.join(format!("sustained-{mode}.log"));
        let mut server = start_server(mode, &[], &log);
        assert!(wait_for_port(PORT, Duration::from_secs(20)), "{mode}");
        let (rps, _, _, requests) = wrk(args, args.sustained);
        let rss = peak_rss_kb(server.id());
        stop(&mut server);
        println!(
            "| {mode} | {rps:.0} | {requests} | {} | {:.1} |",
            dropped_in(&log),
            rss as f64 / 1024.0
        );
    }
}

/// RSS over a run with 100,000 distinct consumers, against bare actix-web over the same run.
fn consumers(args: &Args, dir: &Path) {
    println!();
    println!(
        "{} s with a different consumer on every request (100,000 distinct ids, cycled), RSS sampled every 10 s:",
        args.consumers
    );
    println!();
    println!("| mode | req/s | requests | RSS MB at 10 s, 20 s, ... | peak RSS MB |");
    println!("|---|---|---|---|---|");
    for mode in ["bare", "apitally-consumer", "otlp-consumer"] {
        let log = dir.join(format!("consumers-{mode}.log"));
        let mut server = start_server(mode, &[], &log);
        assert!(wait_for_port(PORT, Duration::from_secs(20)), "{mode}");
        let pid = server.id();
        let sampler = std::thread::spawn({
            let seconds = args.consumers;
            move || {
                let mut samples = Vec::new();
                for _ in 0..seconds / 10 {
                    std::thread::sleep(Duration::from_secs(10));
                    samples.push(rss_kb(pid) as f64 / 1024.0);
                }
                samples
            }
        });
        let (rps, _, _, requests) = wrk_with(args, args.consumers, "consumers.lua");
        let samples = sampler.join().unwrap_or_default();
        let peak = peak_rss_kb(pid);
        stop(&mut server);
        let samples: Vec<String> = samples.iter().map(|s| format!("{s:.1}")).collect();
        println!(
            "| {mode} | {rps:.0} | {requests} | {} | {:.1} |",
            samples.join(", "),
            peak as f64 / 1024.0
        );
    }
}

/// `--delivered S`: what reached Apitally against what was served, S seconds at full load and
/// then a shutdown (SIGINT), with a fast intake and with a request-log intake that takes
/// 1.5 s per POST (hub v2's log files; 1.x's traces), in both protocols. The hub is the test
/// hub in tallying mode: request counts per route, request-log lines and SERVER spans, each
/// delivery counted once.
fn delivered(args: &Args, dir: &Path) {
    use apitally_test_hub::{Reply, TestHub, TALLY_LOG_LINES, TALLY_SPANS};
    println!();
    println!(
        "Delivered, {} s at full load then SIGINT (32 connections, default settings):",
        args.delivered
    );
    println!();
    println!("| mode | log intake | served (wrk) | counted in metrics | request logs delivered | share logged |");
    println!("|---|---|---|---|---|---|");
    let cases = [
        ("log-headers", None),
        ("log-headers", Some("log")),
        ("otlp", None),
        ("otlp", Some("traces")),
    ];
    for (mode, slow) in cases {
        let hub = TestHub::start_tallying_on(0);
        if let Some(endpoint) = slow {
            let status = if mode == "otlp" { 200 } else { 202 };
            hub.set_default(endpoint, Reply::Delay(Duration::from_millis(1_500), status));
        }
        let log = dir.join(format!("delivered-{mode}-{}.log", slow.unwrap_or("fast")));
        let mut server = start_server_at(mode, &[], &log, &hub.url());
        assert!(wait_for_port(PORT, Duration::from_secs(20)), "{mode}");
        let (_, _, _, requests) = wrk(args, args.delivered);
        stop(&mut server);
        let counted: u64 = ["/hello", "/users/{id}", "/echo", "/api/items"]
            .iter()
            .map(|route| hub.tallied(route))
            .sum();
        let logs = hub.tallied(if mode == "otlp" {
            TALLY_SPANS
        } else {
            TALLY_LOG_LINES
        });
        println!(
            "| {mode} | {} | {requests} | {counted} | {logs} | {:.1} % |",
            if slow.is_some() {
                "1.5 s per POST"
            } else {
                "fast"
            },
            logs as f64 * 100.0 / counted.max(1) as f64
        );
    }
}

/// `--errors`: instructions per request of a handler error answered 500 and of a panic that
/// Apitally answers 500 (its backtrace captured on the request path, symbolised off it), and
/// bare actix-web's handler error for reference.
fn errors(args: &Args, dir: &Path) {
    let request =
        |path: &str| format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n").into_bytes();
    let mut rows = Vec::new();
    for (mode, path) in [
        ("bare", "/fail"),
        ("err-500", "/fail"),
        ("err-panic", "/panic"),
    ] {
        let mix = vec![request(path)];
        let mut totals = Vec::new();
        for n in [args.calls.0 / 4, args.calls.1 / 4] {
            let out = dir.join(format!("callgrind-{mode}-{n}.out"));
            let log = dir.join(format!("callgrind-{mode}-{n}.log"));
            let out_arg = format!("--callgrind-out-file={}", out.display());
            let wrapper = ["valgrind", "--tool=callgrind", out_arg.as_str()];
            let mut server = start_server(mode, &wrapper, &log);
            assert!(wait_for_port(PORT, Duration::from_secs(120)), "{mode}");
            send_mix(n, &mix).expect("requests under callgrind");
            stop(&mut server);
            totals.push(callgrind_total(&out));
        }
        let per =
            (totals[1] as f64 - totals[0] as f64) / ((args.calls.1 - args.calls.0) / 4) as f64;
        rows.push((mode, path, per));
    }
    println!();
    println!("Errors, instructions per request (callgrind):");
    println!();
    println!("| mode | request | instructions/req | vs err-500 |");
    println!("|---|---|---|---|");
    let base = rows[1].2;
    for (mode, path, per) in rows {
        println!("| {mode} | GET {path} | {per:.0} | {:.2}x |", per / base);
    }
}

fn callgrind_total(file: &Path) -> u64 {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn instructions(args: &Args, mode: &str, dir: &Path) -> f64 {
    let mut totals = Vec::new();
    for n in [args.calls.0, args.calls.1] {
        let out = dir.join(format!("callgrind-{mode}-{n}.out"));
        let log = dir.join(format!("callgrind-{mode}-{n}.log"));
        let out_arg = format!("--callgrind-out-file={}", out.display());
        let wrapper = ["valgrind", "--tool=callgrind", out_arg.as_str()];
        let mut server = start_server(mode, &wrapper, &log);
        assert!(
            wait_for_port(PORT, Duration::from_secs(120)),
            "{mode} under valgrind"
        );
        send(n).expect("requests under callgrind");
        stop(&mut server);
        totals.push(callgrind_total(&out));
    }
    (totals[1] as f64 - totals[0] as f64) / (args.calls.1 - args.calls.0) as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    if v.is_empty() {
        0.0
    } else {
        v[v.len() / 2]
    }
}

fn main() {
    let args = args();
    let dir = std::env::temp_dir().join(format!("apitally-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    let mut hub = if args.local_hub {
        let hub = Command::new(bin("local-hub"))
            .env("HUB_BIND", HUB)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start local-hub (build it with cargo build --release -p local-hub)");
        assert!(wait_for_port(18001, Duration::from_secs(10)), "local hub");
        Some(hub)
    } else {
        sink::start(HUB);
        None
    };

    let mut samples: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
    for round in 0..args.rounds {
        let n = args.modes.len();
        for k in 0..n {
            let mode = &args.modes[(k + round) % n];
            let s = measure(&args, mode, &dir);
            eprintln!(
                "round {} {mode:<18} {:>9.0} req/s  cpu {:>6.2} us/req  allocs {:>6.2}/req",
                round + 1,
                s.rps,
                s.cpu_us,
                s.allocs
            );
            samples.entry(mode.clone()).or_default().push(s);
        }
    }
    let mut instr = BTreeMap::new();
    if args.callgrind {
        for mode in &args.modes {
            let i = instructions(&args, mode, &dir);
            eprintln!("callgrind {mode:<18} {i:>9.0} instructions/request");
            instr.insert(mode.clone(), i);
        }
    }

    let bare = samples.get("bare").cloned().unwrap_or_default();
    println!(
        "| mode | req/s | ratio to bare (paired median) | p50 ms | p99 ms | CPU µs/req | CPU ratio (paired median) | instructions/req | vs bare | allocs/req | vs bare | peak RSS MB | log items dropped |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let bare_instr = instr.get("bare").copied().unwrap_or(0.0);
    let bare_allocs = median(bare.iter().map(|s| s.allocs).collect());
    for mode in &args.modes {
        let s = samples.get(mode).map(Vec::as_slice).unwrap_or_default();
        let paired = |f: fn(&Sample) -> f64| {
            median(
                s.iter()
                    .zip(&bare)
                    .map(|(m, b)| if f(b) > 0.0 { f(m) / f(b) } else { 0.0 })
                    .collect(),
            )
        };
        let i = instr.get(mode).copied().unwrap_or(0.0);
        let allocs = median(s.iter().map(|x| x.allocs).collect());
        println!(
            "| {mode} | {:.0} | {:.3} | {:.2} | {:.2} | {:.2} | {:.3} | {:.0} | {:+.1} % | {:.1} | {:+.1} | {:.1} | {} |",
            median(s.iter().map(|x| x.rps).collect()),
            paired(|x| x.rps),
            median(s.iter().map(|x| x.p50_ms).collect()),
            median(s.iter().map(|x| x.p99_ms).collect()),
            median(s.iter().map(|x| x.cpu_us).collect()),
            paired(|x| x.cpu_us),
            i,
            if bare_instr > 0.0 { (i / bare_instr - 1.0) * 100.0 } else { 0.0 },
            allocs,
            allocs - bare_allocs,
            s.iter().map(|x| x.rss_mb).fold(0.0, f64::max),
            s.iter().map(|x| x.dropped).sum::<u64>(),
        );
    }
    if args.sustained > 0 {
        sustained(&args, &dir);
    }
    if args.consumers > 0 {
        consumers(&args, &dir);
    }
    if args.delivered > 0 {
        delivered(&args, &dir);
    }
    if args.errors {
        errors(&args, &dir);
    }
    if let Some(hub) = hub.as_mut() {
        let _ = hub.kill();
        let _ = hub.wait();
    }
    if args.keep {
        eprintln!("callgrind files kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A hub that costs next to nothing: it reads each HTTP/1.1 post (a `Content-Length` or chunked
/// body) and answers `202 Accepted`, for hub v2 and OTLP alike.
///
/// The benchmark measures the server. The local hub decodes what it is sent for its page
/// (request-log files, OTLP exports of 100,000 spans a second); it runs on no pinned core, so it
/// took CPU from the server's core and from wrk's, and the modes that send the most (the OTLP
/// export in particular) measured the hub as much as the SDK.
mod sink {
    use std::{
        io::{BufRead, BufReader, Read, Write},
        net::{TcpListener, TcpStream},
    };

    pub(super) fn start(addr: &str) {
        let listener = TcpListener::bind(addr).expect("bind the sink hub");
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let _ = serve(stream);
                });
            }
        });
    }

    fn serve(stream: TcpStream) -> std::io::Result<()> {
        let mut writer = stream.try_clone()?;
        let mut reader = BufReader::with_capacity(1 << 16, stream);
        let mut line = String::new();
        loop {
            // The head: a request line and headers, to the empty line.
            let (mut length, mut chunked) = (0u64, false);
            let mut first = true;
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                let header = line.trim_end();
                if header.is_empty() {
                    if first {
                        continue;
                    }
                    break;
                }
                first = false;
                let lower = header.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                } else if let Some(v) = lower.strip_prefix("transfer-encoding:") {
                    chunked = v.contains("chunked");
                }
            }
            if chunked {
                loop {
                    line.clear();
                    reader.read_line(&mut line)?;
                    let size =
                        u64::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
                            .unwrap_or(0);
                    std::io::copy(&mut (&mut reader).take(size + 2), &mut std::io::sink())?;
                    if size == 0 {
                        break;
                    }
                }
            } else {
                std::io::copy(&mut (&mut reader).take(length), &mut std::io::sink())?;
            }
            writer.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")?;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dropped_requests_are_read_from_the_loss_warnings() {
        let dir = std::env::temp_dir().join(format!("bench-drop-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("server.log");
        std::fs::write(
            &log,
            "[WARN] apitally: request logs lost since the last sync: deleted 2 request log file(s) \
             (300 requests) over the limit of 50 files waiting for upload; 12 request(s) not \
             logged because the request log buffer was full\n\
             [WARN] apitally: request logs lost since the last export: 5 request(s) not logged \
             because the request log buffer was full\n\
             [INFO] something else: 7 request(s)\n",
        )
        .unwrap();
        assert_eq!(super::dropped_in(&log), 317);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
