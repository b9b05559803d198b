use super::*;

fn kv(value: &AttrValue) -> Vec<(&str, &AttrValue)> {
    match value {
        AttrValue::KvList(values) => values.iter().map(|a| (&*a.key, &a.value)).collect(),
        other => panic!("{other:?}"),
    }
}

fn s(value: &str) -> AttrValue {
    AttrValue::String(value.to_owned())
}

#[test]
fn startup_body_is_compact_json_in_py_key_order() {
    let versions = vec![
        ("rust".to_owned(), "1.89.0".to_owned()),
        ("actix-web".to_owned(), "4.18.1".to_owned()),
        ("rust".to_owned(), "again".to_owned()),
        ("app".to_owned(), "1.2.3".to_owned()),
    ];
    let config = vec![
        ("capture_logs".to_owned(), serde_json::json!(true)),
        ("mask_headers".to_owned(), serde_json::json!([])),
        ("sample_rate".to_owned(), serde_json::json!(1.0)),
        ("sample_on_request".to_owned(), serde_json::json!(true)),
    ];
    let paths = vec![
        PathItem::new("get", "/hello"),
        PathItem::new("GET", "/items/{item_id}").summary("Item"),
        PathItem::new("HEAD", "/hello"),
        PathItem::new("OPTIONS", "/hello"),
        PathItem::new("GET", "/hello"),
        PathItem::new("POST", "/echo"),
    ];
    let record = startup_event(
        7,
        &StartupInfo {
            framework: "actix-web",
            versions: &versions,
            config: &config,
            paths: &paths,
            openapi: Some("{\"openapi\": \"3.1.0\"}"),
        },
    );
    assert_eq!(record.event_name.as_deref(), Some("apitally.app.startup"));
    assert_eq!(record.scope.name, "apitally");
    assert_eq!(record.scope.version, "");
    assert_eq!(
        (record.time_unix_nano, record.observed_time_unix_nano),
        (7, 7)
    );
    assert_eq!((record.severity_number, record.flags), (0, 0));
    assert_eq!((record.trace_id, record.span_id), (None, None));
    let Some(AttrValue::String(body)) = &record.body else {
        panic!("{:?}", record.body)
    };
    assert_eq!(
        body,
        "{\"framework\":\"actix-web\",\"versions\":{\"rust\":\"1.89.0\",\"actix-web\":\
         \"4.18.1\",\"app\":\"1.2.3\"},\"config\":{\"capture_logs\":true,\"mask_headers\":[],\
         \"sample_rate\":1.0,\"sample_on_request\":true},\"paths\":[{\"method\":\"GET\",\
         \"path\":\"/hello\"},{\"method\":\"GET\",\"path\":\"/items/{item_id}\",\"summary\":\
         \"Item\"},{\"method\":\"POST\",\"path\":\"/echo\"}],\"openapi\":\
         \"{\\\"openapi\\\": \\\"3.1.0\\\"}\"}"
    );
    let parsed: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(parsed["paths"].as_array().unwrap().len(), 3);
}

#[test]
fn startup_openapi_is_left_out_above_four_million_bytes() {
    let at_limit = "x".repeat(MAX_OPENAPI_BYTES);
    let above = "é".repeat(MAX_OPENAPI_BYTES / 2 + 1);
    for (openapi, included) in [(&at_limit, true), (&above, false)] {
        let record = startup_event(
            0,
            &StartupInfo {
                framework: "actix-web",
                versions: &[],
                config: &[],
                paths: &[],
                openapi: Some(openapi),
            },
        );
        let Some(AttrValue::String(body)) = record.body else {
            panic!()
        };
        assert_eq!(body.contains("\"openapi\""), included);
        if !included {
            assert_eq!(
                body,
                "{\"framework\":\"actix-web\",\"versions\":{},\"config\":{},\"paths\":[]}"
            );
        }
    }
}

