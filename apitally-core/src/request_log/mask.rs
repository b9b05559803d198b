//! Masking of sensitive data in logged requests: headers, query parameters and JSON bodies.
//!
//! Names are matched against case-insensitive regular expressions with search semantics (a
//! pattern may match anywhere in the name), as the official Apitally SDKs do. Nothing here
//! panics, whatever the input.

use std::sync::Mutex;

use hashbrown::HashMap;
use regex::RegexSet;

mod json;
mod url;

#[cfg(test)]
use self::json::*;
pub(crate) use self::{
    json::{mask_json, unescape},
    url::{mask_headers, mask_query, strip_query},
};

/// Default patterns for query parameter names whose values are masked: the official SDKs'
/// (`auth`, `api[-_]?key`, `secret`, `token`, `password`, `pwd`), what presigned URLs put in
/// queries (`X-Amz-Signature`, `X-Amz-Credential`, `sig`), private keys, session ids and card
/// codes.
pub(crate) const QUERY_PARAM_PATTERNS: [&str; 13] = [
    "auth",
    "api[-_]?key",
    "secret",
    "token",
    "password",
    "pwd",
    "signature",
    "^sig$",
    "credential",
    "private[-_]?key",
    "session",
    "cvv",
    "cvc",
];

/// Default patterns for header names whose values are masked: the official SDKs' (`auth`,
/// `api[-_]?key`, `secret`, `token`, `cookie`) and session ids, signatures and credentials
/// (`X-Session-Id`, `X-Hub-Signature-256`, `X-Amz-Credential`).
pub(crate) const HEADER_PATTERNS: [&str; 8] = [
    "auth",
    "api[-_]?key",
    "secret",
    "token",
    "cookie",
    "session",
    "signature",
    "credential",
];

/// Default patterns for JSON body keys whose values are masked: the official SDKs'
/// (`password`, `pwd`, `token`, `secret`, `auth`, `card[-_ ]?number`, `ccv`, `cvv`, `cvc`,
/// `ssn`), API keys, private keys, signatures, credentials and a bare `refresh` (a refresh
/// token under another name).
pub(crate) const BODY_FIELD_PATTERNS: [&str; 17] = [
    "password",
    "pwd",
    "token",
    "secret",
    "auth",
    "card[-_ ]?number",
    "ccv",
    "cvv",
    "cvc",
    "ssn",
    "api[-_]?key",
    "private[-_]?key",
    "signature",
    "^sig$",
    "credential",
    "^refresh$",
    "session",
];

/// Headers whose values are URLs: their queries are masked as the request's is.
const URL_HEADERS: [&str; 3] = ["referer", "location", "content-location"];

pub(crate) use super::item::MASKED;

/// A set of case-insensitive name patterns, matched anywhere in a name.
///
/// Answers are remembered per name (up to [`Patterns::CACHE_NAMES`] names): header names, JSON
/// keys, routes and user agents repeat from request to request, and a hash lookup costs a
/// fraction of running the regex set.
#[derive(Debug)]
pub(crate) struct Patterns {
    set: RegexSet,
    /// Keyed by bytes, so that JSON keys are looked up without a UTF-8 check.
    cache: Mutex<HashMap<Box<[u8]>, bool>>,
}

impl Clone for Patterns {
    fn clone(&self) -> Self {
        Self {
            set: self.set.clone(),
            cache: Mutex::default(),
        }
    }
}

impl Patterns {
    /// How many distinct names' answers are remembered; past it, new names are matched
    /// each time (the cache never grows with traffic).
    pub(crate) const CACHE_NAMES: usize = 4_096;
    /// Longer names are not remembered.
    const CACHE_NAME_LEN: usize = 256;

    /// Compiles `defaults` and `extra` together; fails on an invalid (or too large) pattern.
    pub(crate) fn new(defaults: &[&str], extra: &[String]) -> Result<Self, regex::Error> {
        let all = defaults
            .iter()
            .copied()
            .chain(extra.iter().map(String::as_str))
            .map(|pattern| format!("(?i){pattern}"));
        Ok(Self {
            set: RegexSet::new(all)?,
            cache: Mutex::default(),
        })
    }

    /// Whether any pattern matches somewhere in `name`.
    pub(crate) fn matches(&self, name: &str) -> bool {
        self.matches_bytes(name.as_bytes())
    }

    /// [`Patterns::matches`] for a name given as bytes: invalid UTF-8 is matched as
    /// [`String::from_utf8_lossy`] reads it.
    fn matches_bytes(&self, name: &[u8]) -> bool {
        let is_match = |name: &[u8]| self.set.is_match(&String::from_utf8_lossy(name));
        if name.len() > Self::CACHE_NAME_LEN {
            return is_match(name);
        }
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&hit) = cache.get(name) {
            return hit;
        }
        let hit = is_match(name);
        if cache.len() < Self::CACHE_NAMES {
            cache.insert(name.into(), hit);
        }
        hit
    }
}

#[cfg(test)]
mod tests;
