use super::*;

fn np(rules: &str, host: &str, port: u16) -> bool {
    NoProxy::parse(rules).matches(host, port)
}

#[test]
fn no_proxy_domains() {
    for rules in [
        "example.com",
        ".example.com",
        "*.example.com",
        " EXAMPLE.com. ",
    ] {
        assert!(np(rules, "example.com", 443), "{rules}");
        assert!(np(rules, "api.example.com", 443), "{rules}");
        assert!(np(rules, "a.b.Example.COM", 80), "{rules}");
        assert!(np(rules, "example.com.", 443), "{rules}");
        assert!(!np(rules, "badexample.com", 443), "{rules}");
        assert!(!np(rules, "example.com.evil", 443), "{rules}");
        assert!(!np(rules, "example.org", 443), "{rules}");
    }
    assert!(np("localhost", "localhost", 1));
    assert!(!np("localhost", "127.0.0.1", 1), "names are not resolved");
}

#[test]
fn no_proxy_lists_wildcard_and_empty_entries() {
    assert!(np("*", "anything.example", 1));
    assert!(np("*", "10.1.2.3", 1));
    assert!(np("foo.com, *", "bar.org", 1), "any `*` entry");
    assert!(np(" , ,a.com,, b.com ,", "b.com", 1));
    assert!(!np("", "a.com", 1));
    assert!(!np(" , ", "a.com", 1));
    assert!(!np("*.", "a.com", 1));
    assert!(
        !np("a*.com", "ab.com", 1),
        "no wildcards but `*` and a leading `*.`"
    );
}

#[test]
fn no_proxy_ports() {
    assert!(np("example.com:8443", "api.example.com", 8443));
    assert!(!np("example.com:8443", "api.example.com", 443));
    assert!(np("10.0.0.1:80", "10.0.0.1", 80));
    assert!(!np("10.0.0.1:80", "10.0.0.1", 81));
    assert!(np("[::1]:8080", "[::1]", 8080));
    assert!(np("[::1]:8080", "::1", 8080));
    assert!(!np("[::1]:8080", "::1", 8081));
    assert!(
        !np("example.com:x", "example.com", 443),
        "a bad port: ignored"
    );
}

#[test]
fn no_proxy_ips_and_cidrs() {
    assert!(np("127.0.0.1", "127.0.0.1", 1));
    assert!(!np("127.0.0.1", "127.0.0.2", 1));
    assert!(np("::1", "[::1]", 1));
    assert!(np("[::1]", "::1", 1));
    assert!(np("[::FFFF:127.0.0.1]", "127.0.0.1", 1), "IPv4-mapped");
    assert!(np("10.0.0.0/8", "10.200.3.4", 1));
    assert!(!np("10.0.0.0/8", "11.0.0.1", 1));
    assert!(np("192.168.1.0/24", "192.168.1.255", 1));
    assert!(!np("192.168.1.0/24", "192.168.2.1", 1));
    assert!(np("0.0.0.0/0", "8.8.8.8", 1));
    assert!(np("::1/128", "[::1]", 1));
    assert!(!np("::1/128", "[::2]", 1));
    assert!(np("fd00::/8", "fd12:3456::1", 1));
    assert!(!np("fd00::/8", "fe80::1", 1));
    assert!(!np("10.0.0.0/8", "ten.example", 1), "CIDRs match IPs only");
    assert!(!np("10.0.0.0/33", "10.0.0.1", 1), "bad prefix: ignored");
    assert!(!np("10.0.0.0/8", "::1", 1));
}

fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

fn resolve(vars: &[(&str, &str)]) -> Proxies {
    Proxies::resolve(&ProxySetting::FromEnv, &env(vars)).unwrap()
}

fn proxy_of(p: &Proxies, https: bool, host: &str, port: u16) -> Option<String> {
    p.for_target(https, host, port).map(ProxyUrl::display)
}

#[test]
fn environment_precedence() {
    let p = resolve(&[
        ("HTTPS_PROXY", "http://upper:1"),
        ("https_proxy", "http://lower:2"),
        ("HTTP_PROXY", "upper-http:3"),
        ("ALL_PROXY", "http://all:4"),
    ]);
    assert_eq!(proxy_of(&p, true, "hub", 443).unwrap(), "http://lower:2");
    assert_eq!(
        proxy_of(&p, false, "hub", 80).unwrap(),
        "http://upper-http:3"
    );
    assert_eq!(p.https.as_ref().unwrap().origin, "https_proxy");

    let p = resolve(&[("https_proxy", "  "), ("HTTPS_PROXY", "http://upper:1")]);
    assert_eq!(
        proxy_of(&p, true, "hub", 443).unwrap(),
        "http://upper:1",
        "empty is unset"
    );

    let p = resolve(&[("all_proxy", "http://all:4"), ("ALL_PROXY", "http://ALL:5")]);
    assert_eq!(proxy_of(&p, true, "hub", 443).unwrap(), "http://all:4");
    assert_eq!(proxy_of(&p, false, "hub", 80).unwrap(), "http://all:4");

    let p = resolve(&[("HTTP_PROXY", "http://h:1")]);
    assert_eq!(
        proxy_of(&p, true, "hub", 443),
        None,
        "http_proxy is for http only"
    );
    assert!(resolve(&[]).is_empty());
}

