use super::*;
use crate::backend::otlp::histogram::bucket_index;

fn sample(route: &str, status: u16, ms: u64) -> RequestSample<'_> {
    RequestSample {
        method: "GET",
        route,
        status,
        https: false,
        consumer: None,
        duration: Duration::from_millis(ms),
        request_size: None,
        response_size: None,
    }
}

#[test]
fn aggregates_three_histograms_per_key_with_known_sizes_only() {
    let metrics = RequestMetrics::new(1_000);
    metrics.record(&RequestSample {
        response_size: Some(81),
        ..sample("/items/{item_id}", 200, 1)
    });
    metrics.record(&RequestSample {
        response_size: Some(86),
        request_size: Some(0),
        ..sample("/items/{item_id}", 200, 2)
    });
    metrics.record(&RequestSample {
        consumer: Some("  c1 "),
        ..sample("/items/{item_id}", 200, 3)
    });
    metrics.record(&RequestSample {
        https: true,
        ..sample("/items/{item_id}", 200, 3)
    });
    let window = metrics.drain(2_000);
    assert_eq!(
        (window.start_unix_nano, window.end_unix_nano),
        (1_000, 2_000)
    );
    assert_eq!(window.dropped, 0);
    assert_eq!(window.points.len(), 3);
    let plain = &window.points[0];
    assert_eq!((plain.consumer.as_deref(), plain.https), (None, false));
    assert_eq!(plain.histograms.duration.count, 2);
    assert_eq!(
        plain.histograms.response_size.positive_buckets(),
        Some((50, vec![1, 1]))
    );
    // A known size of 0 is recorded (as a zero), an unknown one is not.
    assert_eq!(plain.histograms.request_size.count, 1);
    assert_eq!(plain.histograms.request_size.zero_count, 1);
    assert_eq!(window.points[1].consumer.as_deref(), Some("c1"));
    assert_eq!(window.points[1].histograms.request_size.count, 0);
    assert!(window.points[2].https);
    // The next interval starts where this one ended and is empty.
    let next = metrics.drain(3_000);
    assert_eq!((next.start_unix_nano, next.points.len()), (2_000, 0));
}

#[test]
fn options_and_unrouted_requests_are_not_recorded_and_methods_are_uppercased() {
    let metrics = RequestMetrics::new(0);
    metrics.record(&RequestSample {
        method: "OPTIONS",
        ..sample("/a", 200, 1)
    });
    metrics.record(&RequestSample {
        method: "options",
        ..sample("/a", 200, 1)
    });
    metrics.record(&sample("", 404, 1));
    metrics.record(&RequestSample {
        method: "head",
        ..sample("/a", 200, 1)
    });
    metrics.record(&RequestSample {
        method: "HEAD",
        ..sample("/a", 200, 1)
    });
    let long_method = "X".repeat(100);
    let long_route = "/r".repeat(5_000);
    metrics.record(&RequestSample {
        method: &long_method,
        consumer: Some("   "),
        ..sample(&long_route, 200, 1)
    });
    let window = metrics.drain(1);
    assert_eq!(window.points.len(), 2);
    let head = window.points.iter().find(|p| &*p.route == "/a").unwrap();
    assert_eq!((&*head.method, head.histograms.duration.count), ("HEAD", 2));
    let long = window.points.iter().find(|p| &*p.route != "/a").unwrap();
    assert_eq!(long.method.len(), MAX_METHOD_BYTES);
    assert_eq!(long.route.chars().count(), MAX_ROUTE_CHARS);
    assert_eq!(long.consumer, None);
}

#[test]
fn normalise_method_keeps_utf8_valid() {
    let mut buf = [0u8; MAX_METHOD_BYTES];
    assert_eq!(normalise_method("get", &mut buf), "GET");
    let mut buf = [0u8; MAX_METHOD_BYTES];
    let odd = format!("{}é", "a".repeat(31));
    assert_eq!(normalise_method(&odd, &mut buf), "A".repeat(31));
}

#[test]
fn keys_recorded_by_several_threads_are_merged() {
    let metrics = std::sync::Arc::new(RequestMetrics::new(0));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let metrics = std::sync::Arc::clone(&metrics);
            std::thread::spawn(move || {
                for i in 0..100u64 {
                    metrics.record(&RequestSample {
                        response_size: Some(i),
                        ..sample("/m", 200, t * 10 + i % 7)
                    });
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let window = metrics.drain(1);
    assert_eq!(window.points.len(), 1);
    let point = &window.points[0];
    assert_eq!(point.histograms.duration.count, 400);
    assert_eq!(point.histograms.response_size.count, 400);
    assert_eq!(point.histograms.response_size.zero_count, 4);
    assert_eq!(
        point.histograms.response_size.sum,
        4.0 * (0..100).sum::<u64>() as f64
    );
    let (offset, counts) = point.histograms.response_size.positive_buckets().unwrap();
    assert_eq!(offset, bucket_index(1.0));
    assert_eq!(counts.iter().sum::<u64>(), 396);
}

#[test]
fn new_keys_past_the_cap_are_dropped_and_counted() {
    let metrics = RequestMetrics::with_capacity(0, 3);
    let routes: Vec<String> = (0..5).map(|i| format!("/r{i}")).collect();
    for r in &routes {
        metrics.record(&sample(r, 200, 1));
    }
    // An existing key still counts.
    metrics.record(&sample("/r0", 200, 1));
    let window = metrics.drain(1);
    assert_eq!(window.points.len(), 3);
    assert_eq!(window.dropped, 2);
    assert_eq!(
        window
            .points
            .iter()
            .map(|p| p.histograms.duration.count)
            .sum::<u64>(),
        4
    );
    assert!(metrics.warned.load(Ordering::Relaxed));
    // The cap is per interval.
    for r in &routes[3..] {
        metrics.record(&sample(r, 200, 1));
    }
    let window = metrics.drain(2);
    assert_eq!((window.points.len(), window.dropped), (2, 0));
    assert_eq!(MAX_COMBINATIONS, 50_000);
}

#[test]
fn cpu_utilisation_is_normalised_across_cpus_and_clamped() {
    assert_eq!(cpu_utilization(1.0, 2.0, 1), Some(0.5));
    assert_eq!(cpu_utilization(2.0, 1.0, 4), Some(0.5));
    assert_eq!(cpu_utilization(9.0, 1.0, 2), Some(1.0));
    assert_eq!(cpu_utilization(-1.0, 1.0, 2), Some(0.0));
    assert_eq!(cpu_utilization(1.0, 0.0, 2), None);
    assert_eq!(cpu_utilization(f64::NAN, 1.0, 2), None);
    assert_eq!(cpu_utilization(1.0, 1.0, 0), Some(1.0));
}

#[cfg(target_os = "linux")]
#[test]
fn process_gauges_are_sampled() {
    let mut monitor = ProcessMonitor::new();
    let gauges = monitor.sample();
    assert!(gauges.uptime >= 0.0 && gauges.uptime < 86_400.0);
    let cpu = gauges.cpu_utilization.unwrap();
    assert!((0.0..=1.0).contains(&cpu));
    assert!(gauges.memory_usage.unwrap() > 1 << 20);
    assert!(monitor.sample().uptime >= gauges.uptime);
}
