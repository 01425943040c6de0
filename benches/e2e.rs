//! The end-to-end scale benchmark of DESIGN.md §8 and issue 8: the release binary against the
//! emulators on loopback, at the size of a large operator.
//!
//! Fusion serves 1,000,000 numbers (`phone_usage`, paginated) in about 100,000 runs across
//! five country codes and 2,000 tenants; the SBC starts with an empty `OCDialPlan` and a few
//! foreign rules. The bench then runs `dialsync sync` three times as a child process: the first
//! sync, a cycle with nothing to do, and a churn where 1 % of the runs move to another tenant.
//! Each is timed from outside, its peak RSS read from `/proc` while it runs, and the SBC's
//! requests counted. The lower bound on rules (maximal same-tag runs) and the minimal churn
//! (one op per changed run) are computed here, independently of dialsync.
//!
//! `cargo bench --bench e2e` (1M numbers); `-- --quick` uses 100,000. Output is `name=value`
//! lines, `#` lines are commentary.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dialsync::sim::fusion::{usage, FusionSim, FusionSimConfig};
use dialsync::sim::sbc::{SbcSim, SbcState, SimRule, SimUser};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const TENANTS: usize = 2_000;
/// Country code and national significant number length.
const COUNTRIES: [(u64, u32); 5] = [(32, 9), (31, 9), (44, 10), (49, 10), (33, 9)];

/// One run of consecutive numbers assigned to one tenant.
#[derive(Clone, Debug)]
struct Run {
    first: u64,
    len: u64,
    tenant: usize,
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let numbers: u64 = if quick { 100_000 } else { 1_000_000 };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut runs = generate(numbers, 42);
    println!("numbers={}", runs.iter().map(|r| r.len).sum::<u64>());
    println!("runs={}", runs.len());
    println!("tenants={TENANTS}");

    let dir = tempfile::tempdir().expect("tempdir");
    let (sbc, fusion) = runtime.block_on(async {
        let mut device = SbcState::with_oc_dial_plan();
        if let Some(plan) = device.plans.get_mut(&0) {
            for (index, prefix) in [(0, "+3222"), (1, "+32112#"), (2, "+4420")] {
                plan.rules.insert(
                    index,
                    SimRule {
                        name: "pbx".into(),
                        prefix: prefix.into(),
                        tag: "Trunk=pbx".into(),
                    },
                );
            }
        }
        let users = vec![SimUser {
            username: "dialsync".into(),
            password: "bench-sbc".into(),
            administrator: true,
        }];
        let any = "127.0.0.1:0".parse().expect("addr");
        let sbc = SbcSim::start(any, device, users).await.expect("sbc");
        let config = FusionSimConfig {
            default_page_size: Some(10_000),
            ..FusionSimConfig::default()
        };
        let fusion = FusionSim::start(any, config).await.expect("fusion");
        (sbc, fusion)
    });
    serve(&fusion, &runs);
    write_config(dir.path(), &sbc, &fusion);
    let lower_bound = maximal_runs(&runs);
    println!("rules_lower_bound={lower_bound}");

    let first = sync(dir.path(), &sbc, "first_sync");
    let owned = owned_rules(&sbc);
    println!("rules_owned={owned}");
    println!(
        "rules_over_lower_bound={}",
        owned as i64 - lower_bound as i64
    );
    check_exit("first_sync", first);

    let second = sync(dir.path(), &sbc, "no_change");
    check_exit("no_change", second);

    // 1 % of the runs move to another tenant: each is one modify, unless it now touches a
    // neighbour of the same tenant (the generator leaves gaps, so it never does).
    let moved = churn(&mut runs, 7);
    serve(&fusion, &runs);
    let minimum = moved;
    println!("churn_runs_changed={moved}");
    println!("churn_ops_minimum={minimum}");
    let before = applied_ops_history(dir.path());
    let third = sync(dir.path(), &sbc, "churn");
    check_exit("churn", third);
    let ops = applied_ops_history(dir.path()).saturating_sub(before);
    println!("churn_ops={ops}");
    println!("churn_ops_over_minimum={}", ops as i64 - minimum as i64);
    println!("rules_owned_after_churn={}", owned_rules(&sbc));
    println!("rules_lower_bound_after_churn={}", maximal_runs(&runs));
    let unexpected = sbc.state().unexpected.len() + fusion.state().unexpected.len();
    println!("emulator_unexpected_requests={unexpected}");
    drop(runtime);
}

/// `numbers` numbers in runs of 1..=19 (mean 10), separated by gaps so no two runs are
/// adjacent, spread over the countries, each run given a tenant.
fn generate(numbers: u64, seed: u64) -> Vec<Run> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut runs = Vec::new();
    let per_country = numbers / COUNTRIES.len() as u64;
    for (country, national_len) in COUNTRIES {
        let base = country * 10u64.pow(national_len) + 2 * 10u64.pow(national_len - 1);
        let mut next = base;
        let mut left = per_country;
        while left > 0 {
            let len = rng.random_range(1..=19u64).min(left);
            runs.push(Run {
                first: next,
                len,
                tenant: rng.random_range(0..TENANTS),
            });
            left -= len;
            next += len + rng.random_range(1..=30u64);
        }
    }
    runs
}

