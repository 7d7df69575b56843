//! TLS peers for tests: a CA made at test time, server certificates it
//! signs for `127.0.0.1` and `localhost`, and their PEM files on disk.
//!
//! Every test makes its own CA, so nothing on the machine trusts it unless
//! the test says so (`SSL_CERT_FILE`, `sslrootcert=`, `AMQP_CA_FILE`): a
//! second CA is how a test plays "a server whose certificate is not trusted".

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate authority that exists only for one test.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

/// A server's certificate (signed by a [`TestCa`]) and its private key.
pub struct ServerCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    pub fn new(name: &str) -> anyhow::Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate()?;
        let pem = params.self_signed(&key)?.pem();
        Ok(Self {
            issuer: Issuer::new(params, key),
            pem,
        })
    }

    /// The CA's certificate, what a client is told to trust.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A server certificate valid for `127.0.0.1` and `localhost`, the names
    /// a test's clients use, so hostname verification is really exercised.
    pub fn issue_server_cert(&self) -> anyhow::Result<ServerCert> {
        let mut params = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])?;
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(ServerCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

impl ServerCert {
    /// A rustls server configuration presenting this certificate.
    pub fn rustls_config(&self) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let chain = vec![CertificateDer::from_pem_slice(self.cert_pem.as_bytes())?];
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
        Ok(Arc::new(config))
    }
}

/// Writes `pem` to `path`; a private key is written mode 0600 from the
/// start (PostgreSQL refuses a key others can read).
pub fn write_pem(path: &Path, pem: &str, private: bool) -> anyhow::Result<()> {
    let mode = if private { 0o600 } else { 0o644 };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(pem.as_bytes())?;
    Ok(())
}

/// A folder of PEM files, removed on drop.
pub struct PemDir {
    dir: PathBuf,
}

impl PemDir {
    pub fn new() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "ledgerhook-tls-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// Writes a CA's certificate as `<name>.pem`; its path.
    pub fn ca_file(&self, name: &str, ca: &TestCa) -> anyhow::Result<PathBuf> {
        let path = self.dir.join(format!("{name}.pem"));
        write_pem(&path, ca.pem(), false)?;
        Ok(path)
    }

    /// A file of arbitrary text, for testing what is refused.
    pub fn text_file(&self, name: &str, text: &str) -> anyhow::Result<PathBuf> {
        let path = self.dir.join(name);
        write_pem(&path, text, false)?;
        Ok(path)
    }
}

impl Drop for PemDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Serves `app` over TLS with `tls` on `listener` until the task is
/// dropped. axum::serve speaks plain TCP only; here each connection is
/// handshaken, then served by hyper. A failed handshake (a client that does
/// not trust the certificate) ends that connection, nothing else.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: axum::Router,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    while let Ok((tcp, _)) = listener.accept().await {
        let acceptor = acceptor.clone();
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}
