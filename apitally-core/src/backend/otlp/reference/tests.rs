use super::*;
use crate::backend::otlp::encode::Encoder;

fn item() -> RequestLogItem {
    use crate::request_log::{CapturedLog, CapturedSpan, LoggedException, TraceIds};
    let mut item = RequestLogItem::default();
    item.request.timestamp = 1_795_735_787.437;
    item.request.method = "POST".into();
    item.request.path = Some("/items/{id}".into());
    item.request.url =
        "https://api.example.com:8443/items/42?debug=1&token=%2A%2A%2A%2A%2A%2A".into();
    item.request
        .headers
        .push("authorization", crate::request_log::mask::MASKED);
    item.request.headers.push("accept", "a");
    item.request.headers.push("accept", "b");
    item.request.size = Some(38);
    item.request.consumer = Some("customer-42".into());
    item.request.attributes = vec![
        ("tenant".into(), crate::AttributeValue::from("acme")),
        ("rows".into(), crate::AttributeValue::from(12)),
        ("ratio".into(), crate::AttributeValue::from(0.5)),
        ("cached".into(), crate::AttributeValue::from(true)),
    ];
    item.request.body = Some(br#"{"name":"Widget","password":"******"}"#.to_vec());
    item.response.status_code = 500;
    item.response.response_time = 0.0001;
    item.response
        .headers
        .push("content-type", "application/json");
    item.response.size = Some(25);
    item.response.body = Some(crate::request_log::BODY_TOO_LARGE.to_vec());
    item.exception = Some(LoggedException {
        error_type: "panic".into(),
        message: "boom".into(),
        traceback: "at main".into(),
        ..Default::default()
    });
    item.user_agent = Some("curl/8".into());
    item.client_address = Some([203, 0, 113, 7].into());
    item.duration = Some(Duration::from_micros(181));
    item.trace_context = Some(TraceIds {
        trace_id: 0x416d693cbf2034ae0ad164fcd62b0daf,
        span_id: 0xa4410c4f4c897189,
        parent_span_id: Some(7),
    });
    let mut attributes = serde_json::Map::new();
    attributes.insert("db.system".into(), "postgresql".into());
    attributes.insert("rows".into(), 3.into());
    attributes.insert("ok".into(), true.into());
    item.spans = vec![
        CapturedSpan {
            span_id: "a4410c4f4c897189".into(),
            parent_span_id: None,
            name: "POST /items/{id}".into(),
            kind: "INTERNAL".into(),
            ..CapturedSpan::default()
        },
        CapturedSpan {
            span_id: "00000000000000aa".into(),
            parent_span_id: Some("a4410c4f4c897189".into()),
            name: "db.query".into(),
            kind: "CLIENT".into(),
            start_time: 10,
            end_time: 20,
            status: Some("ERROR".into()),
            attributes,
        },
    ];
    item.logs = vec![
        CapturedLog {
            timestamp: 1_795_735_787.5,
            logger: "app::handlers".into(),
            level: "WARN".into(),
            message: "slow".into(),
            fields: Vec::new(),
            file: Some("src/handlers.rs".into()),
            line: Some(42),
        },
        CapturedLog {
            timestamp: 1_795_735_787.6,
            logger: "sqlx".into(),
            level: "INFO".into(),
            message: "query".into(),
            fields: Vec::new(),
            file: None,
            line: None,
        },
    ];
    item
}

/// The bytes `wire` writes decode to the messages the prost path makes of the same
/// request: every span, attribute, event and record.
#[test]
fn wire_output_is_what_the_reference_encoder_makes() {
    use opentelemetry_proto::tonic::collector::{
        logs::v1::ExportLogsServiceRequest, trace::v1::ExportTraceServiceRequest,
    };
    use prost::Message;
    let encoder = Encoder::new(&crate::backend::otlp::resource::resource_attributes_with(
        "prod",
        |_| None,
        "3ed003cf-f737-4a86-bd1d-5135b414263d",
    ));
    let item = item();
    let mut plain = item.clone();
    plain.request.url = "http://h/".into();
    plain.request.path = None;
    plain.trace_context = Some(crate::request_log::TraceIds {
        trace_id: 1,
        span_id: 2,
        parent_span_id: None,
    });
    plain.spans.clear();
    plain.logs.clear();
    plain.exception = None;
    let items = [&item, &plain];
    let (mut traces, mut logs) = (Vec::new(), Vec::new());
    crate::backend::otlp::wire::write_requests(
        &encoder.resource_bytes(),
        (
            crate::backend::otlp::wire::SERVER_SPAN_SCOPE,
            env!("CARGO_PKG_VERSION"),
        ),
        &items,
        &mut traces,
        &mut logs,
    );
    let (mut spans, mut records) = (Vec::new(), Vec::new());
    for item in items {
        telemetry(item, &mut spans, &mut records);
    }
    let flatten = |request: ExportTraceServiceRequest| {
        let mut out = Vec::new();
        for rs in request.resource_spans {
            for ss in rs.scope_spans {
                for span in ss.spans {
                    out.push((rs.resource.clone(), ss.scope.clone(), span));
                }
            }
        }
        out.sort_by(|a, b| a.2.span_id.cmp(&b.2.span_id));
        out
    };
    let wire = flatten(ExportTraceServiceRequest::decode(&traces[..]).unwrap());
    let reference = flatten(encoder.trace_request(&spans));
    assert_eq!(wire.len(), 3);
    assert_eq!(wire, reference);
    let wire = ExportLogsServiceRequest::decode(&logs[..]).unwrap();
    let reference = encoder.logs_request(&records);
    assert_eq!(wire, reference);
}

#[test]
fn masked_values_read_as_redacted() {
    use crate::backend::otlp::wire::redacted;
    assert_eq!(
        redacted(r#"{"password":"******","x":"y"}"#),
        r#"{"password":"[REDACTED]","x":"y"}"#
    );
    assert_eq!(
        redacted("token=%2A%2A%2A%2A%2A%2A&page=2"),
        "token=[REDACTED]&page=2"
    );
    assert!(matches!(
        redacted("plain"),
        std::borrow::Cow::Borrowed("plain")
    ));
}
