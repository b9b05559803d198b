//! What the middleware reads of an actix request: its headers (copied for a log, looked up
//! by constant names), its scheme and host as actix's `ConnectionInfo` gives them, and its
//! payload as the handler reads it.

use std::{
    cell::Cell,
    pin::Pin,
    rc::Rc,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use actix_web::{
    dev::Payload,
    error::PayloadError,
    http::header::{self, HeaderMap},
    web::Bytes,
};
use apitally_core::{
    adapter::{forwarded_https, BodyCapture, RequestHeaders},
    Headers,
};
use futures_core::Stream;
use pin_project_lite::pin_project;

pin_project! {
    /// The request payload as the handler reads it, counted (chunked bodies) and copied into a
    /// bounded capture (logged bodies) on the way.
    pub(crate) struct ObservedPayload {
        #[pin]
        pub(crate) inner: Payload,
        pub(crate) counter: Option<Rc<Cell<u64>>>,
        pub(crate) capture: Option<Arc<Mutex<BodyCapture>>>,
    }
}

impl Stream for ObservedPayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        let item = std::task::ready!(this.inner.poll_next(cx));
        if let Some(Ok(chunk)) = &item {
            if let Some(counter) = this.counter {
                counter.set(counter.get() + chunk.len() as u64);
            }
            if let Some(capture) = this.capture {
                capture
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(chunk);
            }
        }
        Poll::Ready(item)
    }
}

pub(crate) fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Copies the headers into `out` (when `copy`), and tells whether any of [`PROXY_HEADERS`]
/// is there.
pub(crate) fn copy_headers(headers: &HeaderMap, copy: bool, out: &mut Headers) -> bool {
    out.clear();
    if copy {
        // A guess that fits most requests without growing (a reused buffer has room already).
        // (`len_keys` is O(1); `len` counts every value.)
        let guess = headers.len_keys();
        out.reserve(guess, guess * 48);
    }
    let mut proxied = false;
    for (name, value) in headers.iter() {
        let name = name.as_str();
        proxied = proxied
            || (matches!(name.as_bytes().first(), Some(b'x' | b'f'))
                && PROXY_HEADERS.iter().any(|p| p.as_str() == name));
        if copy {
            match std::str::from_utf8(value.as_bytes()) {
                Ok(value) => out.push(name, value),
                Err(_) => out.push(name, &String::from_utf8_lossy(value.as_bytes())),
            }
        }
    }
    proxied
}

/// The scheme and host of the request as actix-web's `ConnectionInfo` gives them (`Forwarded`
/// `proto`/`host`, then `X-Forwarded-Proto`/`X-Forwarded-Host`, then the `Host` header, the
/// URI, and the app's configuration), without building a `ConnectionInfo` (which allocates
/// and is stored in the request's extensions).
fn scheme_and_host(req: &actix_web::dev::ServiceRequest, proxied: bool) -> (&str, &str) {
    const X_FORWARDED_PROTO: header::HeaderName =
        header::HeaderName::from_static("x-forwarded-proto");
    const X_FORWARDED_HOST: header::HeaderName =
        header::HeaderName::from_static("x-forwarded-host");
    let headers = req.headers();
    let mut scheme = None;
    let mut host = None;
    // Not looked up at all for a request without proxy headers (most requests).
    let forwarded = proxied.then(|| headers.get_all(header::FORWARDED));
    for pair in forwarded
        .into_iter()
        .flatten()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .flat_map(|v| v.split(','))
    {
        let Some((name, value)) = pair.trim().split_once('=') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("proto") {
            scheme.get_or_insert_with(|| unquote(value));
        } else if name.eq_ignore_ascii_case("host") {
            host.get_or_insert_with(|| unquote(value));
        }
    }
    let first = |name: &header::HeaderName| {
        if !proxied {
            return None;
        }
        let value = headers.get(name)?.to_str().ok()?;
        Some(value.split(',').next()?.trim())
    };
    let config = req.app_config();
    let scheme = scheme
        .or_else(|| first(&X_FORWARDED_PROTO))
        .or_else(|| req.uri().scheme_str())
        .unwrap_or(if config.secure() { "https" } else { "http" });
    let host = host
        .or_else(|| first(&X_FORWARDED_HOST))
        .or_else(|| headers.get(header::HOST)?.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or_else(|| config.host());
    (scheme, host)
}

fn unquote(value: &str) -> &str {
    value.trim().trim_start_matches('"').trim_end_matches('"')
}

/// Looks up one of the proxy headers [`forwarded_https`] asks for by a constant name (looking
/// a header up by `&str` parses and allocates a `HeaderName` each time).
fn forwarded_header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    match PROXY_HEADERS.iter().find(|n| n.as_str() == name) {
        Some(known) => header_str(headers, known),
        None => header_str(headers, name),
    }
}

