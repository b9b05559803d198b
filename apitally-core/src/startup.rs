//! Startup and sync payloads (protocol.md §4).

use std::collections::BTreeMap;

use serde::Serialize;

/// The client string sent in the startup data unless the adapter sets another.
pub const DEFAULT_CLIENT: &str = "rust:actix";

/// One route of the app, for the startup data's `paths`.
///
/// ```
/// # use apitally_core as apitally;
/// use apitally::PathItem;
///
/// let item = PathItem::new("get", "/items/{id}").summary("Get an item");
/// assert_eq!(item.get_method(), "GET");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathItem {
    method: String,
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
}

impl PathItem {
    /// A route with its method (sent uppercase) and template.
    pub fn new(method: impl Into<String>, path: impl Into<String>) -> Self {
        Self {
            method: method.into().to_ascii_uppercase(),
            path: path.into(),
            summary: None,
            description: None,
        }
    }

    /// Sets the summary; empty means none. Defaults to none.
    #[must_use]
    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = Some(summary.into()).filter(|s| !s.is_empty());
        self
    }

    /// Sets the description; empty means none. Defaults to none.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into()).filter(|s| !s.is_empty());
        self
    }

    /// The uppercase method.
    pub fn get_method(&self) -> &str {
        &self.method
    }

    /// The route template.
    pub fn get_path(&self) -> &str {
        &self.path
    }
}

/// What the client tells the hub once at startup: the app's routes, versions and client name.
///
/// `versions.rust` (the compiler that built the app) and `versions.app` (from
/// [`ClientConfig::app_version`](crate::ClientConfig::app_version)) are added by the client.
///
/// ```
/// # use apitally_core as apitally;
/// use apitally::PathItem;
/// use apitally::adapter::StartupData;
///
/// let startup = StartupData::new("rust:actix")
///     .paths([PathItem::new("GET", "/items"), PathItem::new("OPTIONS", "/items")])
///     .version("actix-web", "4.18.1");
/// // OPTIONS and HEAD routes are not sent.
/// assert_eq!(startup.get_paths().len(), 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartupData {
    pub(crate) paths: Vec<PathItem>,
    pub(crate) versions: BTreeMap<String, String>,
    pub(crate) client: String,
    pub(crate) openapi: Option<String>,
    pub(crate) framework: String,
    pub(crate) config: Vec<(String, serde_json::Value)>,
    /// The adapter crate and its version: the instrumentation scope of 1.x SERVER spans.
    pub(crate) adapter: Option<(String, String)>,
}

impl StartupData {
    /// Startup data for the given client string (`"<language>:<framework>"`).
    pub fn new(client: impl Into<String>) -> Self {
        Self {
            client: client.into(),
            ..Self::default()
        }
    }

    /// Adds routes; OPTIONS and HEAD routes and duplicates of (method, path) are left out.
    #[must_use]
    pub fn paths(mut self, paths: impl IntoIterator<Item = PathItem>) -> Self {
        for item in paths {
            if item.method == "OPTIONS" || item.method == "HEAD" {
                continue;
            }
            if self
                .paths
                .iter()
                .any(|p| p.method == item.method && p.path == item.path)
            {
                continue;
            }
            self.paths.push(item);
        }
        self
    }

    /// Adds a `versions` entry, such as `("actix-web", "4.18.1")`; blank versions are left out.
    #[must_use]
    pub fn version(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        let version = version.into().trim().to_owned();
        if !version.is_empty() {
            self.versions.insert(name.into(), version);
        }
        self
    }

    /// Sets the OpenAPI document, as JSON text, sent as `openapi`. Defaults to none.
    #[must_use]
    pub fn openapi(mut self, document: impl Into<String>) -> Self {
        self.openapi = Some(document.into());
        self
    }

    /// Sets the framework's name in Apitally 1.x's startup event (`actix-web`). Defaults to the
    /// part of the client string after `:`.
    #[must_use]
    pub fn framework(mut self, framework: impl Into<String>) -> Self {
        self.framework = framework.into();
        self
    }

    /// Sets the adapter crate and its version (`apitally-actix`), the instrumentation scope of
    /// Apitally 1.x's SERVER spans. Defaults to `apitally-core`.
    #[must_use]
    pub fn adapter(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.adapter = Some((name.into(), version.into()));
        self
    }

    /// Adds an entry to Apitally 1.x's startup event's `config` (the options the app set, by
    /// their snake-case names; callbacks as `true`). Defaults to none.
    #[must_use]
    pub fn config(mut self, name: impl Into<String>, value: serde_json::Value) -> Self {
        self.config.push((name.into(), value));
        self
    }

    /// The framework name for Apitally 1.x.
    pub(crate) fn framework_name(&self) -> String {
        if !self.framework.is_empty() {
            return self.framework.clone();
        }
        self.client
            .split_once(':')
            .map_or(self.client.as_str(), |(_, f)| f)
            .to_owned()
    }

    /// The routes that will be sent.
    pub fn get_paths(&self) -> &[PathItem] {
        &self.paths
    }
}
