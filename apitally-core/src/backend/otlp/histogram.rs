//! The fixed-scale exponential histogram of protocol-v1.md §5.2.
//!
//! Scale 3: base `2^(1/8)`, bucket `i` covers `(base^i, base^(i+1)]` (upper bound inclusive).
//! [`bucket_index`] computes the index exactly from the bits of the value: no `ln`, no
//! rounding error, also for subnormals.

/// The scale of every histogram the SDK exports ("the only form the server ingests").
pub(crate) const SCALE: i32 = 3;

/// Fraction bits (the 52 bits after the leading 1) of the largest `f64` not above `2^(k/8)`,
/// for k = 1..=7. `2^(k/8)` is irrational, so for any `f64` x in [1, 2):
/// `x <= 2^(k/8)` exactly when `x <= BOUNDARIES[k-1]`. Derived with exact integer arithmetic
/// (the tests re-derive them).
const BOUNDARIES: [u64; 7] = [
    0x0001_72b8_3c7d_517a,
    0x0003_06fe_0a31_b715,
    0x0004_bfda_d536_2a27,
    0x0006_a09e_667f_3bcc,
    0x0008_ace5_422a_a0db,
    0x000a_e89f_995a_d3ad,
    0x000d_5818_dcfb_a487,
];

const FRACTION_MASK: u64 = (1 << 52) - 1;

/// The bucket of a positive finite value: `ceil(log2(v) * 8) - 1`, computed exactly.
///
/// Exact powers of two go to the bucket below (their index is `8 * log2(v) - 1`), as the frexp
/// rule of the references does. Zero, negative and non-finite values have no bucket; they give
/// an index without panicking, but [`ExpHistogram::record`] never asks for one.
#[inline]
pub(crate) fn bucket_index(v: f64) -> i32 {
    let bits = v.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let mut fraction = bits & FRACTION_MASK;
    let exponent = if biased == 0 {
        if fraction == 0 {
            // Zero: the lowest index, never used.
            return i32::MIN;
        }
        // Subnormal: v = fraction * 2^-1074; shift the leading 1 to bit 52.
        let shift = fraction.leading_zeros() as i32 - 11;
        fraction = (fraction << shift) & FRACTION_MASK;
        -1022 - shift
    } else {
        biased - 1023
    };
    // v = 1.fraction * 2^exponent
    if fraction == 0 {
        return exponent * 8 - 1;
    }
    // The top 8 fraction bits pick one of 256 cells of [1, 2); boundaries are further apart
    // than a cell is wide, so a cell holds at most one, and one comparison settles the count.
    let cell = (fraction >> CELL_SHIFT) as usize;
    let above = i32::from(CELL_BELOW[cell]) + i32::from(CELL_BOUNDARY[cell] < fraction);
    exponent * 8 + above
}

/// Fraction bits below a cell's: each of the 256 cells is `2^44` fraction units wide.
const CELL_SHIFT: u32 = 44;

/// Per cell: how many [`BOUNDARIES`] lie below the cell's first fraction.
const CELL_BELOW: [u8; 256] = {
    let mut below = [0u8; 256];
    let mut cell = 0;
    while cell < 256 {
        let start = (cell as u64) << CELL_SHIFT;
        let mut k = 0;
        while k < BOUNDARIES.len() {
            if BOUNDARIES[k] < start {
                below[cell] += 1;
            }
            k += 1;
        }
        cell += 1;
    }
    below
};

/// Per cell: the boundary inside it, or `u64::MAX` (no fraction is above it) when none is.
const CELL_BOUNDARY: [u64; 256] = {
    let mut inside = [u64::MAX; 256];
    let mut k = 0;
    while k < BOUNDARIES.len() {
        let cell = (BOUNDARIES[k] >> CELL_SHIFT) as usize;
        // Two boundaries in one cell would make the lookup wrong: fail the build instead.
        assert!(inside[cell] == u64::MAX);
        inside[cell] = BOUNDARIES[k];
        k += 1;
    }
    inside
};

/// Buckets reserved around a histogram's first value: a range of 2^(n/8) without a new
/// allocation.
const RESERVE_DURATION: usize = 16;
const RESERVE_SIZE: usize = 8;

/// What one histogram holds for one key and interval (§5.1 data point fields).
#[derive(Debug, Clone)]
pub(crate) struct ExpHistogram {
    pub(crate) count: u64,
    pub(crate) sum: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) zero_count: u64,
    /// Index of `buckets[0]`.
    offset: i32,
    /// Counts of consecutive buckets; empty when no positive value was recorded.
    buckets: Vec<u32>,
    /// Capacity to reserve for the first positive value.
    reserve: u16,
    /// The last positive value recorded and its bucket: sizes repeat (the same response for the
    /// same route), and a comparison is cheaper than finding the bucket again.
    last: (f64, i32),
}

