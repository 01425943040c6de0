//! `dialsync demo`: the product doing its job, on this machine, in a minute, for a newcomer.
//!
//! It starts the emulators of an SBC (whose OCDialPlan already holds rules a PBX and Live
//! Platform own, as in the field), Netaxis Fusion,
//! Netaxis APIO and Live Platform on loopback, serving the bundled data of `config/demo/`
//! (compiled into the binary, so the demo also works from an installed package), writes a
//! throw-away configuration and secrets into a temporary directory, and runs real cycles of
//! the real agent: a first sync, a sync with nothing to do, and a small churn. It needs no
//! network, no root and no configuration, and prints what happened in plain words.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::app::agent::{Agent, CycleReport, Mode};
use crate::config::Config;
use crate::error::{Classify, ErrorClass};
use crate::plan::OpKind;
use crate::sim::apio::{self, ApioSim};
use crate::sim::fusion::{self, FusionSim};
use crate::sim::livecloud::{self, LiveCloudSim};
use crate::sim::sbc::{SbcSim, SbcState, SimRule, SimUser};
use crate::sink::ApplyControl;
use crate::store::Store;

const FUSION_DATA: &str = include_str!("../../config/demo/fusion.json");
const APIO_DATA: &str = include_str!("../../config/demo/apio.json");
const LIVE_DATA: &str = include_str!("../../config/demo/livecloud.json");
const STATIC_CSV: &str = include_str!("../../config/demo/static.csv");

