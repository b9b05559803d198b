//! The dashboard in a real headless browser (Chromium): the DOM after its JavaScript ran, before
//! and after traffic, and screenshots of both for a human to look at
//! (`target/local-hub-before.png`, `target/local-hub-after.png`, and with a request log and an
//! endpoint opened, `local-hub-log.png` and `local-hub-endpoint.png`); then a second app that
//! reports OTLP 1.x in the same views (`local-hub-otlp.png`, `local-hub-otlp-log.png`).
//!
//! Needs `chromium` on `PATH` (or its path in `CHROMIUM`); `.ci/run` installs it.

mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use common::*;
use local_hub::LocalHub;

/// The browser, or a failure that says how to get one.
fn chromium() -> String {
    if let Ok(path) = std::env::var("CHROMIUM") {
        return path;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Some(found) = std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
        {
            return found.display().to_string();
        }
    }
    panic!(
        "this test needs Chromium to render the dashboard, and none was found on PATH.\n\
         Install it with `apt-get update && apt-get install -y chromium` (CI's .ci/run does),\n\
         or point CHROMIUM at a Chromium or Chrome binary."
    );
}

/// Where screenshots go: `$CARGO_TARGET_DIR`, else the workspace's `target/`.
fn target_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    };
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs headless Chromium on `url` with `mode` (`--dump-dom` or `--screenshot=...`), bounded by
/// `timeout`; returns its standard output.
fn run_chromium(url: &str, mode: &str) -> String {
    let profile = std::env::temp_dir().join(format!(
        "local-hub-chromium-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    let out = Command::new("timeout")
        .args(["-k", "5", "60", &chromium()])
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--window-size=1280,2000",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(mode)
        .arg(url)
        .output()
        .expect("running chromium");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        out.status.success(),
        "chromium failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn dump_dom(url: &str) -> String {
    let dom = run_chromium(url, "--dump-dom");
    assert!(
        dom.contains("data-revision="),
        "the page rendered no data:\n{dom}"
    );
    dom
}

fn screenshot(url: &str, name: &str) {
    let path = target_dir().join(name);
    let _ = std::fs::remove_file(&path);
    run_chromium(url, &format!("--screenshot={}", path.display()));
    let png = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        png.starts_with(b"\x89PNG"),
        "{} is not a PNG",
        path.display()
    );
    eprintln!("screenshot: {}", path.display());
}

/// The start tags that carry `attr="value"` (the value as serialised: `&` → `&amp;`).
fn tags<'a>(dom: &'a str, attr: &str, value: &str) -> Vec<&'a str> {
    let needle = format!(" {attr}=\"{}\"", value.replace('&', "&amp;"));
    dom.match_indices(&needle)
        .map(|(at, _)| {
            let start = dom[..at].rfind('<').unwrap();
            let end = at + dom[at..].find('>').unwrap() + 1;
            &dom[start..end]
        })
        .collect()
}

/// The value of `name` in a start tag.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(&tag[at..at + tag[at..].find('"')?])
}

/// The only element with `attr="value"`, from its start tag to its matching end tag.
fn element<'a>(dom: &'a str, attr: &str, value: &str) -> &'a str {
    let found = tags(dom, attr, value);
    assert_eq!(
        found.len(),
        1,
        "one element with {attr}={value:?}, found {found:?}"
    );
    let start = dom.find(found[0]).unwrap();
    let name: String = found[0][1..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let (open, close) = (format!("<{name}"), format!("</{name}>"));
    let (mut depth, mut pos) = (1, start + open.len());
    while depth > 0 {
        let next_close = pos + dom[pos..].find(&close).expect("an end tag");
        match dom[pos..next_close].find(&open).map(|i| pos + i) {
            Some(o) => {
                // `<tr ...>` opens one, `<track` does not.
                if dom[o + open.len()..].starts_with([' ', '>']) {
                    depth += 1;
                }
                pos = o + open.len();
            }
            None => {
                depth -= 1;
                pos = next_close + close.len();
            }
        }
    }
    &dom[start..pos]
}