#[test]
fn consumer_update_body_with_null_for_deleted_attributes() {
    let attributes = vec![
        ("plan".to_owned(), Some(" pro ".to_owned())),
        ("old_key".to_owned(), None),
        ("  ".to_owned(), Some("x".to_owned())),
        ("k".repeat(65), Some("x".to_owned())),
        ("long".to_owned(), Some("v".repeat(1_025))),
        ("empty".to_owned(), Some("   ".to_owned())),
        ("plan".to_owned(), Some("enterprise".to_owned())),
    ];
    let record = consumer_update_event(
        9,
        &ConsumerUpdate {
            identifier: " customer-42 ",
            name: Some("Customer 42"),
            group: Some("  "),
            attributes: &attributes,
        },
    )
    .unwrap();
    assert_eq!(
        record.event_name.as_deref(),
        Some("apitally.consumer.update")
    );
    let body = record.body.unwrap();
    let fields = kv(&body);
    assert_eq!(fields[0], ("identifier", &s("customer-42")));
    assert_eq!(fields[1], ("name", &s("Customer 42")));
    assert_eq!(fields[2].0, "attributes");
    assert_eq!(fields.len(), 3);
    assert_eq!(
        kv(fields[2].1),
        vec![
            ("plan", &s("enterprise")),
            ("old_key", &AttrValue::None),
            ("empty", &AttrValue::None),
        ]
    );
}

#[test]
fn consumer_update_bounds_and_nothing_to_say() {
    let none = |identifier, name| {
        consumer_update_event(
            0,
            &ConsumerUpdate {
                identifier,
                name,
                group: None,
                attributes: &[],
            },
        )
    };
    assert!(none("   ", Some("name")).is_none());
    assert!(none("id", None).is_none());
    assert!(none("id", Some("  ")).is_none());
    let long_id = "i".repeat(200);
    let long_name = "n".repeat(100);
    let record = none(&long_id, Some(&long_name)).unwrap();
    let body = record.body.unwrap();
    let fields = kv(&body);
    assert_eq!(fields[0].1, &s(&"i".repeat(128)));
    assert_eq!(fields[1].1, &s(&"n".repeat(64)));
    // At most 10 keys; existing keys can still be updated.
    let attributes: Vec<_> = (0..12)
        .map(|i| (format!("k{i}"), Some("v".to_owned())))
        .chain([("k0".to_owned(), Some("w".to_owned()))])
        .collect();
    let record = consumer_update_event(
        0,
        &ConsumerUpdate {
            identifier: "id",
            name: None,
            group: None,
            attributes: &attributes,
        },
    )
    .unwrap();
    let body = record.body.unwrap();
    let attrs = kv(kv(&body)[1].1);
    assert_eq!(attrs.len(), 10);
    assert_eq!(attrs[0], ("k0", &s("w")));
}

#[test]
fn validation_error_body_and_bounds() {
    let counts = vec![
        (Some("customer-42".to_owned()), 3),
        (None, 2),
        (Some(String::new()), 1),
        (Some("zero".to_owned()), 0),
        (Some("huge".to_owned()), u64::MAX),
    ];
    let long = "f".repeat(3_000);
    let record = validation_error_event(
        5,
        &ValidationErrorGroup {
            method: "POST",
            path: &"/p".repeat(1_500),
            source: &"s".repeat(40),
            field: &long,
            message: &long,
            error_type: &long,
            counts: &counts,
        },
    )
    .unwrap();
    assert_eq!(
        record.event_name.as_deref(),
        Some("apitally.request.validation_error")
    );
    let body = record.body.unwrap();
    let fields = kv(&body);
    let keys: Vec<_> = fields.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        keys,
        ["method", "path", "source", "field", "message", "type", "counts"]
    );
    let len = |v: &AttrValue| match v {
        AttrValue::String(s) => s.chars().count(),
        other => panic!("{other:?}"),
    };
    assert_eq!(len(fields[1].1), 2_000);
    assert_eq!(len(fields[2].1), 32);
    assert_eq!(len(fields[3].1), 2_048);
    assert_eq!(len(fields[4].1), 2_048);
    assert_eq!(len(fields[5].1), 128);
    let AttrValue::Array(entries) = fields[6].1 else {
        panic!()
    };
    let entries: Vec<_> = entries.iter().map(kv).collect();
    assert_eq!(
        entries,
        vec![
            vec![
                ("consumer", &s("customer-42")),
                ("count", &AttrValue::Int(3))
            ],
            vec![("count", &AttrValue::Int(2))],
            vec![("count", &AttrValue::Int(1))],
            vec![
                ("consumer", &s("huge")),
                ("count", &AttrValue::Int(i64::from(u32::MAX)))
            ],
        ]
    );
}