impl PartialEq for ExpHistogram {
    /// The recorded data; not the cache of the last bucket.
    fn eq(&self, other: &Self) -> bool {
        (self.count, self.sum, self.min, self.max, self.zero_count)
            == (
                other.count,
                other.sum,
                other.min,
                other.max,
                other.zero_count,
            )
            && self.positive_buckets() == other.positive_buckets()
    }
}

impl ExpHistogram {
    /// For durations in seconds: the first value reserves 2 octaves (16 buckets).
    pub(crate) fn for_durations() -> Self {
        Self::with_reserve(RESERVE_DURATION)
    }

    /// For sizes in bytes: the first value reserves 1 octave (8 buckets).
    pub(crate) fn for_sizes() -> Self {
        Self::with_reserve(RESERVE_SIZE)
    }

    fn with_reserve(reserve: usize) -> Self {
        Self {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            zero_count: 0,
            offset: 0,
            buckets: Vec::new(),
            reserve: reserve as u16,
            last: (0.0, 0),
        }
    }

    /// Records one value. Negative, NaN and infinite values are ignored (the SDK records
    /// durations and byte counts, which are never any of these).
    #[inline(always)]
    pub(crate) fn record(&mut self, v: f64) {
        // NaN fails both comparisons.
        #[allow(clippy::manual_range_contains)]
        if !(v >= 0.0 && v < f64::INFINITY) {
            return;
        }
        self.count += 1;
        self.sum += v;
        // (No NaN here: plain comparisons.)
        if v < self.min {
            self.min = v;
        }
        if v > self.max {
            self.max = v;
        }
        if v == 0.0 {
            self.zero_count += 1;
            return;
        }
        let index = if v == self.last.0 {
            self.last.1
        } else {
            let index = bucket_index(v);
            self.last = (v, index);
            index
        };
        let position = i64::from(index) - i64::from(self.offset);
        if position >= 0 && (position as usize) < self.buckets.len() {
            let slot = &mut self.buckets[position as usize];
            *slot = slot.saturating_add(1);
            return;
        }
        self.grow_to(index);
        let slot = &mut self.buckets[(index - self.offset) as usize];
        *slot = slot.saturating_add(1);
    }

    /// Extends the buckets to cover `index` (out of line: rare).
    #[cold]
    fn grow_to(&mut self, index: i32) {
        if self.buckets.is_empty() {
            // A quarter of the reserve below the first value, the rest above: latencies and
            // sizes spread upwards more than downwards.
            let reserve = usize::from(self.reserve).max(1);
            let below = (reserve / 4) as i32;
            self.offset = index.saturating_sub(below);
            self.buckets = vec![0; reserve];
            if (index - self.offset) as usize >= reserve {
                self.buckets.resize((index - self.offset) as usize + 1, 0);
            }
            return;
        }
        // Grow by at least two octaves on the side that needs it.
        const SLACK: i32 = 16;
        let end = self.offset + self.buckets.len() as i32;
        if index < self.offset {
            let new_offset = index.saturating_sub(SLACK);
            let extra = (self.offset - new_offset) as usize;
            let mut buckets = vec![0; extra + self.buckets.len()];
            buckets[extra..].copy_from_slice(&self.buckets);
            self.buckets = buckets;
            self.offset = new_offset;
        } else if index >= end {
            let new_len = (index.saturating_add(SLACK) - self.offset) as usize;
            self.buckets.resize(new_len, 0);
        }
    }

    /// Adds another histogram of the same key (the drain merges shards).
    pub(crate) fn merge(&mut self, other: &ExpHistogram) {
        if other.count == 0 {
            return;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.zero_count += other.zero_count;
        if let Some((lo, hi)) = other.used_range() {
            self.grow_to(lo);
            self.grow_to(hi);
            for (i, &n) in other.buckets.iter().enumerate() {
                if n > 0 {
                    let slot = &mut self.buckets[(other.offset + i as i32 - self.offset) as usize];
                    *slot = slot.saturating_add(n);
                }
            }
        }
    }

    /// Lowest and highest index with a count.
    fn used_range(&self) -> Option<(i32, i32)> {
        let first = self.buckets.iter().position(|&n| n > 0)?;
        let last = self.buckets.iter().rposition(|&n| n > 0)?;
        Some((self.offset + first as i32, self.offset + last as i32))
    }

    /// `positive.offset` and `positive.bucket_counts`: contiguous from the lowest to the highest
    /// used index; `None` when no positive value was recorded (all zeros, or nothing).
    pub(crate) fn positive_buckets(&self) -> Option<(i32, Vec<u64>)> {
        let (lo, hi) = self.used_range()?;
        let start = (lo - self.offset) as usize;
        let end = (hi - self.offset) as usize;
        Some((
            lo,
            self.buckets[start..=end]
                .iter()
                .map(|&n| u64::from(n))
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
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
}