/// The headers a proxy may set that change the logged URL's scheme or host.
static PROXY_HEADERS: [header::HeaderName; 9] = [
    header::HeaderName::from_static("x-forwarded-proto"),
    header::HeaderName::from_static("x-forwarded-protocol"),
    header::HeaderName::from_static("x-forwarded-scheme"),
    header::HeaderName::from_static("x-url-scheme"),
    header::HeaderName::from_static("x-scheme"),
    header::FORWARDED,
    header::HeaderName::from_static("front-end-https"),
    header::HeaderName::from_static("x-forwarded-ssl"),
    header::HeaderName::from_static("x-forwarded-host"),
];

/// Whether a request came over HTTPS (the URI, the app's config, or proxy headers that say so)
/// and its host, for its logged URL.
pub(crate) fn https_and_host(req: &actix_web::dev::ServiceRequest, proxied: bool) -> (bool, &str) {
    let (scheme, host) = scheme_and_host(req, proxied);
    let https = scheme.eq_ignore_ascii_case("https")
        || (proxied && forwarded_https(|name| forwarded_header(req.headers(), name)));
    (https, host)
}

/// `X-Forwarded-For`, read for the client address behind trusted proxies.
pub(crate) const X_FORWARDED_FOR: header::HeaderName =
    header::HeaderName::from_static("x-forwarded-for");

/// `traceparent` (W3C Trace Context).
pub(crate) const TRACEPARENT: header::HeaderName = header::HeaderName::from_static("traceparent");

/// actix's header map, as the pipeline reads headers.
pub(crate) struct ActixHeaders<'a>(pub(crate) &'a HeaderMap);

impl RequestHeaders for ActixHeaders<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        match name {
            "traceparent" => header_str(self.0, TRACEPARENT),
            "user-agent" => header_str(self.0, header::USER_AGENT),
            "content-type" => header_str(self.0, header::CONTENT_TYPE),
            "content-encoding" => header_str(self.0, header::CONTENT_ENCODING),
            "authorization" => header_str(self.0, header::AUTHORIZATION),
            _ => header_str(self.0, name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The URL's scheme and host are read without building actix-web's `ConnectionInfo`, so
    /// they must agree with it for every combination of proxy headers.
    #[test]
    fn scheme_and_host_agree_with_connection_info() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("/", &[]),
            ("/", &[("host", "api.example.com")]),
            ("/", &[("host", "api.example.com:8443")]),
            ("http://other.example/x", &[("host", "api.example.com")]),
            ("/", &[("host", "a"), ("x-forwarded-host", "b, c")]),
            ("/", &[("host", "a"), ("x-forwarded-proto", "https, http")]),
            (
                "/",
                &[
                    ("host", "a"),
                    ("forwarded", "for=1.2.3.4; proto=https; host=\"fw.example\""),
                ],
            ),
            (
                "/",
                &[
                    ("host", "a"),
                    ("forwarded", "Proto=HTTP;Host=x, proto=https"),
                    ("x-forwarded-host", "b"),
                ],
            ),
            (
                "/",
                &[
                    ("host", "a"),
                    ("forwarded", "for=1.2.3.4"),
                    ("x-forwarded-proto", "https"),
                ],
            ),
            (
                "/",
                &[
                    ("host", "a"),
                    ("forwarded", "garbage"),
                    ("x-forwarded-host", " spaced "),
                ],
            ),
            ("/", &[("x-forwarded-proto", "wss")]),
        ];
        for (uri, headers) in cases {
            let mut req = actix_web::test::TestRequest::get().uri(uri);
            for &(name, value) in *headers {
                req = req.insert_header((name, value));
            }
            let req = req.to_srv_request();
            let mut copy = Headers::new();
            let proxied = copy_headers(req.headers(), true, &mut copy);
            assert_eq!(copy.len(), req.headers().len());
            let (scheme, host) = scheme_and_host(&req, proxied);
            let info = req.connection_info().clone();
            assert_eq!(
                (scheme, host),
                (info.scheme(), info.host()),
                "{uri} {headers:?}"
            );
        }
    }
}
