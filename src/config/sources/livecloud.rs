//! A `livecloud` source: the Microsoft tenants it reads, its OAuth2 client credentials and
//! tag rule, and how the [`LiveCloudSourceConfig`] of `src/source/livecloud.rs` is built.

use super::{Building, SourceKind, SourceTable};
use crate::config::checks::{offset, ConfigFile};
use crate::config::raw::RawSource;
use crate::config::{ConfigError, SecretFile};
use crate::net::oauth::ClientCredentials;
use crate::source::livecloud::{self, LiveCloudSourceConfig};
use crate::source::tag::TagRule;
use crate::source::Source;

/// The keys only a `livecloud` source takes, refused in a table of another kind.
pub(super) fn keys(raw: &RawSource) -> Vec<(&'static str, Option<usize>)> {
    vec![
        ("token_url", offset(&raw.token_url)),
        ("client_id", offset(&raw.client_id)),
        ("client_secret_file", offset(&raw.client_secret_file)),
        ("scope", offset(&raw.scope)),
        ("ms_tenant_ids", offset(&raw.ms_tenant_ids)),
    ]
}

/// Checks the keys of a `livecloud` table.
pub(super) fn settings(
    file: &ConfigFile<'_>,
    raw: &RawSource,
    table: SourceTable<'_>,
) -> Result<SourceKind, ConfigError> {
    let SourceTable {
        at,
        key,
        max_tag_len,
        ..
    } = table;
    let k = |field: &str| table.key(field);
    file.unused(
        "livecloud",
        key,
        &[
            ("username", offset(&raw.username)),
            ("password_file", offset(&raw.password_file)),
        ],
    )?;
    let tenants = file.required(&raw.ms_tenant_ids, at, &k("ms_tenant_ids"), "")?;
    if tenants.get_ref().is_empty() || tenants.get_ref().iter().any(|t| t.trim().is_empty()) {
        return Err(file.at(
            tenants,
            &k("ms_tenant_ids"),
            "must list at least one tenant id, none blank",
        ));
    }
    Ok(SourceKind::LiveCloud {
        url: file.url(&raw.url, at, &k("url"))?,
        token_url: file.url(&raw.token_url, at, &k("token_url"))?,
        client_id: file.text(&raw.client_id, at, &k("client_id"))?,
        client_secret_file: file.secret_file(
            &raw.client_secret_file,
            at,
            &k("client_secret_file"),
        )?,
        scope: file.text(&raw.scope, at, &k("scope"))?,
        ms_tenant_ids: tenants.get_ref().clone(),
        tags: file.tag_rule(
            &raw.tag,
            &raw.tags,
            table.rule_at(),
            livecloud::TAG_FIELDS,
            max_tag_len,
        )?,
    })
}

/// Reads the client secret and builds the source.
#[allow(clippy::too_many_arguments)] // one per field of `SourceKind::LiveCloud`, which callers match on
pub(super) fn build(
    building: &Building<'_>,
    url: &str,
    token_url: &str,
    client_id: &str,
    client_secret_file: &SecretFile,
    scope: &str,
    ms_tenant_ids: &[String],
    tags: &TagRule,
) -> Result<Source, ConfigError> {
    let credentials = ClientCredentials {
        token_url: token_url.to_string(),
        client_id: client_id.to_string(),
        client_secret: building.secret(client_secret_file)?,
        scope: scope.to_string(),
    };
    let mut config = LiveCloudSourceConfig::new(
        building.name,
        url,
        credentials,
        ms_tenant_ids.to_vec(),
        tags.clone(),
    );
    config.limits = building.limits;
    config.timeout = building.timeout;
    config.http.max_body = building.max_body;
    config.http.fit_within(building.timeout);
    Source::livecloud(config).map_err(|e| building.refused(e))
}
