//! Histograms binned as protocol.md §4.4 says.

use std::time::Duration;

use serde::ser::{Serialize, SerializeMap, Serializer};

/// The response-time bin of a duration: whole milliseconds rounded down to a multiple of 10.
///
/// Integer maths throughout, so the edges are exact: 9 ms → 0, 10 ms → 10, 19 ms → 10.
#[inline]
pub(crate) fn response_time_bin(elapsed: Duration) -> u64 {
    let ms = elapsed.as_millis().min(u128::from(u64::MAX)) as u64;
    ms / 10 * 10
}

/// The size bin of a byte count: kilobytes of 1000 bytes, rounded down (999 → 0, 1000 → 1).
#[inline]
pub(crate) fn size_bin(bytes: u64) -> u64 {
    bytes / 1000
}

/// A sparse histogram: `(bin, count)` pairs sorted by bin.
///
/// Requests fall into few distinct bins, so a sorted vector beats a map in time and memory; it
/// grows with the number of distinct bins, never with the number of requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Histogram {
    bins: Vec<(u64, u64)>,
}

impl Histogram {
    #[inline]
    pub(crate) fn add(&mut self, bin: u64) {
        match self.bins.binary_search_by_key(&bin, |&(b, _)| b) {
            Ok(idx) => self.bins[idx].1 += 1,
            Err(idx) => self.bins.insert(idx, (bin, 1)),
        }
    }

    /// Adds the counts of `other`.
    pub(crate) fn merge(&mut self, other: Histogram) {
        if self.bins.is_empty() {
            self.bins = other.bins;
            return;
        }
        for (bin, count) in other.bins {
            match self.bins.binary_search_by_key(&bin, |&(b, _)| b) {
                Ok(idx) => self.bins[idx].1 += count,
                Err(idx) => self.bins.insert(idx, (bin, count)),
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn total(&self) -> u64 {
        self.bins.iter().map(|&(_, c)| c).sum()
    }

    #[cfg(test)]
    pub(crate) fn get(&self, bin: u64) -> u64 {
        self.bins
            .iter()
            .find(|&&(b, _)| b == bin)
            .map_or(0, |&(_, c)| c)
    }
}

/// Serialises as a JSON object with decimal string keys, e.g. `{"0": 2, "120": 1}`.
impl Serialize for Histogram {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.bins.len()))?;
        for (bin, count) in &self.bins {
            map.serialize_entry(bin, count)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_time_bins_at_edges() {
        let ms = Duration::from_millis;
        assert_eq!(response_time_bin(ms(0)), 0);
        assert_eq!(response_time_bin(ms(7)), 0);
        assert_eq!(response_time_bin(ms(9)), 0);
        assert_eq!(response_time_bin(Duration::from_micros(9_999)), 0);
        assert_eq!(response_time_bin(ms(10)), 10);
        assert_eq!(response_time_bin(ms(19)), 10);
        assert_eq!(response_time_bin(ms(20)), 20);
        assert_eq!(response_time_bin(Duration::from_micros(123_900)), 120);
        // Where py's float maths gives 280.
        assert_eq!(response_time_bin(ms(290)), 290);
        assert_eq!(response_time_bin(Duration::from_millis(2_500)), 2_500);
    }

    #[test]
    fn size_bins_at_edges() {
        assert_eq!(size_bin(0), 0);
        assert_eq!(size_bin(999), 0);
        assert_eq!(size_bin(1000), 1);
        assert_eq!(size_bin(1999), 1);
        assert_eq!(size_bin(2000), 2);
    }

    #[test]
    fn serialises_with_string_keys_in_order() {
        let mut h = Histogram::default();
        for bin in [120, 10, 10, 0, 120, 10] {
            h.add(bin);
        }
        assert_eq!(h.total(), 6);
        assert_eq!(
            serde_json::to_string(&h).unwrap(),
            r#"{"0":1,"10":3,"120":2}"#
        );
        assert_eq!(serde_json::to_string(&Histogram::default()).unwrap(), "{}");
    }
}
