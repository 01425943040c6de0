//! `[[sources]]`: what each entry reads, by kind. The keys every kind shares (`name`, `kind`,
//! `timeout`, `allow_empty`, `max_body`) are checked here; each kind's file checks its own keys and builds
//! its source from the result, so adding a kind is its own file plus one arm in each match
//! below, its keys in `raw.rs` and its variant in [`SourceKind`].
//!
//! The checked settings stay in this module, not beside the source clients in `src/source/`:
//! they name config keys and lines (`SecretFile`, `ConfigError`), and `src/source/` must not
//! depend on the config. The clients' own config types (`FusionConfig`...) are what is built.

mod apio;
mod file;
mod fusion;
mod livecloud;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::checks::{offset, ConfigFile, RuleAt};
use super::raw::{Field, RawSource};
use super::{ConfigError, DialPlanSettings, SecretFile};
use crate::net::secret::Secret;
use crate::source::fusion::FusionFeed;
use crate::source::http::DEFAULT_MAX_BODY;
use crate::source::tag::TagRule;
use crate::source::{ItemLimits, Source, SourceError};

pub use fusion::FusionLogin;

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
    /// `max_body`: the largest answer (or file) accepted, in bytes.
    pub max_body: usize,
    pub kind: SourceKind,
}

/// Where a `[[sources]]` table is, for its kind's checks: its offset, its key (`sources[2]`),
/// the source's name, and the longest tag `[dialplan]` allows.
#[derive(Clone, Copy)]
struct SourceTable<'a> {
    at: usize,
    key: &'a str,
    name: &'a str,
    max_tag_len: usize,
}

impl SourceTable<'_> {
    /// The full key of one of the table's fields: `sources[2].url`.
    fn key(&self, field: &str) -> String {
        format!("{}.{field}", self.key)
    }

    /// Where the source's own tag rule is written.
    fn rule_at(&self) -> RuleAt<'_> {
        RuleAt {
            source: self.name,
            key: self.key,
            table: self.at,
        }
    }
}

/// A list of `{ tenant, <id>, tag }` entries as written: apio's `groups` (id `group`),
/// fusion's `subscriptions` (id `subscription`).
struct TenantList<'a, E> {
    /// The list's key: `groups`.
    key: &'static str,
    /// The key naming an entry within its tenant: `group`.
    id: &'static str,
    entries: &'a [Spanned<E>],
    /// An entry's `tenant`, id and `tag`.
    fields: fn(&E) -> [&Field<String>; 3],
    /// The fields the entries' tag templates may use.
    tag_fields: &'static [&'static str],
}

impl SourceTable<'_> {
    /// Checks each entry of a list: both ids present, each pair listed once, and its tag rule.
    /// Returns `(tenant, id, tags)` in the order written.
    fn tenant_entries<E>(
        &self,
        file: &ConfigFile<'_>,
        raw: &RawSource,
        list: TenantList<'_, E>,
    ) -> Result<Vec<(String, String, TagRule)>, ConfigError> {
        let TenantList {
            key: list_key,
            id: id_key,
            entries,
            fields,
            tag_fields,
        } = list;
        let mut seen = HashSet::new();
        let mut checked = Vec::with_capacity(entries.len());
        for (j, entry) in entries.iter().enumerate() {
            let key = format!("{}.{list_key}[{j}]", self.key);
            let at = entry.span().start;
            let [tenant, id, tag] = fields(entry.get_ref());
            let tenant = file.text(tenant, at, &format!("{key}.tenant"))?;
            let id = file.text(id, at, &format!("{key}.{id_key}"))?;
            if !seen.insert((tenant.clone(), id.clone())) {
                return Err(file.invalid(
                    at,
                    &key,
                    format!("tenant {tenant:?} {id_key} {id:?} is listed twice"),
                ));
            }
            // An entry's own tag wins; the source's `tag` is the template for the rest.
            let template = if tag.is_some() { tag } else { &raw.tag };
            let tags = file.tag_rule(
                template,
                &raw.tags,
                RuleAt {
                    source: self.name,
                    key: &key,
                    table: at,
                },
                tag_fields,
                self.max_tag_len,
            )?;
            checked.push((tenant, id, tags));
        }
        Ok(checked)
    }
}

