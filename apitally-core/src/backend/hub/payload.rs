//! The hub v2 JSON bodies: startup and sync payloads (protocol.md §4, §5).

use std::{
    collections::BTreeMap,
    time::{SystemTime, UNIX_EPOCH},
};

use serde::Serialize;
use uuid::Uuid;

use super::{
    consumers::ConsumerItem,
    window::{RequestItem, ServerErrorItem, ValidationErrorItem},
};
use crate::{
    process::Resources,
    startup::{StartupData, DEFAULT_CLIENT},
    PathItem,
};

#[derive(Debug, Serialize)]
struct StartupPayload<'a> {
    instance_uuid: Uuid,
    message_uuid: Uuid,
    paths: &'a [PathItem],
    versions: BTreeMap<&'a str, &'a str>,
    client: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    openapi: Option<&'a str>,
}

/// Serialises the startup payload, with a fresh `message_uuid` that re-sends keep.
pub(crate) fn startup_body(
    data: &StartupData,
    instance_uuid: Uuid,
    app_version: Option<&str>,
) -> Vec<u8> {
    let mut versions: BTreeMap<&str, &str> = data
        .versions
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let rust = env!("APITALLY_RUSTC_VERSION");
    if !rust.is_empty() {
        versions.entry("rust").or_insert(rust);
    }
    if let Some(app) = app_version {
        versions.insert("app", app);
    }
    let client = if data.client.is_empty() {
        DEFAULT_CLIENT
    } else {
        &data.client
    };
    let payload = StartupPayload {
        instance_uuid,
        message_uuid: Uuid::new_v4(),
        paths: &data.paths,
        versions,
        client,
        openapi: data.openapi.as_deref(),
    };
    serde_json::to_vec(&payload).unwrap_or_default()
}

/// The sync payload of one window (protocol.md §4.3).
#[derive(Debug, Serialize)]
pub(crate) struct SyncPayload {
    pub(crate) timestamp: f64,
    pub(crate) instance_uuid: Uuid,
    pub(crate) message_uuid: Uuid,
    pub(crate) requests: Vec<RequestItem>,
    pub(crate) validation_errors: Vec<ValidationErrorItem>,
    pub(crate) server_errors: Vec<ServerErrorItem>,
    pub(crate) consumers: Vec<ConsumerItem>,
    pub(crate) resources: Option<Resources>,
}

/// Seconds since the Unix epoch, with millisecond precision.
pub(crate) fn unix_timestamp() -> f64 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    ms as f64 / 1000.0
}