/// The lower bound on rules: maximal runs of consecutive numbers with the same tenant.
fn maximal_runs(runs: &[Run]) -> usize {
    let mut sorted: Vec<&Run> = runs.iter().collect();
    sorted.sort_by_key(|r| r.first);
    let mut count = 0;
    let mut previous: Option<&Run> = None;
    for run in sorted {
        let merges =
            previous.is_some_and(|p| p.first + p.len == run.first && p.tenant == run.tenant);
        if !merges {
            count += 1;
        }
        previous = Some(run);
    }
    count
}

/// Moves 1 % of the runs to another tenant; returns how many moved.
fn churn(runs: &mut [Run], seed: u64) -> usize {
    let mut rng = SmallRng::seed_from_u64(seed);
    let target = runs.len() / 100;
    let mut moved = 0;
    let mut picked = std::collections::HashSet::new();
    while moved < target {
        let i = rng.random_range(0..runs.len());
        if !picked.insert(i) {
            continue;
        }
        runs[i].tenant = (runs[i].tenant + 1 + rng.random_range(0..TENANTS - 1)) % TENANTS;
        moved += 1;
    }
    moved
}

fn serve(fusion: &FusionSim, runs: &[Run]) {
    let mut state = fusion.state();
    state.phone_usages.clear();
    for run in runs {
        let tenant = format!("t{:04}", run.tenant);
        for n in run.first..run.first + run.len {
            state.phone_usages.push(usage(&format!("+{n}"), &tenant));
        }
    }
}

fn write_config(dir: &Path, sbc: &SbcSim, fusion: &FusionSim) {
    let secret = |name: &str, value: &str| {
        let path = dir.join(name);
        fs::write(&path, value).expect("secret");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
    };
    secret("sbc-password", "bench-sbc");
    secret("fusion-password", &fusion.config().password);
    let f = fusion.config();
    let config = format!(
        r#"[agent]
policy = "sync"
state_db = "state.db"

[dialplan]
max_rules = 1000000

[sbc]
url = "{sbc}"
username = "dialsync"
password_file = "sbc-password"
timeout = "60s"

[[sources]]
name = "fusion"
kind = "fusion"
url = "{fusion}"
draas_instance = "{draas}"
group_uuid = "{group}"
username = "{user}"
password_file = "fusion-password"
tag = "Trunk={{tenant}}"
timeout = "120s"
"#,
        sbc = sbc.url(),
        fusion = fusion.url(),
        draas = f.draas_instance,
        group = f.group_uuid,
        user = f.username,
    );
    fs::write(dir.join("dialsync.toml"), config).expect("config");
}

/// Runs `dialsync sync` and prints its wall time, peak RSS and SBC requests.
fn sync(dir: &Path, sbc: &SbcSim, name: &str) -> Option<i32> {
    let requests_before = sbc.state().requests.len();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dialsync"))
        .arg("sync")
        .arg("--config")
        .arg(dir.join("dialsync.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start dialsync");
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    let status = loop {
        if let Ok(text) = fs::read_to_string(&status_path) {
            if let Some(kb) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak_kb = peak_kb.max(kb);
            }
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    let output = child.wait_with_output().expect("output");
    let summary = String::from_utf8_lossy(&output.stdout);
    for line in summary.lines().filter(|l| !l.contains("checksum")).take(4) {
        println!("# {name}: {line}");
    }
    println!("{name}_s={:.3}", elapsed.as_secs_f64());
    println!("{name}_peak_rss_mb={:.1}", peak_kb as f64 / 1024.0);
    println!(
        "{name}_sbc_requests={}",
        sbc.state().requests.len() - requests_before
    );
    status.code()
}

fn check_exit(name: &str, code: Option<i32>) {
    println!("{name}_exit={}", code.map_or(-1, i64::from));
}

fn owned_rules(sbc: &SbcSim) -> usize {
    let state = sbc.state();
    state.plan("OCDialPlan").map_or(0, |(_, plan)| {
        plan.rules.values().filter(|r| r.name == "dialsync").count()
    })
}

/// Ops applied in all recorded cycles, read from `dialsync history`.
fn applied_ops_history(dir: &Path) -> u64 {
    let output = Command::new(env!("CARGO_BIN_EXE_dialsync"))
        .args(["history", "--limit", "1000", "--config"])
        .arg(dir.join("dialsync.toml"))
        .output()
        .expect("history");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields
                .get(3..6)
                .map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum())
        })
        .sum()
}
