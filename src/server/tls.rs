//! TLS for the listeners: a PEM certificate chain and key from `smtpd_tls_cert_file` and
//! `smtpd_tls_key_file`, or a self-signed pair generated at first start and kept in the data
//! directory (`tls-cert.pem`, `tls-key.pem`, the key readable by its owner only).

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::config::Config;

/// The rustls server configuration (ring provider) for `config`.
///
/// # Errors
///
/// The files cannot be read or parsed, or a self-signed pair cannot be made or stored.
pub fn server_config(config: &Config) -> Result<Arc<rustls::ServerConfig>, String> {
    let (cert_path, key_path) = if config.smtpd_tls_cert_file.is_empty() {
        let cert = config.data_directory.join("tls-cert.pem");
        let key = config.data_directory.join("tls-key.pem");
        if !cert.exists() || !key.exists() {
            make_self_signed(config, &cert, &key)?;
        }
        (cert, key)
    } else {
        (
            config.data_path(config.smtpd_tls_cert_file.as_ref()),
            config.data_path(config.smtpd_tls_key_file.as_ref()),
        )
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(Iterator::collect)
        .map_err(|e| format!("{}: {e}", cert_path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", cert_path.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| format!("{}: {e}", key_path.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("{}: {e}", cert_path.display()))?;
    Ok(Arc::new(tls))
}

fn make_self_signed(
    config: &Config,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let names = vec![
        config.myhostname.clone(),
        "localhost".into(),
        "127.0.0.1".into(),
    ];
    let certified = rcgen::generate_simple_self_signed(names).map_err(|e| e.to_string())?;
    let write = |path: &std::path::Path, text: &str, mode: u32| -> Result<(), String> {
        let fail = |e: std::io::Error| format!("{}: {e}", path.display());
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(path)
            .map_err(fail)?;
        f.write_all(text.as_bytes()).map_err(fail)?;
        f.sync_all().map_err(fail)
    };
    write(key, &certified.signing_key.serialize_pem(), 0o600)?;
    write(cert, &certified.cert.pem(), 0o644)?;
    Ok(())
}
