//! The one seam between the protocols' delivery loops and HTTP: [`Transport`], one POST; and
//! its implementation, [`AwcTransport`], with proxies and TLS.

pub(crate) mod connector;
pub(crate) mod proxy;
#[cfg(feature = "rustls")]
pub(crate) mod tls;

use std::{future::Future, rc::Rc, time::Duration};

use bytes::Bytes;

use self::{
    connector::{HubConnector, TunnelError},
    proxy::{target, Proxies},
};
use crate::diag::debug;

/// What a server answered: the status, the headers the protocols read, and the start of the
/// body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Response {
    pub(crate) status: u16,
    /// `Retry-After` as whole seconds, when present and an integer (hub v2).
    pub(crate) retry_after: Option<u64>,
    /// `Apitally-Export-Interval`, as sent (1.x).
    pub(crate) export_interval: Option<String>,
    /// The start of the body (4 KiB at most), for logging a rejection.
    pub(crate) body: String,
}

/// The response header that sets the 1.x export interval.
pub(crate) const EXPORT_INTERVAL_HEADER: &str = "Apitally-Export-Interval";

/// Why no answer came. The message names the hub's host and port, and the proxy when one is
/// used (never its credentials).
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransportError {
    #[error("{0}")]
    Request(String),
    #[error("timed out waiting for {0}")]
    Timeout(String),
}

/// Posts a body. Both delivery loops are generic over it (tests script it on paused time);
/// the one used is [`AwcTransport`].
pub(crate) trait Transport {
    /// `headers`: request headers to set (replacing defaults of the same name).
    fn post(
        &self,
        url: &str,
        headers: &[(&'static str, &str)],
        body: Bytes,
    ) -> impl Future<Output = Result<Response, TransportError>>;
}

/// The awc client, with rustls for HTTPS and [`HubConnector`] under it for proxies. Lives on
/// the sync thread (awc is not `Send`).
pub(crate) struct AwcTransport {
    client: awc::Client,
    timeout: Duration,
    proxies: Rc<Proxies>,
}

impl AwcTransport {
    /// Builds the client; with TLS, this loads the trusted roots (file I/O, on the sync
    /// thread).
    pub(crate) fn new(timeout: Duration, net: &NetSettings) -> Self {
        let proxies = Rc::new(net.proxies.clone());
        let connector = awc::Connector::new()
            .connector(HubConnector::new(Rc::clone(&proxies)))
            // Bounds the TCP connect and a proxy's answer to CONNECT.
            .timeout(timeout)
            .handshake_timeout(timeout);
        #[cfg(feature = "rustls")]
        let connector = match net.trust.client_config() {
            Some(config) => connector.rustls_0_23(std::sync::Arc::new(config)),
            None => connector,
        };
        let client = awc::Client::builder()
            .timeout(timeout)
            .connector(connector)
            .disable_redirects()
            .add_default_header((
                "user-agent",
                concat!("apitally-rust/", env!("CARGO_PKG_VERSION")),
            ))
            .finish();
        Self {
            client,
            timeout,
            proxies,
        }
    }

    /// The error of a POST to `url`, said for a log line.
    fn describe(&self, url: &str, err: &awc::error::SendRequestError) -> TransportError {
        use awc::error::{ConnectError, SendRequestError};
        let uri = url.parse::<awc::http::Uri>().ok();
        let (https, host, port) = uri.as_ref().map_or((false, "", 0), target);
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let route = match self.proxies.for_target(https, host, port) {
            Some(proxy) => format!("{authority} through proxy {}", proxy.display()),
            None => authority.clone(),
        };
        match err {
            SendRequestError::Timeout => TransportError::Timeout(route),
            SendRequestError::Connect(ConnectError::Timeout) => {
                TransportError::Timeout(format!("a connection to {route}"))
            }
            SendRequestError::Connect(ConnectError::Io(io)) => {
                if let Some(tunnel) = io.get_ref().and_then(|e| e.downcast_ref::<TunnelError>()) {
                    return TransportError::Request(tunnel.to_string());
                }
                #[cfg(feature = "rustls")]
                if let Some(tls) = self::tls::describe_tls_error(io, &route) {
                    return TransportError::Request(tls);
                }
                TransportError::Request(format!("cannot connect to {route}: {io}"))
            }
            SendRequestError::Connect(other) => {
                TransportError::Request(format!("cannot connect to {route}: {other}"))
            }
            other => TransportError::Request(format!("POST to {route} failed: {other}")),
        }
    }
}

/// Whether a failed POST is sent again at once, on a new connection: the connection broke
/// while the request was written (`Send`), or closed before any byte of an answer
/// (`Disconnected`). Both are what a pooled keep-alive connection gives when the server (or a
/// load balancer) closes it as idle just as it is reused; awc drops a connection it sees closed,
/// but not one closed while the request is on its way. Without this, such a race cost a cycle's
/// data until the next cycle, and the final sync at shutdown (one attempt) outright. Sending
/// again is no new risk: the sync loop and the export worker send failed bodies again anyway,
/// and the hub de-duplicates syncs and log files by their uuid.
fn stale_connection(err: &awc::error::SendRequestError) -> bool {
    use awc::error::{ConnectError, SendRequestError};
    matches!(
        err,
        SendRequestError::Send(_) | SendRequestError::Connect(ConnectError::Disconnected)
    )
}

impl AwcTransport {
    /// Sends one POST, and once more on a new connection if the first broke as a stale
    /// keep-alive connection does ([`stale_connection`]).
    async fn send(
        &self,
        url: &str,
        headers: &[(&'static str, &str)],
        body: Bytes,
    ) -> <awc::SendClientRequest as Future>::Output {
        let mut retried = false;
        loop {
            let mut request = self.client.post(url);
            for &(name, value) in headers {
                request = request.insert_header((name, value));
            }
            match request.send_body(body.clone()).await {
                Err(err) if !retried && stale_connection(&err) => {
                    debug!("the connection broke ({err}); sending again on a new one");
                    retried = true;
                }
                result => return result,
            }
        }
    }
}

/// What the transport needs from the configuration: proxies and trusted certificates.
#[derive(Debug, Clone, Default)]
pub(crate) struct NetSettings {
    pub(crate) proxies: Proxies,
    #[cfg(feature = "rustls")]
    pub(crate) trust: self::tls::Trust,
}

impl Transport for AwcTransport {
    async fn post(
        &self,
        url: &str,
        headers: &[(&'static str, &str)],
        body: Bytes,
    ) -> Result<Response, TransportError> {
        let mut response = self
            .send(url, headers, body)
            .await
            .map_err(|err| self.describe(url, &err))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let export_interval = response
            .headers()
            .get(EXPORT_INTERVAL_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // Read a little of the body (for logging), never much, never long; the rest is
        // discarded (up to 64 KiB), so that the connection can be reused.
        let body = match tokio::time::timeout(self.timeout, response.body().limit(64 * 1024)).await
        {
            Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).into_owned(),
            _ => String::new(),
        };
        Ok(Response {
            status,
            retry_after,
            export_interval,
            body,
        })
    }
}
