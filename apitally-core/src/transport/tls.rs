//! The certificates the hub client trusts, and what a certificate error says.
//!
//! Trusted: the webpki roots (Mozilla's, built in), plus the platform's store, or instead of it
//! the files of `SSL_CERT_FILE` / `SSL_CERT_DIR` when either is set (rustls-native-certs reads
//! them as OpenSSL does), plus the CA certificates given in the config. The webpki roots stay
//! trusted in every case, so that pointing `SSL_CERT_FILE` at a company CA alone does not cut
//! the client off from the public hub.

use std::path::PathBuf;

use rustls::pki_types::{pem::PemObject, CertificateDer};

use crate::{diag::debug, ConfigError};

/// CA certificates added in the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CaSource {
    /// PEM text.
    Pem(Vec<u8>),
    /// A PEM file, read when the configuration is checked.
    File(PathBuf),
}

/// What to trust, as resolved when the client starts.
#[derive(Debug, Clone, Default)]
pub(crate) struct Trust {
    /// From the config, parsed and checked.
    extra: Vec<CertificateDer<'static>>,
    /// `SSL_CERT_FILE` and `SSL_CERT_DIR` (`:`-separated), read once.
    cert_file: Option<PathBuf>,
    cert_dirs: Vec<PathBuf>,
}

impl Trust {
    /// Parses the configured certificates (an unreadable file, bad PEM, no certificate or one
    /// rustls cannot use is an error naming the option) and reads the variables with `var`.
    pub(crate) fn resolve(
        sources: &[CaSource],
        var: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut extra = Vec::new();
        for source in sources {
            let (origin, pem) = match source {
                CaSource::Pem(pem) => ("ca_certificates_pem".to_owned(), pem.clone()),
                CaSource::File(path) => {
                    let origin = format!("ca_certificates_file({})", path.display());
                    match std::fs::read(path) {
                        Ok(pem) => (origin, pem),
                        Err(err) => {
                            return Err(ConfigError::InvalidCaCertificates {
                                origin,
                                reason: format!("cannot read the file: {err}"),
                            })
                        }
                    }
                }
            };
            let err = |reason: String| ConfigError::InvalidCaCertificates {
                origin: origin.clone(),
                reason,
            };
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| err(format!("invalid PEM: {e}")))?;
            if certs.is_empty() {
                return Err(err(
                    "no certificate found (expected PEM blocks starting with -----BEGIN CERTIFICATE-----)"
                        .to_owned(),
                ));
            }
            let mut check = rustls::RootCertStore::empty();
            for (i, cert) in certs.iter().enumerate() {
                check
                    .add(cert.clone())
                    .map_err(|e| err(format!("certificate {} cannot be used: {e}", i + 1)))?;
            }
            extra.extend(certs);
        }
        let path = |name| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        Ok(Self {
            extra,
            cert_file: path("SSL_CERT_FILE").map(PathBuf::from),
            cert_dirs: path("SSL_CERT_DIR")
                .map(|dirs| {
                    std::env::split_paths(&dirs)
                        .filter(|p| !p.as_os_str().is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// Loads the roots (on the sync thread: reading the platform's store is file I/O) and
    /// builds the rustls configuration. Certificates that cannot be loaded are logged once and
    /// left out. `None` if ring rejects its own defaults, which does not happen in practice
    /// (HTTPS then fails per request, with an error).
    pub(crate) fn client_config(&self) -> Option<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let (loaded, from) = if self.cert_file.is_some() || !self.cert_dirs.is_empty() {
            let mut result =
                rustls_native_certs::load_certs_from_paths(self.cert_file.as_deref(), None);
            for dir in &self.cert_dirs {
                let more = rustls_native_certs::load_certs_from_paths(None, Some(dir));
                result.certs.extend(more.certs);
                result.errors.extend(more.errors);
            }
            (result, "SSL_CERT_FILE / SSL_CERT_DIR")
        } else {
            (
                rustls_native_certs::load_native_certs(),
                "the platform's store",
            )
        };
        if !loaded.errors.is_empty() {
            let errors: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
            log::warn!(
                target: "apitally",
                "apitally: some CA certificates from {from} could not be loaded ({}); the others are trusted",
                errors.join("; ")
            );
        }
        let (native, ignored) = roots.add_parsable_certificates(loaded.certs);
        let (extra, _) = roots.add_parsable_certificates(self.extra.iter().cloned());
        debug!(
            "trusting {} webpki roots, {native} certificate(s) from {from} ({ignored} unusable) and {extra} from the config",
            webpki_roots::TLS_SERVER_ROOTS.len()
        );
        // The process's provider when the app installed one (aws-lc-rs with post-quantum key
        // exchange, FIPS, ...); else ring's. rustls 0.23.48 deprecated ring's provider for
        // having no post-quantum key exchange; switching to aws-lc-rs would make every app
        // build a C library, for telemetry whose confidentiality ring's X25519 covers today.
        // The deprecation is acknowledged here, where the choice is made, and nowhere else.
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| {
                #[allow(deprecated)]
                let ring = rustls::crypto::ring::default_provider();
                std::sync::Arc::new(ring)
            });
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .ok()
            .map(|b| b.with_root_certificates(roots).with_no_client_auth())
    }
}

/// The TLS error inside an I/O error, said for a log line: what failed and, for an untrusted
/// certificate, how to trust it.
pub(crate) fn describe_tls_error(err: &std::io::Error, route: &str) -> Option<String> {
    let tls = err.get_ref()?.downcast_ref::<rustls::Error>()?;
    let hint = match tls {
        rustls::Error::InvalidCertificate(_) => {
            "; if a private CA signed it, trust that CA with SSL_CERT_FILE or the ca_certificates_pem option"
        }
        _ => "",
    };
    Some(format!("TLS with {route} failed: {tls}{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn configured_certificates_are_checked() {
        let ok = |sources: &[CaSource]| Trust::resolve(sources, &no_env);
        let err = ok(&[CaSource::Pem(b"not pem".to_vec())]).unwrap_err();
        assert!(err.to_string().contains("ca_certificates_pem"), "{err}");
        assert!(err.to_string().contains("no certificate"), "{err}");

        let garbage = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let err = ok(&[CaSource::Pem(garbage.to_vec())]).unwrap_err();
        assert!(
            err.to_string().contains("certificate 1 cannot be used"),
            "{err}"
        );

        let broken = b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n";
        let err = ok(&[CaSource::Pem(broken.to_vec())]).unwrap_err();
        assert!(err.to_string().contains("invalid PEM"), "{err}");

        let missing = PathBuf::from("/nonexistent/apitally-ca.pem");
        let err = ok(&[CaSource::File(missing)]).unwrap_err();
        assert!(
            err.to_string()
                .contains("ca_certificates_file(/nonexistent/apitally-ca.pem)"),
            "{err}"
        );
        assert!(matches!(err, ConfigError::InvalidCaCertificates { .. }));
    }

    #[test]
    fn certificate_variables_are_read_once() {
        let vars = |name: &str| match name {
            "SSL_CERT_FILE" => Some(" /etc/x.pem ".to_owned()),
            "SSL_CERT_DIR" => Some("/a::/b".to_owned()),
            _ => None,
        };
        let trust = Trust::resolve(&[], &vars).unwrap();
        assert_eq!(trust.cert_file, Some(PathBuf::from("/etc/x.pem")));
        assert_eq!(trust.cert_dirs, [PathBuf::from("/a"), PathBuf::from("/b")]);
        let trust = Trust::resolve(&[], &no_env).unwrap();
        assert_eq!((trust.cert_file, trust.cert_dirs.len()), (None, 0));
    }
}
