//! The one way dialsync builds an HTTP client, whoever it talks to.
//!
//! Every upstream and every sink needs the same few things from its client, and each copy of
//! them drifted: rustls with the system roots plus an optional extra root (`ca_file`),
//! verification turned off only when explicitly asked (and then never silently), a timeout
//! per request, a stable User-Agent, and no redirects followed. An API that redirects is
//! misconfigured (a missing trailing slash, a moved host): the 3xx is an answer to report,
//! not a hop to follow silently, and following it could carry credentials to another host.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::Client;

use super::reason::error_chain;
use crate::error::{Classify, ErrorClass};

/// The User-Agent of every request dialsync sends.
pub const USER_AGENT: &str = concat!("dialsync/", env!("CARGO_PKG_VERSION"));

/// How one client is set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientSettings {
    /// Time to establish a TCP (and TLS) connection; `None` leaves it bounded by `timeout`.
    pub connect_timeout: Option<Duration>,
    /// Time for one request, its whole answer included.
    pub timeout: Duration,
    /// An extra root certificate (PEM) for a peer with a private CA, trusted beside the
    /// system roots.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate. Only when explicitly set, and [`build_client`] warns.
    pub insecure_skip_verify: bool,
}

impl ClientSettings {
    /// Verified TLS with the system roots, `timeout` per request, no separate connect timeout.
    pub fn new(timeout: Duration) -> ClientSettings {
        ClientSettings {
            connect_timeout: None,
            timeout,
            ca_file: None,
            insecure_skip_verify: false,
        }
    }
}

/// Why a client could not be built: settings an operator must fix.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read the CA file {path}: {source}")]
    CaFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the CA file {path} is not a PEM certificate: {reason}")]
    NotPem { path: PathBuf, reason: String },
    #[error("cannot build the HTTP client: {reason}")]
    Build { reason: String },
}

impl Classify for ClientError {
    fn class(&self) -> ErrorClass {
        // A file to fix or a TLS set-up the system cannot provide: no retry changes either.
        ErrorClass::Fatal
    }
}

/// A client as `settings` say. `owner` is the configuration table the settings come from
/// (`sbc`), which the warning owed for `insecure_skip_verify` names.
pub fn build_client(owner: &str, settings: &ClientSettings) -> Result<Client, ClientError> {
    let mut builder = Client::builder()
        .use_rustls_tls()
        .user_agent(USER_AGENT)
        .timeout(settings.timeout)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(connect_timeout) = settings.connect_timeout {
        builder = builder.connect_timeout(connect_timeout);
    }
    if let Some(path) = &settings.ca_file {
        let pem = std::fs::read(path).map_err(|source| ClientError::CaFile {
            path: path.clone(),
            source,
        })?;
        let not_pem = |reason: String| ClientError::NotPem {
            path: path.clone(),
            reason,
        };
        // A bundle, so a chain or several CAs may share the file. Checked for at least one
        // certificate here: reqwest reads a file without any PEM section as no roots at all,
        // which would surface only later as a handshake that fails for no visible reason.
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| not_pem(error_chain(&e)))?;
        if certs.is_empty() {
            return Err(not_pem("it holds no BEGIN CERTIFICATE section".into()));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if settings.insecure_skip_verify {
        warn_insecure(owner);
        builder = builder.danger_accept_invalid_certs(true);
    }
    builder.build().map_err(|e| ClientError::Build {
        reason: e.to_string(),
    })
}

/// The warning owed while certificates go unverified: `{owner}.insecure_skip_verify is set:
/// ...`. [`build_client`] gives it once; a long-running owner repeats it every cycle
/// (DESIGN.md §5.1), so that it never goes quiet.
pub fn warn_insecure(owner: &str) {
    tracing::warn!(
        "{owner}.insecure_skip_verify is set: TLS certificates are not verified, so anyone \
         on the path can pose as the other end"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agent_is_stable() {
        assert_eq!(
            USER_AGENT,
            format!("dialsync/{}", env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn a_ca_file_must_exist_and_be_pem() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = ClientSettings::new(Duration::from_secs(1));
        settings.ca_file = Some(dir.path().join("missing.pem"));
        let err = build_client("sbc", &settings).unwrap_err();
        assert!(matches!(err, ClientError::CaFile { .. }), "{err}");
        assert!(err.to_string().contains("missing.pem"), "{err}");

        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate").unwrap();
        settings.ca_file = Some(garbage);
        let err = build_client("sbc", &settings).unwrap_err();
        assert!(matches!(err, ClientError::NotPem { .. }), "{err}");
        assert_eq!(err.class(), ErrorClass::Fatal);
    }

    /// A self-signed CA made for this test alone (`openssl req -x509`, P-256, 100 years).
    const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBjDCCATOgAwIBAgIUCAALG6doa+QCpUKuO8+B/a/9u1MwCgYIKoZIzj0EAwIw
GzEZMBcGA1UEAwwQZGlhbHN5bmMgdGVzdCBDQTAgFw0yNjEyMDcwNjUyMjlaGA8y
MTI2MTExMzA2NTIyOVowGzEZMBcGA1UEAwwQZGlhbHN5bmMgdGVzdCBDQTBZMBMG
ByqGSM49AgEGCCqGSM49AwEHA0IABEFLy1ld7G68ArDQJtvlE8o3OviWAwsEQ7Ho
UmzalC0Qqndw2eqK633gWVxOHkGKO2oEz5UCAxgyzCx1Mt6xBZ+jUzBRMB0GA1Ud
DgQWBBR2Ka0KW59KFWEHdMLUKdA7L8YUEDAfBgNVHSMEGDAWgBR2Ka0KW59KFWEH
dMLUKdA7L8YUEDAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCICug
QcbCWj8NdD6nb0jbTSDAqWQl3zf2wOEca/PZe7HcAiAi93b5w8hphQPN6HfiFb/R
6hcq9cseUuX0Gb+UQSnmpQ==
-----END CERTIFICATE-----\n";

    #[test]
    fn a_pem_ca_file_is_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, TEST_CA).unwrap();
        let mut settings = ClientSettings::new(Duration::from_secs(1));
        settings.ca_file = Some(path);
        assert!(build_client("sbc", &settings).is_ok());
    }

    #[test]
    fn insecure_mode_still_builds() {
        let mut settings = ClientSettings::new(Duration::from_secs(1));
        settings.insecure_skip_verify = true;
        settings.connect_timeout = Some(Duration::from_millis(500));
        assert!(build_client("sbc", &settings).is_ok());
    }
}
