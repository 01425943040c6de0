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

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::compile::Encoding;
use crate::dialplan::rule::{validate_name, Tag, MAX_NAME_LEN};
use crate::error::{Classify, ErrorClass};
use crate::net::oauth::ClientCredentials;
use crate::net::secret::{Secret, SecretError};
use crate::plan::{PlanSettings, Policy, Safety};
use crate::sink::audiocodes::SbcConfig;
use crate::sink::livecloud::LiveCloudConfig;
use crate::sink::Sink;
use crate::sink::WriteSettings;
use crate::source::apio::{ApioAuth, ApioConfig, ApioGroup};
use crate::source::fusion::{FusionAuth, FusionConfig, FusionFeed, OcSubscription};
use crate::source::livecloud::LiveCloudSourceConfig;
use crate::source::tag::{TagRule, TagTemplate};
use crate::source::{apio, fusion, livecloud, ItemLimits, Source};

/// Where the config is looked for when neither `--config` nor `DIALSYNC_CONFIG` says.
pub const DEFAULT_PATH: &str = "/etc/dialsync/dialsync.toml";

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

/// A secret file, with where the config names it (for errors when it is read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretFile {
    pub path: PathBuf,
    key: String,
    line: usize,
}

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

/// How a `fusion` source authenticates.
#[derive(Clone, Debug)]
pub enum FusionLogin {
    Password {
        username: String,
        password_file: SecretFile,
    },
    MachineToken {
        token_file: SecretFile,
    },
}

/// What one `[[sources]]` entry reads, by kind.
#[derive(Clone, Debug)]
pub enum SourceKind {
    Fusion {
        url: String,
        draas_instance: String,
        /// Required by `phone_usage`, and by a range path that names `{group_uuid}`.
        group_uuid: Option<String>,
        login: FusionLogin,
        /// What the source reads (`feed`, or `ranges` when `ranges_path` is set).
        feed: FusionFeed,
        /// `page_size`, sent with every list request when set.
        page_size: Option<u32>,
        /// The rule of `phone_usage` and range items (the Operator Connect feed's rules are
        /// in its subscriptions).
        tags: TagRule,
    },
    Apio {
        url: String,
        /// `Some(prefix)`: APIO core JWT with the gateway proxied there; `None`: session.
        proxy_prefix: Option<String>,
        username: String,
        password_file: SecretFile,
        include_inactive: bool,
        groups: Vec<(String, String, TagRule)>,
    },
    LiveCloud {
        url: String,
        token_url: String,
        client_id: String,
        client_secret_file: SecretFile,
        scope: String,
        ms_tenant_ids: Vec<String>,
        tags: TagRule,
    },
    File {
        path: PathBuf,
    },
}

impl SourceKind {
    /// The `kind` word of the config.
    pub fn name(&self) -> &'static str {
        match self {
            SourceKind::Fusion { .. } => "fusion",
            SourceKind::Apio { .. } => "apio",
            SourceKind::LiveCloud { .. } => "livecloud",
            SourceKind::File { .. } => "file",
        }
    }
}

/// One `[[sources]]` entry, validated.
#[derive(Clone, Debug)]
pub struct SourceSettings {
    pub name: String,
    /// The whole fetch, every page included.
    pub timeout: Duration,
    /// An empty answer may delete this source's rules.
    pub allow_empty: bool,
    pub kind: SourceKind,
}

