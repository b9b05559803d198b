//! What a request log reads of a request: which bodies are logged, whether proxy headers say
//! the request came over HTTPS, and the path of a logged URL.

use super::body::body_kind;

/// Whether bodies of this content type are logged: JSON (`application/json` and `+json`
/// types), JSON lines (`application/x-ndjson`, `application/jsonl`), plain text and HTML;
/// compared case-insensitively, parameters ignored. The same decision says how the body is
/// masked, so that nothing is captured that masking cannot read.
///
/// ```
/// assert!(apitally_core::adapter::is_supported_content_type("Application/JSON; charset=utf-8"));
/// assert!(apitally_core::adapter::is_supported_content_type("application/problem+json"));
/// assert!(!apitally_core::adapter::is_supported_content_type("application/json5"));
/// assert!(!apitally_core::adapter::is_supported_content_type("image/png"));
/// ```
pub fn is_supported_content_type(content_type: &str) -> bool {
    body_kind(content_type).is_some()
}

/// Whether proxy headers say the original request was HTTPS: `X-Forwarded-Proto`,
/// `X-Forwarded-Protocol`, `X-Forwarded-Scheme`, `X-Url-Scheme` or `X-Scheme` with first value
/// `https`, `Forwarded` with `proto=https` in its first element, or `Front-End-Https` /
/// `X-Forwarded-Ssl` set to `on`. `header` looks a header up by lowercase name.
///
/// ```
/// let https = apitally_core::adapter::forwarded_https(|name| (name == "x-forwarded-proto").then_some("https, http"));
/// assert!(https);
/// ```
pub fn forwarded_https<'a>(header: impl Fn(&str) -> Option<&'a str>) -> bool {
    // (Keep `is_forwarded_https_header` in step with the names read here.)
    let first_is_https = |name: &str| {
        header(name).is_some_and(|v| {
            v.split(',')
                .next()
                .is_some_and(|f| f.trim().eq_ignore_ascii_case("https"))
        })
    };
    [
        "x-forwarded-proto",
        "x-forwarded-protocol",
        "x-forwarded-scheme",
        "x-url-scheme",
        "x-scheme",
    ]
    .iter()
    .any(|n| first_is_https(n))
        || header("forwarded").is_some_and(|v| {
            v.split(',').next().is_some_and(|first| {
                first
                    .split(';')
                    .any(|p| p.trim().eq_ignore_ascii_case("proto=https"))
            })
        })
        || ["front-end-https", "x-forwarded-ssl"]
            .iter()
            .any(|n| header(n).is_some_and(|v| v.trim().eq_ignore_ascii_case("on")))
}

/// Whether `name` (lowercase) is one of the headers [`forwarded_https`] reads: an adapter that
/// goes over a request's headers anyway (to copy them for its log) notes whether any is there,
/// and asks [`forwarded_https`] only then (most requests carry none: seven lookups saved).
///
/// ```
/// assert!(apitally_core::adapter::is_forwarded_https_header("x-forwarded-proto"));
/// assert!(!apitally_core::adapter::is_forwarded_https_header("x-api-key"));
/// ```
pub fn is_forwarded_https_header(name: &str) -> bool {
    matches!(name.as_bytes().first(), Some(b'x' | b'f'))
        && matches!(
            name,
            "x-forwarded-proto"
                | "x-forwarded-protocol"
                | "x-forwarded-scheme"
                | "x-url-scheme"
                | "x-scheme"
                | "forwarded"
                | "front-end-https"
                | "x-forwarded-ssl"
        )
}

/// The path of an absolute URL (`/` when it has none), without the query and fragment: what
/// request logs use where no route template matched.
///
/// ```
/// assert_eq!(apitally_core::adapter::url_path("https://example.com/items/5?page=2"), "/items/5");
/// assert_eq!(apitally_core::adapter::url_path("https://example.com"), "/");
/// ```
pub fn url_path(url: &str) -> &str {
    // The URLs the SDK builds start with one of these two; the general search builds a
    // substring searcher, ~250 instructions per logged request.
    let rest = match url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    {
        Some(rest) => rest,
        None => url.split_once("://").map_or(url, |(_, rest)| rest),
    };
    // The authority ends at the first of these; without a `/` there, the path is empty.
    let path = match rest.find(['/', '?', '#']) {
        Some(i) if rest.as_bytes()[i] == b'/' => &rest[i..],
        _ => "/",
    };
    path.split(['?', '#']).next().unwrap_or(path)
}

#[cfg(test)]
mod tests;
