//! Masking of headers and of the queries of URLs (the request's, and those in `Referer`,
//! `Location` and `Content-Location`).

use super::{Patterns, MASKED, URL_HEADERS};
use crate::request_log::item::Headers;

/// Masks the values of headers whose names match `patterns`, and the sensitive query
/// parameters (by `query`) of the URLs in `Referer`, `Location` and `Content-Location`.
pub(crate) fn mask_headers(headers: &mut Headers, patterns: &Patterns, query: &Patterns) {
    headers.mask(|name| patterns.matches(name));
    headers.rewrite(|name, value| {
        if URL_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name)) {
            mask_query_if_needed(value, query, 0)
        } else {
            None
        }
    });
}

/// Splits `url` at its first `?` into what precedes the query and the query. A `#` is not
/// treated as the start of a fragment: the URLs logged are built from the request target
/// (which has none), and a `#` there must not hide parameters from masking.
fn split_query(url: &str) -> Option<(&str, &str)> {
    url.split_once('?')
}

/// Masks the values of query parameters whose (percent-decoded) names match `params`.
///
/// Parameters are separated by `&` or `;` (as some servers read them). The query is decoded
/// and re-encoded in `application/x-www-form-urlencoded` form, keeping parameter order and
/// duplicates, and escaping as Python's `urlencode` does (so the mask reads
/// `%2A%2A%2A%2A%2A%2A`, and `~` stays as it is); a parameter without `=` gets an empty value.
/// A URL without a query is returned unchanged.
///
/// A value that is itself a URL with a query (`redirect_uri=https://app/cb?token=...`) has
/// its own query masked the same way, two levels deep.
pub(crate) fn mask_query(url: &str, params: &Patterns) -> String {
    mask_query_at(url, params, 0).0
}

/// How deep URLs nested in query values are masked.
const MAX_NESTED_URLS: usize = 2;

/// [`mask_query`], and whether anything was masked; `depth` is the nesting level.
fn mask_query_at(url: &str, params: &Patterns, depth: usize) -> (String, bool) {
    let Some((path, query)) = split_query(url) else {
        return (url.to_owned(), false);
    };
    let mut masked = false;
    let mut encoded = form_urlencoded::Serializer::new(String::with_capacity(query.len()));
    for pair in query.split(['&', ';']) {
        for (name, value) in form_urlencoded::parse(pair.as_bytes()) {
            if params.matches(&name) {
                masked = true;
                encoded.append_pair(&name, MASKED);
            } else if let Some(nested) = mask_query_if_needed(&value, params, depth + 1) {
                masked = true;
                encoded.append_pair(&name, &nested);
            } else {
                encoded.append_pair(&name, &value);
            }
        }
    }
    // As Python's `urlencode` (used by the official SDKs): `*` escaped, `~` not.
    let encoded = encoded.finish().replace('*', "%2A").replace("%7E", "~");
    (format!("{path}?{encoded}"), masked)
}

/// `url` with its sensitive query parameters masked, or `None` when it has none (and is then
/// kept byte for byte).
fn mask_query_if_needed(url: &str, params: &Patterns, depth: usize) -> Option<String> {
    if depth > MAX_NESTED_URLS || !url.contains('?') {
        return None;
    }
    let (masked, changed) = mask_query_at(url, params, depth);
    changed.then_some(masked)
}

/// Removes the query (from the first `?`) from `url`.
pub(crate) fn strip_query(url: &str) -> String {
    match split_query(url) {
        Some((path, _)) => path.to_owned(),
        None => url.to_owned(),
    }
}