/// A whole configuration, validated; secrets not read yet.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
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
        self.sources.iter().map(|s| self.build_source(s)).collect()
    }

    /// Reads the sink's secret and builds it.
    pub fn sink(&self) -> Result<Sink, ConfigError> {
        let built = match &self.sbc {
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
                let password = self.secret(password_file)?;
                let mut config = SbcConfig::new(url, username, password);
                config.dial_plan = self.dialplan.name.clone();
                config.writes.rule_name = self.dialplan.rule_name.clone();
                config.writes.adopt_foreign = self.dialplan.adopt_foreign;
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
                let secret = self.secret(client_secret_file)?;
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
                        rule_name: self.dialplan.rule_name.clone(),
                        adopt_foreign: self.dialplan.adopt_foreign,
                        batch_size: *batch_size,
                        timeout: *timeout,
                        ..defaults.writes
                    },
                    rate: defaults.rate,
                })
            }
        };
        built.map_err(|e| ConfigError::Build {
            path: self.path.clone(),
            message: format!("[sbc]: {e}"),
        })
    }

    fn secret(&self, file: &SecretFile) -> Result<Secret, ConfigError> {
        Secret::from_file(&file.path).map_err(|source| ConfigError::Secret {
            path: self.path.clone(),
            line: file.line,
            key: file.key.clone(),
            source,
        })
    }

    fn build_source(&self, settings: &SourceSettings) -> Result<Source, ConfigError> {
        let limits = self.dialplan.limits;
        let name = settings.name.as_str();
        let built = match &settings.kind {
            SourceKind::Fusion {
                url,
                draas_instance,
                group_uuid,
                login,
                feed,
                page_size,
                tags,
            } => {
                let auth = match login {
                    FusionLogin::Password {
                        username,
                        password_file,
                    } => FusionAuth::Login {
                        username: username.clone(),
                        password: self.secret(password_file)?,
                    },
                    FusionLogin::MachineToken { token_file } => {
                        FusionAuth::Token(self.secret(token_file)?)
                    }
                };
                let group = group_uuid.as_deref().unwrap_or_default();
                let mut config =
                    FusionConfig::new(name, url, draas_instance, group, auth, tags.clone());
                config.feed = feed.clone();
                config.page_size = *page_size;
                config.limits = limits;
                config.timeout = settings.timeout;
                fit_http(&mut config.http, settings.timeout);
                Source::fusion(config)
            }
            SourceKind::Apio {
                url,
                proxy_prefix,
                username,
                password_file,
                include_inactive,
                groups,
            } => {
                let password = self.secret(password_file)?;
                let auth = match proxy_prefix {
                    Some(prefix) => ApioAuth::Jwt {
                        username: username.clone(),
                        password,
                        proxy_prefix: prefix.clone(),
                    },
                    None => ApioAuth::Session {
                        username: username.clone(),
                        password,
                    },
                };
                let groups = groups
                    .iter()
                    .map(|(tenant, group, tags)| ApioGroup {
                        tenant: tenant.clone(),
                        group: group.clone(),
                        tags: tags.clone(),
                    })
                    .collect();
                let mut config = ApioConfig::new(name, url, auth, groups);
                config.include_inactive = *include_inactive;
                config.limits = limits;
                config.timeout = settings.timeout;
                fit_http(&mut config.http, settings.timeout);
                Source::apio(config)
            }
            SourceKind::LiveCloud {
                url,
                token_url,
                client_id,
                client_secret_file,
                scope,
                ms_tenant_ids,
                tags,
            } => {
                let credentials = ClientCredentials {
                    token_url: token_url.clone(),
                    client_id: client_id.clone(),
                    client_secret: self.secret(client_secret_file)?,
                    scope: scope.clone(),
                };
                let mut config = LiveCloudSourceConfig::new(
                    name,
                    url,
                    credentials,
                    ms_tenant_ids.clone(),
                    tags.clone(),
                );
                config.limits = limits;
                config.timeout = settings.timeout;
                fit_http(&mut config.http, settings.timeout);
                Source::livecloud(config)
            }
            SourceKind::File { path } => Ok(Source::file(name, path, limits)),
        };
        built.map_err(|e| ConfigError::Build {
            path: self.path.clone(),
            message: e.to_string(),
        })
    }
}

/// Fits the HTTP retries inside a source's whole-fetch timeout, so that a source failing with
/// 5xx reports the 5xx (after its retries) rather than only "timed out".
fn fit_http(http: &mut crate::source::http::HttpConfig, timeout: Duration) {
    http.request_timeout = http.request_timeout.min(timeout);
    http.retry_budget = http.retry_budget.min(timeout / 2);
    http.retry_max = http.retry_max.min(timeout / 4);
}

// ---------------------------------------------------------------------------------------------
// The file as written. Every value that is checked after parsing is `Spanned`, so its error
// can name the line; `deny_unknown_fields` makes serde name unknown keys with their line.

type Field<T> = Option<Spanned<T>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    agent: Option<Spanned<RawAgent>>,
    #[serde(default)]
    admin: RawAdmin,
    #[serde(default)]
    dialplan: RawDialPlan,
    #[serde(default)]
    safety: RawSafety,
    sbc: Option<Spanned<RawSbc>>,
    #[serde(default)]
    sources: Vec<Spanned<RawSource>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    policy: Field<String>,
    interval: Field<String>,
    state_db: Field<String>,
    dry_run: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    listen: Field<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDialPlan {
    name: Field<String>,
    rule_name: Field<String>,
    encoding: Field<String>,
    max_rules: Field<u64>,
    max_bracket_digits: Field<u64>,
    max_tag_len: Field<u64>,
    max_range_size: Field<u64>,
    adopt_foreign: Option<bool>,
    create: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSafety {
    max_delete_fraction: Field<f64>,
    max_update_fraction: Field<f64>,
    min_existing: Option<u64>,
}

/// `[sbc]` of either kind; keys of the other kind are refused after parsing.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSbc {
    kind: Field<String>,
    url: Field<String>,
    // audiocodes
    username: Field<String>,
    password_file: Field<String>,
    ca_file: Field<String>,
    insecure_skip_verify: Field<bool>,
    save_config: Field<bool>,
    // livecloud
    token_url: Field<String>,
    client_id: Field<String>,
    client_secret_file: Field<String>,
    scope: Field<String>,
    customer_id: Field<String>,
    site_location_id: Field<String>,
    dial_plan_id: Field<String>,
    // both
    batch_size: Field<u64>,
    timeout: Field<String>,
}

