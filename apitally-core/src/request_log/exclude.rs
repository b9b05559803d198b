//! Which requests are not logged: the default exclusions (health checks, favicons, robots.txt
//! and the like; protocol.md §9.3, the same in 1.x §3.9), the app's `exclude_paths`, and
//! health-check user agents. Asked on the request path, before sampling.

use super::config::{EXCLUDE_PATH_PATTERNS, EXCLUDE_USER_AGENT_PATTERNS};

/// The path and user-agent exclusions of a logger.
#[derive(Debug, Clone)]
pub(crate) struct Exclusions {
    /// Every path pattern, defaults and the app's: the reference, asked for paths that are not
    /// ASCII (where case folding goes beyond ASCII: `K` (U+212A) matches `k`).
    paths: AnyMatch,
    /// The app's own path patterns, for ASCII paths (the defaults are matched by hand).
    extra_paths: Option<AnyMatch>,
    user_agents: AnyMatch,
}

impl Exclusions {
    /// Compiles the defaults and the app's `exclude_paths`; fails on an invalid pattern.
    pub(crate) fn new(exclude_paths: &[String]) -> Result<Self, String> {
        let invalid = |e: regex::Error| format!("invalid exclude_paths pattern: {e}");
        Ok(Self {
            paths: AnyMatch::new(&EXCLUDE_PATH_PATTERNS, exclude_paths).map_err(invalid)?,
            extra_paths: if exclude_paths.is_empty() {
                None
            } else {
                Some(AnyMatch::new(&[], exclude_paths).map_err(invalid)?)
            },
            user_agents: AnyMatch::new(&EXCLUDE_USER_AGENT_PATTERNS, &[])
                .map_err(|e| format!("invalid user agent pattern: {e}"))?,
        })
    }

    /// Whether a request to `path` is not logged: a default or the app's pattern matches it.
    #[inline]
    pub(crate) fn path(&self, path: &str) -> bool {
        match default_path_excluded(path.as_bytes()) {
            Some(true) => true,
            Some(false) => self.extra_paths.as_ref().is_some_and(|p| p.is_match(path)),
            None => self.paths.is_match(path),
        }
    }

    /// Whether a request from `user_agent` (a health checker's) is not logged.
    pub(crate) fn user_agent(&self, user_agent: &str) -> bool {
        self.user_agents.is_match(user_agent)
    }
}

