//! The checks of the client's settings: base URLs (what a credential is sent to), client ids,
//! write tokens and env names.

/// Checks a base URL completely, as `http::Uri` (the client's) would read it, and accepts only
/// `http(s)://host[:port][/path]`: a host name, an IPv4 address or a bracketed IPv6 address,
/// a port from 1 to 65535, a path of plain characters; no user-info, query or fragment, so that
/// what the credential is sent to is exactly what the config names. Returns the URL with the
/// scheme in lowercase and without a trailing `/`, or what is wrong with it.
pub(crate) fn check_base_url(url: &str) -> Result<String, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| "it does not start with http:// or https://".to_owned())?;
    let rest = rest.trim_end_matches('/');
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(format!("the scheme {scheme:?} is not http or https"));
    }
    if let Some(bad) = rest.chars().find(|c| {
        !c.is_ascii_graphic() || matches!(c, '\\' | '"' | '<' | '>' | '`' | '{' | '}' | '|' | '^')
    }) {
        return Err(format!("it has the character {bad:?}"));
    }
    if rest.contains('?') || rest.contains('#') {
        return Err("it has a query or a fragment".to_owned());
    }
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    if authority.contains('@') {
        return Err("it has user-info (name@ or name:password@)".to_owned());
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (ip, after) = bracketed
            .split_once(']')
            .ok_or_else(|| "the IPv6 address has no closing ]".to_owned())?;
        ip.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("{ip:?} is not an IPv6 address"))?;
        match after {
            "" => (authority, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (&authority[..authority.len() - after.len()], Some(port)),
                None => return Err(format!("{after:?} follows the IPv6 address")),
            },
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("it has no host".to_owned());
    }
    if !host.starts_with('[') {
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        {
            return Err(format!("{host:?} is not a host name or address"));
        }
        if host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && host.parse::<std::net::Ipv4Addr>().is_err()
        {
            return Err(format!("{host:?} is not an IPv4 address"));
        }
    }
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|p| (1..=65_535).contains(&p));
        if !valid {
            return Err(format!("the port {port:?} is not a number from 1 to 65535"));
        }
    }
    if path.contains("//") {
        return Err("its path has an empty segment".to_owned());
    }
    let normalised = format!("{scheme}://{rest}");
    // The client's own parser must read the same authority.
    let uri: awc::http::Uri = normalised
        .parse()
        .map_err(|e| format!("it is not a URI: {e}"))?;
    let same = uri.host().is_some_and(|h| h.eq_ignore_ascii_case(host))
        && uri.port_u16().map(u32::from) == port.and_then(|p| p.parse().ok());
    if !same {
        return Err("its host and port do not read the same to the HTTP client".to_owned());
    }
    Ok(normalised)
}

/// `^apt_[a-zA-Z0-9]{24}$` (protocol-v1.md §1.4).
pub(crate) fn is_write_token(s: &str) -> bool {
    s.len() == 28 && s.starts_with("apt_") && s.bytes().skip(4).all(|b| b.is_ascii_alphanumeric())
}

/// Apitally 1.x creates any environment the client names, and no 1.x SDK checks it (§1.4);
/// it travels in the `Apitally-Env` header, so it is what a header value can carry: 1 to 255
/// visible ASCII characters and spaces (trimmed already).
pub(crate) fn is_valid_otlp_env(s: &str) -> bool {
    (1..=255).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
}

/// `^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`
pub(crate) fn is_canonical_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// `^[A-Za-z0-9_-]{1,32}$`
pub(crate) fn is_valid_env(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}
