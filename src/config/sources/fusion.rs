//! A `fusion` source: how it logs in, which feed it reads with the keys that feed requires,
//! and how the [`FusionConfig`] of `src/source/fusion.rs` is built from that.

use super::{Building, SourceKind, SourceTable, TenantList};
use crate::config::checks::{offset, ConfigFile};
use crate::config::raw::{RawOcSubscription, RawSource};
use crate::config::{ConfigError, SecretFile};
use crate::source::fusion::{self, FusionAuth, FusionConfig, FusionFeed, OcSubscription};
use crate::source::tag::TagRule;
use crate::source::Source;

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

impl FusionLogin {
    /// Reads the secret it names.
    fn read(&self, building: &Building<'_>) -> Result<FusionAuth, ConfigError> {
        Ok(match self {
            FusionLogin::Password {
                username,
                password_file,
            } => FusionAuth::Login {
                username: username.clone(),
                password: building.secret(password_file)?,
            },
            FusionLogin::MachineToken { token_file } => {
                FusionAuth::Token(building.secret(token_file)?)
            }
        })
    }
}

/// The keys only a `fusion` source takes, refused in a table of another kind.
pub(super) fn keys(raw: &RawSource) -> Vec<(&'static str, Option<usize>)> {
    vec![
        ("draas_instance", offset(&raw.draas_instance)),
        ("group_uuid", offset(&raw.group_uuid)),
        ("token_file", offset(&raw.token_file)),
        ("feed", offset(&raw.feed)),
        ("ranges_path", offset(&raw.ranges_path)),
        ("subscriptions", offset(&raw.subscriptions)),
        ("page_size", offset(&raw.page_size)),
        ("include_unprovisioned", offset(&raw.include_unprovisioned)),
    ]
}

/// Checks the keys of a `fusion` table.
pub(super) fn settings(
    file: &ConfigFile<'_>,
    raw: &RawSource,
    table: SourceTable<'_>,
) -> Result<SourceKind, ConfigError> {
    let SourceTable { at, key, .. } = table;
    let k = |field: &str| table.key(field);
    let login = match (&raw.password_file, &raw.token_file) {
        (Some(_), Some(token)) => {
            return Err(file.at(
                token,
                &k("token_file"),
                "set password_file or token_file, not both",
            ))
        }
        (None, Some(_)) => {
            file.unused("fusion", key, &[("username", offset(&raw.username))])?;
            FusionLogin::MachineToken {
                token_file: file.secret_file(&raw.token_file, at, &k("token_file"))?,
            }
        }
        _ => FusionLogin::Password {
            username: file.text(&raw.username, at, &k("username"))?,
            password_file: file.secret_file(&raw.password_file, at, &k("password_file"))?,
        },
    };
    let (feed, group_uuid, tags) = which_feed(file, raw, table)?;
    Ok(SourceKind::Fusion {
        url: file.url(&raw.url, at, &k("url"))?,
        draas_instance: file.text(&raw.draas_instance, at, &k("draas_instance"))?,
        group_uuid,
        login,
        feed,
        page_size: file
            .count(&raw.page_size, &k("page_size"), 0, 1..=100_000)
            .map(|n| (n > 0).then_some(n as u32))?,
        tags,
    })
}

