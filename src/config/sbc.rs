//! `[sbc]`: the sink dialsync writes to, by kind. Each kind's settings, how they are checked
//! and how its sink is built from them sit together in this file.
//!
//! The sink clients' own config types (`SbcConfig`, `LiveCloudConfig`) are filled in here
//! rather than by constructors beside them in `src/sink/`, because `src/sink/` is being moved
//! onto `src/net` at the same time (passwords become `Secret`s); doing both at once would make
//! two changes collide in the same files. Either way `src/sink/` does not depend on the config.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::checks::{offset, ConfigFile};
use super::raw::RawSbc;
use super::{ConfigError, DialPlanSettings, SecretFile};
use crate::sink::audiocodes::SbcConfig;
use crate::sink::livecloud::LiveCloudConfig;
use crate::sink::{Sink, WriteSettings};

/// `[sbc]`, by kind.
#[derive(Clone, Debug)]
pub enum SbcSettings {
    AudioCodes {
        url: String,
        username: String,
        password_file: SecretFile,
        ca_file: Option<PathBuf>,
        insecure_skip_verify: bool,
        batch_size: usize,
        save_config: bool,
        timeout: Duration,
    },
    LiveCloud {
        url: String,
        token_url: String,
        client_id: String,
        client_secret_file: SecretFile,
        scope: String,
        customer_id: String,
        site_location_id: String,
        dial_plan_id: String,
        batch_size: usize,
        timeout: Duration,
    },
}

impl ConfigFile<'_> {
    pub(super) fn sbc(&self, raw: &RawSbc, at: usize) -> Result<SbcSettings, ConfigError> {
        let kind = raw
            .kind
            .as_ref()
            .map(|k| k.get_ref().as_str())
            .unwrap_or("audiocodes");
        let batch_size = self.count(&raw.batch_size, "sbc.batch_size", 200, 1..=10_000)? as usize;
        let timeout = self.duration(&raw.timeout, "sbc.timeout", Duration::from_secs(30))?;
        match kind {
            "audiocodes" => {
                self.unused(
                    kind,
                    "sbc",
                    &[
                        ("token_url", offset(&raw.token_url)),
                        ("client_id", offset(&raw.client_id)),
                        ("client_secret_file", offset(&raw.client_secret_file)),
                        ("scope", offset(&raw.scope)),
                        ("customer_id", offset(&raw.customer_id)),
                        ("site_location_id", offset(&raw.site_location_id)),
                        ("dial_plan_id", offset(&raw.dial_plan_id)),
                    ],
                )?;
                Ok(SbcSettings::AudioCodes {
                    url: self.url(&raw.url, at, "sbc.url")?,
                    username: self.text(&raw.username, at, "sbc.username")?,
                    password_file: self.secret_file(&raw.password_file, at, "sbc.password_file")?,
                    ca_file: raw.ca_file.as_ref().map(|f| self.relative(f.get_ref())),
                    insecure_skip_verify: raw
                        .insecure_skip_verify
                        .as_ref()
                        .is_some_and(|v| *v.get_ref()),
                    batch_size,
                    save_config: raw.save_config.as_ref().is_none_or(|v| *v.get_ref()),
                    timeout,
                })
            }
            "livecloud" => {
                self.unused(
                    kind,
                    "sbc",
                    &[
                        ("username", offset(&raw.username)),
                        ("password_file", offset(&raw.password_file)),
                        ("ca_file", offset(&raw.ca_file)),
                        ("insecure_skip_verify", offset(&raw.insecure_skip_verify)),
                        ("save_config", offset(&raw.save_config)),
                    ],
                )?;
                Ok(SbcSettings::LiveCloud {
                    url: self.url(&raw.url, at, "sbc.url")?,
                    token_url: self.url(&raw.token_url, at, "sbc.token_url")?,
                    client_id: self.text(&raw.client_id, at, "sbc.client_id")?,
                    client_secret_file: self.secret_file(
                        &raw.client_secret_file,
                        at,
                        "sbc.client_secret_file",
                    )?,
                    scope: self.text(&raw.scope, at, "sbc.scope")?,
                    customer_id: self.text(&raw.customer_id, at, "sbc.customer_id")?,
                    site_location_id: self.text(
                        &raw.site_location_id,
                        at,
                        "sbc.site_location_id",
                    )?,
                    dial_plan_id: self.text(&raw.dial_plan_id, at, "sbc.dial_plan_id")?,
                    batch_size,
                    timeout,
                })
            }
            other => Err(self.invalid(
                offset(&raw.kind).unwrap_or(at),
                "sbc.kind",
                format!("unknown kind {other:?} (expected audiocodes or livecloud)"),
            )),
        }
    }
}

impl SbcSettings {
    /// Reads the sink's secret and builds it; `config_path` names the config file in errors.
    pub(super) fn build(
        &self,
        config_path: &Path,
        dialplan: &DialPlanSettings,
    ) -> Result<Sink, ConfigError> {
        let built = match self {
            SbcSettings::AudioCodes {
                url,
                username,
                password_file,
                ca_file,
                insecure_skip_verify,
                batch_size,
                save_config,
                timeout,
            } => {
                let password = password_file.read(config_path)?;
                let mut config = SbcConfig::new(url, username, password);
                config.dial_plan = dialplan.name.clone();
                config.writes.rule_name = dialplan.rule_name.clone();
                config.writes.adopt_foreign = dialplan.adopt_foreign;
                config.writes.batch_size = *batch_size;
                config.writes.timeout = *timeout;
                config.save_config = *save_config;
                config.ca_file = ca_file.clone();
                config.insecure_skip_verify = *insecure_skip_verify;
                Sink::audiocodes(config)
            }
            SbcSettings::LiveCloud {
                url,
                token_url,
                client_id,
                client_secret_file,
                scope,
                customer_id,
                site_location_id,
                dial_plan_id,
                batch_size,
                timeout,
            } => {
                let secret = client_secret_file.read(config_path)?;
                let defaults = LiveCloudConfig::default();
                Sink::livecloud(LiveCloudConfig {
                    url: url.clone(),
                    token_url: token_url.clone(),
                    client_id: client_id.clone(),
                    client_secret: secret,
                    scope: scope.clone(),
                    customer_id: customer_id.clone(),
                    site_location_id: site_location_id.clone(),
                    dial_plan_id: dial_plan_id.clone(),
                    writes: WriteSettings {
                        rule_name: dialplan.rule_name.clone(),
                        adopt_foreign: dialplan.adopt_foreign,
                        batch_size: *batch_size,
                        timeout: *timeout,
                        ..defaults.writes
                    },
                    rate: defaults.rate,
                })
            }
        };
        built.map_err(|e| ConfigError::Build {
            path: config_path.to_path_buf(),
            message: format!("[sbc]: {e}"),
        })
    }
}
