use super::*;

#[test]
fn content_types_and_https_detection() {
    for ct in [
        "application/json",
        "APPLICATION/JSON;charset=utf-8",
        "text/html",
        "application/x-ndjson",
        "application/problem+json",
    ] {
        assert!(is_supported_content_type(ct), "{ct}");
    }
    for ct in [
        "image/png",
        "application/octet-stream",
        "multipart/form-data",
        "",
    ] {
        assert!(!is_supported_content_type(ct), "{ct}");
    }
    let h = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    };
    assert!(forwarded_https(h(&[("x-forwarded-proto", " HTTPS ")])));
    assert!(!forwarded_https(h(&[("x-forwarded-proto", "http, https")])));
    assert!(forwarded_https(h(&[(
        "forwarded",
        "for=1.2.3.4;proto=https, proto=http"
    )])));
    assert!(forwarded_https(h(&[("x-forwarded-ssl", "on")])));
    assert!(!forwarded_https(h(&[])));
}

#[test]
fn url_paths() {
    assert_eq!(url_path("http://h:1/a/b?x=1"), "/a/b");
    assert_eq!(url_path("https://h"), "/");
    assert_eq!(url_path("/rel?x"), "/rel");
    assert_eq!(url_path("HTTP://h/a#f"), "/a");
    assert_eq!(url_path("ws://h:9/s;x?q"), "/s;x");
    assert_eq!(url_path("http://h?q=/not-a-path"), "/");
}

/// An adapter asks `forwarded_https` only when its header pass saw a header that
/// `is_forwarded_https_header` names: every header `forwarded_https` reads must be one.
#[test]
fn every_header_forwarded_https_reads_is_a_forwarded_https_header() {
    let asked = std::cell::RefCell::new(Vec::new());
    let https = forwarded_https(|name| {
        asked.borrow_mut().push(name.to_owned());
        None
    });
    assert!(!https);
    let asked = asked.into_inner();
    assert_eq!(asked.len(), 8, "{asked:?}");
    for name in &asked {
        assert!(is_forwarded_https_header(name), "{name}");
    }
    for name in [
        "x-forwarded-for",
        "x-forwarded-host",
        "x-api-key",
        "host",
        "from",
    ] {
        assert!(!is_forwarded_https_header(name), "{name}");
    }
}
