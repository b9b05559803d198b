//! The data points of the metrics: the process gauges, and each request combination's
//! exponential histograms with its attributes (protocol-v1.md §5).

use opentelemetry_proto::tonic::{
    common::v1::{any_value, AnyValue, KeyValue},
    metrics::v1::{
        exponential_histogram_data_point::Buckets, metric, number_data_point,
        ExponentialHistogramDataPoint, Gauge, Metric, NumberDataPoint,
    },
};

use crate::backend::otlp::{
    histogram::{ExpHistogram, SCALE},
    metrics::{ProcessGauges, RequestPoint, RequestWindow},
};

pub(super) fn gauge_metrics(gauges: &ProcessGauges, start: u64, end: u64) -> Vec<Metric> {
    let gauge = |name: &str, unit: &str, value: number_data_point::Value| Metric {
        name: name.to_owned(),
        unit: unit.to_owned(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint {
                start_time_unix_nano: start,
                time_unix_nano: end,
                value: Some(value),
                ..Default::default()
            }],
        })),
        ..Default::default()
    };
    let mut metrics = vec![gauge(
        "process.uptime",
        "s",
        number_data_point::Value::AsDouble(gauges.uptime),
    )];
    if let Some(cpu) = gauges.cpu_utilization {
        metrics.push(gauge(
            "process.cpu.utilization",
            "1",
            number_data_point::Value::AsDouble(cpu),
        ));
    }
    if let Some(rss) = gauges.memory_usage {
        metrics.push(gauge(
            "process.memory.usage",
            "By",
            number_data_point::Value::AsInt(i64::try_from(rss).unwrap_or(i64::MAX)),
        ));
    }
    metrics
}

/// py's attributes in py's order, then `url.scheme` and, from 500 on, `error.type` (§10).
pub(super) fn point_attributes(point: &RequestPoint) -> Vec<KeyValue> {
    let attribute = |key: &str, value: any_value::Value| KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    };
    let string = |s: &str| any_value::Value::StringValue(s.to_owned());
    let mut attributes = vec![
        attribute("http.request.method", string(&point.method)),
        attribute("http.route", string(&point.route)),
        attribute(
            "http.response.status_code",
            any_value::Value::IntValue(i64::from(point.status)),
        ),
    ];
    if let Some(consumer) = &point.consumer {
        attributes.push(attribute("apitally.consumer.identifier", string(consumer)));
    }
    attributes.push(attribute(
        "url.scheme",
        string(if point.https { "https" } else { "http" }),
    ));
    if point.status >= 500 {
        let mut buf = itoa::Buffer::new();
        attributes.push(attribute("error.type", string(buf.format(point.status))));
    }
    attributes
}

pub(super) fn histogram_point(
    histogram: &ExpHistogram,
    attributes: Vec<KeyValue>,
    window: &RequestWindow,
) -> ExponentialHistogramDataPoint {
    ExponentialHistogramDataPoint {
        attributes,
        start_time_unix_nano: window.start_unix_nano,
        time_unix_nano: window.end_unix_nano,
        count: histogram.count,
        sum: Some(histogram.sum),
        scale: SCALE,
        zero_count: histogram.zero_count,
        positive: histogram
            .positive_buckets()
            .map(|(offset, bucket_counts)| Buckets {
                offset,
                bucket_counts,
            }),
        negative: None,
        flags: 0,
        exemplars: Vec::new(),
        min: Some(histogram.min),
        max: Some(histogram.max),
        zero_threshold: 0.0,
    }
}