/// What a source is built with besides its kind's settings.
struct Building<'a> {
    name: &'a str,
    timeout: Duration,
    max_body: usize,
    limits: ItemLimits,
    /// The config file, named by errors.
    config_path: &'a Path,
}

impl Building<'_> {
    /// Reads a secret the source authenticates with.
    fn secret(&self, file: &SecretFile) -> Result<Secret, ConfigError> {
        file.read(self.config_path)
    }

    /// The client refused its settings (a URL it cannot use...).
    fn refused(&self, error: SourceError) -> ConfigError {
        ConfigError::Build {
            path: self.config_path.to_path_buf(),
            message: error.to_string(),
        }
    }
}

impl ConfigFile<'_> {
    /// Checks the `i`th `[[sources]]` table, which starts at `at`.
    pub(super) fn source(
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
        let table = SourceTable {
            at,
            key: &key,
            name: &name,
            max_tag_len: dialplan.limits.max_tag_len,
        };
        // The keys only other kinds take, in the order they are reported.
        let login_keys = [
            ("url", offset(&raw.url)),
            ("username", offset(&raw.username)),
            ("password_file", offset(&raw.password_file)),
        ];
        let kind_name = kind_field.get_ref().as_str();
        let kind = match kind_name {
            "fusion" => {
                for keys in [apio::keys(raw), livecloud::keys(raw), file::keys(raw)] {
                    self.unused(kind_name, &key, &keys)?;
                }
                fusion::settings(self, raw, table)?
            }
            "apio" => {
                for keys in [fusion::keys(raw), livecloud::keys(raw), file::keys(raw)] {
                    self.unused(kind_name, &key, &keys)?;
                }
                apio::settings(self, raw, table)?
            }
            "livecloud" => {
                for keys in [fusion::keys(raw), apio::keys(raw), file::keys(raw)] {
                    self.unused(kind_name, &key, &keys)?;
                }
                livecloud::settings(self, raw, table)?
            }
            "file" => {
                for keys in [
                    fusion::keys(raw),
                    apio::keys(raw),
                    livecloud::keys(raw),
                    login_keys.to_vec(),
                ] {
                    self.unused(kind_name, &key, &keys)?;
                }
                file::settings(self, raw, table)?
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
            max_body: self.size(&raw.max_body, &k("max_body"), DEFAULT_MAX_BODY)?,
            kind,
        })
    }
}

impl SourceSettings {
    /// Reads the source's secrets and builds it; `config_path` names the config file in errors.
    pub(super) fn build(
        &self,
        config_path: &Path,
        limits: ItemLimits,
    ) -> Result<Source, ConfigError> {
        let building = Building {
            name: &self.name,
            timeout: self.timeout,
            max_body: self.max_body,
            limits,
            config_path,
        };
        match &self.kind {
            SourceKind::Fusion {
                url,
                draas_instance,
                group_uuid,
                login,
                feed,
                page_size,
                tags,
            } => fusion::build(
                &building,
                url,
                draas_instance,
                group_uuid.as_deref(),
                login,
                feed,
                *page_size,
                tags,
            ),
            SourceKind::Apio {
                url,
                proxy_prefix,
                username,
                password_file,
                include_inactive,
                groups,
            } => apio::build(
                &building,
                url,
                proxy_prefix.as_deref(),
                username,
                password_file,
                *include_inactive,
                groups,
            ),
            SourceKind::LiveCloud {
                url,
                token_url,
                client_id,
                client_secret_file,
                scope,
                ms_tenant_ids,
                tags,
            } => livecloud::build(
                &building,
                url,
                token_url,
                client_id,
                client_secret_file,
                scope,
                ms_tenant_ids,
                tags,
            ),
            SourceKind::File { path } => Ok(file::build(&building, path)),
        }
    }
}
