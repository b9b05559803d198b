use std::io::Write;

use super::*;

fn patterns() -> Patterns {
    Patterns::new(&mask::BODY_FIELD_PATTERNS, &[]).unwrap()
}

fn tolerant(body: &str) -> Option<String> {
    mask_tolerant(body.as_bytes(), &patterns()).map(|b| String::from_utf8(b).unwrap())
}

#[test]
fn content_types_decide_capture_and_masking() {
    use BodyKind::*;
    for (ct, kind) in [
        ("application/json", Some(Json)),
        ("Application/JSON; charset=utf-8", Some(Json)),
        (" application/json ;x=1", Some(Json)),
        ("application/problem+json", Some(Json)),
        ("application/vnd.api+json", Some(Json)),
        ("application/ld+json", Some(Json)),
        ("application/merge-patch+JSON", Some(Json)),
        ("application/x-ndjson", Some(Ndjson)),
        ("application/jsonl", Some(Ndjson)),
        ("application/x-jsonl", Some(Ndjson)),
        ("application/jsonlines", Some(Ndjson)),
        ("text/plain", Some(Text)),
        ("text/html; charset=utf-8", Some(Text)),
        // Not JSON, whatever they look like: neither captured nor masked.
        ("application/json5", None),
        ("application/jsonx", None),
        ("application/json-seq", None),
        ("application/jsonp", None),
        ("application/x-www-form-urlencoded", None),
        ("multipart/form-data", None),
        ("image/png", None),
        ("json", None),
        ("", None),
        ("+json", None),
        ("application/+json", None),
        ("appé/x+json", None),
    ] {
        assert_eq!(body_kind(ct), kind, "{ct:?}");
    }
}

