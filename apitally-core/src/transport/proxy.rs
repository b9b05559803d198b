//! Which proxy, if any, carries the connection to the hub: proxy URLs, `NO_PROXY` rules and the
//! environment, resolved once when the client starts.
//!
//! # Design decision: proxies
//!
//! awc has no proxy support. Rather than a second HTTP client on the sync thread (reqwest or
//! hyper-util, which do proxies, but would add a second HTTP stack, hyper and its own TLS glue
//! to every build, for the minority that needs a proxy), the client keeps awc and plugs a
//! connector service into `awc::Connector::connector(..)` (see `connector.rs`). For a target
//! that goes through a proxy it connects TCP to the proxy, sends `CONNECT host:port HTTP/1.1`
//! (with `Proxy-Authorization: Basic` when the proxy URL has credentials), reads the answer's
//! head (at most 8 KiB, within the connect timeout, which is the request timeout), requires a
//! 2xx, and hands the stream to awc, which does TLS over it with the hub's name (SNI and
//! certificate checks are against the hub, never the proxy). Everything else is awc as before:
//! pooling, keep-alive, timeouts, the `HubTransport` seam. It adds no crate to the build (the
//! connector types come from actix-tls, which awc already builds), runs on the one sync
//! thread, and costs nothing on the request path.
//!
//! - `http://` targets (a local hub) go through the same `CONNECT` tunnel rather than as
//!   absolute-form requests, so there is one code path. Some proxies allow `CONNECT` only to
//!   port 443; such a proxy refuses a plain-HTTP hub, with a log line that says so.
//! - Only `http://` proxy URLs are supported (TLS to the proxy itself is not); an `https://`
//!   or `socks5://` proxy is a configuration error that says so. A URL without a scheme is
//!   taken as `http://`, and without a port as port 80 (as Go and Python do; curl uses 1080).
//! - Environment (read once, at start, as Go and Python do): for an `https` hub `https_proxy`,
//!   then `HTTPS_PROXY`, then `all_proxy`, then `ALL_PROXY`; for an `http` hub the same with
//!   `http_proxy` / `HTTP_PROXY`. The lowercase name wins where both are set (curl and
//!   Python; Go prefers uppercase). Empty values are unset. `no_proxy`, then `NO_PROXY`,
//!   lists the hosts reached directly (see [`NoProxy`]). Loopback is not exempt by itself (as
//!   in curl and Python, unlike Go): list `localhost,127.0.0.1` in `NO_PROXY` for a local hub.
//! - An explicit proxy in the config wins over the whole environment, `NO_PROXY` included;
//!   `no_proxy()` in the config ignores the environment's proxies.

use std::net::IpAddr;

use crate::ConfigError;

/// Where the hub client's proxy setting comes from.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) enum ProxySetting {
    /// The environment's proxy variables (the default).
    #[default]
    FromEnv,
    /// This proxy URL for every target.
    Explicit(String),
    /// No proxy, whatever the environment says.
    Off,
}

impl std::fmt::Debug for ProxySetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::FromEnv => f.write_str("FromEnv"),
            // Never the credentials.
            Self::Explicit(url) => write!(f, "Explicit({:?})", redact_url(url)),
            Self::Off => f.write_str("Off"),
        }
    }
}

/// A parsed `http://` proxy URL.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ProxyUrl {
    /// The host as written for a connect (`proxy.example`, `10.0.0.1`, `[::1]`) and the port.
    pub(crate) host: String,
    pub(crate) port: u16,
    /// The value of `Proxy-Authorization` (`Basic …`), when the URL has credentials.
    pub(crate) authorization: Option<String>,
    /// Where the URL came from: `proxy` (the config) or the variable's name.
    pub(crate) origin: &'static str,
}

impl std::fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the credentials.
        f.write_str(&self.display())
    }
}

impl ProxyUrl {
    /// `http://[***@]host:port`, for logs: never the credentials.
    pub(crate) fn display(&self) -> String {
        let auth = if self.authorization.is_some() {
            "***@"
        } else {
            ""
        };
        format!("http://{auth}{}:{}", self.host, self.port)
    }