/// What a `fusion` source reads, with the keys that feed requires and no key of another
/// feed: `feed` (default `phone_usage`; `ranges_path` alone implies `ranges`), and the
/// tag rules. Returns the feed, the `group_uuid` if given, and the source's own rule.
fn which_feed(
    file: &ConfigFile<'_>,
    raw: &RawSource,
    table: SourceTable<'_>,
) -> Result<(FusionFeed, Option<String>, TagRule), ConfigError> {
    let SourceTable {
        at,
        key,
        max_tag_len,
        ..
    } = table;
    let k = |field: &str| table.key(field);
    let feed_name = match (&raw.feed, &raw.ranges_path) {
        (Some(feed), _) => feed.get_ref().as_str(),
        (None, Some(_)) => "ranges",
        (None, None) => "phone_usage",
    };
    // A key the feed requires and misses is reported at `feed` when it is written (that
    // is what asks for the key), else at the table.
    let asked_at = raw.feed.as_ref().map_or(at, |f| f.span().start);
    let what = format!("feed {feed_name:?}");
    let rule_at = table.rule_at();
    let subscriptions_at = offset(&raw.subscriptions);
    let unprovisioned_at = offset(&raw.include_unprovisioned);
    match feed_name {
        "phone_usage" | "ranges" => {
            file.not_keys_of(
                &what,
                key,
                &[
                    ("subscriptions", subscriptions_at),
                    ("include_unprovisioned", unprovisioned_at),
                ],
            )?;
            let tags = file.tag_rule(
                &raw.tag,
                &raw.tags,
                rule_at,
                fusion::TAG_FIELDS,
                max_tag_len,
            )?;
            if feed_name == "phone_usage" {
                file.not_keys_of(&what, key, &[("ranges_path", offset(&raw.ranges_path))])?;
                file.required(
                    &raw.group_uuid,
                    asked_at,
                    &k("group_uuid"),
                    " for feed \"phone_usage\": the Fusion group whose phone_usage is read",
                )?;
                let group = file.text(&raw.group_uuid, at, &k("group_uuid"))?;
                return Ok((FusionFeed::PhoneUsage, Some(group), tags));
            }
            file.required(
                &raw.ranges_path,
                asked_at,
                &k("ranges_path"),
                " for feed \"ranges\": the range list's path under /draas/{draas_instance}/",
            )?;
            let path = file.text(&raw.ranges_path, at, &k("ranges_path"))?;
            let group_uuid = match &raw.group_uuid {
                Some(_) => Some(file.text(&raw.group_uuid, at, &k("group_uuid"))?),
                None if path.contains("{group_uuid}") => {
                    return Err(file.invalid(
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
            file.not_keys_of(
                &what,
                key,
                &[
                    ("group_uuid", offset(&raw.group_uuid)),
                    ("ranges_path", offset(&raw.ranges_path)),
                ],
            )?;
            let listed = file.required(
                &raw.subscriptions,
                asked_at,
                &k("subscriptions"),
                " for feed \"oc_numbers\": a list of { tenant, subscription, tag }",
            )?;
            if listed.get_ref().is_empty() {
                return Err(file.at(listed, &k("subscriptions"), "lists no subscription"));
            }
            let subscriptions: Vec<OcSubscription> = table
                .tenant_entries(
                    file,
                    raw,
                    TenantList {
                        key: "subscriptions",
                        id: "subscription",
                        fields: |e: &RawOcSubscription| [&e.tenant, &e.subscription, &e.tag],
                        entries: listed.get_ref(),
                        tag_fields: fusion::OC_TAG_FIELDS,
                    },
                )?
                .into_iter()
                .map(|(tenant, subscription, tags)| OcSubscription {
                    tenant,
                    subscription,
                    tags,
                })
                .collect();
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
            Err(file.invalid(
                feed,
                &k("feed"),
                format!("unknown feed {other:?} (expected phone_usage, oc_numbers or ranges)"),
            ))
        }
    }
}

/// Reads the login's secret and builds the source.
#[allow(clippy::too_many_arguments)] // one per field of `SourceKind::Fusion`, which callers match on
pub(super) fn build(
    building: &Building<'_>,
    url: &str,
    draas_instance: &str,
    group_uuid: Option<&str>,
    login: &FusionLogin,
    feed: &FusionFeed,
    page_size: Option<u32>,
    tags: &TagRule,
) -> Result<Source, ConfigError> {
    let auth = login.read(building)?;
    let group = group_uuid.unwrap_or_default();
    let mut config = FusionConfig::new(
        building.name,
        url,
        draas_instance,
        group,
        auth,
        tags.clone(),
    );
    config.feed = feed.clone();
    config.page_size = page_size;
    config.limits = building.limits;
    config.timeout = building.timeout;
    config.http.max_body = building.max_body;
    config.http.fit_within(building.timeout);
    Source::fusion(config).map_err(|e| building.refused(e))
}
