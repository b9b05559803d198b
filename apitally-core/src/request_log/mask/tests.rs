use std::borrow::Cow;

use super::*;
use crate::request_log::item::Headers;
use proptest::prelude::*;
use serde_json::Value;

fn body_patterns() -> Patterns {
    Patterns::new(&BODY_FIELD_PATTERNS, &[]).unwrap()
}

fn query_patterns() -> Patterns {
    Patterns::new(&QUERY_PARAM_PATTERNS, &[]).unwrap()
}

#[test]
fn the_defaults_cover_what_users_paste() {
    let query = query_patterns();
    for name in [
        "X-Amz-Signature",
        "X-Amz-Credential",
        "X-Amz-Security-Token",
        "sig",
        "signature",
        "refresh_token",
        "private_key",
        "session_id",
        "cvv",
        "cvc",
    ] {
        assert!(query.matches(name), "query {name}");
    }
    for name in [
        "page",
        "design",
        "assignee",
        "signal",
        "x-amz-date",
        "expires",
    ] {
        assert!(!query.matches(name), "query {name}");
    }
    let body = body_patterns();
    for name in [
        "cvv",
        "cvc",
        "card_cvc",
        "private_key",
        "privateKey",
        "refresh",
        "refresh_token",
        "signature",
        "sig",
        "aws_credentials",
        "sessionId",
    ] {
        assert!(body.matches(name), "body {name}");
    }
    for name in ["name", "refresh_interval", "signup", "design", "email"] {
        assert!(!body.matches(name), "body {name}");
    }
}

