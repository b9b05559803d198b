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
mod tests;