    /// `host:port` to connect to.
    pub(crate) fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Parses `[http://][user[:password]@]host[:port][/]`; `origin` names the option or
    /// variable in the error.
    pub(crate) fn parse(value: &str, origin: &'static str) -> Result<Self, ConfigError> {
        let err = |reason: &str| ConfigError::InvalidProxy {
            origin: origin.to_owned(),
            value: redact_url(value),
            reason: reason.to_owned(),
        };
        let trimmed = value.trim();
        let rest = match trimmed.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => {
                return Err(err(
                    "https:// proxies (TLS to the proxy) are not supported; use the proxy's http:// address (HTTPS to the hub is still end-to-end)",
                ))
            }
            Some(_) => return Err(err("only http:// proxies are supported")),
            None => trimmed,
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err(err("a proxy URL has no path, query or fragment"));
        }
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, rest),
        };
        let (host, port) = split_host_port(hostport).ok_or_else(|| err("invalid host or port"))?;
        if host.is_empty()
            || host
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(err("invalid host"));
        }
        let authorization = match userinfo {
            None => None,
            Some(userinfo) => {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let user = percent_decode(user).ok_or_else(|| err("invalid %-escape"))?;
                let password = percent_decode(password).ok_or_else(|| err("invalid %-escape"))?;
                let mut credentials = user;
                credentials.push(b':');
                credentials.extend_from_slice(&password);
                Some(format!(
                    "Basic {}",
                    base64_simd::STANDARD.encode_to_string(&credentials)
                ))
            }
        };
        Ok(Self {
            host: host.to_ascii_lowercase(),
            port: port.unwrap_or(80),
            authorization,
            origin,
        })
    }
}

/// Splits `host[:port]`, with an IPv6 host in brackets (kept). `None` for a bad port or
/// brackets.
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if s.starts_with('[') {
        let end = s.find(']')?;
        let (host, rest) = s.split_at(end + 1);
        host[1..end].parse::<std::net::Ipv6Addr>().ok()?;
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match s.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        }
    };
    if host.contains(':') && !host.starts_with('[') {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p > 0)?),
    };
    Some((host, port))
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// A URL (or something meant as one) with whatever stands before its last `@` in the
/// authority replaced by `***`, so that credentials never reach a log or an error.
pub(crate) fn redact_url(value: &str) -> String {
    let value = value.trim();
    let start = value.find("://").map_or(0, |i| i + 3);
    let authority_end = value[start..]
        .find(['/', '?', '#'])
        .map_or(value.len(), |i| start + i);
    match value[start..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &value[..start], &value[start + at..]),
        None => value.to_owned(),
    }
}

/// `NO_PROXY` rules, as curl and Go read them.
///
/// Comma-separated, whitespace trimmed, empty entries ignored, matched case-insensitively:
/// - `*` matches every host;
/// - a domain, with or without a leading `.` (or `*.`), matches itself and its subdomains:
///   `example.com` matches `example.com` and `api.example.com`, not `badexample.com`;
/// - an IP address (IPv6 with or without brackets) matches that address;
/// - a CIDR block (`10.0.0.0/8`, `::1/128`) matches the addresses in it (IP hosts only; names
///   are not resolved);
/// - any entry but `*` and a CIDR may end in `:port`, and then matches that port only.
///
/// Where curl and Go differ, `.example.com` matches `example.com` itself too (curl; Go matches
/// only subdomains), and a `*` entry among others matches everything (Go; curl only honours a
/// lone `*`). Names are never resolved to match an IP or CIDR entry (neither does either).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NoProxy {
    all: bool,
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    Domain { name: String, port: Option<u16> },
    Ip { ip: IpAddr, port: Option<u16> },
    Cidr { net: IpAddr, bits: u8 },
}

impl NoProxy {
    pub(crate) fn parse(value: &str) -> Self {
        let mut no_proxy = Self::default();
        for entry in value.split(',') {
            let entry = entry.trim().to_ascii_lowercase();
            if entry.is_empty() {
                continue;
            }
            if entry == "*" {
                no_proxy.all = true;
                continue;
            }
            if let Some(rule) = Rule::parse(&entry) {
                no_proxy.rules.push(rule);
            }
        }
        no_proxy
    }

