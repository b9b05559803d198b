//! The summary as an HTML page and as JSON.

use std::sync::Mutex;

use actix_web::{http::header, web, HttpResponse};
use serde::Deserialize;
use serde_json::Value;

use crate::state::{now, State};

pub(crate) async fn json(state: web::Data<Mutex<State>>) -> HttpResponse {
    let summary = state.lock().unwrap_or_else(|e| e.into_inner()).summary();
    HttpResponse::Ok().json(summary)
}

#[derive(Debug, Deserialize)]
pub(crate) struct DashboardQuery {
    /// The `revision` of the data the caller has.
    since: Option<String>,
}

/// `GET /api/dashboard[?since=<revision>]`: what a dashboard shows.
pub(crate) async fn dashboard(
    query: web::Query<DashboardQuery>,
    state: web::Data<Mutex<State>>,
) -> HttpResponse {
    let body = {
        let state = state.lock().unwrap_or_else(|e| e.into_inner());
        serde_json::to_vec(&state.dashboard(now(), query.since.as_deref()))
    };
    match body {
        Ok(body) => HttpResponse::Ok()
            .content_type("application/json")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(body),
        Err(err) => HttpResponse::InternalServerError().body(err.to_string()),
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => esc(s),
        Value::Null => "".into(),
        other => esc(&other.to_string()),
    }
}

pub(crate) async fn html(state: web::Data<Mutex<State>>) -> HttpResponse {
    let summary = state.lock().unwrap_or_else(|e| e.into_inner()).summary();
    let mut page = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"5\">\
         <title>Local Apitally hub</title><style>body{font-family:sans-serif;margin:2em}\
         table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}\
         pre{background:#f6f6f6;padding:8px;max-height:300px;overflow:auto}</style></head><body>\
         <h1>Local Apitally hub</h1>",
    );
    if summary.apps.is_empty() {
        page.push_str("<p>Nothing received yet. Point the SDK here with <code>APITALLY_HUB_BASE_URL</code>.</p>");
    }
    for app in &summary.apps {
        page.push_str(&format!(
            "<h2>App {}</h2><p>{} sync(s), {} re-sent duplicate(s), instances: {}</p>",
            esc(&app.app),
            app.syncs,
            app.duplicates,
            esc(&app.instances.join(", "))
        ));
        page.push_str("<h3>Endpoints</h3><table><tr><th>Method</th><th>Path</th><th>Requests</th><th>Error rate</th><th>Server errors</th><th>p50 ms</th><th>p95 ms</th><th>Request bytes</th><th>Response bytes</th></tr>");
        for e in &app.endpoints {
            page.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1}%</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&e.method), esc(&e.path), e.requests, e.error_rate * 100.0, e.server_errors,
                e.p50_ms, e.p95_ms, e.request_bytes, e.response_bytes
            ));
        }
        page.push_str("</table><h3>Consumers</h3><table><tr><th>Identifier</th><th>Name</th><th>Group</th><th>Requests</th><th>Error rate</th></tr>");
        for c in &app.consumers {
            page.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}%</td></tr>",
                esc(&c.identifier),
                text(&c.name),
                text(&c.group),
                c.requests,
                c.error_rate * 100.0
            ));
        }
        page.push_str("</table><h3>Validation errors</h3><table><tr><th>Endpoint</th><th>Location</th><th>Message</th><th>Type</th><th>Count</th></tr>");
        for v in &app.validation_errors {
            page.push_str(&format!(
                "<tr><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                text(&v["method"]),
                text(&v["path"]),
                text(&v["loc"]),
                text(&v["msg"]),
                text(&v["type"]),
                text(&v["error_count"])
            ));
        }
        page.push_str("</table><h3>Server errors</h3>");
        for s in &app.server_errors {
            page.push_str(&format!(
                "<p><b>{} {}</b>: {} — {} ({}×)</p><pre>{}</pre>",
                text(&s["method"]),
                text(&s["path"]),
                text(&s["type"]),
                text(&s["msg"]),
                text(&s["error_count"]),
                text(&s["traceback"])
            ));
        }
        page.push_str(&format!(
            "<h3>Request logs ({} file(s))</h3>",
            app.log_files
        ));
        for line in app.request_logs.iter().rev().take(50) {
            page.push_str(&format!(
                "<pre>{}</pre>",
                esc(&serde_json::to_string_pretty(line).unwrap_or_default())
            ));
        }
        page.push_str("<h3>What left the app: the latest payloads, as received</h3>");
        for p in app.payloads.iter().rev() {
            page.push_str(&format!(
                "<pre>{}</pre>",
                esc(&serde_json::to_string_pretty(p).unwrap_or_default())
            ));
        }
        for r in &app.rejected {
            page.push_str(&format!("<p style=\"color:#b00\">Rejected: {}</p>", esc(r)));
        }
    }
    page.push_str("</body></html>");
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page)
}
