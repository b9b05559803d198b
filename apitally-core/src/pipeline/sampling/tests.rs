use super::*;

#[test]
fn traceparent_is_parsed_as_w3c_says() {
    let ok = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    assert_eq!(
        parse_traceparent(ok),
        Some(TraceContext {
            trace_id: 0x0af7651916cd43dd8448eb211c80319c,
            parent_span_id: Some(0xb7ad6b7169203331),
        })
    );
    // A later version may add fields.
    assert!(
        parse_traceparent(b"01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00-extra")
            .is_some()
    );
    for bad in [
        &b"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"[..],
        b"00-00000000000000000000000000000000-b7ad6b7169203331-01",
        b"00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
        b"00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
        b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x",
        b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01",
        b"00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        b"",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b71692033é-01".as_bytes(),
    ] {
        assert_eq!(
            parse_traceparent(bad),
            None,
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn sampling_tests_the_low_64_bits_of_the_trace_id() {
    // OpenTelemetry's TraceIdRatioBased: low 64 bits below round(rate * 2^64).
    let id = |low: u64| (0xdead_beef_u128 << 64) | u128::from(low);
    assert!(is_sampled(id(0), 0.25));
    assert!(is_sampled(id((1 << 62) - 1), 0.25));
    assert!(!is_sampled(id(1 << 62), 0.25));
    assert!(!is_sampled(id(u64::MAX), 0.999_999));
    assert!(is_sampled(id(u64::MAX), 1.0));
    assert!(!is_sampled(id(0), 0.0));
    assert!(is_sampled(id(123), f64::NAN));
    // The high bits do not matter.
    assert_eq!(is_sampled(1 << 100, 0.5), is_sampled(0, 0.5));
}
