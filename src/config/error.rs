//! Why a configuration cannot be used, and what that means for the caller ([`Classify`]): the
//! error and its class sit together so that a new variant cannot be added without deciding
//! how it is handled.

use std::path::PathBuf;

use crate::error::{Classify, ErrorClass};
use crate::net::secret::SecretError;

/// Why a configuration cannot be used. Always names the file, and the key and line when the
/// problem has one.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The TOML itself, or a key serde refused (unknown key, wrong type).
    #[error("{path}:{line}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// A key whose value cannot work.
    #[error("{path}:{line}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
    /// A secret file named by `key` cannot be used.
    #[error("{path}:{line}: {key}: {source}")]
    Secret {
        path: PathBuf,
        line: usize,
        key: String,
        #[source]
        source: SecretError,
    },
    /// The source or sink refused the settings when built (a URL it cannot use...).
    #[error("{path}: {message}")]
    Build { path: PathBuf, message: String },
}

impl Classify for ConfigError {
    /// A configuration that cannot work needs an operator, whatever the detail.
    fn class(&self) -> ErrorClass {
        ErrorClass::Fatal
    }
}