/// One `[[sources]]` of any kind; keys of other kinds are refused after parsing.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    name: Field<String>,
    kind: Field<String>,
    timeout: Field<String>,
    allow_empty: Option<bool>,
    tag: Field<String>,
    tags: Field<BTreeMap<String, Spanned<String>>>,
    url: Field<String>,
    username: Field<String>,
    password_file: Field<String>,
    // fusion
    draas_instance: Field<String>,
    group_uuid: Field<String>,
    token_file: Field<String>,
    feed: Field<String>,
    ranges_path: Field<String>,
    subscriptions: Field<Vec<Spanned<RawOcSubscription>>>,
    page_size: Field<u64>,
    include_unprovisioned: Field<bool>,
    // apio
    auth: Field<String>,
    proxy_prefix: Field<String>,
    include_inactive: Field<bool>,
    groups: Field<Vec<Spanned<RawApioGroup>>>,
    // livecloud
    token_url: Field<String>,
    client_id: Field<String>,
    client_secret_file: Field<String>,
    scope: Field<String>,
    ms_tenant_ids: Field<Vec<String>>,
    // file
    path: Field<String>,
}

/// One entry of a Fusion `subscriptions` list.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOcSubscription {
    tenant: Field<String>,
    subscription: Field<String>,
    tag: Field<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApioGroup {
    tenant: Field<String>,
    group: Field<String>,
    tag: Field<String>,
}

/// Where a tag rule is written, for its errors: the source it belongs to (by name, which a
/// reader of a template error looks for), its key (`sources[2]`, `sources[2].groups[0]`) and
/// the offset of its table.
#[derive(Clone, Copy)]
struct RuleAt<'a> {
    source: &'a str,
    key: &'a str,
    table: usize,
}

/// The file being validated: turns byte offsets into lines and relative paths into absolute.
struct ConfigFile<'a> {
    path: PathBuf,
    dir: PathBuf,
    text: &'a str,
}

