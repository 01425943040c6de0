//! Tables of `dialsync.toml` that several tests write the same way: the SBC, and one source of
//! each upstream kind, pointed at an emulator. Each ends with its last line's newline, so they
//! concatenate into a config.

use std::fmt::Display;

use dialsync::sim::apio::{self, ApioSim};
use dialsync::sim::fusion::FusionSim;
use dialsync::sim::livecloud::LiveCloudSim;

use super::sbc::SBC_USER;

/// `[sbc]` at `url`, as [`SBC_USER`] with the password in `password_file`.
pub fn sbc_table(url: &str, password_file: impl Display, timeout: &str) -> String {
    format!(
        r#"[sbc]
url = "{url}"
username = "{SBC_USER}"
password_file = "{password_file}"
timeout = "{timeout}"
"#
    )
}

/// The source `fusion`: the emulator's group, by login, tagged with the tenant.
pub fn fusion_source(fusion: &FusionSim, password_file: impl Display, timeout: &str) -> String {
    let config = fusion.config();
    format!(
        r#"[[sources]]
name = "fusion"
kind = "fusion"
url = "{url}"
draas_instance = "{draas}"
group_uuid = "{group}"
username = "{user}"
password_file = "{password_file}"
tag = "Trunk={{tenant}}"
timeout = "{timeout}"
"#,
        url = fusion.url(),
        draas = config.draas_instance,
        group = config.group_uuid,
        user = config.username,
    )
}

/// Seeds the group [`apio_source`] reads: ten numbers as a range, and one alone.
pub fn seed_apio(apio: &ApioSim) {
    let mut state = apio.state();
    let group = state.group("t1", "g1");
    group
        .numbers
        .push(apio::number("+3227000000", "+3227000009", true));
    group.numbers.push(apio::number("+3227000100", "", true));
}

/// The source `apio`: group `t1`/`g1` through APIO core's JWT proxy, tagged `Trunk=apio`.
pub fn apio_source(apio: &ApioSim, password_file: impl Display, timeout: &str) -> String {
    let config = apio.config();
    format!(
        r#"[[sources]]
name = "apio"
kind = "apio"
url = "{url}"
auth = "jwt"
proxy_prefix = "{proxy}"
username = "{user}"
password_file = "{password_file}"
tag = "Trunk=apio"
timeout = "{timeout}"
groups = [ {{ tenant = "t1", group = "g1" }} ]
"#,
        url = apio.url(),
        proxy = config.proxy_prefix,
        user = config.username,
    )
}

/// The source `live`: the numbers of Microsoft tenant `tenant`, tagged `Trunk=teams`.
pub fn livecloud_source(
    live: &LiveCloudSim,
    secret_file: impl Display,
    tenant: &str,
    timeout: &str,
) -> String {
    let config = live.config();
    format!(
        r#"[[sources]]
name = "live"
kind = "livecloud"
url = "{url}"
token_url = "{token_url}"
client_id = "{client_id}"
client_secret_file = "{secret_file}"
scope = "{scope}"
ms_tenant_ids = ["{tenant}"]
tag = "Trunk=teams"
timeout = "{timeout}"
"#,
        url = live.url(),
        token_url = live.token_url(),
        client_id = config.client_id,
        scope = config.scope,
    )
}