const SBC_USER: &str = "dialsync";
const SBC_PASSWORD: &str = "demo-sbc-pw";

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot prepare the demo's files: {0}")]
    Io(#[from] io::Error),
    #[error("the bundled demo data is broken: {0}")]
    Data(#[from] crate::sim::SimDataError),
    #[error("the demo's configuration is refused: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("the agent cannot start: {0}")]
    Agent(#[from] crate::app::agent::AgentError),
    #[error("cannot read the demo's state: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("cannot read the demo's lookups: {0}")]
    Lookup(#[from] crate::app::lookup::LookupError),
    #[error("a demo cycle did not converge: {0}")]
    Cycle(String),
}

impl Classify for DemoError {
    fn class(&self) -> ErrorClass {
        match self {
            DemoError::Data(e) => e.class(),
            DemoError::Config(e) => e.class(),
            DemoError::Agent(e) => e.class(),
            DemoError::Store(e) => e.class(),
            DemoError::Lookup(e) => e.class(),
            // The demo runs once on loopback with bundled data: a temporary directory that
            // cannot be written or a cycle that does not converge is a broken install or a
            // bug, not something a second run would fix.
            DemoError::Io(_) | DemoError::Cycle(_) => ErrorClass::Fatal,
        }
    }
}

/// Runs the demo, writing its story to `out`.
pub async fn run(out: &mut dyn Write) -> Result<(), DemoError> {
    let dir = tempfile::Builder::new()
        .prefix("dialsync-demo-")
        .tempdir()?;
    let any: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));

    let fusion = FusionSim::start_with_data(
        any,
        fusion::load_data(&write(dir.path(), "fusion.json", FUSION_DATA)?)?,
    )
    .await?;
    let apio = ApioSim::start_with_data(
        any,
        apio::load_data(&write(dir.path(), "apio.json", APIO_DATA)?)?,
    )
    .await?;
    let live = LiveCloudSim::start_with_data(
        any,
        livecloud::load_data(&write(dir.path(), "livecloud.json", LIVE_DATA)?)?,
    )
    .await?;
    let sbc = SbcSim::start(
        any,
        demo_device(),
        vec![SimUser {
            username: SBC_USER.into(),
            password: SBC_PASSWORD.into(),
            administrator: true,
        }],
    )
    .await?;
    write(dir.path(), "static.csv", STATIC_CSV)?;
    secret(dir.path(), "sbc-password", SBC_PASSWORD)?;
    secret(dir.path(), "fusion-password", &fusion.config().password)?;
    secret(dir.path(), "apio-password", &apio.config().password)?;
    secret(dir.path(), "live-secret", &live.config().client_secret)?;
    let config_path = write(
        dir.path(),
        "dialsync.toml",
        &demo_config(&sbc, &fusion, &apio, &live),
    )?;
    let config = Config::load(&config_path)?;

    writeln!(
        out,
        "dialsync demo: everything below runs on this machine, on loopback.\n"
    )?;
    writeln!(out, "Emulators started:")?;
    let foreign_at_start = foreign_rules(&sbc);
    writeln!(
        out,
        "  AudioCodes SBC  {}  OCDialPlan holds {} rules others own: a PBX's, and Live \
         Platform's own (one number each, no '#', an FQDN for a tag)",
        sbc.url(),
        foreign_at_start.len()
    )?;
    let (oc_numbers, oc_unprovisioned) = {
        let state = fusion.state();
        let numbers: Vec<&serde_json::Value> = state.oc_numbers.values().flatten().collect();
        let unprovisioned = numbers
            .iter()
            .filter(|n| n["msTeams"]["provisionedOnMSTeams"] != true)
            .count();
        (numbers.len(), unprovisioned)
    };
    writeln!(
        out,
        "  Netaxis Fusion  {}  {} numbers of 3 tenants, 1 number range, and a Teams \
         subscription's {oc_numbers} Operator Connect numbers ({oc_unprovisioned} not yet on Teams)",
        fusion.url(),
        fusion.state().phone_usages.len()
    )?;
    writeln!(
        out,
        "  Netaxis APIO    {}  2 tenant groups: number ranges and a +CC-digits prefix",
        apio.url()
    )?;
    writeln!(
        out,
        "  Live Platform   {}  a Teams tenant with 6 numbers, 1 of them released",
        live.url()
    )?;
    writeln!(
        out,
        "  static file     static.csv  a lab range and the NOC's prefix"
    )?;
    writeln!(out, "  configuration   {}\n", config_path.display())?;

    let mut agent = Agent::new(config.clone())?;

    writeln!(
        out,
        "1. First sync: the desired numbers become the fewest dial-plan rules"
    )?;
    let first = cycle(&mut agent).await?;
    story(&first, out, true)?;
    writeln!(out, "   OCDialPlan on the SBC now:")?;
    rules_table(&sbc, out)?;

    writeln!(out, "\n2. Sync again with nothing changed upstream")?;
    let puts = incremental_scripts(&sbc);
    let second = cycle(&mut agent).await?;
    story(&second, out, false)?;
    writeln!(
        out,
        "   requests that changed the SBC: {}",
        incremental_scripts(&sbc) - puts
    )?;

    writeln!(
        out,
        "\n3. Churn: Fusion releases +3232180105, APIO assigns +3292660010..+3292660019"
    )?;
    fusion
        .state()
        .phone_usages
        .retain(|usage| usage["phoneNumber"] != "+3232180105");
    apio.state()
        .group("haven-gent", "logistiek")
        .numbers
        .push(apio::number("+3292660010", "+3292660019", true));
    let third = cycle(&mut agent).await?;
    story(&third, out, false)?;
    if let Some(plan) = &third.plan {
        for op in &plan.ops {
            let route = |r: &Option<crate::plan::Route>| {
                r.as_ref()
                    .map_or_else(|| "-".to_string(), |r| format!("{} -> {}", r.prefix, r.tag))
            };
            let line = match op.kind() {
                OpKind::Add => format!("add    rule {:>2}: {}", op.index, route(&op.after)),
                OpKind::Delete => format!("delete rule {:>2}: {}", op.index, route(&op.before)),
                OpKind::Modify => format!(
                    "modify rule {:>2}: {}  became  {}",
                    op.index,
                    route(&op.before),
                    route(&op.after)
                ),
            };
            writeln!(out, "     {line}")?;
        }
    }

    writeln!(
        out,
        "\n4. Lookups (`dialsync lookup`): the rule the SBC picks, and why"
    )?;
    let store = Store::open(&config.agent.state_db)?;
    let numbers = [
        "+3232180104",
        "+3250331406",
        "+3226134009",
        "+3225140005",
        "+3222123456",
        "+97239753000",
    ]
    .map(String::from);
    for answer in crate::app::lookup::lookup(&config, &store, &numbers)? {
        let mut line = format!("   {}: ", answer.number);
        match &answer.sbc_rule {
            Some(rule) if rule.owned => {
                let _ = write!(line, "rule {} {} -> {}", rule.index, rule.prefix, rule.tag);
            }
            Some(rule) => {
                let _ = write!(
                    line,
                    "rule {} {} -> {}, owned by {:?}, left alone",
                    rule.index, rule.prefix, rule.tag, rule.name
                );
            }
            None => line.push_str("no rule"),
        }
        if let Some(entry) = &answer.desired {
            let _ = write!(
                line,
                "; from {} {} ({})",
                entry.source, entry.item, entry.coverage
            );
        }
        writeln!(out, "{line}")?;
        for conflict in &answer.conflicts {
            writeln!(out, "      conflict: {conflict}")?;
        }
    }
    let foreign_at_end = foreign_rules(&sbc);
    let kept = foreign_at_start
        .iter()
        .filter(|rule| foreign_at_end.contains(rule))
        .count();
    writeln!(
        out,
        "\n5. The rules dialsync does not own, after three syncs: {kept} of {} byte-identical \
         (index, name, prefix and tag), {} added or removed",
        foreign_at_start.len(),
        foreign_at_end.len().abs_diff(kept)
    )?;
    if kept != foreign_at_start.len() || foreign_at_end.len() != kept {
        return Err(DemoError::Cycle(format!(
            "a rule dialsync does not own changed: {foreign_at_start:?} became {foreign_at_end:?}"
        )));
    }
    writeln!(
        out,
        "\nThat is the whole loop. Against real systems: write /etc/dialsync/dialsync.toml \
         (see config/dialsync.toml), check it with `dialsync config check`, preview with \
         `dialsync plan`, then run `dialsync run` (or the systemd service)."
    )?;
    Ok(())
}

async fn cycle(agent: &mut Agent) -> Result<CycleReport, DemoError> {
    let report = agent.cycle(&Mode::Sync, &ApplyControl::default()).await;
    match &report.error {
        Some(error) => Err(DemoError::Cycle(error.message.clone())),
        None => Ok(report),
    }
}

/// What a cycle did, in a few lines.
fn story(report: &CycleReport, out: &mut dyn Write, show_conflicts: bool) -> io::Result<()> {
    let entries: usize = report.sources.iter().map(|s| s.entries).sum();
    writeln!(
        out,
        "   {} ({} ms)",
        report.summary(),
        report.finished_unix_ms - report.started_unix_ms
    )?;
    writeln!(
        out,
        "   {entries} entries from {} sources -> {} rules wanted",
        report.sources.len(),
        report.desired_rules
    )?;
    if let (Some(plan), Some(applied)) = (&report.plan, &report.applied) {
        let counts = plan.counts();
        writeln!(
            out,
            "   ops: {} add, {} modify, {} delete, sent in {} HTTP requests",
            counts.adds, counts.modifies, counts.deletes, applied.requests
        )?;
    }
    for (source, rejected) in report.rejected() {
        writeln!(out, "   rejected by {source}: {rejected}")?;
    }
    if show_conflicts {
        for (_, conflict) in &report.conflicts {
            writeln!(out, "   conflict: {conflict}")?;
        }
    }
    Ok(())
}

fn rules_table(sbc: &SbcSim, out: &mut dyn Write) -> io::Result<()> {
    let state = sbc.state();
    let Some((_, plan)) = state.plan("OCDialPlan") else {
        return writeln!(out, "     (no OCDialPlan)");
    };
    writeln!(
        out,
        "     {:>5}  {:<13} {:<22} tag",
        "index", "name", "prefix"
    )?;
    for (index, rule) in &plan.rules {
        writeln!(
            out,
            "     {index:>5}  {:<13} {:<22} {}",
            rule.name, rule.prefix, rule.tag
        )?;
    }
    Ok(())
}

/// The rules of OCDialPlan dialsync does not own, exactly as the SBC holds them.
fn foreign_rules(sbc: &SbcSim) -> Vec<(u32, SimRule)> {
    let state = sbc.state();
    state
        .plan("OCDialPlan")
        .map(|(_, plan)| {
            plan.rules
                .iter()
                .filter(|(_, rule)| rule.name != "dialsync")
                .map(|(index, rule)| (*index, rule.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn incremental_scripts(sbc: &SbcSim) -> usize {
    sbc.state().applied_scripts
}

/// The SBC as found in the field: OCDialPlan already holds a PBX's two rules and the rules
/// Live Platform's own Operator Connect workflow wrote (one number each, no `#`, a site code or
/// `LivePlatform` for a name, the derived trunk FQDN for a tag), which dialsync must route
/// around and never touch.
fn demo_device() -> SbcState {
    let mut state = SbcState::with_oc_dial_plan();
    if let Some(plan) = state.plans.get_mut(&0) {
        for (index, name, prefix, tag) in [
            (0, "pbx", "+3222", "Trunk=pbx"),
            (1, "pbx", "+32112#", "Trunk=pbx"),
            (2, "LivePlatform", "+97239753000", "sandbox1.audiocodes.be"),
            (
                3,
                "GSBFZUBGHWOFI",
                "+3238200190",
                "EMEA.Customers.AudioCodes.com",
            ),
        ] {
            plan.rules.insert(
                index,
                SimRule {
                    name: name.into(),
                    prefix: prefix.into(),
                    tag: tag.into(),
                },
            );
        }
    }
    state
}

fn demo_config(sbc: &SbcSim, fusion: &FusionSim, apio: &ApioSim, live: &LiveCloudSim) -> String {
    let f = fusion.config();
    let a = apio.config();
    let l = live.config();
    // The one Teams subscription of the demo data.
    let (oc_tenant, oc_subscription) = fusion
        .state()
        .oc_numbers
        .keys()
        .min()
        .cloned()
        .unwrap_or_default();
    format!(
        r#"# Written by `dialsync demo`: the emulators' addresses and throw-away secrets.
[agent]
policy = "sync"
interval = "60s"
state_db = "state.db"

[sbc]
url = "{sbc}"
username = "{SBC_USER}"
password_file = "sbc-password"
timeout = "10s"

[[sources]]
name = "fusion"
kind = "fusion"
url = "{fusion}"
draas_instance = "{draas}"
group_uuid = "{group}"
username = "{fusion_user}"
password_file = "fusion-password"
# Tenant names carry spaces ("Atelier Horta"): the slug makes a tag of each.
tag = "Trunk={{tenant:slug}}"

[[sources]]
name = "fusion-oc"
kind = "fusion"
url = "{fusion}"
draas_instance = "{draas}"
username = "{fusion_user}"
password_file = "fusion-password"
feed = "oc_numbers"
subscriptions = [ {{ tenant = "{oc_tenant}", subscription = "{oc_subscription}", tag = "Trunk=vlissinghe" }} ]

[[sources]]
name = "fusion-ranges"
kind = "fusion"
url = "{fusion}"
draas_instance = "{draas}"
group_uuid = "{group}"
username = "{fusion_user}"
password_file = "fusion-password"
ranges_path = "{ranges_path}"
tag = "Trunk=ranges"

[[sources]]
name = "apio"
kind = "apio"
url = "{apio}"
auth = "jwt"
proxy_prefix = "{proxy}"
username = "{apio_user}"
password_file = "apio-password"
tag = "Trunk={{tenant}}"
groups = [ {{ tenant = "lambiek", group = "bxl-centre" }}, {{ tenant = "haven-gent", group = "logistiek" }} ]

[[sources]]
name = "live"
kind = "livecloud"
url = "{live}"
token_url = "{token_url}"
client_id = "{client_id}"
client_secret_file = "live-secret"
scope = "{scope}"
ms_tenant_ids = ["3371606b-f589-4b50-b827-1a95cacf7225"]
tag = "Trunk=teams"

[[sources]]
name = "static"
kind = "file"
path = "static.csv"
"#,
        sbc = sbc.url(),
        fusion = fusion.url(),
        draas = f.draas_instance,
        group = f.group_uuid,
        fusion_user = f.username,
        ranges_path = f.ranges_path,
        apio = apio.url(),
        proxy = a.proxy_prefix,
        apio_user = a.username,
        live = live.url(),
        token_url = live.token_url(),
        client_id = l.client_id,
        scope = l.scope,
    )
}

fn write(dir: &Path, name: &str, text: &str) -> io::Result<std::path::PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok(path)
}

fn secret(dir: &Path, name: &str, value: &str) -> io::Result<()> {
    let path = write(dir, name, value)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
}