#[test]
fn error_methods_must_be_2_to_12_uppercase_letters_or_hyphens() {
    for valid in [
        "GET",
        "POST",
        "PROPFIND",
        "MKCALENDAR",
        "UPDATEREDIR-",
        "AB",
    ] {
        assert!(is_valid_error_method(valid), "{valid}");
    }
    for invalid in [
        "",
        "G",
        "get",
        "GET1",
        "TOOLONGMETHOD",
        "VERSION-CONTROL",
        "GÉT",
        "GE T",
        "G_T",
    ] {
        assert!(!is_valid_error_method(invalid), "{invalid}");
    }
    let group = |method| ValidationErrorGroup {
        method,
        path: "/a",
        source: "body",
        field: "name",
        message: "m",
        error_type: "t",
        counts: &[(None, 1)],
    };
    assert!(validation_error_event(0, &group("get")).is_none());
    assert!(validation_error_event(0, &group("GET")).is_some());
    let server = |method| ServerErrorGroup {
        method,
        path: "/a",
        error_type: "t",
        message: "m",
        stacktrace: "s",
        counts: &[(None, 1)],
    };
    assert!(server_error_event(0, &server("G3T")).is_none());
    assert!(server_error_event(0, &server("GET")).is_some());
    let no_counts = ServerErrorGroup {
        counts: &[(None, 0)],
        ..server("GET")
    };
    assert!(server_error_event(0, &no_counts).is_none());
}

#[test]
fn server_error_body_and_bounds() {
    let message = format!("  {}  ", "m".repeat(3_000));
    let frames: String = (0..10_000).map(|i| format!("frame{i:05}\n")).collect();
    let record = server_error_event(
        1,
        &ServerErrorGroup {
            method: "GET",
            path: "/items/{id}",
            error_type: &"T".repeat(300),
            message: &message,
            stacktrace: &frames,
            counts: &[(None, 4)],
        },
    )
    .unwrap();
    assert_eq!(
        record.event_name.as_deref(),
        Some("apitally.request.server_error")
    );
    let body = record.body.unwrap();
    let fields = kv(&body);
    let keys: Vec<_> = fields.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        keys,
        ["method", "path", "type", "message", "stacktrace", "counts"]
    );
    let AttrValue::String(error_type) = fields[2].1 else {
        panic!()
    };
    assert_eq!(error_type.len(), 256);
    let AttrValue::String(message) = fields[3].1 else {
        panic!()
    };
    assert_eq!(message.chars().count(), 2_048);
    assert!(message.starts_with("mmm") && message.ends_with("m... (truncated)"));
    let AttrValue::String(stacktrace) = fields[4].1 else {
        panic!()
    };
    assert!(stacktrace.len() <= 65_536);
    // Whole frames from the head.
    assert!(stacktrace.starts_with("frame00000\n"));
    assert!(stacktrace.ends_with(&format!("frame{:05}", 65_536 / 11 - 1)));
}

#[test]
fn message_and_stacktrace_rules() {
    assert_eq!(exception_message("  short \n"), "short");
    let exact = "é".repeat(2_048);
    assert_eq!(exception_message(&exact), exact);
    let over = "é".repeat(2_049);
    let cut = exception_message(&over);
    assert_eq!(cut.chars().count(), 2_048);
    assert!(cut.ends_with("é... (truncated)"));
    let one_line = "x".repeat(70_000);
    assert_eq!(truncate_stacktrace(&one_line).len(), 65_536);
    assert_eq!(truncate_stacktrace("a\nb\n"), "a\nb");
    assert_eq!(validation_source("QueryString"), "query");
    assert_eq!(validation_source("path_params"), "path");
    assert_eq!(validation_source("cookies"), "cookie");
    assert_eq!(validation_source("items"), "");
}
