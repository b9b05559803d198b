//! For the client address behind proxies, see [`TrustedProxies`].

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

/// The proxies whose forwarding headers are believed, as IP addresses and CIDR ranges.
///
/// A request's client address is its socket peer, unless the peer is one of these: then it is
/// the rightmost address of `Forwarded: for=` (or, without a `Forwarded` header, of
/// `X-Forwarded-For`) that is not itself a trusted proxy. Nothing is trusted by default, so a
/// client can never choose its recorded address by sending a header. A header that cannot be
/// read where it matters (garbage, an obfuscated `for=_hidden`, `unknown`, a bad port, more
/// than 32 hops to walk) gives the peer. Reading the headers allocates nothing, whatever their
/// length.
///
/// ```
/// use std::net::IpAddr;
/// use apitally_core::adapter::TrustedProxies;
///
/// let proxies = TrustedProxies::parse(["10.0.0.0/8", "::1"]).unwrap();
/// let peer: IpAddr = "10.0.0.7".parse().unwrap();
/// let client = proxies.client_address(peer, &[], &[b"203.0.113.9, 10.0.0.3"]);
/// assert_eq!(client, "203.0.113.9".parse::<IpAddr>().unwrap());
///
/// // A peer that is not trusted is the client, whatever it sends.
/// let stranger: IpAddr = "198.51.100.4".parse().unwrap();
/// assert_eq!(proxies.client_address(stranger, &[], &[b"1.2.3.4"]), stranger);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<Net>,
}

/// One trusted address or range.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl fmt::Debug for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.nets.iter().map(ToString::to_string))
            .finish()
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, as a dual-stack listener sees IPv4 peers)
/// as the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Most hops walked from the right before giving up (and taking the peer).
const MAX_HOPS: usize = 32;
/// Longest address token read, in bytes (`[ffff:...:255.255.255.255]:65535` fits).
const MAX_TOKEN: usize = 64;

impl TrustedProxies {
    /// Trusts nothing: the peer is always the client (the default).
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses IP addresses and CIDR ranges (`10.0.0.0/8`, `192.168.1.7`, `fd00::/8`, `::1`),
    /// trimmed; empty entries are skipped.
    ///
    /// # Errors
    ///
    /// The first entry that is neither, with what is wrong with it.
    pub fn parse<I, S>(entries: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut nets = Vec::new();
        for entry in entries {
            let entry = entry.as_ref().trim();
            if entry.is_empty() {
                continue;
            }
            let (addr, prefix) = match entry.split_once('/') {
                Some((addr, prefix)) => (addr, Some(prefix)),
                None => (entry, None),
            };
            let addr: IpAddr = addr
                .parse()
                .map_err(|_| format!("{entry:?} is not an IP address or a CIDR range"))?;
            let addr = canonical(addr);
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                None => max,
                Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| {
                    format!("{entry:?} has a prefix length that is not 0 to {max}")
                })?,
            };
            nets.push(Net { addr, prefix });
        }
        Ok(Self { nets })
    }

    /// Whether nothing is trusted.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|net| net.contains(ip))
    }

    /// The client address of a request from `peer` with these `Forwarded` and
    /// `X-Forwarded-For` header values (each header line, in order); see the type's docs.
    pub fn client_address(
        &self,
        peer: IpAddr,
        forwarded: &[&[u8]],
        x_forwarded_for: &[&[u8]],
    ) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let found = if !forwarded.is_empty() {
            self.rightmost_untrusted(forwarded, forwarded_for)
        } else if !x_forwarded_for.is_empty() {
            self.rightmost_untrusted(x_forwarded_for, plain_address)
        } else {
            return peer;
        };
        found.unwrap_or(peer)
    }

    /// [`client_address`](Self::client_address) for header lines as a framework's header map
    /// gives them (each header's values in order): read into arrays on the stack, so nothing
    /// is allocated. More than 16 lines of one header give the peer.
    pub fn client_address_of<'a>(
        &self,
        peer: IpAddr,
        forwarded: impl Iterator<Item = &'a [u8]>,
        x_forwarded_for: impl Iterator<Item = &'a [u8]>,
    ) -> IpAddr {
        const MAX_LINES: usize = 16;
        fn collect<'a>(
            lines: impl Iterator<Item = &'a [u8]>,
            out: &mut [&'a [u8]; MAX_LINES],
        ) -> Option<usize> {
            let mut n = 0;
            for line in lines {
                *out.get_mut(n)? = line;
                n += 1;
            }
            Some(n)
        }
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let mut fwd: [&[u8]; MAX_LINES] = [&[]; MAX_LINES];
        let mut xff: [&[u8]; MAX_LINES] = [&[]; MAX_LINES];
        let (Some(f), Some(x)) = (
            collect(forwarded, &mut fwd),
            collect(x_forwarded_for, &mut xff),
        ) else {
            return peer;
        };
        self.client_address(peer, &fwd[..f], &xff[..x])
    }

    /// Walks the comma-separated elements of `lines` from the right: the first address that
    /// is not trusted; the leftmost when all are; `None` when an element that must be read
    /// cannot be, or after [`MAX_HOPS`].
    fn rightmost_untrusted(
        &self,
        lines: &[&[u8]],
        read: fn(&[u8]) -> Option<IpAddr>,
    ) -> Option<IpAddr> {
        let mut hops = 0;
        let mut last = None;
        for line in lines.iter().rev() {
            for element in line.rsplit(|&b| b == b',') {
                hops += 1;
                if hops > MAX_HOPS {
                    return None;
                }
                let ip = canonical(read(trim(element))?);
                if !self.contains(ip) {
                    return Some(ip);
                }
                last = Some(ip);
            }
        }
        last
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// The address of one `Forwarded` element (`for=...;proto=...`): its `for` parameter,
/// unquoted, as [`plain_address`] reads it.
fn forwarded_for(element: &[u8]) -> Option<IpAddr> {
    let mut found = None;
    for pair in element.split(|&b| b == b';') {
        let pair = trim(pair);
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            continue;
        };
        if trim(&pair[..eq]).eq_ignore_ascii_case(b"for") {
            let value = trim(&pair[eq + 1..]);
            let value = value
                .strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(value);
            found = Some(value);
        }
    }
    plain_address(found?)
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`,
/// `[2001:db8::1]`, `[2001:db8::1]:5678`; a port must be 1 to 65535. Anything else (`unknown`,
/// `_hidden`, a host name) is not an address.
fn plain_address(token: &[u8]) -> Option<IpAddr> {
    if token.is_empty() || token.len() > MAX_TOKEN || !token.is_ascii() {
        return None;
    }
    let text = std::str::from_utf8(token).ok()?;
    if let Some(rest) = text.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let ip: Ipv6Addr = ip.parse().ok()?;
        return match after {
            "" => Some(IpAddr::V6(ip)),
            _ => {
                valid_port(after.strip_prefix(':')?)?;
                Some(IpAddr::V6(ip))
            }
        };
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    let (ip, port) = text.rsplit_once(':')?;
    valid_port(port)?;
    ip.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

fn valid_port(port: &str) -> Option<u16> {
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    port.parse::<u16>().ok().filter(|p| *p > 0)
}

#[cfg(test)]
mod tests;