/// [`EXCLUDE_PATH_PATTERNS`] by hand, with what the regex crate answers for them
/// (case-insensitive): a few comparisons on the last segment instead of a regex search.
/// `None` for a path that is not ASCII, which the regexes decide.
///
/// Every end-anchored default starts with `/` and has no other `/`, so what it matches is `/`
/// and the whole last segment; the one other default, `/\.well-known/`, may match anywhere.
/// A test holds this against the regexes on generated paths.
fn default_path_excluded(path: &[u8]) -> Option<bool> {
    const WELL_KNOWN: &[u8] = b"/.well-known/";
    if !path.is_ascii() {
        return None;
    }
    let Some(slash) = path.iter().rposition(|&b| b == b'/') else {
        return Some(false);
    };
    // `/\.well-known/` ends at a slash: each slash is looked at once, from the end (paths are
    // short, so plain loops beat the vectorised searches' setup here).
    let mut end = slash;
    loop {
        if end >= WELL_KNOWN.len() - 1
            && path[end + 1 - WELL_KNOWN.len()..=end].eq_ignore_ascii_case(WELL_KNOWN)
        {
            return Some(true);
        }
        match path[..end].iter().rposition(|&b| b == b'/') {
            Some(previous) => end = previous,
            None => break,
        }
    }
    let seg = &path[slash + 1..];
    if seg.len() < "ping".len() {
        return Some(false);
    }
    let is = |s: &[u8], word: &str| s.eq_ignore_ascii_case(word.as_bytes());
    // `/_?healthz?$`, `/_?health[\-_]?checks?$`, `/_?heart[\-_]?beats?$`
    let bare = seg.strip_prefix(b"_").unwrap_or(seg);
    // `word[\-_]?tail` or `word[\-_]?tails`, after the optional `_`.
    let compound = |word: &str, tail: &str| {
        strip(bare, word).is_some_and(|rest| {
            let rest = rest
                .strip_prefix(b"-")
                .or_else(|| rest.strip_prefix(b"_"))
                .unwrap_or(rest);
            is(rest, tail)
                || rest
                    .split_last()
                    .is_some_and(|(last, r)| last.eq_ignore_ascii_case(&b's') && is(r, tail))
        })
    };
    if strip(bare, "health").is_some_and(|rest| rest.is_empty() || is(rest, "z"))
        || compound("health", "check")
        || compound("heart", "beat")
    {
        return Some(true);
    }
    // `/favicon(?:-[\w-]+)?\.(ico|png|svg)$`, `/apple-touch-icon(?:-[\w-]+)?\.png$`
    let icon = |rest: &[u8], extensions: &[&str]| {
        let Some(dot) = memchr::memchr(b'.', rest) else {
            return false;
        };
        let (name, extension) = (&rest[..dot], &rest[dot + 1..]);
        let name_ok = name.is_empty()
            || (name.len() >= 2
                && name[0] == b'-'
                && name[1..]
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
        name_ok && extensions.iter().any(|e| is(extension, e))
    };
    if let Some(rest) = strip(seg, "favicon") {
        if icon(rest, &["ico", "png", "svg"]) {
            return Some(true);
        }
    }
    if let Some(rest) = strip(seg, "apple-touch-icon") {
        if icon(rest, &["png"]) {
            return Some(true);
        }
    }
    Some(
        [
            "ping",
            "ready",
            "live",
            "robots.txt",
            "sitemap.xml",
            "manifest.json",
            "site.webmanifest",
            "service-worker.js",
            "sw.js",
        ]
        .iter()
        .any(|word| is(seg, word)),
    )
}

/// Whether any of a set of case-insensitive patterns matches, for the request path (exclusions):
/// the end-anchored patterns (the default exclusions, `/health$`) in one regex that the regex
/// crate runs backwards from the end of the text, the others in a second, so that a typical
/// path costs a short reverse scan, not a search through every pattern. No cache, no lock.
#[derive(Debug, Clone)]
pub(crate) struct AnyMatch {
    anchored: Option<regex::Regex>,
    other: Option<regex::Regex>,
}

impl AnyMatch {
    /// Compiles `defaults` and `extra` together; fails on an invalid (or too large) pattern.
    pub(crate) fn new(defaults: &[&str], extra: &[String]) -> Result<Self, regex::Error> {
        let all: Vec<&str> = defaults
            .iter()
            .copied()
            .chain(extra.iter().map(String::as_str))
            .collect();
        let end_anchored = |p: &&str| p.ends_with('$') && !p.ends_with("\\$");
        let build = |patterns: Vec<&str>| -> Result<Option<regex::Regex>, regex::Error> {
            if patterns.is_empty() {
                return Ok(None);
            }
            let alternation: Vec<String> = patterns.iter().map(|p| format!("(?:{p})")).collect();
            regex::Regex::new(&format!("(?i){}", alternation.join("|"))).map(Some)
        };
        Ok(Self {
            anchored: build(all.iter().copied().filter(end_anchored).collect())?,
            other: build(all.iter().copied().filter(|p| !end_anchored(p)).collect())?,
        })
    }

    /// Whether any pattern matches somewhere in `text`.
    #[inline]
    pub(crate) fn is_match(&self, text: &str) -> bool {
        self.anchored.as_ref().is_some_and(|r| r.is_match(text))
            || self.other.as_ref().is_some_and(|r| r.is_match(text))
    }
}

/// `s` without `word` (ASCII case-insensitive) at its start, when it starts with it.
fn strip<'a>(s: &'a [u8], word: &str) -> Option<&'a [u8]> {
    (s.len() >= word.len() && s[..word.len()].eq_ignore_ascii_case(word.as_bytes()))
        .then(|| &s[word.len()..])
}

#[cfg(test)]
mod tests;
