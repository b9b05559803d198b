//! The example API: items with path parameters, JSON bodies and query parameters, a validation
//! error, a failing and a panicking handler, a streamed response and a health check, with
//! consumers from an API key and from an authenticated user.

#![allow(missing_docs)]

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
};

use actix_web::{
    body::MessageBody,
    delete,
    dev::{ServiceRequest, ServiceResponse},
    get,
    http::StatusCode,
    middleware::Next,
    post, put, web, HttpMessage, HttpRequest, HttpResponse, Responder, ResponseError,
};
use apitally::{
    ApitallyConfig, Consumer, RequestLoggingConfig, ValidationError, ValidationErrorExt,
};
use serde::{Deserialize, Serialize};

/// Demo API keys and the customers they belong to: (key, identifier, name, group).
pub const API_KEYS: [(&str, &str, &str, &str); 2] = [
    ("demo-key-acme", "acme", "Acme Corp", "Enterprise"),
    ("demo-key-globex", "globex", "Globex", "Startup"),
];

/// The client id the example reports with to the local hub (any UUID works there).
pub const OFFLINE_CLIENT_ID: &str = "00000000-0000-4000-8000-000000000000";
/// The write token the example reports with to the local hub (any well-formed token works
/// there; none is checked against an account).
pub const OFFLINE_WRITE_TOKEN: &str = "apt_000000000000000000000000";

/// How the example reports to the local hub when no credential is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflineProtocol {
    /// Hub v2 with a client id (SDK 0.x, what existing apps run): the default.
    Hub,
    /// Apitally 1.x (OTLP) with a write token: `EXAMPLE_PROTOCOL=otlp`.
    Otlp,
}

impl OfflineProtocol {
    /// From `EXAMPLE_PROTOCOL`: `otlp` (or `1.x`), `hub` (or `v2`, or unset).
    pub fn from_env() -> Result<Self, String> {
        match std::env::var("EXAMPLE_PROTOCOL")
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "" | "hub" | "v2" => Ok(Self::Hub),
            "otlp" | "1.x" => Ok(Self::Otlp),
            other => Err(format!(
                "EXAMPLE_PROTOCOL={other:?}: expected `hub` (the default) or `otlp`"
            )),
        }
    }

    /// The config that reports to the local hub at `hub_url` with this protocol.
    pub fn config(self, hub_url: &str, env: &str) -> ApitallyConfig {
        match self {
            Self::Hub => ApitallyConfig::new(OFFLINE_CLIENT_ID, env).hub_base_url(hub_url),
            Self::Otlp => {
                ApitallyConfig::with_write_token(OFFLINE_WRITE_TOKEN, env).otlp_endpoint(hub_url)
            }
        }
    }
}

/// Adds the example's consumer identification and route list to a config.
pub fn apitally_config(config: ApitallyConfig) -> ApitallyConfig {
    config
        .app_version(env!("CARGO_PKG_VERSION"))
        .identify_consumer(|req| {
            let key = req.headers().get("x-api-key")?.to_str().ok()?;
            let (_, id, name, group) = API_KEYS.iter().find(|(k, ..)| *k == key)?;
            Some(Consumer::new(*id).name(*name).group(*group))
        })
        .route("GET", "/health")
        .route("GET", "/items")
        .route("POST", "/items")
        .route("GET", "/items/{item_id}")
        .route("PUT", "/items/{item_id}")
        .route("DELETE", "/items/{item_id}")
        .route("GET", "/me/orders")
        .route("GET", "/report")
        .route("GET", "/fail")
        .route("GET", "/panic")
        .request_logging(request_logging())
}

/// The example's request logging: headers, bodies, and each request's logs and spans.
pub fn request_logging() -> RequestLoggingConfig {
    RequestLoggingConfig::new()
        .log_request_headers(true)
        .log_request_body(true)
        .log_response_body(true)
        .capture_logs(true)
        .capture_traces(true)
}

#[derive(Debug, Clone, Serialize)]
pub struct Item {
    id: u64,
    name: String,
    price_cents: u64,
}

#[derive(Debug, Deserialize)]
pub struct NewItem {
    name: String,
    price_cents: u64,
}

#[derive(Debug, Deserialize)]
pub struct ListParams {
    #[serde(default = "default_limit")]
    limit: usize,
    #[serde(default)]
    offset: usize,
}

fn default_limit() -> usize {
    10
}

#[derive(Default)]
pub struct Store {
    next_id: AtomicU64,
    items: Mutex<BTreeMap<u64, Item>>,
}

type Items<'a> = std::sync::MutexGuard<'a, BTreeMap<u64, Item>>;

impl Store {
    fn items(&self) -> Items<'_> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[get("/health")]
async fn health() -> &'static str {
    "ok"
}

