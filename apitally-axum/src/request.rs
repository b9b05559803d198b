//! What the layer reads of an `http` request and response: headers (copied for a log, looked
//! up by constant names), scheme, host and client address.

use std::net::{IpAddr, SocketAddr};

use apitally_core::{
    adapter::{forwarded_https, is_forwarded_https_header, RequestHeaders, TrustedProxies},
    Headers,
};
use http::{header, HeaderMap, HeaderName, Request};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// `http`'s header map, as the pipeline reads headers.
pub(crate) struct HttpHeaders<'a>(pub(crate) &'a HeaderMap);

impl RequestHeaders for HttpHeaders<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.to_str().ok())
    }
}

pub(crate) fn header_str(headers: &HeaderMap, name: HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Copies the headers into `out` (when `copy`; names are lowercase in `http`), and tells
/// whether a proxy header that may say HTTPS is there (one pass instead of seven lookups).
pub(crate) fn copy_headers(headers: &HeaderMap, copy: bool, out: &mut Headers) -> bool {
    out.clear();
    if copy {
        let guess = headers.keys_len();
        out.reserve(guess, guess * 48);
    }
    let mut proxied = false;
    for (name, value) in headers {
        proxied = proxied || is_forwarded_https_header(name.as_str());
        if copy {
            match std::str::from_utf8(value.as_bytes()) {
                Ok(value) => out.push(name.as_str(), value),
                Err(_) => out.push(name.as_str(), &String::from_utf8_lossy(value.as_bytes())),
            }
        }
    }
    proxied
}

/// Whether the request came over HTTPS (its URI's scheme, or proxy headers that say so) and its
/// host (`Host`, or the URI's authority, as HTTP/2 sends it).
pub(crate) fn https_and_host<B>(req: &Request<B>, proxied: bool) -> (bool, &str) {
    let headers = req.headers();
    let https = req.uri().scheme_str() == Some("https")
        || (proxied && forwarded_https(|name| headers.get(name).and_then(|v| v.to_str().ok())));
    let host = header_str(headers, header::HOST)
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("localhost");
    (https, host)
}

/// The client's address: the peer (axum's `ConnectInfo<SocketAddr>`, when the app serves with
/// `into_make_service_with_connect_info`), or behind trusted proxies the client they forward
/// for.
pub(crate) fn client_address<B>(req: &Request<B>, trusted: &TrustedProxies) -> Option<IpAddr> {
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())?;
    if trusted.is_empty() {
        return Some(peer);
    }
    let headers = req.headers();
    Some(
        trusted.client_address_of(
            peer,
            headers
                .get_all(header::FORWARDED)
                .iter()
                .map(|v| v.as_bytes()),
            headers
                .get_all(X_FORWARDED_FOR)
                .iter()
                .map(|v| v.as_bytes()),
        ),
    )
}
