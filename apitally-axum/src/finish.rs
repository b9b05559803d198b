//! For the record of one request, see [`Finishing`].

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use apitally_core::{
    adapter::{Finished, LogStart, ServerError},
    ValidationError,
};
use axum::extract::MatchedPath;
use http::Method;

use crate::{request::HttpHeaders, shared::Shared, slot::Slot, RouteTemplate};

/// A request's route template, as the router (or the app) named it.
#[derive(Clone)]
pub(crate) enum Route {
    Matched(MatchedPath),
    Named(RouteTemplate),
}

impl Route {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Route::Matched(m) => m.as_str(),
            Route::Named(t) => t.as_str(),
        }
    }
}

/// Everything known about a request once its status is, finished in one place
/// ([`Finishing::finish`]) when the bytes sent are known: at the response head, when its body
/// ends or is dropped, or when the future is dropped before any response (the client went
/// away).
pub(crate) struct Finishing {
    pub(crate) shared: Arc<Shared>,
    pub(crate) method: Method,
    /// `None`: not an endpoint (logged only).
    pub(crate) route: Option<Route>,
    pub(crate) status: u16,
    pub(crate) elapsed: Duration,
    pub(crate) started: Instant,
    pub(crate) https: bool,
    pub(crate) content_length: Option<u64>,
    /// Whether the handler's reading of the body is counted (no `Content-Length`).
    pub(crate) counted: bool,
    pub(crate) slot: Slot,
    pub(crate) log: Option<Box<LogStart>>,
    /// The request's headers, when `sample_on_response` reads them.
    pub(crate) headers: Option<Box<http::HeaderMap>>,
    /// A panic's, or the error a `5xx` response carries.
    pub(crate) server_error: Option<ServerError>,
    /// axum's extractor rejections.
    pub(crate) validation_errors: Vec<ValidationError>,
}

impl Finishing {
    /// Hands the request to the pipeline, with what the app attached to it.
    pub(crate) fn finish(self, response_size: Option<u64>, total: Option<Duration>) {
        let attached = self.slot.lock();
        let request_size = match (self.content_length, self.counted) {
            (Some(n), _) => Some(n),
            (None, true) => Some(self.slot.read()),
            (None, false) => None,
        };
        // An inner Apitally layer (a router nested with `nest_service`) saw the full template.
        let inner = attached.route.as_ref().map(|m| Route::Matched(m.clone()));
        let route = match (&self.route, inner) {
            (Some(Route::Named(named)), _) => Some(Route::Named(named.clone())),
            (_, Some(inner)) => Some(inner),
            (route, None) => route.clone(),
        };
        let attributes = Some(&attached.attributes).filter(|a| !a.is_empty());
        let headers = self.headers.as_deref().map(HttpHeaders);
        self.shared.pipeline.finish(Finished {
            method: self.method.as_str(),
            route: route.as_ref().map(Route::as_str),
            status: self.status,
            elapsed: self.elapsed,
            started: self.started,
            https: self.https,
            total,
            request_size,
            response_size,
            consumer: attached.consumer.as_ref(),
            validation_errors: &self.validation_errors,
            reported_errors: &attached.validation_errors,
            // The first error the app captured wins: it came first.
            server_error: attached.exception.as_ref().or(self.server_error.as_ref()),
            log: self.log,
            headers: headers
                .as_ref()
                .map(|h| h as &dyn apitally_core::adapter::RequestHeaders),
            attributes,
        });
        drop(attached);
        self.slot.recycle();
    }
}
