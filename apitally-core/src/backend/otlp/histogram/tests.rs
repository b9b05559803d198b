use proptest::prelude::*;

use super::*;

/// A little unsigned big integer: enough for m^8 with m < 2^53.
fn mul_small(limbs: &mut Vec<u64>, factor: u64) {
    let mut carry = 0u128;
    for limb in limbs.iter_mut() {
        let product = u128::from(*limb) * u128::from(factor) + carry;
        *limb = product as u64;
        carry = product >> 64;
    }
    if carry > 0 {
        limbs.push(carry as u64);
    }
}

fn sub_one(limbs: &mut [u64]) {
    for limb in limbs.iter_mut() {
        let (v, borrow) = limb.overflowing_sub(1);
        *limb = v;
        if !borrow {
            return;
        }
    }
}

fn bit_len(limbs: &[u64]) -> i32 {
    for (i, &limb) in limbs.iter().enumerate().rev() {
        if limb != 0 {
            return i as i32 * 64 + 64 - limb.leading_zeros() as i32;
        }
    }
    0
}

/// The exact index, by integers only: v = m * 2^q, so
/// `index = ceil(log2(v^8)) - 1 = ceil(log2(m^8)) + 8q - 1`, and for an integer N >= 1,
/// `ceil(log2(N))` is the bit length of N - 1.
fn exact_index(v: f64) -> i32 {
    let bits = v.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & FRACTION_MASK;
    let (m, q) = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | 1 << 52, biased - 1075)
    };
    let mut n = vec![1u64];
    for _ in 0..8 {
        mul_small(&mut n, m);
    }
    sub_one(&mut n);
    bit_len(&n) + 8 * q - 1
}

/// The references' formula in floating point (go: `ceil(ln(v) * 8/ln 2) - 1` after the
/// frexp rule for powers of two).
fn reference_index(v: f64) -> i32 {
    let (frac, exp) = frexp(v);
    if frac == 0.5 {
        return ((exp - 1) << 3) - 1;
    }
    (v.ln() * (8.0 / std::f64::consts::LN_2)).ceil() as i32 - 1
}

/// 2^p exactly, for -1074 <= p <= 1023.
fn pow2(p: i32) -> f64 {
    if p >= -1022 {
        f64::from_bits(((p + 1023) as u64) << 52)
    } else {
        f64::from_bits(1 << (p + 1074))
    }
}

fn frexp(v: f64) -> (f64, i32) {
    let bits = v.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    if biased == 0 {
        let (f, e) = frexp(v * pow2(64));
        return (f, e - 64);
    }
    let frac = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (frac, biased - 1022)
}

/// Relative distance of v's mantissa from the nearest bucket boundary.
fn distance_to_boundary(v: f64) -> f64 {
    let (frac, _) = frexp(v);
    let x = frac * 2.0;
    (0..=8)
        .map(|k| {
            let b = 2f64.powf(f64::from(k) / 8.0);
            ((x - b) / b).abs()
        })
        .fold(f64::INFINITY, f64::min)
}

#[test]
fn boundaries_are_the_largest_f64_not_above_two_to_the_k_eighths() {
    for (k, &fraction) in BOUNDARIES.iter().enumerate() {
        let k = k as u32 + 1;
        let m = fraction | 1 << 52;
        // (m / 2^52)^8 <= 2^k  <=>  m^8 <= 2^(k + 416), and (m + 1)^8 > 2^(k + 416).
        let pow8 = |m: u64| {
            let mut n = vec![1u64];
            for _ in 0..8 {
                mul_small(&mut n, m);
            }
            n
        };
        let limit_bits = k as i32 + 416;
        let below = pow8(m);
        // m^8 < 2^limit  <=>  bit length of m^8 <= limit (2^limit itself is impossible).
        assert!(bit_len(&below) <= limit_bits, "k={k}");
        assert!(bit_len(&pow8(m + 1)) > limit_bits, "k={k}");
    }
}

#[test]
fn sample_offsets_of_protocol_v1() {
    // §5.2: min duration 0.000155871 s -> offset -102 ([sample] v1-metrics.json).
    assert_eq!(bucket_index(0.000_155_870_999_833_496_17), -102);
    assert_eq!(bucket_index(0.000_155_871), -102);
    // Response sizes 81..86 B -> indices 50..51, request size 87 B -> 51, 13 B -> 29.
    assert_eq!(bucket_index(81.0), 50);
    assert_eq!(bucket_index(86.0), 51);
    assert_eq!(bucket_index(87.0), 51);
    assert_eq!(bucket_index(13.0), 29);
    // The sample's other offsets and maxima.
    assert_eq!(bucket_index(0.000_177_191_999_910_064_62), -100);
    assert_eq!(bucket_index(0.000_145_816_000_213_017_1), -102);
    // max 0.03897948200005885 is the last of 65 buckets from -102.
    assert_eq!(bucket_index(0.038_979_482_000_058_85), -102 + 64);
}

#[test]
fn powers_of_two_go_to_the_bucket_below() {
    for p in -1074..=1023 {
        let v = pow2(p);
        assert_eq!(bucket_index(v), 8 * p - 1, "2^{p}");
        assert_eq!(reference_index(v), 8 * p - 1, "2^{p}");
    }
    assert_eq!(bucket_index(1.0), -1);
    assert_eq!(bucket_index(2.0), 7);
    assert_eq!(bucket_index(f64::from_bits(1)), -1074 * 8 - 1);
    assert_eq!(bucket_index(f64::MAX), 1024 * 8 - 1);
}

