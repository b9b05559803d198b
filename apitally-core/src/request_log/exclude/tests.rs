use proptest::prelude::*;

use super::*;

/// The defaults as regexes, compiled once.
fn reference() -> &'static AnyMatch {
    static REFERENCE: std::sync::LazyLock<AnyMatch> =
        std::sync::LazyLock::new(|| AnyMatch::new(&EXCLUDE_PATH_PATTERNS, &[]).unwrap());
    &REFERENCE
}

#[test]
fn the_defaults_by_hand_answer_as_the_regexes_on_known_paths() {
    let regex = reference();
    for (path, excluded) in [
        ("/health", true),
        ("/HEALTHZ", true),
        ("/_health", true),
        ("/__health", false),
        ("/api/v1/health-check", true),
        ("/health_checks", true),
        ("/HEALTH-CHECKS", true),
        ("/Heart_BeatS", true),
        ("/heartbeatss", false),
        ("/healthcheck", true),
        ("/health--check", false),
        ("/healthchecker", false),
        ("/heartbeat", true),
        ("/_heart-beats", true),
        ("/heartbeating", false),
        ("/ping", true),
        ("/pings", false),
        ("/ready", true),
        ("/already", false),
        ("/live", true),
        ("/users/live", true),
        ("/favicon.ico", true),
        ("/favicon-32x32.png", true),
        ("/favicon-.png", false),
        ("/favicon--x.svg", true),
        ("/favicon.ico.png", false),
        ("/favicon.gif", false),
        ("/apple-touch-icon.png", true),
        ("/apple-touch-icon-precomposed.png", true),
        ("/apple-touch-icon.ico", false),
        ("/robots.txt", true),
        ("/robotsAtxt", false),
        ("/static/sw.js", true),
        ("/site.webmanifest", true),
        ("/.well-known/openid-configuration", true),
        ("/a/.WELL-KNOWN/x", true),
        ("/.well-known", false),
        ("/users/42", false),
        ("", false),
        ("health", false),
        ("/", false),
    ] {
        assert_eq!(regex.is_match(path), excluded, "regex, {path:?}");
        assert_eq!(
            default_path_excluded(path.as_bytes()),
            Some(excluded),
            "by hand, {path:?}"
        );
    }
}

/// Paths made of the defaults' own pieces, in any case, with separators and noise between.
fn paths() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "/",
        "_",
        "-",
        ".",
        "health",
        "z",
        "check",
        "s",
        "heart",
        "beat",
        "ping",
        "ready",
        "live",
        "favicon",
        "apple-touch-icon",
        "ico",
        "png",
        "svg",
        "gif",
        "robots",
        "txt",
        "sitemap",
        "xml",
        "manifest",
        "json",
        "site",
        "webmanifest",
        "service-worker",
        "js",
        "sw",
        ".well-known",
        "x",
        "32x32",
        "a1",
        "__",
    ]);
    prop::collection::vec((piece, any::<bool>()), 0..8).prop_map(|pieces| {
        pieces
            .into_iter()
            .map(|(p, upper)| {
                if upper {
                    p.to_ascii_uppercase()
                } else {
                    p.to_owned()
                }
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4_000))]

    #[test]
    fn the_defaults_by_hand_answer_as_the_regexes(path in paths()) {
        prop_assert_eq!(default_path_excluded(path.as_bytes()), Some(reference().is_match(&path)), "{:?}", path);
    }

    #[test]
    fn near_misses_of_the_compound_names(
        path in "/x?_?(health|HEALTH|Heart|heart)[-_.]?(check|CHECK|beat|Beat|z|Z)?[sS]{0,2}",
    ) {
        prop_assert_eq!(default_path_excluded(path.as_bytes()), Some(reference().is_match(&path)), "{:?}", path);
    }

    #[test]
    fn any_ascii_path_too(path in "[ -~]{0,40}") {
        prop_assert_eq!(default_path_excluded(path.as_bytes()), Some(reference().is_match(&path)), "{:?}", path);
    }
}

#[test]
fn the_apps_patterns_and_paths_beyond_ascii() {
    let exclusions = Exclusions::new(&["^/internal/".to_owned(), "/debug$".to_owned()]).unwrap();
    assert!(exclusions.path("/internal/metrics"));
    assert!(exclusions.path("/api/debug"));
    assert!(exclusions.path("/healthz"));
    assert!(!exclusions.path("/api/internal/x"));
    assert!(!exclusions.path("/users/42"));
    // Unicode case folding: the Kelvin sign matches `k`, as the regex says.
    assert!(exclusions.path("/.well-\u{212A}nown/x"));
    assert!(exclusions.path("/h\u{e9}/healthz"));
    assert!(!exclusions.path("/h\u{e9}llo"));
    assert_eq!(default_path_excluded("/h\u{e9}/healthz".as_bytes()), None);
    let defaults = Exclusions::new(&[]).unwrap();
    assert!(!defaults.path("/internal/metrics"));
    assert!(defaults.user_agent("kube-probe/1.29"));
    assert!(!defaults.user_agent("curl/8.5"));
    assert!(Exclusions::new(&["(".to_owned()])
        .unwrap_err()
        .starts_with("invalid exclude_paths pattern"));
}

proptest! {
    /// The word-at-a-time search finds the last slash as a byte search does, at every length
    /// (short paths, whole words, overlapping last words), and refuses what is not ASCII.
    #[test]
    fn the_last_slash_is_found_eight_bytes_at_a_time(
        path in prop::collection::vec(prop::sample::select(vec![b'a', b'/', b'.', 0x7f, 0xc3]), 0..40)
    ) {
        let expected = path.is_ascii().then(|| path.iter().rposition(|&b| b == b'/'));
        prop_assert_eq!(last_slash_if_ascii(&path).ok(), expected);
    }
}
