//! Cost of recording one request, uncontended and from 2 threads, next to an atomic counter
//! increment measured in the same run (the cheapest possible shared counter).
//!
//! Run: `cargo bench -p apitally-core --bench record`

#![allow(missing_docs)]

use std::{
    hint::black_box,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Barrier,
    },
    time::{Duration, Instant},
};

use apitally_core::adapter::{ApitallyClient, ClientConfig, RequestRecord, StartupData};
use apitally_core::Consumer;

const N: u64 = 2_000_000;

fn time_threads(threads: usize, f: impl Fn(usize, u64) + Send + Sync + 'static) -> f64 {
    let f = Arc::new(f);
    let barrier = Arc::new(Barrier::new(threads));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (f, barrier) = (Arc::clone(&f), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..N {
                    f(t, i);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    // Nanoseconds per operation, per thread.
    start.elapsed().as_nanos() as f64 / N as f64
}

fn main() {
    let client = ApitallyClient::try_new(
        ClientConfig::new(uuid::Uuid::new_v4().to_string(), "bench")
            .hub_base_url("http://127.0.0.1:9")
            .test_sync_interval(Duration::from_secs(3600))
            .shutdown_timeout(Duration::from_millis(10)),
        StartupData::default(),
    )
    .unwrap();
    let consumers: Arc<Vec<Consumer>> = Arc::new(
        (0..100)
            .map(|i| Consumer::new(format!("customer-{i}")).name("Customer"))
            .collect(),
    );
    let routes = ["/items", "/items/{item_id}", "/orders/{order_id}/lines"];
    let counter = Arc::new(AtomicU64::new(0));

    println!("{:<44} {:>10} {:>10}", "case", "ns/op", "x atomic");
    for threads in [1, 2] {
        let c = Arc::clone(&counter);
        let atomic = time_threads(threads, move |_, i| {
            c.fetch_add(black_box(i) & 1, Ordering::Relaxed);
        });
        let report = |name: &str, ns: f64| {
            println!(
                "{:<44} {:>10.1} {:>10.1}",
                format!("{name} ({threads} thr)"),
                ns,
                ns / atomic
            );
        };
        report("atomic fetch_add (baseline)", atomic);

        let cl = client.clone();
        report(
            "record, same key",
            time_threads(threads, move |_, i| {
                cl.record_request(&RequestRecord::new(
                    "GET",
                    "/items",
                    200,
                    Duration::from_micros(black_box(i) % 30_000),
                ));
            }),
        );

        let (cl, cs) = (client.clone(), Arc::clone(&consumers));
        report(
            "record, 3 routes x 100 named consumers",
            time_threads(threads, move |t, i| {
                let i = black_box(i) as usize + t;
                cl.record_request(
                    &RequestRecord::new(
                        "GET",
                        routes[i % 3],
                        200,
                        Duration::from_micros((i % 30_000) as u64),
                    )
                    .consumer(Some(&cs[i % 100]))
                    .request_size(Some((i % 5_000) as u64))
                    .response_size(Some((i % 2_000) as u64)),
                );
            }),
        );
    }
    client.shutdown_blocking();
}
