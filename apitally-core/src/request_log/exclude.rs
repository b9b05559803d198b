//! Which requests are not logged: the default exclusions (health checks, favicons, robots.txt
//! and the like; protocol.md §9.3, the same in 1.x §3.9), the app's `exclude_paths`, and
//! health-check user agents. Asked on the request path, before sampling.

/// Paths that are not logged (protocol.md §9.3; the same in 1.x, §3.9).
pub(crate) const EXCLUDE_PATH_PATTERNS: [&str; 15] = [
    r"/_?healthz?$",
    r"/_?health[\-_]?checks?$",
    r"/_?heart[\-_]?beats?$",
    r"/ping$",
    r"/ready$",
    r"/live$",
    r"/favicon(?:-[\w-]+)?\.(ico|png|svg)$",
    r"/apple-touch-icon(?:-[\w-]+)?\.png$",
    r"/robots\.txt$",
    r"/sitemap\.xml$",
    r"/manifest\.json$",
    r"/site\.webmanifest$",
    r"/service-worker\.js$",
    r"/sw\.js$",
    r"/\.well-known/",
];

/// User agents of health checkers, whose requests are not logged.
pub(crate) const EXCLUDE_USER_AGENT_PATTERNS: [&str; 4] = [
    r"health[\-_ ]?check",
    r"microsoft-azure-application-lb",
    r"googlehc",
    r"kube-probe",
];

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
    let slash = match last_slash_if_ascii(path) {
        Err(NotAscii) => return None,
        Ok(None) => return Some(false),
        Ok(Some(slash)) => slash,
    };
    Some(has_well_known(&path[..=slash]) || last_segment_excluded(&path[slash + 1..]))
}

struct NotAscii;

/// The index of the last `/` of `path`, eight bytes at a time from the end (paths are short:
/// a vectorised search's setup costs more than it saves); `Err` when a byte is not ASCII.
#[inline]
fn last_slash_if_ascii(path: &[u8]) -> Result<Option<usize>, NotAscii> {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const LOW: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const SLASHES: u64 = 0x2f2f_2f2f_2f2f_2f2f;
    // The slashes among eight ASCII bytes `w` (high bit of each byte that is `/`): no byte
    // carries into the next, as every byte of `w ^ SLASHES` is below 0x80.
    let slashes = |w: u64| !((w ^ SLASHES) + LOW) & HIGH;
    let mut found = None;
    if path.len() < 8 {
        // Padded with NUL bytes at the front, which are neither `/` nor past ASCII.
        let mut w = 0u64;
        for &b in path {
            w = (w << 8) | u64::from(b);
        }
        if w & HIGH != 0 {
            return Err(NotAscii);
        }
        let s = slashes(w);
        if s != 0 {
            // Byte k from the low end is path[len - 1 - k].
            let k = (s.trailing_zeros() / 8) as usize;
            found = Some(path.len() - 1 - k);
        }
        return Ok(found);
    }
    let mut end = path.len();
    loop {
        // The last chunk overlaps the one before it when the length is not a multiple of 8;
        // its bytes were checked already and had no slash (else the search was over).
        let start = end.saturating_sub(8);
        let chunk: [u8; 8] = path[start..start + 8].try_into().unwrap_or([0; 8]);
        let w = u64::from_be_bytes(chunk);
        if w & HIGH != 0 {
            return Err(NotAscii);
        }
        if found.is_none() {
            let s = slashes(w);
            if s != 0 {
                let k = (s.trailing_zeros() / 8) as usize;
                found = Some(start + 7 - k);
            }
        }
        if start == 0 {
            return Ok(found);
        }
        end = start;
    }
}

/// Whether `dir` (a path up to and including its last slash) contains `/\.well-known/`, which
/// ends at one of its slashes. Paths are short: a plain loop beats a vectorised search's setup,
/// and a `dir` shorter than the word (most API paths) costs nothing.
fn has_well_known(dir: &[u8]) -> bool {
    const WELL_KNOWN: &[u8] = b"/.well-known/";
    let mut end = dir.len();
    while end >= WELL_KNOWN.len() {
        if dir[end - 1] == b'/'
            && dir[end - 2].eq_ignore_ascii_case(&b'n')
            && dir[end - WELL_KNOWN.len()..end].eq_ignore_ascii_case(WELL_KNOWN)
        {
            return true;
        }
        end -= 1;
    }
    false
}

/// The end-anchored defaults on the last segment `seg` (after the last `/`), dispatched on its
/// first byte: most segments (`items`, `42`) are answered by one comparison.
fn last_segment_excluded(seg: &[u8]) -> bool {
    // The shortest default segment is `ping`, `live` (4 bytes).
    if seg.len() < 4 {
        return false;
    }
    let is = |word: &str| seg.eq_ignore_ascii_case(word.as_bytes());
    match seg[0].to_ascii_lowercase() {
        b'_' | b'h' => health_or_heartbeat(seg),
        // `/favicon(?:-[\w-]+)?\.(ico|png|svg)$`
        b'f' => strip(seg, "favicon").is_some_and(|rest| icon(rest, &["ico", "png", "svg"])),
        // `/apple-touch-icon(?:-[\w-]+)?\.png$`
        b'a' => strip(seg, "apple-touch-icon").is_some_and(|rest| icon(rest, &["png"])),
        b'p' => is("ping"),
        b'r' => is("ready") || is("robots.txt"),
        b'l' => is("live"),
        b'm' => is("manifest.json"),
        b's' => {
            is("sitemap.xml") || is("site.webmanifest") || is("service-worker.js") || is("sw.js")
        }
        _ => false,
    }
}

/// `/_?healthz?$`, `/_?health[\-_]?checks?$`, `/_?heart[\-_]?beats?$` on the last segment.
fn health_or_heartbeat(seg: &[u8]) -> bool {
    let is = |s: &[u8], word: &str| s.eq_ignore_ascii_case(word.as_bytes());
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
    strip(bare, "health").is_some_and(|rest| rest.is_empty() || is(rest, "z"))
        || compound("health", "check")
        || compound("heart", "beat")
}

/// After `favicon` or `apple-touch-icon`: `(?:-[\w-]+)?\.(ext)$` for one of `extensions`.
fn icon(rest: &[u8], extensions: &[&str]) -> bool {
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
    name_ok
        && extensions
            .iter()
            .any(|e| extension.eq_ignore_ascii_case(e.as_bytes()))
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
