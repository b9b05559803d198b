//! The seam between the sync loop and HTTP: one POST to the hub.

use std::{future::Future, time::Duration};

use bytes::Bytes;

/// What the hub answered.
#[derive(Debug, Clone)]
pub(crate) struct HubResponse {
    pub(crate) status: u16,
    /// `Retry-After` as whole seconds, when present and an integer.
    pub(crate) retry_after: Option<u64>,
    /// The start of the body, for logging a rejection.
    pub(crate) body: String,
}

/// Why no answer came.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransportError {
    #[error("{0}")]
    Request(String),
    #[error("timed out")]
    Timeout,
}

/// Posts bodies to the hub. The sync loop is generic over it so that another exporter can be
/// added without touching the middleware; the one used is [`AwcTransport`].
pub(crate) trait HubTransport {
    fn post(
        &self,
        url: &str,
        content_type: Option<&'static str>,
        body: Bytes,
    ) -> impl Future<Output = Result<HubResponse, TransportError>>;
}

/// The awc client, with rustls for HTTPS. Lives on the sync thread (awc is not `Send`).
pub(crate) struct AwcTransport {
    client: awc::Client,
    timeout: Duration,
}

impl AwcTransport {
    pub(crate) fn new(timeout: Duration) -> Self {
        let connector = awc::Connector::new().timeout(timeout);
        #[cfg(feature = "rustls")]
        let connector = match tls_config() {
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
        Self { client, timeout }
    }
}

/// rustls with ring and the webpki roots; `None` (HTTPS then fails per request, with an error)
/// if the provider rejects its own defaults, which does not happen in practice.
#[cfg(feature = "rustls")]
fn tls_config() -> Option<rustls::ClientConfig> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

impl HubTransport for AwcTransport {
    async fn post(
        &self,
        url: &str,
        content_type: Option<&'static str>,
        body: Bytes,
    ) -> Result<HubResponse, TransportError> {
        let mut request = self.client.post(url);
        if let Some(ct) = content_type {
            request = request.insert_header(("content-type", ct));
        }
        let mut response = request.send_body(body).await.map_err(|err| match err {
            awc::error::SendRequestError::Timeout => TransportError::Timeout,
            other => TransportError::Request(other.to_string()),
        })?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        // Read a little of the body (for logging), never much, never long.
        let body = match tokio::time::timeout(self.timeout, response.body().limit(4096)).await {
            Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            _ => String::new(),
        };
        Ok(HubResponse {
            status,
            retry_after,
            body,
        })
    }
}
