//! The file as written: serde's view of §9, nothing else. Every value that is checked after
//! parsing is `Spanned`, so its error can name the line; `deny_unknown_fields` makes serde name
//! unknown keys with their line. One struct per table, whatever its kind: keys of another kind
//! are refused by validation, which can say which kind a key belongs to.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

pub(super) type Field<T> = Option<Spanned<T>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) agent: Option<Spanned<RawAgent>>,
    #[serde(default)]
    pub(super) admin: RawAdmin,
    #[serde(default)]
    pub(super) dialplan: RawDialPlan,
    #[serde(default)]
    pub(super) safety: RawSafety,
    pub(super) sbc: Option<Spanned<RawSbc>>,
    #[serde(default)]
    pub(super) sources: Vec<Spanned<RawSource>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAgent {
    pub(super) policy: Field<String>,
    pub(super) interval: Field<String>,
    pub(super) state_db: Field<String>,
    pub(super) dry_run: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    pub(super) listen: Field<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDialPlan {
    pub(super) name: Field<String>,
    pub(super) rule_name: Field<String>,
    pub(super) encoding: Field<String>,
    pub(super) max_rules: Field<u64>,
    pub(super) max_bracket_digits: Field<u64>,
    pub(super) max_tag_len: Field<u64>,
    pub(super) max_range_size: Field<u64>,
    pub(super) adopt_foreign: Option<bool>,
    pub(super) create: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSafety {
    pub(super) max_delete_fraction: Field<f64>,
    pub(super) max_update_fraction: Field<f64>,
    pub(super) min_existing: Option<u64>,
}

/// `[sbc]` of either kind; keys of the other kind are refused after parsing.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSbc {
    pub(super) kind: Field<String>,
    pub(super) url: Field<String>,
    // audiocodes
    pub(super) username: Field<String>,
    pub(super) password_file: Field<String>,
    pub(super) ca_file: Field<String>,
    pub(super) insecure_skip_verify: Field<bool>,
    pub(super) save_config: Field<bool>,
    // livecloud
    pub(super) token_url: Field<String>,
    pub(super) client_id: Field<String>,
    pub(super) client_secret_file: Field<String>,
    pub(super) scope: Field<String>,
    pub(super) customer_id: Field<String>,
    pub(super) site_location_id: Field<String>,
    pub(super) dial_plan_id: Field<String>,
    // both
    pub(super) batch_size: Field<u64>,
    pub(super) timeout: Field<String>,
}

/// One `[[sources]]` of any kind; keys of other kinds are refused after parsing.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSource {
    pub(super) name: Field<String>,
    pub(super) kind: Field<String>,
    pub(super) timeout: Field<String>,
    pub(super) allow_empty: Option<bool>,
    pub(super) max_body: Field<RawSize>,
    pub(super) tag: Field<String>,
    pub(super) tags: Field<BTreeMap<String, Spanned<String>>>,
    pub(super) url: Field<String>,
    pub(super) username: Field<String>,
    pub(super) password_file: Field<String>,
    // fusion
    pub(super) draas_instance: Field<String>,
    pub(super) group_uuid: Field<String>,
    pub(super) token_file: Field<String>,
    pub(super) feed: Field<String>,
    pub(super) ranges_path: Field<String>,
    pub(super) subscriptions: Field<Vec<Spanned<RawOcSubscription>>>,
    pub(super) page_size: Field<u64>,
    pub(super) include_unprovisioned: Field<bool>,
    // apio
    pub(super) auth: Field<String>,
    pub(super) proxy_prefix: Field<String>,
    pub(super) include_inactive: Field<bool>,
    pub(super) groups: Field<Vec<Spanned<RawApioGroup>>>,
    // livecloud
    pub(super) token_url: Field<String>,
    pub(super) client_id: Field<String>,
    pub(super) client_secret_file: Field<String>,
    pub(super) scope: Field<String>,
    pub(super) ms_tenant_ids: Field<Vec<String>>,
    // file
    pub(super) path: Field<String>,
}

/// One entry of a Fusion `subscriptions` list.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOcSubscription {
    pub(super) tenant: Field<String>,
    pub(super) subscription: Field<String>,
    pub(super) tag: Field<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApioGroup {
    pub(super) tenant: Field<String>,
    pub(super) group: Field<String>,
    pub(super) tag: Field<String>,
}

/// A size as written: a string with a unit (`"512MiB"`), or a plain integer of bytes.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawSize {
    Bytes(i64),
    Text(String),
    /// Anything else (`true`, `1.5`), kept so that the refusal can name the key.
    Other(toml::Value),
}
