//! The dashboard page (static HTML, CSS and JavaScript built into the binary) and the JSON it
//! reads.

use std::sync::Mutex;

use actix_web::{http::header, web, HttpResponse};
use serde::Deserialize;

use crate::state::{now, State};

const INDEX_HTML: &str = include_str!("../assets/index.html");
const DASHBOARD_CSS: &str = include_str!("../assets/dashboard.css");
const DASHBOARD_JS: &str = include_str!("../assets/dashboard.js");

/// Only this origin's own files and data: request data shown on the page cannot load or run
/// anything, even if an escaping mistake let markup through.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

pub(crate) async fn html() -> HttpResponse {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

pub(crate) async fn css() -> HttpResponse {
    asset("text/css; charset=utf-8", DASHBOARD_CSS)
}

pub(crate) async fn js() -> HttpResponse {
    asset("text/javascript; charset=utf-8", DASHBOARD_JS)
}

/// `GET /api/summary`: the summary (hub v2 shapes), as [`crate::Summary`].
pub(crate) async fn summary(state: web::Data<Mutex<State>>) -> HttpResponse {
    let summary = state.lock().unwrap_or_else(|e| e.into_inner()).summary();
    HttpResponse::Ok().json(summary)
}

#[derive(Debug, Deserialize)]
pub(crate) struct DashboardQuery {
    /// The `revision` of the data the page has.
    since: Option<String>,
}

/// `GET /api/dashboard[?since=<revision>]`: what the page shows.
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
