//! A self-signed certificate for 127.0.0.1 and localhost (rcgen), with the rustls server and
//! client configurations that use it (ring provider).

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// TLS settings for a test: the server's, and a client's that trusts exactly this
/// certificate.
pub(crate) struct TestTls {
    /// For `Server::with_tls`.
    pub(crate) server: Arc<rustls::ServerConfig>,
    /// For a tokio-rustls `TlsConnector` (server name `localhost`).
    pub(crate) client: Arc<rustls::ClientConfig>,
}

/// A fresh self-signed certificate for `localhost` and `127.0.0.1`.
pub(crate) fn self_signed() -> TestTls {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names).expect("generate a certificate");
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("server certificate");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).expect("trust the certificate");
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    TestTls {
        server: Arc::new(server),
        client: Arc::new(client),
    }
}
