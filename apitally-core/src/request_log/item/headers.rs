//! For the headers of a logged request or response, see [`Headers`].

use super::{MASKED, MAX_KEPT_HEADERS, MAX_KEPT_HEADER_BYTES};

/// The headers of a logged request or response: names and values in order, duplicates kept.
///
/// Stored in one buffer (two allocations however many headers there are), since they are
/// copied on the request path of every logged request.
///
/// ```
/// # use apitally_core as apitally;
/// use apitally::Headers;
///
/// let mut headers = Headers::new();
/// headers.push("content-type", "application/json");
/// headers.push("x-request-id", "42");
/// assert_eq!(headers.get("Content-Type"), Some("application/json"));
/// assert_eq!(headers.iter().collect::<Vec<_>>(), [("content-type", "application/json"), ("x-request-id", "42")]);
/// assert_eq!(headers.len(), 2);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers {
    buf: String,
    /// Per header, where its name and its value end in `buf`, and whether its value is masked.
    ends: Vec<(usize, usize, bool)>,
}

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// No headers, with room for `headers` headers of `bytes` bytes in all (names and values).
    pub fn with_capacity(headers: usize, bytes: usize) -> Self {
        Self {
            buf: String::with_capacity(bytes),
            ends: Vec::with_capacity(headers),
        }
    }

    /// Makes room for `headers` more headers of `bytes` bytes in all.
    ///
    /// ```
    /// # use apitally_core as apitally;
    /// let mut headers = apitally::Headers::new();
    /// headers.reserve(2, 64);
    /// headers.push("accept", "*/*");
    /// assert_eq!(headers.len(), 1);
    /// ```
    pub fn reserve(&mut self, headers: usize, bytes: usize) {
        self.buf.reserve(bytes);
        self.ends.reserve(headers);
    }

    /// Appends a header.
    pub fn push(&mut self, name: &str, value: &str) {
        self.buf.push_str(name);
        let name_end = self.buf.len();
        self.buf.push_str(value);
        self.ends.push((name_end, self.buf.len(), false));
    }

    /// The headers, in order (a masked value reads `******`).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&(name_end, end, masked)| {
            let name = self.buf.get(start..name_end).unwrap_or_default();
            let value = if masked {
                MASKED
            } else {
                self.buf.get(name_end..end).unwrap_or_default()
            };
            start = end;
            (name, value)
        })
    }

    /// The first value of the header `name` (compared case-insensitively).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// How many headers there are.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Removes every header.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }

    /// Removes every header, keeping the buffers for the next request unless a large one made
    /// them grow.
    pub(super) fn clear_for_reuse(&mut self) {
        if self.buf.capacity() > MAX_KEPT_HEADER_BYTES || self.ends.capacity() > MAX_KEPT_HEADERS {
            *self = Self::new();
        } else {
            self.clear();
        }
    }

    /// The bytes its buffers hold.
    pub(super) fn capacity_bytes(&self) -> usize {
        self.buf.capacity() + self.ends.capacity() * std::mem::size_of::<(usize, usize, bool)>()
    }

    /// Replaces the value of every (unmasked) header for which `f` gives a new one. Rare (a
    /// URL header with a secret in its query), so the buffer is rebuilt only then.
    pub(crate) fn rewrite(&mut self, f: impl Fn(&str, &str) -> Option<String>) {
        let mut changed: Vec<(usize, String)> = Vec::new();
        let mut start = 0;
        for (i, &(name_end, end, masked)) in self.ends.iter().enumerate() {
            if !masked {
                let name = self.buf.get(start..name_end).unwrap_or_default();
                let value = self.buf.get(name_end..end).unwrap_or_default();
                if let Some(new) = f(name, value) {
                    changed.push((i, new));
                }
            }
            start = end;
        }
        if changed.is_empty() {
            return;
        }
        let mut rebuilt = Self::with_capacity(self.ends.len(), self.buf.len());
        let mut start = 0;
        let mut changed = changed.into_iter().peekable();
        for (i, &(name_end, end, masked)) in self.ends.iter().enumerate() {
            let name = self.buf.get(start..name_end).unwrap_or_default();
            let value = match changed.next_if(|(j, _)| *j == i) {
                Some((_, new)) => std::borrow::Cow::Owned(new),
                None => std::borrow::Cow::Borrowed(self.buf.get(name_end..end).unwrap_or_default()),
            };
            rebuilt.push(name, &value);
            if let Some(last) = rebuilt.ends.last_mut() {
                last.2 = masked;
            }
            start = end;
        }
        *self = rebuilt;
    }

    /// Masks the value of every header whose name `sensitive` accepts: it then reads, and is
    /// written, as `******`.
    pub(crate) fn mask(&mut self, sensitive: impl Fn(&str) -> bool) {
        let mut start = 0;
        for (name_end, end, masked) in &mut self.ends {
            if sensitive(self.buf.get(start..*name_end).unwrap_or_default()) {
                *masked = true;
            }
            start = *end;
        }
    }
}

impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<N: AsRef<str>, V: AsRef<str>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let mut headers = Self::new();
        for (name, value) in iter {
            headers.push(name.as_ref(), value.as_ref());
        }
        headers
    }
}
