//! The configuration file, DESIGN.md §9: the contract operators, packaging and tests share.
//!
//! Loading is split in two on purpose. [`Config::load`] parses and validates the whole file
//! (every key, duration, template and path) without reading a secret, because `check`,
//! `status` and `history` run as monitoring users who must not be able to read the secrets.
//! [`Config::sources`] and [`Config::sink`] then read the secret files and build the clients;
//! `config check` does both, and neither touches the network.
//!
//! Every error names the key and the line it is on, so an operator fixing a config at night
//! goes straight to it. Unknown keys are errors: a misspelt `max_delete_fraction` silently
//! falling back to its default is exactly the kind of surprise the safety rules exist to stop.
//!
//! One concept per file, so that the contract, its checks and what is built from it can each be
//! read alone: `raw` is the file as serde sees it, `checks` turns single values into settings
//! or errors, `validate` checks the whole file, `sbc` and `sources` hold each kind's settings
//! with their checks and building, and `error` is [`ConfigError`]. The dependency runs one way:
//! the config builds the sources' and sinks' own config types; they know nothing of it.

mod checks;
mod error;
mod raw;
mod sbc;
mod secret_file;
mod sources;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::compile::Encoding;
use crate::plan::{PlanSettings, Policy, Safety};
use crate::sink::Sink;
use crate::source::{ItemLimits, Source};

use checks::ConfigFile;
use raw::RawConfig;

pub use error::ConfigError;
pub use sbc::SbcSettings;
pub use secret_file::SecretFile;
pub use sources::{FusionLogin, SourceKind, SourceSettings};

/// Where the config is looked for when neither `--config` nor `DIALSYNC_CONFIG` says.
pub const DEFAULT_PATH: &str = "/etc/dialsync/dialsync.toml";

/// `[agent]`.
#[derive(Clone, Debug)]
pub struct AgentSettings {
    pub policy: Policy,
    pub interval: Duration,
    pub state_db: PathBuf,
    /// Plan and record, never write to the SBC.
    pub dry_run: bool,
}

/// `[dialplan]`.
#[derive(Clone, Debug)]
pub struct DialPlanSettings {
    pub name: String,
    pub rule_name: String,
    pub encoding: Encoding,
    pub max_rules: usize,
    pub max_bracket_digits: usize,
    pub limits: ItemLimits,
    pub adopt_foreign: bool,
    /// Create the dial plan on the SBC when it is missing.
    pub create: bool,
}

/// A whole configuration, validated; secrets not read yet.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// The SHA-256 of its path and text: equal digests, the same configuration.
    pub digest: String,
    pub agent: AgentSettings,
    /// `[admin] listen`.
    pub admin_listen: SocketAddr,
    pub dialplan: DialPlanSettings,
    pub safety: Safety,
    pub sbc: SbcSettings,
    /// In priority order: on a partial overlap the earlier source wins.
    pub sources: Vec<SourceSettings>,
}

impl Config {
    /// Reads and validates the file at `path`. Reads no secret.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Validates `text` as if read from `path` (relative paths are taken from its directory).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let file = ConfigFile {
            path: path.to_path_buf(),
            dir: path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(".")),
            text,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: file.path.clone(),
            line: e.span().map(|s| file.line(s.start)).unwrap_or(1),
            message: e.message().trim().to_string(),
        })?;
        file.validate(raw)
    }

    /// What the planner needs from the config.
    pub fn plan_settings(&self) -> PlanSettings {
        PlanSettings {
            rule_name: self.dialplan.rule_name.clone(),
            policy: self.agent.policy,
            adopt_foreign: self.dialplan.adopt_foreign,
            safety: self.safety,
            max_rules: self.dialplan.max_rules,
        }
    }

    /// Reads the sources' secrets and builds them, in priority order.
    pub fn sources(&self) -> Result<Vec<Source>, ConfigError> {
        self.sources
            .iter()
            .map(|s| s.build(&self.path, self.dialplan.limits))
            .collect()
    }

    /// Reads the sink's secret and builds it.
    pub fn sink(&self) -> Result<Sink, ConfigError> {
        self.sbc.build(&self.path, &self.dialplan)
    }
}

#[cfg(test)]
mod tests;