    /// Whether `host` (a name or an IP, IPv6 with or without brackets) on `port` is reached
    /// directly.
    pub(crate) fn matches(&self, host: &str, port: u16) -> bool {
        if self.all {
            return true;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&host);
        let ip = bare.parse::<IpAddr>().ok();
        self.rules.iter().any(|rule| match rule {
            Rule::Domain { name, port: p } => {
                p.is_none_or(|p| p == port)
                    && (bare == name
                        || bare
                            .strip_suffix(name.as_str())
                            .is_some_and(|head| head.ends_with('.')))
            }
            Rule::Ip {
                ip: rule_ip,
                port: p,
            } => p.is_none_or(|p| p == port) && ip.is_some_and(|ip| same_ip(ip, *rule_ip)),
            Rule::Cidr { net, bits } => ip.is_some_and(|ip| in_cidr(ip, *net, *bits)),
        })
    }
}

impl Rule {
    fn parse(entry: &str) -> Option<Self> {
        if let Some((net, bits)) = entry.split_once('/') {
            let net = net
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .ok()?;
            let bits = bits.parse::<u8>().ok()?;
            let max = if net.is_ipv4() { 32 } else { 128 };
            return (bits <= max).then_some(Rule::Cidr { net, bits });
        }
        // A bare IPv6 address has colons that are not a port.
        if let Ok(ip) = entry.parse::<IpAddr>() {
            return Some(Rule::Ip { ip, port: None });
        }
        let (host, port) = split_host_port(entry)?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Some(Rule::Ip { ip, port });
        }
        let name = host
            .strip_prefix("*.")
            .or_else(|| host.strip_prefix('.'))
            .unwrap_or(host)
            .trim_end_matches('.');
        (!name.is_empty()).then(|| Rule::Domain {
            name: name.to_owned(),
            port,
        })
    }
}

/// Equal addresses, an IPv4-mapped IPv6 address equal to its IPv4 one.
fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    canonical(a) == canonical(b)
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (canonical(ip), net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// The proxies for `http` and `https` targets and the hosts reached directly, as resolved when
/// the client starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Proxies {
    http: Option<ProxyUrl>,
    https: Option<ProxyUrl>,
    no_proxy: NoProxy,
}

impl Proxies {
    /// Resolves `setting`, reading variables with `var` (the process environment, or what a
    /// test passes). Each variable is read once, here.
    pub(crate) fn resolve(
        setting: &ProxySetting,
        var: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        match setting {
            ProxySetting::Off => Ok(Self::default()),
            ProxySetting::Explicit(url) => {
                let proxy = ProxyUrl::parse(url, "proxy")?;
                Ok(Self {
                    http: Some(proxy.clone()),
                    https: Some(proxy),
                    no_proxy: NoProxy::default(),
                })
            }
            ProxySetting::FromEnv => {
                let get = |names: &[&'static str]| {
                    names.iter().find_map(|&name| {
                        var(name)
                            .map(|v| v.trim().to_owned())
                            .filter(|v| !v.is_empty())
                            .map(|v| (name, v))
                    })
                };
                let parse = |names: &[&'static str]| {
                    get(names)
                        .map(|(name, value)| ProxyUrl::parse(&value, name))
                        .transpose()
                };
                Ok(Self {
                    https: parse(&["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"])?,
                    http: parse(&["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"])?,
                    no_proxy: get(&["no_proxy", "NO_PROXY"])
                        .map(|(_, v)| NoProxy::parse(&v))
                        .unwrap_or_default(),
                })
            }
        }
    }

    /// The proxy for a target, `None` to connect directly.
    pub(crate) fn for_target(&self, https: bool, host: &str, port: u16) -> Option<&ProxyUrl> {
        let proxy = if https { &self.https } else { &self.http };
        proxy
            .as_ref()
            .filter(|_| !self.no_proxy.matches(host, port))
    }

    /// How `url` is reached, for the startup debug line.
    pub(crate) fn describe_route(&self, url: &str) -> String {
        let proxy = url.parse::<awc::http::Uri>().ok().and_then(|uri| {
            let (https, host, port) = target(&uri);
            self.for_target(https, host, port).cloned()
        });
        match proxy {
            Some(proxy) => format!("through proxy {} (from {})", proxy.display(), proxy.origin),
            None => "directly".to_owned(),
        }
    }

    /// Whether no target ever goes through a proxy.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.http.is_none() && self.https.is_none()
    }
}

/// Scheme, host (without brackets) and port of a URI.
pub(crate) fn target(uri: &awc::http::Uri) -> (bool, &str, u16) {
    let https = uri.scheme_str() == Some("https");
    let host = uri.host().unwrap_or_default();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    (https, host, port)
}

#[cfg(test)]
mod tests;