#[get("/items")]
async fn list_items(store: web::Data<Store>, params: web::Query<ListParams>) -> impl Responder {
    let items: Vec<Item> = store
        .items()
        .values()
        .skip(params.offset)
        .take(params.limit)
        .cloned()
        .collect();
    web::Json(items)
}

/// The app's own validation, reported to Apitally next to actix's extractor errors.
fn validate(req: &HttpRequest, item: &NewItem) -> Option<HttpResponse> {
    if item.name.trim().is_empty() {
        req.add_validation_error(ValidationError::new(
            ["body", "name"],
            "must not be empty",
            "value_error",
        ));
        return Some(HttpResponse::UnprocessableEntity().json(serde_json::json!({
            "detail": [{"loc": ["body", "name"], "msg": "must not be empty"}]
        })));
    }
    None
}

#[post("/items")]
async fn create_item(
    req: HttpRequest,
    store: web::Data<Store>,
    body: web::Json<NewItem>,
) -> HttpResponse {
    if let Some(invalid) = validate(&req, &body) {
        return invalid;
    }
    let id = store.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    // Shown in the request's log line (capture_logs), in a span (capture_traces).
    let span = tracing::info_span!("store.insert", item.id = id);
    let _entered = span.enter();
    tracing::info!(name = %body.name, "creating item {id}");
    let item = Item {
        id,
        name: body.name.clone(),
        price_cents: body.price_cents,
    };
    store.items().insert(id, item.clone());
    HttpResponse::Created().json(item)
}

#[get("/items/{item_id}")]
async fn get_item(store: web::Data<Store>, item_id: web::Path<u64>) -> HttpResponse {
    match store.items().get(&item_id) {
        Some(item) => HttpResponse::Ok().json(item),
        None => HttpResponse::NotFound().json(serde_json::json!({"detail": "no such item"})),
    }
}

#[put("/items/{item_id}")]
async fn update_item(
    req: HttpRequest,
    store: web::Data<Store>,
    item_id: web::Path<u64>,
    body: web::Json<NewItem>,
) -> HttpResponse {
    if let Some(invalid) = validate(&req, &body) {
        return invalid;
    }
    match store.items().get_mut(&item_id) {
        Some(item) => {
            item.name = body.name.clone();
            item.price_cents = body.price_cents;
            HttpResponse::Ok().json(item.clone())
        }
        None => HttpResponse::NotFound().finish(),
    }
}

#[delete("/items/{item_id}")]
async fn delete_item(store: web::Data<Store>, item_id: web::Path<u64>) -> HttpResponse {
    match store.items().remove(&item_id) {
        Some(_) => HttpResponse::NoContent().finish(),
        None => HttpResponse::NotFound().finish(),
    }
}

/// A signed-in user, put in the request by [`authenticate`].
#[derive(Debug, Clone)]
pub struct User {
    id: String,
    name: String,
    plan: &'static str,
}

/// A toy auth middleware: `Authorization: Bearer user-<name>` signs in `<name>`.
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let user = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer user-"))
        .map(|name| User {
            id: format!("user-{name}"),
            name: name.to_owned(),
            plan: "Pro",
        });
    if let Some(user) = user {
        req.extensions_mut().insert(user);
    }
    next.call(req).await
}

#[apitally::consumer(user.id, name = user.name, group = user.plan)]
#[get("/me/orders")]
async fn my_orders(user: web::ReqData<User>) -> impl Responder {
    web::Json(serde_json::json!({"user": user.name, "orders": []}))
}

#[get("/report")]
async fn report() -> HttpResponse {
    let chunks = futures_util::stream::iter((0..5).map(|i| {
        Ok::<_, actix_web::Error>(web::Bytes::from(format!("line {i} of a streamed report\n")))
    }));
    HttpResponse::Ok()
        .content_type("text/plain")
        .streaming(chunks)
}

#[derive(Debug)]
pub struct DatabaseDown;

impl std::fmt::Display for DatabaseDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the database is not reachable")
    }
}

impl ResponseError for DatabaseDown {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

#[get("/fail")]
async fn fail() -> Result<HttpResponse, DatabaseDown> {
    Err(DatabaseDown)
}

#[get("/panic")]
async fn panic_handler() -> HttpResponse {
    let items: Vec<u32> = Vec::new();
    // An out-of-bounds index: Apitally answers 500 and reports the panic.
    HttpResponse::Ok().body(items[std::hint::black_box(3)].to_string())
}

/// Registers the example's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(health)
        .service(list_items)
        .service(create_item)
        .service(get_item)
        .service(update_item)
        .service(delete_item)
        .service(my_orders)
        .service(report)
        .service(fail)
        .service(panic_handler);
}
