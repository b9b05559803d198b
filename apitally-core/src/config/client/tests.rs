use super::*;
use crate::config::checks::{check_base_url, is_canonical_uuid};

#[test]
fn base_urls_are_parsed_completely_and_only_plain_ones_pass() {
    for (url, normalised) in [
        ("https://otlp.apitally.io", "https://otlp.apitally.io"),
        ("https://otlp.apitally.io/", "https://otlp.apitally.io"),
        ("HTTP://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://[::1]:4318/base/", "http://[::1]:4318/base"),
        ("http://[::1]", "http://[::1]"),
        (
            "http://local-hub_1.internal:65535/a/b",
            "http://local-hub_1.internal:65535/a/b",
        ),
        ("http://h:1", "http://h:1"),
    ] {
        assert_eq!(check_base_url(url).as_deref(), Ok(normalised), "{url}");
    }
    for (url, why) in [
        (
            "http://127.0.0.1:65616",
            "the port \"65616\" is not a number from 1 to 65535",
        ),
        (
            "http://127.0.0.1:0",
            "the port \"0\" is not a number from 1 to 65535",
        ),
        (
            "http://127.0.0.1:",
            "the port \"\" is not a number from 1 to 65535",
        ),
        (
            "http://127.0.0.1:+80",
            "the port \"+80\" is not a number from 1 to 65535",
        ),
        (
            "http://h:0080808",
            "the port \"0080808\" is not a number from 1 to 65535",
        ),
        ("http://[::1", "the IPv6 address has no closing ]"),
        ("http://[::g]:80", "\"::g\" is not an IPv6 address"),
        ("http://[::1]x", "\"x\" follows the IPv6 address"),
        ("http://h/x?y=1", "it has a query or a fragment"),
        ("http://h/#f", "it has a query or a fragment"),
        ("http://h?x", "it has a query or a fragment"),
        (
            "http://user:pw@h",
            "it has user-info (name@ or name:password@)",
        ),
        (
            "http://evil.example@h",
            "it has user-info (name@ or name:password@)",
        ),
        ("http://", "it has no host"),
        ("http://:80", "it has no host"),
        ("http://h h", "it has the character ' '"),
        ("http://h\\x", "it has the character '\\\\'"),
        ("http://999.1.1.1", "\"999.1.1.1\" is not an IPv4 address"),
        ("http://h%2Fx", "\"h%2Fx\" is not a host name or address"),
        ("ftp://h", "the scheme \"ftp\" is not http or https"),
        ("h:80", "it does not start with http:// or https://"),
        ("http://h//x", "its path has an empty segment"),
        ("http://h/caf\u{e9}", "it has the character '\u{e9}'"),
    ] {
        assert_eq!(check_base_url(url), Err(why.to_owned()), "{url}");
    }
}

const ID: &str = "76b5cb91-a0a4-4ea0-a894-57d2b9fcb2c9";

#[test]
fn client_id_must_be_canonical_uuid() {
    assert!(is_canonical_uuid(ID));
    assert!(is_canonical_uuid(&ID.to_uppercase()));
    for bad in [
        "",
        "76b5cb91a0a44ea0a89457d2b9fcb2c9",
        "{76b5cb91-a0a4-4ea0-a894-57d2b9fcb2c9}",
        "urn:uuid:76b5cb91-a0a4-4ea0-a894-57d2b9fcb2c9",
        "76b5cb91-a0a4-4ea0-a894-57d2b9fcb2cg",
        "76b5cb91-a0a4-4ea0-a894-57d2b9fcb2c",
        "76b5cb91-a0a4-4ea0-a894_57d2b9fcb2c9",
        "76b5cb91-a0a4-4ea0-a894-57d2b9fcb2c9 ",
    ] {
        assert!(!is_canonical_uuid(bad), "{bad:?}");
        let err = ClientConfig::new(bad, "prod").validate().unwrap_err();
        if bad.trim().is_empty() {
            assert_eq!(err, ConfigError::MissingCredential);
        } else {
            assert_eq!(err, ConfigError::InvalidClientId { value: bad.into() });
            assert!(err.to_string().contains(bad));
            assert!(err.to_string().contains("8-4-4-4-12"));
        }
    }
}

#[test]
fn env_rules() {
    for good in ["prod", "dev", "Staging_2", "a", "x-y", &"e".repeat(32)] {
        assert!(ClientConfig::new(ID, good).validate().is_ok(), "{good}");
    }
    for bad in ["pr od", "prod!", "prød", &"e".repeat(33)] {
        let err = ClientConfig::new(ID, bad).validate().unwrap_err();
        assert_eq!(err, ConfigError::InvalidEnv { value: bad.into() });
        assert!(err.to_string().contains("1 to 32 characters"));
    }
    // Trimmed, and "dev" when empty, as the SDKs take it.
    assert_eq!(ClientConfig::new(ID, "  prod ").get_env(), "prod");
    assert_eq!(ClientConfig::new(ID, " ").get_env(), "dev");
}

#[test]
fn otlp_env_rules_accept_what_a_header_carries() {
    let token = "apt_0123456789abcdefghijABCD";
    for good in ["prod", "Prod EU (blue)", "team/a:b", &"e".repeat(255)] {
        let config = ClientConfig::with_write_token(token, good);
        assert!(config.validate().is_ok(), "{good}");
    }
    for bad in ["prød", "a\tb", &"e".repeat(256)] {
        let err = ClientConfig::with_write_token(token, bad)
            .validate()
            .unwrap_err();
        assert!(
            matches!(&err, ConfigError::InvalidOption { option: "env", .. }),
            "{err:#?}"
        );
    }
}

#[test]
fn hub_url_is_built_and_checked() {
    let resolved = ClientConfig::new(ID, "prod")
        .hub_base_url(" http://127.0.0.1:9/ ")
        .resolve()
        .unwrap();
    assert!(matches!(
        resolved.target,
        Target::Hub { hub_url } if hub_url == format!("http://127.0.0.1:9/v2/{ID}/prod")
    ));
    for bad in ["ftp://x", "hub.apitally.io", "https://", "https://a b"] {
        let err = ClientConfig::new(ID, "prod")
            .hub_base_url(bad)
            .validate()
            .unwrap_err();
        assert!(
            matches!(err, ConfigError::InvalidHubBaseUrl { .. }),
            "{bad}"
        );
    }
}

#[test]
fn app_version_is_trimmed_and_debug_redacts_client_id() {
    let config = ClientConfig::new(ID, "prod").app_version(" 1.2.3 ");
    assert_eq!(config.app_version.as_deref(), Some("1.2.3"));
    assert_eq!(
        ClientConfig::new(ID, "p").app_version("  ").app_version,
        None
    );
    let debug = format!("{config:?}");
    assert!(!debug.contains(ID), "{debug}");
    assert!(debug.contains("76b5cb91…"));
}
