//! The example axum API: items with an API-key consumer, a user area, validation, a server
//! error and a panic, reporting to Apitally.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use apitally::{
    ApitallyConfig, ApitallyLayer, ApitallyRequest, Consumer, ConsumerExt, RequestLoggingConfig,
    ServerErrorExtension,
};
use axum::{
    extract::{Path, Query, Request, State},
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use serde::{Deserialize, Serialize};

/// The client id of the offline (local hub) setup: any UUID will do.
pub const OFFLINE_CLIENT_ID: &str = "00000000-0000-4000-8000-000000000000";
/// The write token of the offline setup: any `apt_` and 24 letters or digits.
pub const OFFLINE_WRITE_TOKEN: &str = "apt_000000000000000000000000";

/// API keys of the example's customers: (key, id, name, group).
pub const API_KEYS: [(&str, &str, &str, &str); 2] = [
    ("key-acme", "customer-1", "Acme Corp", "Enterprise"),
    ("key-globex", "customer-2", "Globex", "Startup"),
];

/// The config that reports to a local hub at `hub_url`: over hub v2, or over Apitally 1.x
/// with `otlp`.
pub fn offline_config(hub_url: &str, otlp: bool) -> ApitallyConfig {
    if otlp {
        ApitallyConfig::with_write_token(OFFLINE_WRITE_TOKEN, "dev").otlp_endpoint(hub_url)
    } else {
        ApitallyConfig::new(OFFLINE_CLIENT_ID, "dev").hub_base_url(hub_url)
    }
}

/// Adds the example's routes list and request logging to a config.
pub fn apitally_config(config: ApitallyConfig) -> ApitallyConfig {
    config
        .app_version(env!("CARGO_PKG_VERSION"))
        .route("GET", "/items")
        .route("POST", "/items")
        .route("GET", "/items/{id}")
        .route("GET", "/me")
        .route("GET", "/fail")
        .route("GET", "/panic")
        .request_logging(
            RequestLoggingConfig::new()
                .log_request_headers(true)
                .log_request_body(true)
                .log_response_body(true),
        )
}

/// An item of the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Item {
    id: u32,
    name: String,
    price_cents: u32,
}

/// A new item, as posted.
#[derive(Debug, Deserialize)]
struct NewItem {
    name: String,
    price_cents: u32,
}

#[derive(Debug, Deserialize)]
struct Page {
    limit: Option<u32>,
}

#[derive(Default)]
struct Store {
    items: Mutex<BTreeMap<u32, Item>>,
}

type Shared = Arc<Store>;

/// The API key's customer is the request's consumer.
async fn authenticate(req: Request, next: Next) -> Response {
    let key = req.headers().get("x-api-key").and_then(|v| v.to_str().ok());
    if let Some((_, id, name, group)) =
        key.and_then(|k| API_KEYS.iter().find(|(key, ..)| *key == k))
    {
        req.set_consumer(Consumer::new(*id).name(*name).group(*group));
    }
    next.run(req).await
}

async fn list(State(store): State<Shared>, Query(page): Query<Page>) -> Json<Vec<Item>> {
    let items = store.items.lock().unwrap();
    let limit = page.limit.unwrap_or(100) as usize;
    Json(items.values().take(limit).cloned().collect())
}

async fn create(State(store): State<Shared>, Json(new): Json<NewItem>) -> (StatusCode, Json<Item>) {
    let mut items = store.items.lock().unwrap();
    let id = items.keys().next_back().map_or(1, |id| id + 1);
    let item = Item {
        id,
        name: new.name,
        price_cents: new.price_cents,
    };
    items.insert(id, item.clone());
    (StatusCode::CREATED, Json(item))
}

async fn get_item(
    State(store): State<Shared>,
    Path(id): Path<u32>,
) -> Result<Json<Item>, StatusCode> {
    store
        .items
        .lock()
        .unwrap()
        .get(&id)
        .cloned()
        .map(Json)
        .ok_or(StatusCode::NOT_FOUND)
}

#[derive(Deserialize)]
struct Who {
    user: String,
}

/// The macro names the consumer from the handler's own extractor.
#[apitally::consumer(who.user.clone(), group = "users")]
async fn me(who: Query<Who>, apitally: ApitallyRequest) -> String {
    apitally.set_request_attribute("feature", "profile-v2");
    format!("hello {}", who.user)
}

#[derive(Debug)]
struct DatabaseDown;

impl std::fmt::Display for DatabaseDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("database unavailable")
    }
}

impl std::error::Error for DatabaseDown {}

impl IntoResponse for DatabaseDown {
    fn into_response(self) -> Response {
        let mut res = (StatusCode::INTERNAL_SERVER_ERROR, "try again later").into_response();
        res.extensions_mut()
            .insert(ServerErrorExtension::new(&self));
        res
    }
}

async fn fail() -> Result<&'static str, DatabaseDown> {
    Err(DatabaseDown)
}

async fn panic() -> &'static str {
    if std::hint::black_box(true) {
        panic!("the example panics here");
    }
    "unreachable"
}

/// The example's router, with Apitally as the outermost layer.
pub fn app(apitally: ApitallyLayer) -> Router {
    Router::new()
        .route("/items", get(list).post(create))
        .route("/items/{id}", get(get_item))
        .route("/me", get(me))
        .route("/fail", get(fail))
        .route("/panic", get(panic))
        .with_state(Shared::default())
        .layer(middleware::from_fn(authenticate))
        .layer(apitally)
}