#[test]
fn dashboard_in_a_browser() {
    chromium();
    let hub = LocalHub::start("127.0.0.1:0").unwrap();
    let page = format!("{}/", hub.url());

    // Before traffic: the routes from the startup data, none with requests.
    post_json(hub.url(), "startup", &startup());
    let dom = dump_dom(&page);
    let rows = tags(&dom, "data-declared", "true");
    assert_eq!(rows.len(), 6, "{rows:#?}");
    assert!(rows.iter().all(|r| attr(r, "data-requests") == Some("0")));
    assert_eq!(tags(&dom, "data-endpoint", "GET /items/{item_id}").len(), 1);
    assert!(dom.contains("No requests yet"));
    assert!(dom.contains("No request logs yet"));
    assert!(
        element(&dom, "id", "log-totals").contains("hidden"),
        "no totals before a post carries them"
    );
    screenshot(&page, "local-hub-before.png");

    // Traffic: three syncs a minute apart and a request-log file.
    let at = now();
    for s in syncs(at) {
        // With the SDK's request-log totals (the Apitally-Request-Logs header).
        let totals = (
            "Apitally-Request-Logs",
            "logged=3, sampled-out=40, excluded=2, dropped=1",
        );
        post_json_with(hub.url(), "sync", &s, &[totals]);
    }
    post_logs(hub.url(), &log_lines(at));
    let linked = format!("{page}#log-{CREATE_LOG}");
    let dom = dump_dom(&linked);

    // The endpoint with its count.
    let row = tags(&dom, "data-endpoint", "GET /items/{item_id}");
    assert_eq!(attr(row[0], "data-requests"), Some("35"), "{row:?}");

    // Requests per minute: one bar group per minute, three of them with traffic.
    let chart = element(&dom, "id", "traffic-chart");
    let busy: Vec<&str> = tags(chart, "class", "minute")
        .into_iter()
        .filter(|g| attr(g, "data-requests") != Some("0"))
        .map(|g| attr(g, "data-requests").unwrap())
        .collect();
    assert_eq!(busy, ["8", "35", "2"]);
    let errors = tags(chart, "data-requests", "35");
    assert_eq!(attr(errors[0], "data-client-errors"), Some("32"));

    // Its response-time distribution: the three non-empty 10 ms bins.
    let histogram = element(&dom, "data-endpoint", "GET /items/{item_id}");
    let bars = histogram.matches("data-bucket=").count();
    assert_eq!(bars, 3, "{histogram}");
    assert!(histogram.contains(r#"data-bars="3""#));
    assert!(
        histogram.contains("&lt; 10 ms"),
        "p50 shows `< 10 ms`: {histogram}"
    );

    // The status breakdown names the 404s.
    let status = element(&dom, "data-status-breakdown", "GET /items/{item_id}");
    let code = tags(status, "data-status-code", "404");
    assert_eq!(attr(code[0], "data-count"), Some("31"), "{status}");
    let class = tags(status, "data-status-class", "4xx");
    assert_eq!(attr(class[0], "data-count"), Some("31"));
    let kpi = element(&dom, "id", "kpi-errors");
    assert!(
        kpi.contains("<b>404</b>"),
        "the error rate says they are 404s: {kpi}"
    );

    // Request logs, newest first; the linked one expanded with its decoded body.
    let logs: Vec<&str> = tags(&dom, "class", "log clickable")
        .into_iter()
        .map(|t| attr(t, "data-log-id").unwrap())
        .collect();
    assert_eq!(logs, [FAIL_LOG, HOSTILE_LOG, CREATE_LOG]);
    let totals = element(&dom, "id", "log-totals");
    assert!(!totals.contains("hidden"), "{totals}");
    assert!(
        totals.contains("request logs: <b>3</b> logged, <b>40</b> sampled out, <b>2</b> excluded, <b class=\"bad\">1</b> dropped"),
        "{totals}"
    );
    let detail = element(&dom, "data-log-detail", CREATE_LOG);
    assert!(
        detail.contains("{\n  \"name\": \"Widget\",\n  \"price_cents\": 1999\n}"),
        "the request body, decoded and indented: {detail}"
    );
    assert!(detail.contains(r#"data-body="response""#));
    assert!(detail.contains("creating item 1 name=Widget"));
    assert!(detail.contains(r#"data-span="store.insert""#));
    assert!(
        tags(&dom, "data-log-detail", HOSTILE_LOG).is_empty(),
        "others stay folded"
    );

    // Consumers, validation errors, server errors with the traceback folded.
    assert!(dom.contains(r#"data-consumer="acme""#) && dom.contains("Acme Corp"));
    assert!(dom.contains(r#"data-validation-error="value_error""#));
    let server = element(&dom, "data-server-error", "DatabaseDown");
    assert!(server.contains("<details data-key=") && !server.contains(" open=\"\""));

    // Hostile request data is shown as text, never parsed as markup.
    assert!(dom.contains("/items/42?q=&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(dom.contains("&lt;img src=x onerror=alert(2)&gt;"));
    assert_eq!(
        dom.matches("<script").count(),
        1,
        "only the page's own script"
    );
    assert!(!dom.contains("<img"));

    screenshot(&page, "local-hub-after.png");
    screenshot(&linked, "local-hub-log.png");
    screenshot(
        &format!("{page}#endpoint-GET%20%2Fitems%2F%7Bitem_id%7D"),
        "local-hub-endpoint.png",
    );

    otlp_app_in_the_same_views(&hub, &page);
}

/// A second app, reporting OTLP 1.x with the same traffic, shown with the same views; its
/// request log's link picks it.
fn otlp_app_in_the_same_views(hub: &LocalHub, page: &str) {
    let at = now();
    post_otlp(hub.url(), &otlp_startup(at - 180.0));
    post_otlp(hub.url(), &otlp_logs(at));
    post_otlp(hub.url(), &otlp_traces(at));
    for collection in otlp_collections(at) {
        post_otlp(hub.url(), &collection);
    }
    let linked = format!("{page}#log-{OTLP_CREATE_LOG}");
    let dom = dump_dom(&linked);

    // The app, its protocol, and the picker for the two apps; never the token.
    let info = element(&dom, "id", "app-info");
    assert!(info.contains(&format!("<h1>{OTLP_APP}</h1>")), "{info}");
    assert_eq!(tags(info, "data-protocol", "OTLP 1.x").len(), 1);
    assert!(info.contains("actix-web"));
    assert!(!dom.contains(TOKEN));
    let picker = tags(&dom, "id", "app-picker");
    assert!(!picker[0].contains(" hidden"), "{picker:?}");

    // Endpoints: the six declared routes, with the traffic of the metrics exports.
    assert_eq!(tags(&dom, "data-declared", "true").len(), 6);
    let row = tags(&dom, "data-endpoint", "GET /items/{item_id}");
    assert_eq!(attr(row[0], "data-requests"), Some("35"), "{row:?}");

    // The chart: the three collections in their minutes.
    let chart = element(&dom, "id", "traffic-chart");
    let busy: Vec<&str> = tags(chart, "class", "minute")
        .into_iter()
        .filter_map(|g| attr(g, "data-requests"))
        .filter(|n| *n != "0")
        .collect();
    assert_eq!(busy, ["8", "35", "2"]);

    // The response-time distribution from the exponential buckets: 1, 3, 4, 15 and 125 ms.
    let endpoint = element(&dom, "data-endpoint", "GET /items/{item_id}");
    assert!(endpoint.contains(r#"data-bars="5""#), "{endpoint}");
    assert!(
        endpoint.contains("0.98–1.1 ms"),
        "p50 names the bucket of 1 ms: {endpoint}"
    );

    // The status breakdown.
    let status = element(&dom, "data-status-breakdown", "GET /items/{item_id}");
    let code = tags(status, "data-status-code", "404");
    assert_eq!(attr(code[0], "data-count"), Some("31"), "{status}");
    assert!(element(&dom, "id", "kpi-errors").contains("<b>404</b>"));

    // The request log, expanded: decoded body, the app log record and the child span.
    let logs: Vec<&str> = tags(&dom, "class", "log clickable")
        .into_iter()
        .map(|t| attr(t, "data-log-id").unwrap())
        .collect();
    assert_eq!(logs, [OTLP_FAIL_LOG, OTLP_HOSTILE_LOG, OTLP_CREATE_LOG]);
    let detail = element(&dom, "data-log-detail", OTLP_CREATE_LOG);
    assert!(
        detail.contains("{\n  \"name\": \"Widget\",\n  \"price_cents\": 1999\n}"),
        "{detail}"
    );
    assert!(detail.contains("http://127.0.0.1:8000/items"));
    assert!(detail.contains("creating item 1 name=Widget"));
    assert!(detail.contains(r#"data-span="store.insert""#));
    assert!(detail.contains(r#"data-span="POST /items""#));

    // Hostile values stay text here too.
    assert!(dom.contains("/items/42?q=&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_eq!(dom.matches("<script").count(), 1);
    assert!(!dom.contains("<img"));

    screenshot(&linked, "local-hub-otlp-log.png");
    let app = OTLP_APP.replace('…', "%E2%80%A6").replace('/', "%2F");
    let dom = dump_dom(&format!("{page}?app={app}"));
    assert_eq!(
        tags(&dom, "data-protocol", "OTLP 1.x").len(),
        1,
        "?app= picks it"
    );
    screenshot(&format!("{page}?app={app}"), "local-hub-otlp.png");
}