#[test]
fn no_proxy_from_environment() {
    let base = [("HTTPS_PROXY", "http://p:3128")];
    let with = |no: &str, lower: Option<&str>| {
        let mut vars = base.to_vec();
        vars.push(("NO_PROXY", no));
        if let Some(l) = lower {
            vars.push(("no_proxy", l));
        }
        resolve(&vars)
    };
    assert!(proxy_of(&with("hub.apitally.io", None), true, "hub.apitally.io", 443).is_none());
    assert!(proxy_of(&with("other", None), true, "hub.apitally.io", 443).is_some());
    assert!(
        proxy_of(
            &with("hub.apitally.io", Some("other")),
            true,
            "hub.apitally.io",
            443
        )
        .is_some(),
        "lowercase wins"
    );
    assert!(proxy_of(&with("x", Some("*")), true, "hub.apitally.io", 443).is_none());
}

#[test]
fn explicit_setting_wins() {
    let vars = [("HTTPS_PROXY", "http://env:1"), ("NO_PROXY", "*")];
    let p = Proxies::resolve(
        &ProxySetting::Explicit("http://u:p@cfg:3128".into()),
        &env(&vars),
    )
    .unwrap();
    assert_eq!(
        proxy_of(&p, true, "hub", 443).unwrap(),
        "http://***@cfg:3128"
    );
    assert_eq!(
        proxy_of(&p, false, "hub", 80).unwrap(),
        "http://***@cfg:3128"
    );
    let p = Proxies::resolve(&ProxySetting::Off, &env(&vars)).unwrap();
    assert!(p.is_empty());
    // A bad environment value does not matter when the environment is not read.
    let bad = [("HTTPS_PROXY", "socks5://x")];
    assert!(Proxies::resolve(&ProxySetting::Off, &env(&bad)).is_ok());
    assert!(Proxies::resolve(&ProxySetting::FromEnv, &env(&bad)).is_err());
    let setting = ProxySetting::Explicit("http://u:secret@cfg:3128".into());
    assert_eq!(format!("{setting:?}"), r#"Explicit("http://***@cfg:3128")"#);
}

#[test]
fn proxy_urls() {
    let p = ProxyUrl::parse("http://proxy.corp:3128", "proxy").unwrap();
    assert_eq!((p.host.as_str(), p.port), ("proxy.corp", 3128));
    assert_eq!(p.authorization, None);
    let p = ProxyUrl::parse(" Proxy.Corp/ ", "proxy").unwrap();
    assert_eq!((p.host.as_str(), p.port), ("proxy.corp", 80));
    let p = ProxyUrl::parse("HTTP://[::1]:8080", "proxy").unwrap();
    assert_eq!(p.address(), "[::1]:8080");
    let p = ProxyUrl::parse("http://alice:s%40cr%3At@10.0.0.1:3128", "proxy").unwrap();
    // base64("alice:s@cr:t")
    assert_eq!(p.authorization.as_deref(), Some("Basic YWxpY2U6c0Bjcjp0"));
    assert_eq!(p.display(), "http://***@10.0.0.1:3128");
    assert!(!format!("{p:?}").contains("alice"));
    let p = ProxyUrl::parse("http://bob@proxy:1", "proxy").unwrap();
    assert_eq!(p.authorization.as_deref(), Some("Basic Ym9iOg=="));
    let p = ProxyUrl::parse("http://user:p@ss@proxy:1", "proxy").unwrap();
    assert_eq!(p.host, "proxy", "the last @ ends the credentials");

    for bad in [
        "https://alice:secret@proxy:443",
        "socks5://alice:secret@proxy:1080",
        "http://alice:secret@proxy:99999",
        "http://alice:secret@proxy:0",
        "http://alice:secret@proxy:x",
        "http://alice:secret@",
        "http://alice:secret@proxy/path",
        "http://alice:secret@pro xy:1",
        "http://alice:secret@::1:80",
        "http://alice:secret@[::1",
        "http://alice:secr%zzet@proxy:1",
    ] {
        let err = ProxyUrl::parse(bad, "HTTPS_PROXY").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("HTTPS_PROXY"), "{msg}");
        assert!(msg.contains("***@"), "{msg}");
        assert!(!msg.contains("secr") && !msg.contains("alice"), "{msg}");
        assert!(matches!(err, ConfigError::InvalidProxy { .. }), "{bad}");
    }
}

#[test]
fn urls_are_redacted() {
    assert_eq!(redact_url("http://u:p@h:1/x@y"), "http://***@h:1/x@y");
    assert_eq!(redact_url("u:p@h:1"), "***@h:1");
    assert_eq!(redact_url("http://a@b@h"), "http://***@h");
    assert_eq!(redact_url("http://h:1"), "http://h:1");
}