#[test]
fn compressed_bodies_are_decoded_within_the_limit() {
    let gz = |data: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let zlib = |data: &[u8]| {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let raw = |data: &[u8]| {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let body = b"{\"password\":\"x\"}";
    assert_eq!(decode(None, body, 100), Ok(None));
    assert_eq!(decode(Some(" identity "), body, 100), Ok(None));
    assert_eq!(
        decode(Some("gzip"), &gz(body), 100),
        Ok(Some(body.to_vec()))
    );
    assert_eq!(
        decode(Some("X-GZIP"), &gz(body), 100),
        Ok(Some(body.to_vec()))
    );
    assert_eq!(
        decode(Some("deflate"), &zlib(body), 100),
        Ok(Some(body.to_vec()))
    );
    assert_eq!(
        decode(Some("deflate"), &raw(body), 100),
        Ok(Some(body.to_vec()))
    );
    // Exactly the limit passes; one byte more does not.
    let big = vec![b'a'; 1000];
    assert_eq!(
        decode(Some("gzip"), &gz(&big), 1000)
            .unwrap()
            .unwrap()
            .len(),
        1000
    );
    assert_eq!(
        decode(Some("gzip"), &gz(&big), 999),
        Err(Undecodable::TooLarge)
    );
    // A bomb stops at the limit.
    let bomb = gz(&vec![0; 10 << 20]);
    assert_eq!(
        decode(Some("gzip"), &bomb, 50_000),
        Err(Undecodable::TooLarge)
    );
    // Cut short, corrupt, or another coding: not logged as read.
    let whole = gz(body);
    assert_eq!(
        decode(Some("gzip"), &whole[..whole.len() - 6], 100),
        Err(Undecodable::Opaque)
    );
    assert_eq!(decode(Some("gzip"), body, 100), Err(Undecodable::Opaque));
    assert_eq!(decode(Some("br"), body, 100), Err(Undecodable::Opaque));
    assert_eq!(
        decode(Some("gzip, br"), body, 100),
        Err(Undecodable::Opaque)
    );
}

#[test]
fn broken_json_is_masked_where_keys_can_be_told() {
    let m = |s: &str| tolerant(s).unwrap();
    // A trailing comma, single quotes, unquoted keys, comments, NaN.
    assert_eq!(
        m(r#"{"password": "hunter2", "n": 1,}"#),
        r#"{"password": "******", "n": 1,}"#
    );
    assert_eq!(
        m("{'token': 'abc', 'x': 'y'}"),
        "{'token': \"******\", 'x': 'y'}"
    );
    assert_eq!(m("{secret: abc123, ok: 1}"), "{secret: \"******\", ok: 1}");
    assert_eq!(
        m("{/* c */ \"api_key\" /* c */ : /* c */ \"k\" // trailing\n}"),
        "{/* c */ \"api_key\" /* c */ : /* c */ \"******\" // trailing\n}"
    );
    assert_eq!(
        m(r#"{"pwd": NaN, "a": NaN}"#),
        r#"{"pwd": "******", "a": NaN}"#
    );
    assert_eq!(
        m(r#"{"pin_token": -1.5e3 }"#),
        r#"{"pin_token": "******" }"#
    );
    // Cut short mid-value, mid-key, mid-escape.
    assert_eq!(
        m(r#"{"a": 1, "password": "hunt"#),
        r#"{"a": 1, "password": "******""#
    );
    assert_eq!(m(r#"{"password": "hu\"nt"#), r#"{"password": "******""#);
    assert_eq!(m(r#"{"passw"#), r#"{"passw"#);
    assert_eq!(m(r#"{"password":"#), r#"{"password":"#);
    // A byte-order mark; several documents (ndjson sent as JSON).
    assert_eq!(
        m("\u{feff}{\"secret\": \"s\"}"),
        "\u{feff}{\"secret\": \"******\"}"
    );
    assert_eq!(
        m("{\"token\":\"a\"}\n{\"token\":\"b\"}\n"),
        "{\"token\":\"******\"}\n{\"token\":\"******\"}\n"
    );
    // Arrays under sensitive keys are masked whole, to their closing bracket.
    assert_eq!(
        m(r#"{"tokens": ["a", 'b', 12, [x, "]"], {"k": "v"}], "n": 1,}"#),
        r#"{"tokens": ["******", "******", "******", ["******", "******"], {"******": "******"}], "n": 1,}"#
    );
    assert_eq!(
        m(r#"{"codes": 1, "tokens": ["a", "b"#),
        r#"{"codes": 1, "tokens": ["******", "******""#
    );
    // Nested objects under sensitive keys are walked; escaped key names are matched.
    assert_eq!(
        m(r#"[{"auth": {"token": "t", "id": 7}, "\u0070wd": "p",]"#),
        r#"[{"auth": {"token": "******", "id": 7}, "\u0070wd": "******",]"#
    );
    // Strings that are values, not keys, are kept.
    assert_eq!(
        m(r#"{"note": "hello", "x": 1,}"#),
        r#"{"note": "hello", "x": 1,}"#
    );
    // Keys in comments are keys too.
    assert_eq!(m("{// password: x\n}"), "{// password: \"******\"\n}");
    // A sensitive name where no key can be told: the structure is lost (an unbalanced
    // quote), and the value next to it could be the secret.
    for body in [
        r#"{"a": "unterminated, "password": "S", "b": 1}"#,
        r#"{"a": "x, 'password': 'S'}"#,
        r#"{"note": "my password is S",}"#,
        r#"{"a": 1, password "S"}"#,
    ] {
        assert_eq!(tolerant(body), None, "{body:?}");
    }
    // Not JSON-like at all: nothing can be told, so nothing is kept.
    for body in [
        "password=hunter2",
        "",
        "   ",
        "NaN",
        "\"token\": \"x\"",
        "<xml/>",
    ] {
        assert_eq!(tolerant(body), None, "{body:?}");
    }
}

proptest::proptest! {
    #[test]
    fn tolerant_masking_never_panics_and_never_keeps_a_sensitive_string(
        prefix in "[\\[\\]{}\"',:0-9a-z\\\\ \n/*]{0,24}",
        quote in proptest::sample::select(vec!["\"", "'", ""]),
        secret in "[A-Za-z0-9]{8,16}",
        suffix in "[\\[\\]{}\"',:0-9a-z\\\\ \n]{0,24}",
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..128),
    ) {
        let _ = mask_tolerant(&bytes, &patterns());
        let body = format!("{{{prefix},{quote}password{quote}: \"SECRET{secret}\"{suffix}");
        if let Some(out) = mask_tolerant(body.as_bytes(), &patterns()) {
            let out = String::from_utf8_lossy(&out);
            proptest::prop_assert!(!out.contains(&format!("SECRET{secret}")), "{body} -> {out}");
        }
    }
}