#[test]
fn exact_at_and_around_every_boundary_of_every_octave() {
    for e in -1074..=1023 {
        for k in 1..8 {
            let b = f64::from_bits((BOUNDARIES[k - 1]) | (1023 << 52));
            let mut v = b;
            for _ in 0..3 {
                v = f64::from_bits(v.to_bits() - 1);
            }
            for _ in 0..7 {
                let x = v * pow2(e);
                if x > 0.0 && x.is_finite() {
                    assert_eq!(bucket_index(x), exact_index(x), "{x:e}");
                }
                v = f64::from_bits(v.to_bits() + 1);
            }
        }
    }
}

#[test]
fn exact_at_the_edges_of_every_lookup_cell() {
    for cell in 0..256u64 {
        let start = cell << CELL_SHIFT;
        for fraction in [
            start.saturating_sub(1),
            start,
            start + 1,
            start | ((1 << CELL_SHIFT) - 1),
        ] {
            for e in [-30, -1, 0, 1, 20] {
                let x = f64::from_bits(fraction | (1023 << 52)) * pow2(e);
                assert_eq!(bucket_index(x), exact_index(x), "{x:e}");
            }
        }
    }
}

#[test]
fn never_panics_on_odd_inputs() {
    for v in [0.0, -0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let _ = bucket_index(v);
        let mut h = ExpHistogram::for_durations();
        h.record(v);
    }
    let mut h = ExpHistogram::for_sizes();
    h.record(f64::MIN_POSITIVE / 1e10);
    h.record(f64::MAX);
    assert_eq!(h.count, 2);
    let (offset, counts) = h.positive_buckets().unwrap();
    assert_eq!(offset, bucket_index(f64::MIN_POSITIVE / 1e10));
    assert_eq!(counts.len() as i32, 8191 - offset + 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn equals_exact_arithmetic_for_any_positive_f64(bits in 1u64..0x7ff0_0000_0000_0000) {
        let v = f64::from_bits(bits);
        prop_assert_eq!(bucket_index(v), exact_index(v));
    }

    /// Away from the boundaries (where `ln` in floating point may be off by an ulp and the
    /// references themselves disagree: go's `ceil - 1` and py's `floor` differ there), the
    /// implementation gives what the references' formula gives.
    #[test]
    fn equals_the_reference_formula_away_from_boundaries(bits in 1u64..0x7ff0_0000_0000_0000) {
        let v = f64::from_bits(bits);
        if distance_to_boundary(v) > 1e-11 {
            prop_assert_eq!(bucket_index(v), reference_index(v));
        }
    }

    #[test]
    fn equals_the_reference_formula_for_realistic_values(v in 1e-9f64..1e12) {
        if distance_to_boundary(v) > 1e-13 {
            prop_assert_eq!(bucket_index(v), reference_index(v));
        }
        prop_assert_eq!(bucket_index(v), exact_index(v));
    }

    #[test]
    fn integer_sizes(n in 1u64..(1 << 53)) {
        let v = n as f64;
        prop_assert_eq!(bucket_index(v), exact_index(v));
    }
}

#[test]
fn histogram_fields_and_contiguous_buckets() {
    let mut h = ExpHistogram::for_sizes();
    for v in [81.0, 86.0, 0.0, 81.0] {
        h.record(v);
    }
    assert_eq!(h.count, 4);
    assert_eq!(h.sum, 248.0);
    assert_eq!((h.min, h.max), (0.0, 86.0));
    assert_eq!(h.zero_count, 1);
    assert_eq!(h.positive_buckets(), Some((50, vec![2, 1])));

    let mut only_zero = ExpHistogram::for_sizes();
    only_zero.record(0.0);
    assert_eq!(only_zero.positive_buckets(), None);
    assert_eq!(only_zero.zero_count, 1);

    // Far apart values: the buckets grow both ways and stay contiguous.
    let mut h = ExpHistogram::for_durations();
    h.record(1.0);
    h.record(1e-6);
    h.record(1e3);
    let (offset, counts) = h.positive_buckets().unwrap();
    assert_eq!(offset, bucket_index(1e-6));
    assert_eq!(counts.len() as i32, bucket_index(1e3) - offset + 1);
    assert_eq!(counts.iter().sum::<u64>(), 3);
    assert_eq!(counts[(bucket_index(1.0) - offset) as usize], 1);
}

#[test]
fn merge_adds_counts_with_different_offsets() {
    let mut a = ExpHistogram::for_durations();
    let mut b = ExpHistogram::for_durations();
    let mut both = ExpHistogram::for_durations();
    for (i, v) in [0.001, 0.5, 2.0, 1e-5, 0.0, 30.0].into_iter().enumerate() {
        if i % 2 == 0 {
            a.record(v);
        } else {
            b.record(v);
        }
        both.record(v);
    }
    a.merge(&b);
    assert_eq!(a.positive_buckets(), both.positive_buckets());
    assert_eq!((a.count, a.zero_count, a.min, a.max), (6, 1, 0.0, 30.0));
    assert!((a.sum - both.sum).abs() < 1e-12);
    let mut empty = ExpHistogram::for_sizes();
    empty.merge(&ExpHistogram::for_sizes());
    assert_eq!(empty.count, 0);
    empty.merge(&both);
    assert_eq!(empty.positive_buckets(), both.positive_buckets());
}
