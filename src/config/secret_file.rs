//! A secret named by the config, kept as a path until a client is built: loading a config reads
//! no secret (monitoring users run `check` and `status` without access to them), and the key
//! and line are kept so that a secret refused later still points at where the config names it.

use std::path::{Path, PathBuf};

use super::ConfigError;
use crate::net::secret::Secret;

/// A secret file, with where the config names it (for errors when it is read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretFile {
    pub path: PathBuf,
    pub(super) key: String,
    pub(super) line: usize,
}

impl SecretFile {
    /// Reads the secret; `config` is the file that names it, for the error.
    pub(super) fn read(&self, config: &Path) -> Result<Secret, ConfigError> {
        Secret::from_file(&self.path).map_err(|source| ConfigError::Secret {
            path: config.to_path_buf(),
            line: self.line,
            key: self.key.clone(),
            source,
        })
    }
}
