use super::*;
use proptest::prelude::*;
use serde_json::{json, Value};

proptest! {
    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them(s in any::<String>()) {
        let mut out = Vec::new();
        write_str(&mut out, &s);
        prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&s).unwrap());
    }

    #[test]
    fn base64_is_the_standard_encoding(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        use base64::Engine;
        let mut out = b"x".to_vec();
        write_base64(&mut out, &bytes);
        let expected = base64::engine::general_purpose::STANDARD.encode(&bytes);
        prop_assert_eq!(&out[1..], expected.as_bytes());
    }

    #[test]
    fn integers_are_written_in_full(n in any::<u64>()) {
        let mut out = Vec::new();
        write_u64(&mut out, n);
        prop_assert_eq!(String::from_utf8(out).unwrap(), n.to_string());
    }
}

#[test]
fn logs_spans_and_exceptions_are_written_as_serde_writes_them() {
    let log = CapturedLog {
        timestamp: 1.5,
        logger: "app::db".into(),
        level: "WARN".into(),
        message: "slow \"query\"\n".into(),
        fields: Vec::new(),
        file: Some("src/db.rs".into()),
        line: Some(42),
    };
    let bare_log = CapturedLog {
        file: None,
        line: None,
        ..log.clone()
    };
    let mut attributes = serde_json::Map::new();
    attributes.insert("rows".into(), json!(3));
    attributes.insert("table".into(), json!("items"));
    let span = CapturedSpan {
        span_id: "00f067aa0ba902b7".into(),
        parent_span_id: Some("0af7651916cd43dd".into()),
        name: "GET /items/{id}".into(),
        kind: "INTERNAL".into(),
        start_time: 1_764_000_000_000_000_001,
        end_time: 1_764_000_000_000_000_999,
        status: Some("ERROR".into()),
        attributes,
    };
    let root = CapturedSpan {
        parent_span_id: None,
        status: None,
        attributes: serde_json::Map::new(),
        ..span.clone()
    };
    for log in [&log, &bare_log] {
        let mut out = Vec::new();
        write_log(&mut out, log).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            serde_json::to_string(log).unwrap()
        );
    }
    for span in [&span, &root] {
        let mut out = Vec::new();
        write_span(&mut out, span).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            serde_json::to_string(span).unwrap()
        );
    }
    let item = RequestLogItem {
        exception: Some(LoggedException {
            error_type: "Panic".into(),
            message: "boom".into(),
            traceback: "at src/main.rs:1\n".into(),
            ..Default::default()
        }),
        logs: vec![log.clone(), bare_log.clone()],
        spans: vec![span.clone(), root.clone()],
        ..Default::default()
    };
    let v = line(&item);
    assert_eq!(
        v["exception"],
        serde_json::to_value(item.exception.as_ref().unwrap()).unwrap()
    );
    assert_eq!(v["logs"], serde_json::to_value(&item.logs).unwrap());
    assert_eq!(v["spans"], serde_json::to_value(&item.spans).unwrap());
}

#[test]
fn line_uuids_differ_within_and_across_threads() {
    let batch = || (0..5_000).map(|_| random_u128()).collect::<Vec<_>>();
    let other = std::thread::spawn(batch).join().unwrap();
    let mut all: Vec<u128> = batch().into_iter().chain(other).collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 10_000);
}

#[test]
fn escapes_every_control_character_and_keeps_unicode() {
    let all: String = (0u8..0x80)
        .map(char::from)
        .chain("é€😀\u{7f}".chars())
        .collect();
    for s in [
        all.as_str(),
        "",
        "\"",
        "a\\b",
        "1234567\"",
        "12345678\n123456789",
    ] {
        let mut out = Vec::new();
        write_str(&mut out, s);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            serde_json::to_string(s).unwrap()
        );
    }
}