impl ConfigFile<'_> {
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn invalid(&self, offset: usize, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.clone(),
            line: self.line(offset),
            key: key.to_string(),
            message: message.into(),
        }
    }

    fn at<T>(&self, value: &Spanned<T>, key: &str, message: impl Into<String>) -> ConfigError {
        self.invalid(value.span().start, key, message)
    }

    fn relative(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.dir.join(path)
        }
    }

    /// A required key of a table that starts at `table`.
    fn required<'v, T>(
        &self,
        value: &'v Field<T>,
        table: usize,
        key: &str,
        hint: &str,
    ) -> Result<&'v Spanned<T>, ConfigError> {
        value
            .as_ref()
            .ok_or_else(|| self.invalid(table, key, format!("is required{hint}")))
    }

    /// A required, non-blank string.
    fn text(&self, value: &Field<String>, table: usize, key: &str) -> Result<String, ConfigError> {
        let value = self.required(value, table, key, "")?;
        if value.get_ref().trim().is_empty() {
            return Err(self.at(value, key, "must not be empty"));
        }
        Ok(value.get_ref().clone())
    }

    fn url(&self, value: &Field<String>, table: usize, key: &str) -> Result<String, ConfigError> {
        let url = self.text(value, table, key)?;
        let spanned = self.required(value, table, key, "")?;
        // `https://user:password@host`: the URL is shown in logs, `status`, `/status` and
        // errors, so a password in it would be shown everywhere. Secrets come from files; the
        // URL is not repeated here, since it carries one.
        if crate::net::endpoint::carries_credentials(&url) {
            return Err(self.at(
                spanned,
                key,
                "carries credentials (user:password@host): remove them from the URL and \
                 put the password in its own file (password_file, client_secret_file)",
            ));
        }
        match url.split_once("://") {
            Some(("http" | "https", rest)) if !rest.is_empty() => Ok(url),
            _ => Err(self.at(spanned, key, format!("{url:?} is not an http(s) URL"))),
        }
    }

    fn duration(
        &self,
        value: &Field<String>,
        key: &str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        let Some(value) = value else {
            return Ok(default);
        };
        let parsed = humantime::parse_duration(value.get_ref().trim()).map_err(|e| {
            self.at(
                value,
                key,
                format!(
                    "{:?} is not a duration such as \"60s\" or \"5m\": {e}",
                    value.get_ref()
                ),
            )
        })?;
        if parsed.is_zero() {
            return Err(self.at(value, key, "must be longer than zero"));
        }
        Ok(parsed)
    }

    fn count(
        &self,
        value: &Field<u64>,
        key: &str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        let Some(value) = value else {
            return Ok(default);
        };
        let n = *value.get_ref();
        if !range.contains(&n) {
            return Err(self.at(
                value,
                key,
                format!("{n} is outside {}..={}", range.start(), range.end()),
            ));
        }
        Ok(n)
    }

    fn fraction(&self, value: &Field<f64>, key: &str, default: f64) -> Result<f64, ConfigError> {
        let Some(value) = value else {
            return Ok(default);
        };
        let f = *value.get_ref();
        if !(0.0..=1.0).contains(&f) {
            return Err(self.at(value, key, format!("{f} is not a fraction between 0 and 1")));
        }
        Ok(f)
    }

    fn secret_file(
        &self,
        value: &Field<String>,
        table: usize,
        key: &str,
    ) -> Result<SecretFile, ConfigError> {
        let path = self.text(value, table, key)?;
        let spanned = self.required(value, table, key, "")?;
        Ok(SecretFile {
            path: self.relative(&path),
            key: key.to_string(),
            line: self.line(spanned.span().start),
        })
    }

    /// Refuses keys present in a table but not used by its kind.
    fn unused(
        &self,
        kind: &str,
        what: &str,
        keys: &[(&str, Option<usize>)],
    ) -> Result<(), ConfigError> {
        self.not_keys_of(&format!("kind {kind:?}"), what, keys)
    }

    /// Refuses keys present in a table but not used by what it says it is (`of`: `kind
    /// "file"`, `feed "oc_numbers"`).
    fn not_keys_of(
        &self,
        of: &str,
        what: &str,
        keys: &[(&str, Option<usize>)],
    ) -> Result<(), ConfigError> {
        match keys.iter().find_map(|(key, at)| at.map(|at| (key, at))) {
            Some((key, at)) => Err(self.invalid(
                at,
                &format!("{what}.{key}"),
                format!("is not a key of {of}"),
            )),
            None => Ok(()),
        }
    }

    fn tag_rule(
        &self,
        template: &Field<String>,
        overrides: &Field<BTreeMap<String, Spanned<String>>>,
        at: RuleAt<'_>,
        fields: &[&str],
        max_tag_len: usize,
    ) -> Result<TagRule, ConfigError> {
        let RuleAt { source, key, table } = at;
        let text = self.required(
            template,
            table,
            &format!("{key}.tag"),
            &format!(
                " (a template over {}, e.g. \"Trunk={{{}}}\")",
                fields.join(", "),
                fields[0]
            ),
        )?;
        let template = TagTemplate::parse(text.get_ref(), fields).map_err(|e| {
            self.at(
                text,
                &format!("{key}.tag"),
                format!("source {source:?}: {e}"),
            )
        })?;
        let mut rule = TagRule {
            template,
            overrides: BTreeMap::new(),
        };
        if let Some(map) = overrides {
            for (item, tag) in map.get_ref() {
                let tag = Tag::parse(tag.get_ref(), max_tag_len).map_err(|e| {
                    self.at(
                        tag,
                        &format!("{key}.tags.{item:?}"),
                        format!("{:?}: {e}", tag.get_ref()),
                    )
                })?;
                rule.overrides.insert(item.clone(), tag);
            }
        }
        Ok(rule)
    }

    fn validate(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let agent = raw.agent.as_ref().ok_or_else(|| {
            self.invalid(
                0,
                "agent",
                "the [agent] table is required (agent.policy has no default)",
            )
        })?;
        let agent_at = agent.span().start;
        let agent = agent.get_ref();
        let policy = self.required(
            &agent.policy,
            agent_at,
            "agent.policy",
            ": sync | upsert-only | create-only (no default: choose what dialsync may delete)",
        )?;
        let policy: Policy = policy
            .get_ref()
            .parse()
            .map_err(|e: String| self.at(policy, "agent.policy", e))?;
        let agent = AgentSettings {
            policy,
            interval: self.duration(&agent.interval, "agent.interval", Duration::from_secs(60))?,
            state_db: match &agent.state_db {
                Some(path) if path.get_ref().trim().is_empty() => {
                    return Err(self.at(path, "agent.state_db", "must not be empty"))
                }
                Some(path) => self.relative(path.get_ref()),
                None => PathBuf::from("/var/lib/dialsync/state.db"),
            },
            dry_run: agent.dry_run.unwrap_or(false),
        };

        let admin_listen = match &raw.admin.listen {
            Some(listen) => listen.get_ref().parse().map_err(|e| {
                self.at(
                    listen,
                    "admin.listen",
                    format!(
                        "{:?} is not an address such as 127.0.0.1:9797: {e}",
                        listen.get_ref()
                    ),
                )
            })?,
            None => SocketAddr::from(([127, 0, 0, 1], 9797)),
        };

        let dialplan = self.dialplan(&raw.dialplan)?;
        let safety = Safety {
            max_delete_fraction: self.fraction(
                &raw.safety.max_delete_fraction,
                "safety.max_delete_fraction",
                0.3,
            )?,
            max_update_fraction: self.fraction(
                &raw.safety.max_update_fraction,
                "safety.max_update_fraction",
                0.3,
            )?,
            min_existing: raw.safety.min_existing.unwrap_or(10) as usize,
        };

        let sbc = raw
            .sbc
            .as_ref()
            .ok_or_else(|| self.invalid(self.text.len(), "sbc", "the [sbc] table is required"))?;
        let sbc = self.sbc(sbc.get_ref(), sbc.span().start)?;

        if raw.sources.is_empty() {
            return Err(self.invalid(
                self.text.len(),
                "sources",
                "at least one [[sources]] is required: without one every owned rule would \
                 be planned for deletion",
            ));
        }
        let mut names = HashSet::new();
        let mut sources = Vec::with_capacity(raw.sources.len());
        for (i, source) in raw.sources.iter().enumerate() {
            let at = source.span().start;
            let settings = self.source(source.get_ref(), at, i, &dialplan)?;
            if !names.insert(settings.name.clone()) {
                return Err(self.invalid(
                    source
                        .get_ref()
                        .name
                        .as_ref()
                        .map_or(at, |n| n.span().start),
                    &format!("sources[{i}].name"),
                    format!(
                        "{:?} names two sources; names must be unique",
                        settings.name
                    ),
                ));
            }
            sources.push(settings);
        }
        Ok(Config {
            path: self.path.clone(),
            agent,
            admin_listen,
            dialplan,
            safety,
            sbc,
            sources,
        })
    }

    fn dialplan(&self, raw: &RawDialPlan) -> Result<DialPlanSettings, ConfigError> {
        let name = match &raw.name {
            Some(name) if name.get_ref().trim().is_empty() => {
                return Err(self.at(name, "dialplan.name", "must not be empty"))
            }
            Some(name) => name.get_ref().clone(),
            None => "OCDialPlan".to_string(),
        };
        let rule_name = match &raw.rule_name {
            Some(rule_name) => {
                validate_name(rule_name.get_ref()).map_err(|e| {
                    self.at(
                        rule_name,
                        "dialplan.rule_name",
                        format!("{e} (at most {MAX_NAME_LEN} characters)"),
                    )
                })?;
                rule_name.get_ref().clone()
            }
            None => "dialsync".to_string(),
        };
        let encoding = match &raw.encoding {
            Some(encoding) => encoding
                .get_ref()
                .parse()
                .map_err(|e: String| self.at(encoding, "dialplan.encoding", e))?,
            None => Encoding::Ranges,
        };
        Ok(DialPlanSettings {
            name,
            rule_name,
            encoding,
            max_rules: self.count(&raw.max_rules, "dialplan.max_rules", 50_000, 1..=10_000_000)?
                as usize,
            max_bracket_digits: self.count(
                &raw.max_bracket_digits,
                "dialplan.max_bracket_digits",
                9,
                1..=15,
            )? as usize,
            limits: ItemLimits {
                max_tag_len: self.count(&raw.max_tag_len, "dialplan.max_tag_len", 64, 1..=1024)?
                    as usize,
                max_range_size: self.count(
                    &raw.max_range_size,
                    "dialplan.max_range_size",
                    1_000_000,
                    1..=u64::MAX,
                )?,
            },
            adopt_foreign: raw.adopt_foreign.unwrap_or(false),
            create: raw.create.unwrap_or(false),
        })
    }

    fn sbc(&self, raw: &RawSbc, at: usize) -> Result<SbcSettings, ConfigError> {
        let kind = raw
            .kind
            .as_ref()
            .map(|k| k.get_ref().as_str())
            .unwrap_or("audiocodes");
        let pos = |f: &Option<Spanned<String>>| f.as_ref().map(|v| v.span().start);
        let batch_size = self.count(&raw.batch_size, "sbc.batch_size", 200, 1..=10_000)? as usize;
        let timeout = self.duration(&raw.timeout, "sbc.timeout", Duration::from_secs(30))?;
        match kind {
            "audiocodes" => {
                self.unused(
                    kind,
                    "sbc",
                    &[
                        ("token_url", pos(&raw.token_url)),
                        ("client_id", pos(&raw.client_id)),
                        ("client_secret_file", pos(&raw.client_secret_file)),
                        ("scope", pos(&raw.scope)),
                        ("customer_id", pos(&raw.customer_id)),
                        ("site_location_id", pos(&raw.site_location_id)),
                        ("dial_plan_id", pos(&raw.dial_plan_id)),
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
                let at_bool = |f: &Field<bool>| f.as_ref().map(|v| v.span().start);
                self.unused(
                    kind,
                    "sbc",
                    &[
                        ("username", pos(&raw.username)),
                        ("password_file", pos(&raw.password_file)),
                        ("ca_file", pos(&raw.ca_file)),
                        ("insecure_skip_verify", at_bool(&raw.insecure_skip_verify)),
                        ("save_config", at_bool(&raw.save_config)),
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
                pos(&raw.kind).unwrap_or(at),
                "sbc.kind",
                format!("unknown kind {other:?} (expected audiocodes or livecloud)"),
            )),
        }
    }

    /// What a `fusion` source reads, with the keys that feed requires and no key of another
    /// feed: `feed` (default `phone_usage`; `ranges_path` alone implies `ranges`), and the
    /// tag rules. Returns the feed, the `group_uuid` if given, and the source's own rule.
    fn fusion_feed(
        &self,
        raw: &RawSource,
        at: usize,
        name: &str,
        key: &str,
        max_tag_len: usize,
    ) -> Result<(FusionFeed, Option<String>, TagRule), ConfigError> {
        let k = |field: &str| format!("{key}.{field}");
        let pos = |f: &Field<String>| f.as_ref().map(|v| v.span().start);
        let feed_name = match (&raw.feed, &raw.ranges_path) {
            (Some(feed), _) => feed.get_ref().as_str(),
            (None, Some(_)) => "ranges",
            (None, None) => "phone_usage",
        };
        // A key the feed requires and misses is reported at `feed` when it is written (that
        // is what asks for the key), else at the table.
        let asked_at = raw.feed.as_ref().map_or(at, |f| f.span().start);
        let what = format!("feed {feed_name:?}");
        let rule_at = RuleAt {
            source: name,
            key,
            table: at,
        };
        let subscriptions_at = raw.subscriptions.as_ref().map(|v| v.span().start);
        let unprovisioned_at = raw.include_unprovisioned.as_ref().map(|v| v.span().start);
        match feed_name {
            "phone_usage" | "ranges" => {
                self.not_keys_of(
                    &what,
                    key,
                    &[
                        ("subscriptions", subscriptions_at),
                        ("include_unprovisioned", unprovisioned_at),
                    ],
                )?;
                let tags = self.tag_rule(
                    &raw.tag,
                    &raw.tags,
                    rule_at,
                    fusion::TAG_FIELDS,
                    max_tag_len,
                )?;
                if feed_name == "phone_usage" {
                    self.not_keys_of(&what, key, &[("ranges_path", pos(&raw.ranges_path))])?;
                    self.required(
                        &raw.group_uuid,
                        asked_at,
                        &k("group_uuid"),
                        " for feed \"phone_usage\": the Fusion group whose phone_usage is read",
                    )?;
                    let group = self.text(&raw.group_uuid, at, &k("group_uuid"))?;
                    return Ok((FusionFeed::PhoneUsage, Some(group), tags));
                }
                self.required(
                    &raw.ranges_path,
                    asked_at,
                    &k("ranges_path"),
                    " for feed \"ranges\": the range list's path under /draas/{draas_instance}/",
                )?;
                let path = self.text(&raw.ranges_path, at, &k("ranges_path"))?;
                let group_uuid = match &raw.group_uuid {
                    Some(_) => Some(self.text(&raw.group_uuid, at, &k("group_uuid"))?),
                    None if path.contains("{group_uuid}") => {
                        return Err(self.invalid(
                            at,
                            &k("group_uuid"),
                            format!("is required: ranges_path {path:?} names {{group_uuid}}"),
                        ))
                    }
                    None => None,
                };
                Ok((FusionFeed::Ranges { path }, group_uuid, tags))
            }
            "oc_numbers" => {
                self.not_keys_of(
                    &what,
                    key,
                    &[
                        ("group_uuid", pos(&raw.group_uuid)),
                        ("ranges_path", pos(&raw.ranges_path)),
                    ],
                )?;
                let listed = self.required(
                    &raw.subscriptions,
                    asked_at,
                    &k("subscriptions"),
                    " for feed \"oc_numbers\": a list of { tenant, subscription, tag }",
                )?;
                if listed.get_ref().is_empty() {
                    return Err(self.at(listed, &k("subscriptions"), "lists no subscription"));
                }
                let mut seen = HashSet::new();
                let mut subscriptions = Vec::new();
                for (j, entry) in listed.get_ref().iter().enumerate() {
                    let sk = format!("{key}.subscriptions[{j}]");
                    let s_at = entry.span().start;
                    let e = entry.get_ref();
                    let tenant = self.text(&e.tenant, s_at, &format!("{sk}.tenant"))?;
                    let subscription =
                        self.text(&e.subscription, s_at, &format!("{sk}.subscription"))?;
                    if !seen.insert((tenant.clone(), subscription.clone())) {
                        return Err(self.invalid(
                            s_at,
                            &sk,
                            format!(
                                "tenant {tenant:?} subscription {subscription:?} is listed twice"
                            ),
                        ));
                    }
                    // A subscription's own tag wins; the source's `tag` is the template for
                    // the rest.
                    let template = if e.tag.is_some() { &e.tag } else { &raw.tag };
                    let tags = self.tag_rule(
                        template,
                        &raw.tags,
                        RuleAt {
                            source: name,
                            key: &sk,
                            table: s_at,
                        },
                        fusion::OC_TAG_FIELDS,
                        max_tag_len,
                    )?;
                    subscriptions.push(OcSubscription {
                        tenant,
                        subscription,
                        tags,
                    });
                }
                // The source's own rule is not used by this feed (each subscription has
                // one); the first subscription's stands in for it.
                let tags = subscriptions[0].tags.clone();
                let feed = FusionFeed::OcNumbers {
                    subscriptions,
                    include_unprovisioned: raw
                        .include_unprovisioned
                        .as_ref()
                        .is_some_and(|v| *v.get_ref()),
                };
                Ok((feed, None, tags))
            }
            other => {
                let feed = raw.feed.as_ref().map_or(at, |f| f.span().start);
                Err(self.invalid(
                    feed,
                    &k("feed"),
                    format!("unknown feed {other:?} (expected phone_usage, oc_numbers or ranges)"),
                ))
            }
        }
    }

    fn source(
        &self,
        raw: &RawSource,
        at: usize,
        i: usize,
        dialplan: &DialPlanSettings,
    ) -> Result<SourceSettings, ConfigError> {
        let key = format!("sources[{i}]");
        let k = |name: &str| format!("{key}.{name}");
        let name = self.text(&raw.name, at, &k("name"))?;
        let kind_field = self.required(
            &raw.kind,
            at,
            &k("kind"),
            ": fusion | apio | livecloud | file",
        )?;
        let pos = |f: &Field<String>| f.as_ref().map(|v| v.span().start);
        let tags_at = raw.tags.as_ref().map(|v| v.span().start);
        let groups_at = raw.groups.as_ref().map(|v| v.span().start);
        let ms_at = raw.ms_tenant_ids.as_ref().map(|v| v.span().start);
        let inactive_at = raw.include_inactive.as_ref().map(|v| v.span().start);
        let fusion_keys = [
            ("draas_instance", pos(&raw.draas_instance)),
            ("group_uuid", pos(&raw.group_uuid)),
            ("token_file", pos(&raw.token_file)),
            ("feed", pos(&raw.feed)),
            ("ranges_path", pos(&raw.ranges_path)),
            (
                "subscriptions",
                raw.subscriptions.as_ref().map(|v| v.span().start),
            ),
            ("page_size", raw.page_size.as_ref().map(|v| v.span().start)),
            (
                "include_unprovisioned",
                raw.include_unprovisioned.as_ref().map(|v| v.span().start),
            ),
        ];
        let apio_keys = [
            ("auth", pos(&raw.auth)),
            ("proxy_prefix", pos(&raw.proxy_prefix)),
            ("include_inactive", inactive_at),
            ("groups", groups_at),
        ];
        let live_keys = [
            ("token_url", pos(&raw.token_url)),
            ("client_id", pos(&raw.client_id)),
            ("client_secret_file", pos(&raw.client_secret_file)),
            ("scope", pos(&raw.scope)),
            ("ms_tenant_ids", ms_at),
        ];
        let login_keys = [
            ("url", pos(&raw.url)),
            ("username", pos(&raw.username)),
            ("password_file", pos(&raw.password_file)),
        ];
        let file_keys = [("path", pos(&raw.path))];
        let kind_name = kind_field.get_ref().as_str();
        let max_tag_len = dialplan.limits.max_tag_len;
        let kind = match kind_name {
            "fusion" => {
                for keys in [&apio_keys[..], &live_keys, &file_keys] {
                    self.unused(kind_name, &key, keys)?;
                }
                let login = match (&raw.password_file, &raw.token_file) {
                    (Some(_), Some(token)) => {
                        return Err(self.at(
                            token,
                            &k("token_file"),
                            "set password_file or token_file, not both",
                        ))
                    }
                    (None, Some(_)) => {
                        self.unused(kind_name, &key, &[("username", pos(&raw.username))])?;
                        FusionLogin::MachineToken {
                            token_file: self.secret_file(&raw.token_file, at, &k("token_file"))?,
                        }
                    }
                    _ => FusionLogin::Password {
                        username: self.text(&raw.username, at, &k("username"))?,
                        password_file: self.secret_file(
                            &raw.password_file,
                            at,
                            &k("password_file"),
                        )?,
                    },
                };
                let (feed, group_uuid, tags) =
                    self.fusion_feed(raw, at, &name, &key, max_tag_len)?;
                SourceKind::Fusion {
                    url: self.url(&raw.url, at, &k("url"))?,
                    draas_instance: self.text(&raw.draas_instance, at, &k("draas_instance"))?,
                    group_uuid,
                    login,
                    feed,
                    page_size: self
                        .count(&raw.page_size, &k("page_size"), 0, 1..=100_000)
                        .map(|n| (n > 0).then_some(n as u32))?,
                    tags,
                }
            }
            "apio" => {
                for keys in [&fusion_keys[..], &live_keys, &file_keys] {
                    self.unused(kind_name, &key, keys)?;
                }
                let proxy_prefix = match raw.auth.as_ref().map(|a| (a, a.get_ref().as_str())) {
                    None | Some((_, "jwt")) => Some(
                        raw.proxy_prefix
                            .as_ref()
                            .map(|p| p.get_ref().trim_end_matches('/').to_string())
                            .unwrap_or_else(|| "/api/v01/p1".to_string()),
                    ),
                    Some((_, "session")) => {
                        self.unused(
                            "apio with auth = \"session\"",
                            &key,
                            &[("proxy_prefix", pos(&raw.proxy_prefix))],
                        )?;
                        None
                    }
                    Some((auth, other)) => {
                        return Err(self.at(
                            auth,
                            &k("auth"),
                            format!("unknown auth {other:?} (expected jwt or session)"),
                        ))
                    }
                };
                let groups = self.required(
                    &raw.groups,
                    at,
                    &k("groups"),
                    ": a list of { tenant, group, tag }",
                )?;
                if groups.get_ref().is_empty() {
                    return Err(self.at(groups, &k("groups"), "lists no group"));
                }
                let mut seen = HashSet::new();
                let mut list = Vec::new();
                for (j, group) in groups.get_ref().iter().enumerate() {
                    let gk = format!("{key}.groups[{j}]");
                    let g_at = group.span().start;
                    let g = group.get_ref();
                    let tenant = self.text(&g.tenant, g_at, &format!("{gk}.tenant"))?;
                    let group_id = self.text(&g.group, g_at, &format!("{gk}.group"))?;
                    if !seen.insert((tenant.clone(), group_id.clone())) {
                        return Err(self.invalid(
                            g_at,
                            &gk,
                            format!("tenant {tenant:?} group {group_id:?} is listed twice"),
                        ));
                    }
                    // A group's own tag wins; the source's `tag` is the template for the rest.
                    let template = if g.tag.is_some() { &g.tag } else { &raw.tag };
                    let tags = self.tag_rule(
                        template,
                        &raw.tags,
                        RuleAt {
                            source: &name,
                            key: &gk,
                            table: g_at,
                        },
                        apio::TAG_FIELDS,
                        max_tag_len,
                    )?;
                    list.push((tenant, group_id, tags));
                }
                SourceKind::Apio {
                    url: self.url(&raw.url, at, &k("url"))?,
                    proxy_prefix,
                    username: self.text(&raw.username, at, &k("username"))?,
                    password_file: self.secret_file(&raw.password_file, at, &k("password_file"))?,
                    include_inactive: raw.include_inactive.as_ref().is_some_and(|v| *v.get_ref()),
                    groups: list,
                }
            }
            "livecloud" => {
                for keys in [&fusion_keys[..], &apio_keys, &file_keys] {
                    self.unused(kind_name, &key, keys)?;
                }
                self.unused(
                    kind_name,
                    &key,
                    &[
                        ("username", pos(&raw.username)),
                        ("password_file", pos(&raw.password_file)),
                    ],
                )?;
                let tenants = self.required(&raw.ms_tenant_ids, at, &k("ms_tenant_ids"), "")?;
                if tenants.get_ref().is_empty()
                    || tenants.get_ref().iter().any(|t| t.trim().is_empty())
                {
                    return Err(self.at(
                        tenants,
                        &k("ms_tenant_ids"),
                        "must list at least one tenant id, none blank",
                    ));
                }
                SourceKind::LiveCloud {
                    url: self.url(&raw.url, at, &k("url"))?,
                    token_url: self.url(&raw.token_url, at, &k("token_url"))?,
                    client_id: self.text(&raw.client_id, at, &k("client_id"))?,
                    client_secret_file: self.secret_file(
                        &raw.client_secret_file,
                        at,
                        &k("client_secret_file"),
                    )?,
                    scope: self.text(&raw.scope, at, &k("scope"))?,
                    ms_tenant_ids: tenants.get_ref().clone(),
                    tags: self.tag_rule(
                        &raw.tag,
                        &raw.tags,
                        RuleAt {
                            source: &name,
                            key: &key,
                            table: at,
                        },
                        livecloud::TAG_FIELDS,
                        max_tag_len,
                    )?,
                }
            }
            "file" => {
                for keys in [&fusion_keys[..], &apio_keys, &live_keys, &login_keys] {
                    self.unused(kind_name, &key, keys)?;
                }
                // The CSV carries its own tags.
                self.unused(
                    kind_name,
                    &key,
                    &[("tag", pos(&raw.tag)), ("tags", tags_at)],
                )?;
                let path = self.text(&raw.path, at, &k("path"))?;
                SourceKind::File {
                    path: self.relative(&path),
                }
            }
            other => {
                return Err(self.at(
                    kind_field,
                    &k("kind"),
                    format!("unknown kind {other:?} (expected fusion, apio, livecloud or file)"),
                ))
            }
        };
        Ok(SourceSettings {
            name,
            timeout: self.duration(&raw.timeout, &k("timeout"), Duration::from_secs(30))?,
            allow_empty: raw.allow_empty.unwrap_or(false),
            kind,
        })
    }
}

#[cfg(test)]
mod tests;
