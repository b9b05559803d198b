//! The TCP connector under awc: direct, or through an HTTP proxy's `CONNECT` tunnel.
//!
//! See the design decision in `proxy.rs`. awc calls this service for every new connection (its
//! pool keeps them alive), wraps it in its connect timeout (the request timeout), and does TLS
//! over the stream it returns, named after the hub.

use std::{
    fmt,
    future::Future,
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    rc::Rc,
};

use actix_rt::net::TcpStream;
use actix_service::Service;
use actix_tls::connect::{ConnectError, ConnectInfo, Connection, ConnectorService};
use awc::http::Uri;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::proxy::{target, Proxies, ProxyUrl};

/// The most bytes of a proxy's answer to `CONNECT` read before giving up on it.
const MAX_RESPONSE_HEAD: usize = 8 * 1024;

/// awc's TCP connector: the default one (resolve, connect) for direct targets; for proxied
/// ones, a connection to the proxy turned into a tunnel.
#[derive(Clone)]
pub(crate) struct HubConnector {
    direct: ConnectorService,
    proxies: Rc<Proxies>,
}

impl HubConnector {
    pub(crate) fn new(proxies: Rc<Proxies>) -> Self {
        Self {
            direct: ConnectorService::default(),
            proxies,
        }
    }
}

type ConnectFuture =
    Pin<Box<dyn Future<Output = Result<Connection<Uri, TcpStream>, ConnectError>>>>;

impl Service<ConnectInfo<Uri>> for HubConnector {
    type Response = Connection<Uri, TcpStream>;
    type Error = ConnectError;
    type Future = ConnectFuture;

    actix_service::always_ready!();

    fn call(&self, req: ConnectInfo<Uri>) -> Self::Future {
        let uri = req.request().clone();
        let (https, host, port) = target(&uri);
        match self.proxies.for_target(https, host, port) {
            None => Box::pin(self.direct.call(req)),
            Some(proxy) => {
                let proxy = proxy.clone();
                let direct = self.direct.clone();
                let authority = if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                };
                Box::pin(async move {
                    let stream = tunnel(&direct, &proxy, &authority)
                        .await
                        .map_err(|err| ConnectError::Io(io::Error::other(err)))?;
                    Ok(Connection::new(uri, stream))
                })
            }
        }
    }
}

/// Why a tunnel could not be opened; the message names the proxy (never its credentials) and
/// the target.
#[derive(Debug)]
pub(crate) struct TunnelError(pub(crate) String);

impl fmt::Display for TunnelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TunnelError {}

/// Connects to `proxy` and asks it for a tunnel to `authority` (`host:port`).
async fn tunnel(
    direct: &ConnectorService,
    proxy: &ProxyUrl,
    authority: &str,
) -> Result<TcpStream, TunnelError> {
    let at = |what: String| {
        TunnelError(format!(
            "proxy {} (from {}) {what}",
            proxy.display(),
            proxy.origin
        ))
    };
    let bare = proxy.host.trim_start_matches('[').trim_end_matches(']');
    let info = match bare.parse::<IpAddr>() {
        Ok(ip) => ConnectInfo::with_addr(proxy.address(), SocketAddr::new(ip, proxy.port)),
        Err(_) => ConnectInfo::new(proxy.address()),
    };
    let mut stream = direct
        .call(info)
        .await
        .map_err(|err| at(format!("is unreachable: {}", describe(&err))))?
        .into_parts()
        .0;
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(auth) = &proxy.authorization {
        request.push_str("Proxy-Authorization: ");
        request.push_str(auth);
        request.push_str("\r\n");
    }
    request.push_str(concat!(
        "User-Agent: apitally-rust/",
        env!("CARGO_PKG_VERSION"),
        "\r\n\r\n"
    ));
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|err| at(format!("closed the connection on CONNECT: {err}")))?;

    let mut head = Vec::with_capacity(256);
    let end = loop {
        let mut chunk = [0u8; 1024];
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|err| at(format!("failed during CONNECT: {err}")))?;
        if n == 0 {
            return Err(at(format!(
                "closed the connection without answering CONNECT {authority}"
            )));
        }
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = memchr::memmem::find(&head, b"\r\n\r\n") {
            break end + 4;
        }
        if head.len() > MAX_RESPONSE_HEAD {
            return Err(at(format!(
                "answered CONNECT {authority} with more than {MAX_RESPONSE_HEAD} bytes of head"
            )));
        }
    };
    let (status, reason) = parse_status_line(&head[..end])
        .ok_or_else(|| at("answered CONNECT with something that is not HTTP".to_owned()))?;
    if (200..300).contains(&status) {
        if head.len() > end {
            // The stream now belongs to the hub's TLS (or HTTP); bytes the proxy sent ahead of
            // it would be lost, so the tunnel cannot be trusted (as Go's transport does).
            return Err(at(format!(
                "sent data after its answer to CONNECT {authority}"
            )));
        }
        return Ok(stream);
    }
    let hint = match (status, &proxy.authorization) {
        (407, Some(_)) => "; check the credentials in the proxy URL",
        (407, None) => "; the proxy wants credentials: http://name:password@host:port",
        _ => "",
    };
    Err(at(format!(
        "refused the tunnel to {authority}: HTTP {status} {reason}{hint}"
    )))
}

/// `HTTP/1.x NNN reason` → (NNN, reason as printable ASCII, at most 100 characters).
fn parse_status_line(head: &[u8]) -> Option<(u16, String)> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let rest = rest.get(1..)?.strip_prefix(b" ")?;
    let code = rest.get(..3)?;
    if !code.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(|&b| b != b' ') {
        return None;
    }
    let status = std::str::from_utf8(code).ok()?.parse().ok()?;
    let reason = rest
        .get(4..)
        .unwrap_or_default()
        .iter()
        .filter(|b| b.is_ascii_graphic() || **b == b' ')
        .take(100)
        .map(|&b| char::from(b))
        .collect::<String>();
    Some((status, reason.trim().to_owned()))
}

/// actix-tls's connect errors say "I/O error" for every I/O error: say what it was.
fn describe(err: &ConnectError) -> String {
    match err {
        ConnectError::Io(err) => err.to_string(),
        ConnectError::Resolver(err) => format!("cannot resolve its name: {err}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(
            parse_status_line(b"HTTP/1.1 200 Connection established\r\n\r\n"),
            Some((200, "Connection established".into()))
        );
        assert_eq!(
            parse_status_line(b"HTTP/1.0 407 Proxy Authentication Required\r\nX: y\r\n\r\n"),
            Some((407, "Proxy Authentication Required".into()))
        );
        assert_eq!(
            parse_status_line(b"HTTP/1.1 200\r\n\r\n"),
            Some((200, String::new()))
        );
        assert_eq!(
            parse_status_line(b"HTTP/1.1 403 \x1b[31mno\x00\r\n\r\n"),
            Some((403, "[31mno".into()))
        );
        for bad in [
            &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
            b"HTTP/2 200\r\n\r\n",
            b"HTTP/1.1 20x OK\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(parse_status_line(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn targets() {
        let uri: Uri = "https://hub.apitally.io/v2/x".parse().unwrap();
        assert_eq!(target(&uri), (true, "hub.apitally.io", 443));
        let uri: Uri = "http://[::1]:8001/v2/x".parse().unwrap();
        assert_eq!(target(&uri), (false, "::1", 8001));
        let uri: Uri = "http://127.0.0.1/v2/x".parse().unwrap();
        assert_eq!(target(&uri), (false, "127.0.0.1", 80));
    }
}