fn line(item: &RequestLogItem) -> Value {
    let mut out = Vec::new();
    to_line(item, &mut out).unwrap();
    assert_eq!(out.pop(), Some(b'\n'));
    assert!(!out.contains(&b'\n'));
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn lines_have_every_field_and_leave_out_empty_ones() {
    let mut item = RequestLogItem {
        request: LoggedRequest {
            timestamp: 1_764_000_000.125,
            method: "POST".into(),
            path: Some("/items/{id}".into()),
            url: "https://h/items/1?q=\"x\"".into(),
            headers: [("content-type", "application/json")].into_iter().collect(),
            size: Some(0),
            consumer: Some("c\u{1}".into()),
            body: Some(b"{\"a\":1}".to_vec()),
            attributes: Vec::new(),
        },
        response: LoggedResponse {
            status_code: 500,
            response_time: 0.0125,
            headers: [("x", "y\tz")].into_iter().collect(),
            size: Some(12_345_678_901),
            body: Some(vec![0, 255, 1]),
        },
        exception: Some(LoggedException {
            error_type: "E".into(),
            message: "m".into(),
            traceback: "t\nu".into(),
            ..Default::default()
        }),
        trace_id: Some("0af7651916cd43dd8448eb211c80319c".into()),
        ..Default::default()
    };
    let v = line(&item);
    let uuid = v["uuid"].as_str().unwrap();
    let parsed = uuid::Uuid::parse_str(uuid).unwrap();
    assert_eq!(parsed.get_version_num(), 4);
    assert_eq!(uuid, parsed.hyphenated().to_string());
    assert_eq!(
        v,
        json!({
            "uuid": uuid,
            "request": {
                "timestamp": 1_764_000_000.125, "method": "POST", "path": "/items/{id}",
                "url": "https://h/items/1?q=\"x\"",
                "headers": [["content-type", "application/json"]],
                "size": 0, "consumer": "c\u{1}", "body": "eyJhIjoxfQ==",
            },
            "response": {
                "status_code": 500, "response_time": 0.0125, "headers": [["x", "y\tz"]],
                "size": 12_345_678_901u64, "body": "AP8B",
            },
            "exception": {"type": "E", "message": "m", "traceback": "t\nu"},
            "trace_id": "0af7651916cd43dd8448eb211c80319c",
        })
    );
    // Key order is the protocol's.
    let text = {
        let mut out = Vec::new();
        to_line(&item, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    };
    let order = [
        "\"uuid\"",
        "\"request\"",
        "\"timestamp\"",
        "\"method\"",
        "\"path\"",
        "\"url\"",
        "\"headers\"",
        "\"consumer\"",
        "\"response\"",
        "\"status_code\"",
        "\"response_time\"",
        "\"exception\"",
        "\"trace_id\"",
    ];
    let positions: Vec<usize> = order.iter().map(|k| text.find(k).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");

    item.request.path = Some(String::new());
    item.request.headers.clear();
    item.request.size = None;
    item.request.consumer = None;
    item.request.body = Some(Vec::new());
    item.response.headers.clear();
    item.response.size = None;
    item.response.body = None;
    item.exception = None;
    item.trace_id = None;
    let v = line(&item);
    assert_eq!(
        v["request"],
        json!({"timestamp": 1_764_000_000.125, "method": "POST", "url": "https://h/items/1?q=\"x\""})
    );
    assert_eq!(
        v["response"],
        json!({"status_code": 500, "response_time": 0.0125})
    );
    assert_eq!(v.as_object().unwrap().len(), 3);
}

#[test]
fn log_messages_are_cut_at_2048_chars() {
    let mut short = "ok".to_owned();
    truncate_log_message(&mut short);
    assert_eq!(short, "ok");
    let mut long = "ü".repeat(3000);
    truncate_log_message(&mut long);
    assert_eq!(long.chars().count(), 2048);
    assert!(long.ends_with("ü... (truncated)"));
}

#[test]
fn an_item_cleared_for_reuse_is_empty_and_keeps_its_buffers() {
    let headers: Headers = [("content-type", "application/json"), ("x-a", "1")]
        .into_iter()
        .collect();
    let mut item = RequestLogItem {
        request: LoggedRequest {
            timestamp: 1.5,
            method: "POST".into(),
            path: Some("/items/{id}".into()),
            url: "https://example.com/items/5".into(),
            headers: headers.clone(),
            size: Some(3),
            consumer: Some("c".into()),
            body: Some(b"{}".to_vec()),
            attributes: Vec::new(),
        },
        response: LoggedResponse {
            status_code: 201,
            response_time: 0.5,
            headers,
            size: Some(2),
            body: Some(b"{}".to_vec()),
        },
        exception: Some(LoggedException::default()),
        request_content_type: Some("application/json".into()),
        response_content_type: Some("application/json".into()),
        request_content_encoding: Some("gzip".into()),
        response_content_encoding: Some("gzip".into()),
        user_agent: Some("curl".into()),
        logs: vec![CapturedLog::default()],
        spans: vec![CapturedSpan::default()],
        trace_id: Some("00".into()),
        trace_context: Some(TraceIds::default()),
        client_address: Some([127, 0, 0, 1].into()),
        duration: Some(std::time::Duration::from_millis(3)),
    };
    let (url, method) = (item.request.url.capacity(), item.request.method.capacity());
    item.clear_for_reuse();
    assert_eq!(item.request, LoggedRequest::default());
    assert_eq!(item.response, LoggedResponse::default());
    assert_eq!(item.exception, None);
    assert_eq!(
        (
            &item.request_content_type,
            &item.response_content_type,
            &item.request_content_encoding,
            &item.response_content_encoding,
            &item.user_agent
        ),
        (&None, &None, &None, &None, &None)
    );
    assert!(item.logs.is_empty() && item.spans.is_empty() && item.trace_id.is_none());
    // The line of a cleared item is the line of a default one (apart from its uuid).
    let without_uuid = |item: &RequestLogItem| {
        let mut v = line(item);
        v.as_object_mut().unwrap().remove("uuid");
        v
    };
    assert_eq!(
        without_uuid(&item),
        without_uuid(&RequestLogItem::default())
    );
    // The buffers every request fills are kept...
    assert_eq!(item.request.url.capacity(), url);
    assert_eq!(item.request.method.capacity(), method);
    assert!(item.request.headers.capacity_bytes() > 0);
    assert!(item.spare_bytes() > std::mem::size_of::<RequestLogItem>());
    // ...unless a large request made them grow.
    item.request.url = "x".repeat(MAX_KEPT_URL_BYTES + 1);
    item.response
        .headers
        .push("x-big", &"v".repeat(MAX_KEPT_HEADER_BYTES));
    item.clear_for_reuse();
    assert_eq!(item.request.url.capacity(), 0);
    assert_eq!(item.response.headers.capacity_bytes(), 0);
}

#[test]
fn numbers_are_written_as_serde_json_writes_them() {
    let check = |v: f64| {
        let mut out = Vec::new();
        write_f64(&mut out, v).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            serde_json::to_string(&v).unwrap(),
            "{v:?}"
        );
    };
    for v in [
        0.0,
        -0.0,
        0.001,
        0.01,
        0.1,
        0.5,
        1.0,
        1.5,
        10.25,
        1_795_770_457.0,
        1_795_770_457.6,
        1_795_770_457.66,
        1_795_770_457.668,
        1_795_770_457.001,
        999_999_999_999.999,
        1e12,
        1e15,
        1e16,
        1.234e20,
        0.000014902,
        0.1234,
        1e-7,
        -1.5,
        f64::MAX,
    ] {
        check(v);
    }
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..100_000 {
        // Timestamps as the adapter makes them, around now and over the whole range.
        check(rng.u64(1_700_000_000_000..2_000_000_000_000) as f64 / 1000.0);
        check(rng.u64(0..1_000_000_000_000_000) as f64 / 1000.0);
        // Response times (nanoseconds as seconds) and arbitrary values.
        check(rng.u64(0..10_000_000_000) as f64 / 1e9);
        check(f64::from_bits(rng.u64(..)).abs().min(1e300));
    }
}
