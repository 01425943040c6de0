//! An `apio` source: its login (APIO core JWT through a proxy prefix, or a session on the
//! gateway), its list of groups each with its tag rule, and how the [`ApioConfig`] of
//! `src/source/apio.rs` is built from that.

use super::{Building, SourceKind, SourceTable, TenantList};
use crate::config::checks::{offset, ConfigFile};
use crate::config::raw::{RawApioGroup, RawSource};
use crate::config::{ConfigError, SecretFile};
use crate::source::apio::{self, ApioAuth, ApioConfig, ApioGroup};
use crate::source::tag::TagRule;
use crate::source::Source;

/// The keys only an `apio` source takes, refused in a table of another kind.
pub(super) fn keys(raw: &RawSource) -> Vec<(&'static str, Option<usize>)> {
    vec![
        ("auth", offset(&raw.auth)),
        ("proxy_prefix", offset(&raw.proxy_prefix)),
        ("include_inactive", offset(&raw.include_inactive)),
        ("groups", offset(&raw.groups)),
    ]
}

/// Checks the keys of an `apio` table.
pub(super) fn settings(
    file: &ConfigFile<'_>,
    raw: &RawSource,
    table: SourceTable<'_>,
) -> Result<SourceKind, ConfigError> {
    let SourceTable { at, key, .. } = table;
    let k = |field: &str| table.key(field);
    let proxy_prefix = match raw.auth.as_ref().map(|a| (a, a.get_ref().as_str())) {
        None | Some((_, "jwt")) => Some(
            raw.proxy_prefix
                .as_ref()
                .map(|p| p.get_ref().trim_end_matches('/').to_string())
                .unwrap_or_else(|| "/api/v01/p1".to_string()),
        ),
        Some((_, "session")) => {
            file.unused(
                "apio with auth = \"session\"",
                key,
                &[("proxy_prefix", offset(&raw.proxy_prefix))],
            )?;
            None
        }
        Some((auth, other)) => {
            return Err(file.at(
                auth,
                &k("auth"),
                format!("unknown auth {other:?} (expected jwt or session)"),
            ))
        }
    };
    let groups = file.required(
        &raw.groups,
        at,
        &k("groups"),
        ": a list of { tenant, group, tag }",
    )?;
    if groups.get_ref().is_empty() {
        return Err(file.at(groups, &k("groups"), "lists no group"));
    }
    let groups = table.tenant_entries(
        file,
        raw,
        TenantList {
            key: "groups",
            id: "group",
            fields: |e: &RawApioGroup| [&e.tenant, &e.group, &e.tag],
            entries: groups.get_ref(),
            tag_fields: apio::TAG_FIELDS,
        },
    )?;
    Ok(SourceKind::Apio {
        url: file.url(&raw.url, at, &k("url"))?,
        proxy_prefix,
        username: file.text(&raw.username, at, &k("username"))?,
        password_file: file.secret_file(&raw.password_file, at, &k("password_file"))?,
        include_inactive: raw.include_inactive.as_ref().is_some_and(|v| *v.get_ref()),
        groups,
    })
}

/// Reads the password and builds the source.
pub(super) fn build(
    building: &Building<'_>,
    url: &str,
    proxy_prefix: Option<&str>,
    username: &str,
    password_file: &SecretFile,
    include_inactive: bool,
    groups: &[(String, String, TagRule)],
) -> Result<Source, ConfigError> {
    let password = building.secret(password_file)?;
    let auth = match proxy_prefix {
        Some(prefix) => ApioAuth::Jwt {
            username: username.to_string(),
            password,
            proxy_prefix: prefix.to_string(),
        },
        None => ApioAuth::Session {
            username: username.to_string(),
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
    let mut config = ApioConfig::new(building.name, url, auth, groups);
    config.include_inactive = include_inactive;
    config.limits = building.limits;
    config.timeout = building.timeout;
    config.http.max_body = building.max_body;
    config.http.fit_within(building.timeout);
    Source::apio(config).map_err(|e| building.refused(e))
}