#[test]
fn the_queries_of_url_headers_and_of_nested_urls_are_masked() {
    let headers_patterns = Patterns::new(&HEADER_PATTERNS, &[]).unwrap();
    let mut headers: Headers = [
        ("Referer", "https://app.example/reset?token=t-1&step=2"),
        ("location", "/next?page=2"),
        ("Content-Location", "/items?api_key=k-2"),
        ("x-other", "/x?token=kept-not-a-url-header"),
        (
            "Location",
            "https://h/cb?redirect_uri=https%3A%2F%2Fa.example%2Fcb%3Ftoken%3Dt-3",
        ),
    ]
    .into_iter()
    .collect();
    mask_headers(&mut headers, &headers_patterns, &query_patterns());
    let values: Vec<_> = headers.iter().map(|(_, v)| v).collect();
    assert_eq!(
        values,
        [
            "https://app.example/reset?token=%2A%2A%2A%2A%2A%2A&step=2",
            // Nothing to mask: byte for byte.
            "/next?page=2",
            "/items?api_key=%2A%2A%2A%2A%2A%2A",
            "/x?token=kept-not-a-url-header",
            "https://h/cb?redirect_uri=https%3A%2F%2Fa.example%2Fcb%3Ftoken%3D%252A%252A%252A%252A%252A%252A",
        ]
    );
    // A redirect_uri (or any value) that is a URL with a query: its query is masked too.
    let url = "/login?redirect_uri=https%3A%2F%2Fapp%2Fcb%3Fcode%3D1%26access_token%3Dt-4&x=1";
    let masked = mask_query(url, &query_patterns());
    assert!(!masked.contains("t-4"), "{masked}");
    assert!(masked.contains("code%3D1"), "{masked}");
    // Three levels down is left as it is (bounded work).
    let inner = "https://c/x?token=deep";
    let l2 = format!("https://b/y?next={}", urlencode(inner));
    let l1 = format!("https://a/z?next={}", urlencode(&l2));
    let l0 = format!("/p?next={}", urlencode(&l1));
    let _ = mask_query(&l0, &query_patterns());
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn masked_json(body: &str) -> String {
    String::from_utf8(
        mask_json(body.as_bytes(), &body_patterns())
            .unwrap()
            .into_owned(),
    )
    .unwrap()
}

#[test]
fn patterns_are_case_insensitive_searches_and_take_extras() {
    let p = Patterns::new(&QUERY_PARAM_PATTERNS, &["^x-custom$".to_owned()]).unwrap();
    assert!(p.matches("PassWord"));
    assert!(p.matches("my_api_key_2"));
    assert!(p.matches("APIKEY"));
    assert!(p.matches("api-key"));
    assert!(p.matches("X-Custom"));
    assert!(!p.matches("x-custom-2"));
    assert!(!p.matches("page"));
    assert!(Patterns::new(&[], &["(".to_owned()]).is_err());
    assert!(!Patterns::new(&[], &[]).unwrap().matches("password"));
}

#[test]
fn remembered_answers_stay_right_and_the_cache_is_bounded() {
    let p = Patterns::new(&HEADER_PATTERNS, &[]).unwrap();
    for round in 0..2 {
        assert!(p.matches("Authorization"), "round {round}");
        assert!(!p.matches("content-length"), "round {round}");
        assert!(p.matches("X-Auth-Token"), "round {round}");
        assert!(!p.matches("accept"), "round {round}");
    }
    for i in 0..Patterns::CACHE_NAMES + 100 {
        let name = if i % 2 == 0 {
            format!("x-token-{i}")
        } else {
            format!("x-plain-{i}")
        };
        assert_eq!(p.matches(&name), i % 2 == 0, "{name}");
    }
    assert_eq!(p.cache.lock().unwrap().len(), Patterns::CACHE_NAMES);
    // Past the cap, names are still matched correctly.
    assert!(p.matches("new-secret-header"));
    assert!(!p.matches("new-plain-header"));
    assert!(p.matches(&format!("{}token", "a".repeat(300))));
}

#[test]
fn masks_default_headers() {
    let patterns = Patterns::new(&HEADER_PATTERNS, &[]).unwrap();
    let names = [
        "Authorization",
        "Cookie",
        "Set-Cookie",
        "X-API-Key",
        "X-Api_Key",
        "x-auth-token",
        "X-Session-Id",
        "X-Hub-Signature-256",
        "X-Amz-Credential",
        "content-type",
    ];
    let mut headers: Headers = names.iter().map(|n| (n, "value")).collect();
    mask_headers(&mut headers, &patterns, &query_patterns());
    assert_eq!(headers.len(), names.len());
    for ((name, value), expected_name) in headers.iter().zip(names) {
        assert_eq!(name, expected_name);
        let expected = if name == "content-type" {
            "value"
        } else {
            MASKED
        };
        assert_eq!(value, expected, "{name}");
    }
}

#[test]
fn masks_query_params() {
    let p = Patterns::new(&QUERY_PARAM_PATTERNS, &[]).unwrap();
    assert_eq!(
        mask_query("/items?token=abc&page=2&api_key=k&x=1&x=2", &p),
        "/items?token=%2A%2A%2A%2A%2A%2A&page=2&api_key=%2A%2A%2A%2A%2A%2A&x=1&x=2"
    );
    assert_eq!(
        mask_query("https://h/p?pass%77ord=1&flag&q=a%20b", &p),
        "https://h/p?password=%2A%2A%2A%2A%2A%2A&flag=&q=a+b"
    );
    // `;` separates too; a `#` hides nothing.
    assert_eq!(
        mask_query("/p?a=1;token=t&b=2;TOKEN=u", &p),
        "/p?a=1&token=%2A%2A%2A%2A%2A%2A&b=2&TOKEN=%2A%2A%2A%2A%2A%2A"
    );
    assert_eq!(
        mask_query("/p?Secret=s#frag&token=t", &p),
        "/p?Secret=%2A%2A%2A%2A%2A%2A&token=%2A%2A%2A%2A%2A%2A"
    );
    assert_eq!(
        mask_query("/p?q=%7E*~%2a&e=%C3%A9%25", &p),
        "/p?q=~%2A~%2A&e=%C3%A9%25"
    );
    assert_eq!(
        mask_query("/p#a?token=t", &p),
        "/p#a?token=%2A%2A%2A%2A%2A%2A"
    );
    assert_eq!(mask_query("/p", &p), "/p");
    assert_eq!(mask_query("/p?", &p), "/p?");
}

#[test]
fn strips_query() {
    assert_eq!(strip_query("/p?a=1&b=2"), "/p");
    assert_eq!(strip_query("/p?a=1#f"), "/p");
    assert_eq!(strip_query("/p#f?x"), "/p#f");
    assert_eq!(strip_query("/p"), "/p");
}

#[test]
fn masks_json_bodies() {
    let body = r#"{"user":{"password":"hunter2","age":3},"items":[{"token":"t"},{"card_number":"4111"}],"password":5,"z":"keep"}"#;
    assert_eq!(
        masked_json(body),
        r#"{"user":{"password":"******","age":3},"items":[{"token":"******"},{"card_number":"******"}],"password":"******","z":"keep"}"#
    );
}

#[test]
fn json_key_order_and_duplicates_are_kept() {
    assert_eq!(
        masked_json(r#"{"z":1,"a":"x","secret":"1","secret":"2","m":null}"#),
        r#"{"z":1,"a":"x","secret":"******","secret":"******","m":null}"#
    );
}

#[test]
fn non_string_values_under_sensitive_keys_are_walked() {
    assert_eq!(
        masked_json(
            r#"{"auth":{"token":"t","n":1},"pwd":["a",{"ssn":"1","x":"k"},[2,null]],"ccv":true,"pin_token":-12.5e1}"#
        ),
        r#"{"auth":{"token":"******","n":1},"pwd":["******",{"ssn":"******","x":"k"},["******",null]],"ccv":true,"pin_token":"******"}"#
    );
}

#[test]
fn json_whitespace_is_stripped_but_strings_kept_byte_for_byte() {
    let body = "\r\n {\n  \"name\" : \"a b\\t\\\"c\\\" \\u00e9 é 😀 \\ud83d\\ude00\",\n\t\"list\" : [ 1 , -2.5e3 , true , false , null , { } , [ ] ],\n  \"Password\": \"p w\"\n}\n ";
    assert_eq!(
        masked_json(body),
        "{\"name\":\"a b\\t\\\"c\\\" \\u00e9 é 😀 \\ud83d\\ude00\",\"list\":[1,-2.5e3,true,false,null,{},[]],\"Password\":\"******\"}"
    );
    assert_eq!(masked_json(" \"str\" "), "\"str\"");
    assert_eq!(masked_json("12"), "12");
}

#[test]
fn escaped_key_names_are_matched() {
    assert_eq!(
        masked_json(
            r#"{"pass\u0077ord":"x","\u0061pi\u005Fkey":"y","x\/t\u006Fken":"z","\"token\"":"w"}"#
        ),
        r#"{"pass\u0077ord":"******","\u0061pi\u005Fkey":"******","x\/t\u006Fken":"******","\"token\"":"******"}"#
    );
    // A key that only looks sensitive once a surrogate pair is decoded is not.
    assert_eq!(
        masked_json(r#"{"\ud83d\ude00":"x","a\"b":"c"}"#),
        r#"{"\ud83d\ude00":"x","a\"b":"c"}"#
    );
}

#[test]
fn unescape_handles_all_escapes() {
    assert_eq!(
        unescape(br#"a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"#),
        "a\"\\/\u{8}\u{c}\n\r\té😀"
    );
    assert_eq!(unescape(br"\ud83d"), "\u{FFFD}");
    assert_eq!(unescape(br"\ud83dx\ude00"), "\u{FFFD}x\u{FFFD}");
    assert_eq!(unescape(br"\u12"), "\u{FFFD}12");
    assert_eq!(unescape(b"\\"), "");
    assert_eq!(unescape(b"\xff"), "\u{FFFD}");
}

#[test]
fn invalid_json_is_none() {
    let p = body_patterns();
    for body in [
        "",
        " ",
        "{",
        r#"{"a":}"#,
        r#"{"a":1}x"#,
        r#"{"a":1,}"#,
        "password=x",
        "\u{feff}{}",
        r#"{'a':1}"#,
        "[1 2]",
        "NaN",
        "[1}",
        r#"{"a":1]"#,
        "[1,]",
        "[,1]",
        r#"{"a"1}"#,
        "{1:2}",
        "{,}",
        "01",
        "-",
        "-01",
        "1.",
        "1.e3",
        "1e",
        "1e+",
        ".5",
        "+1",
        "nul",
        "truex",
        "[fals]",
        r#""\x""#,
        r#""\u12g4""#,
        r#""\u12""#,
        "\"a\u{1}b\"",
        "\"tab\there\"",
        r#""unterminated"#,
        r#""\""#,
        "1 2",
    ] {
        assert_eq!(mask_json(body.as_bytes(), &p), None, "{body:?}");
        assert!(
            serde_json::from_str::<serde::de::IgnoredAny>(body).is_err(),
            "{body:?}"
        );
    }
}

#[test]
fn deep_nesting_does_not_overflow() {
    let p = body_patterns();
    let depth = 100_000;
    let body = format!(
        "{}{{\"token\":\"t\"}}{}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    // Any depth is valid JSON, as for `serde_json` ignoring a value, and masked inside.
    let out = mask_json(body.as_bytes(), &p).expect("valid at any depth");
    let expected = format!(
        "{}{{\"token\":\"******\"}}{}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    assert_eq!(out.as_ref(), expected.as_bytes());
    // Containers closed in the wrong order, past the 64 levels kept in one word.
    let crossed = format!("{}{{]{}", "[".repeat(70), "]".repeat(70));
    assert_eq!(mask_json(crossed.as_bytes(), &p), None);
    let crossed = format!("{}[{}", "{\"a\":".repeat(70), "}".repeat(71));
    assert_eq!(mask_json(crossed.as_bytes(), &p), None);
    let mixed: String = (0..200)
        .map(|n| if n % 3 == 0 { "{\"k\":" } else { "[" })
        .collect();
    let closed: String = (0..200)
        .rev()
        .map(|n| if n % 3 == 0 { "}" } else { "]" })
        .collect();
    let doc = format!("{mixed}1{closed}");
    assert_eq!(
        mask_json(doc.as_bytes(), &p).unwrap().as_ref(),
        doc.as_bytes()
    );
}

#[test]
fn keys_that_are_not_utf8_are_matched_as_read_lossily() {
    let p = body_patterns();
    let out = mask_json(b"{\"\xfftoken\":\"x\",\"pass\xffword\":\"y\"}", &p).unwrap();
    // `\u{fffd}token` matches `token`; `pass\u{fffd}word` matches nothing.
    assert_eq!(
        out.as_ref(),
        b"{\"\xfftoken\":\"******\",\"pass\xffword\":\"y\"}"
    );
    // The answer cached for the bytes stays right.
    let again = mask_json(b"{\"\xfftoken\":\"z\"}", &p).unwrap();
    assert_eq!(again.as_ref(), b"{\"\xfftoken\":\"******\"}");
}

#[test]
fn unchanged_bodies_are_borrowed_and_changed_ones_copied() {
    let p = body_patterns();
    let kept = br#"{"a":[1,-0.5E+2,"x\"y",{}],"b":null}"#;
    assert!(matches!(mask_json(kept, &p), Some(Cow::Borrowed(b)) if b == kept));
    // Trailing whitespace is cut without a copy.
    assert!(matches!(
        mask_json(b"[1] \n", &p),
        Some(Cow::Borrowed(b"[1]"))
    ));
    for (body, masked) in [
        (&b" [1]"[..], &b"[1]"[..]),
        (b"[1, 2]", b"[1,2]"),
        (br#"{"pwd":"p","n":"x"}"#, br#"{"pwd":"******","n":"x"}"#),
        (br#"{"pwd" : "p" }"#, br#"{"pwd":"******"}"#),
    ] {
        let out = mask_json(body, &p).unwrap();
        assert!(matches!(out, Cow::Owned(_)));
        assert_eq!(out.as_ref(), masked);
    }
    assert_eq!(MASKED_VALUE, format!("\"{MASKED}\"").as_bytes());
}

#[test]
fn masks_ndjson_line_by_line() {
    let p = body_patterns();
    let body = "{\"token\": \"a\"}\n\nnot json\n{\"b\":1}\r\n[{\"secret\":\"s\"}]\n{\"pwd\": \"cut";
    let out = crate::request_log::body::mask_ndjson(body.as_bytes(), &p);
    // Valid lines masked and compacted, a broken one masked as it is, a line that is not
    // JSON at all replaced by the marker.
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "{\"token\":\"******\"}\n\n<masked>\n{\"b\":1}\r\n[{\"secret\":\"******\"}]\n{\"pwd\": \"******\""
    );
    assert_eq!(
        crate::request_log::body::mask_ndjson(b"{\"a\":1}", &p),
        b"{\"a\":1}"
    );
    assert_eq!(
        crate::request_log::body::mask_ndjson(b"nope\n\n", &p),
        b"<masked>\n\n"
    );
    assert_eq!(crate::request_log::body::mask_ndjson(b"", &p), b"");
}

/// A JSON value with ordered (possibly duplicate) object keys.
#[derive(Debug, Clone)]
enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Str(JsonStr),
    Array(Vec<Json>),
    Object(Vec<(JsonStr, Json)>),
}

/// A string and whether it is written with every character `\u`-escaped.
#[derive(Debug, Clone)]
struct JsonStr(String, bool);

impl JsonStr {
    fn write(&self, out: &mut String) {
        if self.1 {
            out.push('"');
            for unit in self.0.encode_utf16() {
                out.push_str(&format!("\\u{unit:04x}"));
            }
            out.push('"');
        } else {
            out.push_str(&serde_json::to_string(&self.0).unwrap());
        }
    }
}

impl Json {
    /// Writes the value, with whitespace from `ws` between tokens.
    fn write(&self, out: &mut String, ws: &mut dyn Iterator<Item = &'static str>) {
        fn space(out: &mut String, ws: &mut dyn Iterator<Item = &'static str>) {
            out.push_str(ws.next().unwrap_or(""));
        }
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(&n.to_string()),
            Json::Str(s) => s.write(out),
            Json::Array(items) => {
                out.push('[');
                for (n, item) in items.iter().enumerate() {
                    space(out, ws);
                    if n > 0 {
                        out.push(',');
                        space(out, ws);
                    }
                    item.write(out, ws);
                }
                space(out, ws);
                out.push(']');
            }
            Json::Object(members) => {
                out.push('{');
                for (n, (key, value)) in members.iter().enumerate() {
                    space(out, ws);
                    if n > 0 {
                        out.push(',');
                        space(out, ws);
                    }
                    key.write(out);
                    space(out, ws);
                    out.push(':');
                    space(out, ws);
                    value.write(out, ws);
                }
                space(out, ws);
                out.push('}');
            }
        }
    }

    /// What masking should make of this value under a sensitive key: strings and numbers
    /// masked, arrays masked element by element, objects masked by their own keys.
    fn masked_under_sensitive_key(&self, sensitive: &dyn Fn(&str) -> bool) -> Json {
        match self {
            Json::Str(_) | Json::Number(_) => Json::Str(JsonStr(MASKED.to_owned(), false)),
            Json::Array(items) => Json::Array(
                items
                    .iter()
                    .map(|i| i.masked_under_sensitive_key(sensitive))
                    .collect(),
            ),
            other => other.masked(sensitive),
        }
    }

    /// What masking should make of this value.
    fn masked(&self, sensitive: &dyn Fn(&str) -> bool) -> Json {
        match self {
            Json::Array(items) => Json::Array(items.iter().map(|i| i.masked(sensitive)).collect()),
            Json::Object(members) => Json::Object(
                members
                    .iter()
                    .map(|(k, v)| {
                        let v = if sensitive(&k.0) {
                            v.masked_under_sensitive_key(sensitive)
                        } else {
                            v.masked(sensitive)
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// Sensitive-looking keys in random case, and arbitrary keys.
fn key() -> impl Strategy<Value = JsonStr> {
    let sensitive = prop::sample::select(vec![
        "password",
        "PassWord",
        "api_key",
        "API-KEY",
        "apikey",
        "Secret",
        "x-auth-token",
        "card number",
        "CardNumber",
        "ssn",
        "pwd",
        "ccv",
        "client_secret",
    ]);
    let random_case =
        (sensitive, prop::collection::vec(any::<bool>(), 16)).prop_map(|(name, upper)| {
            name.chars()
                .zip(upper.iter().cycle())
                .map(|(c, &u)| {
                    if u {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    }
                })
                .collect::<String>()
        });
    let name = prop_oneof![
        random_case,
        "\\PC{0,10}",
        "[a-z_\"\\\\/]{0,6}",
        any::<String>()
    ];
    (name, prop::bool::weighted(0.2)).prop_map(|(s, escaped)| JsonStr(s, escaped))
}

fn json() -> impl Strategy<Value = Json> {
    let string = (
        "\\PC{0,12}|[\"\\\\\\x00-\\x1f]{0,4}",
        prop::bool::weighted(0.1),
    )
        .prop_map(|(s, escaped)| JsonStr(format!("SENTINEL-{s}"), escaped));
    let number = prop_oneof![
        any::<i64>().prop_map(serde_json::Number::from),
        any::<u64>().prop_map(serde_json::Number::from),
        any::<f64>().prop_filter_map("finite", serde_json::Number::from_f64),
    ];
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        number.prop_map(Json::Number),
        string.clone().prop_map(Json::Str),
        string.prop_map(Json::Str),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
            prop::collection::vec((key(), inner), 0..6).prop_map(Json::Object),
        ]
    })
}

/// Walks input and output in parallel: same structure, sensitive strings and numbers
/// masked (in arrays under sensitive keys too).
fn assert_masked(input: &Value, output: &Value, sensitive: &dyn Fn(&str) -> bool) {
    assert_masked_in(input, output, sensitive, false);
}

fn assert_masked_in(
    input: &Value,
    output: &Value,
    sensitive: &dyn Fn(&str) -> bool,
    masking: bool,
) {
    match (input, output) {
        (Value::Object(i), Value::Object(o)) => {
            assert_eq!(i.len(), o.len());
            for ((ik, iv), (ok, ov)) in i.iter().zip(o) {
                assert_eq!(ik, ok);
                assert_masked_in(iv, ov, sensitive, sensitive(ik));
            }
        }
        (Value::Array(i), Value::Array(o)) => {
            assert_eq!(i.len(), o.len());
            for (iv, ov) in i.iter().zip(o) {
                assert_masked_in(iv, ov, sensitive, masking);
            }
        }
        (i, o) if masking && (i.is_string() || i.is_number()) => assert_eq!(o, MASKED),
        (i, o) => assert_eq!(i, o),
    }
}

/// Documents that are JSON but for a few bytes changed, inserted or removed, where a
/// validator is most likely to go wrong.
fn near_json() -> impl Strategy<Value = Vec<u8>> {
    let edit = (
        any::<prop::sample::Index>(),
        0u8..3,
        prop::sample::select(b"{}[],:\"\\ \t0-1.eE+tnfulx/\x01\x1f\x7f\xe9".to_vec()),
    );
    (
        json(),
        prop::collection::vec(prop::sample::select(WHITESPACE.to_vec()), 1..4),
        prop::collection::vec(edit, 0..4),
    )
        .prop_map(|(value, ws, edits)| {
            let mut text = String::new();
            value.write(&mut text, &mut ws.iter().copied().cycle());
            let mut bytes = text.into_bytes();
            for (at, kind, byte) in edits {
                let i = at.index(bytes.len() + 1);
                match kind {
                    0 if i < bytes.len() => bytes[i] = byte,
                    1 => bytes.insert(i, byte),
                    _ if i < bytes.len() => {
                        bytes.remove(i);
                    }
                    _ => {}
                }
            }
            bytes
        })
}

const WHITESPACE: [&str; 6] = ["", " ", "\n  ", "\t", "\r\n", "  \n\t "];

proptest! {
    // Many cases: a validator's mistakes hide in rare shapes.
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn one_pass_agrees_with_serde_and_the_two_pass_masker(body in prop_oneof![
        near_json(),
        prop::collection::vec(any::<u8>(), 0..64),
        "[\\[\\]{}\",:0-9a-z.+\\\\ \n\r\t\u{e9}-]{0,64}".prop_map(String::into_bytes),
        // Numbers and literals, whole or cut short, alone or in an array.
        "[\\[ ]{0,2}(-?0?[0-9]{0,2}(\\.[0-9]{0,2})?([eE][+-]?[0-9]{0,2})?|nul?l?|tru?e?|f?alse)[\\]} ]{0,2}"
            .prop_map(String::into_bytes),
    ]) {
        let p = body_patterns();
        let one_pass = mask_json(&body, &p).map(Cow::into_owned);
        prop_assert_eq!(
            one_pass.is_some(),
            serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok()
        );
        prop_assert_eq!(one_pass, mask_json_two_pass(&body, &p));
    }
}

proptest! {
    #[test]
    fn masks_arbitrary_json(
        value in json(),
        ws in prop::collection::vec(prop::sample::select(WHITESPACE.to_vec()), 1..8),
        compact in any::<bool>(),
    ) {
        // An independent reference matcher: one regex per pattern.
        let regexes: Vec<regex::Regex> = BODY_FIELD_PATTERNS
            .iter()
            .map(|p| regex::Regex::new(&format!("(?i){p}")).unwrap())
            .collect();
        let sensitive = |key: &str| regexes.iter().any(|re| re.is_match(key));

        let mut input = String::new();
        let mut spaces = ws.iter().copied().cycle().map(|s| if compact { "" } else { s });
        value.write(&mut input, &mut spaces);
        let mut expected = String::new();
        value.masked(&sensitive).write(&mut expected, &mut std::iter::empty());

        let output = mask_json(input.as_bytes(), &body_patterns());
        let output = output.expect("valid JSON is masked");
        prop_assert_eq!(std::str::from_utf8(&output).unwrap(), expected.as_str());

        let parsed_in: Value = serde_json::from_str(&input).unwrap();
        let parsed_out: Value = serde_json::from_slice(&output).unwrap();
        assert_masked(&parsed_in, &parsed_out, &sensitive);

        // The same document on two NDJSON lines (raw newlines only occur between tokens).
        let line = input.replace(['\r', '\n'], " ");
        let ndjson = format!("{line}\n{line}\n");
        let out = crate::request_log::body::mask_ndjson(ndjson.as_bytes(), &body_patterns());
        prop_assert_eq!(out, format!("{expected}\n{expected}\n").into_bytes());
    }

    #[test]
    fn deep_documents_are_masked_at_every_level(
        value in json(),
        levels in prop::collection::vec((any::<bool>(), key()), 60..140),
    ) {
        // Each level wraps the one inside it, with a sensitive string value before and
        // after it (so the 64-level boundaries of `Nesting` are crossed both ways), and a
        // plain object in arrays.
        let mut inner = String::new();
        value.write(&mut inner, &mut std::iter::empty());
        for (depth, (object, key)) in levels.iter().enumerate() {
            let mut name = String::new();
            key.write(&mut name);
            inner = if *object {
                format!(r#"{{"password":"LEAK-a{depth}",{name}:{inner},"Api-Key":"LEAK-b{depth}"}}"#)
            } else {
                // (An object in the array: kept whether the array is under a sensitive
                // key or not.)
                format!(r#"[{{"secret":"LEAK-c{depth}"}},{inner},{{"kept":"kept-{depth}"}}]"#)
            };
        }
        let p = body_patterns();
        let out = mask_json(inner.as_bytes(), &p).expect("valid JSON").into_owned();
        let two_pass = mask_json_two_pass(inner.as_bytes(), &p);
        prop_assert_eq!(Some(&out), two_pass.as_ref());
        let text = String::from_utf8_lossy(&out);
        prop_assert!(!text.contains("LEAK-"), "{}", text);
        prop_assert_eq!(text.matches("kept-").count(), levels.iter().filter(|l| !l.0).count());
    }

    #[test]
    fn never_panics_on_bytes(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let p = body_patterns();
        let _ = mask_json(&body, &p);
        let _ = crate::request_log::body::mask_ndjson(&body, &p);
        let _ = scan_json(&body, &p);
        let _ = unescape(&body);
    }

    #[test]
    fn never_panics_on_json_like_input(body in "[\\[\\]{}\",:0-9a-z\\\\ \n\r\t\u{e9}-]{0,64}") {
        let p = body_patterns();
        let _ = mask_json(body.as_bytes(), &p);
        let _ = crate::request_log::body::mask_ndjson(body.as_bytes(), &p);
        let _ = scan_json(body.as_bytes(), &p);
        let _ = unescape(body.as_bytes());
    }

    #[test]
    fn never_panics_on_urls_and_content_types(s in any::<String>(), t in "[/?#=&%a-z0-9\u{e9}+]{0,40}") {
        let p = Patterns::new(&QUERY_PARAM_PATTERNS, &[]).unwrap();
        for url in [s.as_str(), t.as_str()] {
            let masked = mask_query(url, &p);
            let _ = mask_query(&masked, &p);
            let _ = strip_query(url);
        }
    }
}
