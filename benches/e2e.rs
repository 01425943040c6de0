//! The end-to-end scale benchmark of DESIGN.md §8 and issue 8: the release binary against the
//! emulators on loopback, at the size of a large operator.
//!
//! 1,000,000 numbers in about 100,000 runs across five country codes and 2,000 tenants, served
//! in two shapes, each its own scenario with fresh emulators and a fresh state database:
//!
//! - `ranges`: what §8 describes, the numbers as ranges. APIO serves each tenant's runs as ITC
//!   number ranges (`minPhoneNumber`..`maxPhoneNumber`), one group per tenant, 2,000 groups.
//! - `numbers`: the worst case, one item per number. Fusion's `phone_usage` serves all 1M
//!   in one unpaginated answer (about 190 MiB), as a real group does: the vendor documents no
//!   paging for it. Tagged by tenant.
//!
//! The SBC starts with an empty `OCDialPlan` and a few foreign rules. Each scenario runs
//! `dialsync sync` three times as a child process: the first sync, a cycle with nothing to do,
//! and a churn where 1 % of the runs move to another tenant. Each is timed from outside, with
//! its CPU time (`wait4`'s rusage) and peak RSS (VmHWM), and the SBC's requests counted. The lower bound
//! on rules (maximal same-tag runs) and the minimal churn (one op per changed run) are computed
//! here, independently of dialsync, and the ops are counted at the SBC emulator (rows of its
//! dial plan that changed), not taken from dialsync's report. A sync that exits non-zero fails
//! the bench.
//!
//! Each scenario runs three times from scratch and every timing and peak is the best of the
//! runs; counts must agree between runs. `cargo bench --bench e2e` (1M numbers, both shapes);
//! `-- --quick` uses 100,000; `-- --shape ranges` or `--shape numbers` runs one; `-- --runs N`
//! sets the runs. Output is `shape.name=value` lines (the best of the runs), `#` lines are
//! commentary (each run's own figures among them). `E2E_WRAP` runs each sync under a profiler
//! (see `sync`).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dialsync::sim::apio::{self, ApioSim, ApioSimConfig};
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

/// How the upstream serves the runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Ranges,
    Numbers,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Ranges => "ranges",
            Shape::Numbers => "numbers",
        }
    }
}

/// The upstream emulator of a scenario.
enum Upstream {
    Apio(ApioSim),
    Fusion(FusionSim),
}

impl Upstream {
    fn unexpected(&self) -> usize {
        match self {
            Upstream::Apio(sim) => sim.state().unexpected.len(),
            Upstream::Fusion(sim) => sim.state().unexpected.len(),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|arg| arg == "--quick");
    let numbers: u64 = if quick { 100_000 } else { 1_000_000 };
    let shapes = match args
        .iter()
        .position(|a| a == "--shape")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
    {
        Some("ranges") => vec![Shape::Ranges],
        Some("numbers") => vec![Shape::Numbers],
        _ => vec![Shape::Ranges, Shape::Numbers],
    };
    // Every figure is the best of this many runs of the whole scenario (fresh emulators, fresh
    // state database): the machine is shared and noisy, and the best run is the one least
    // disturbed by others.
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(3)
        .max(1);
    for shape in shapes {
        let out = Printer(shape.name());
        let mut best = Figures::default();
        for run in 1..=runs {
            println!("# scenario {} run {run} of {runs}", shape.name());
            best.keep_best(scenario(shape, numbers));
        }
        println!("# scenario {}: best of {runs} runs", shape.name());
        for (name, value) in &best.0 {
            out.line(name, value);
        }
    }
}

/// A scenario's figures in the order measured. Timings and peaks keep the best (lowest) of
/// several runs; counts are the same in every run, and a run that disagrees fails the bench.
#[derive(Default)]
struct Figures(Vec<(String, Figure)>);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Figure {
    Count(i64),
    Measured { value: f64, decimals: usize },
}

impl std::fmt::Display for Figure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Figure::Count(n) => write!(f, "{n}"),
            Figure::Measured { value, decimals } => write!(f, "{value:.decimals$}"),
        }
    }
}

impl Figures {
    fn count(&mut self, name: impl Into<String>, value: impl TryInto<i64>) {
        let value = value.try_into().unwrap_or(i64::MAX);
        self.0.push((name.into(), Figure::Count(value)));
    }

    fn measured(&mut self, name: impl Into<String>, value: f64, decimals: usize) {
        self.0
            .push((name.into(), Figure::Measured { value, decimals }));
    }

    fn keep_best(&mut self, run: Figures) {
        if self.0.is_empty() {
            *self = run;
            return;
        }
        assert_eq!(self.0.len(), run.0.len(), "runs measured different figures");
        for ((name, best), (other_name, figure)) in self.0.iter_mut().zip(run.0) {
            assert_eq!(*name, other_name, "runs measured different figures");
            match (&mut *best, figure) {
                (Figure::Count(a), Figure::Count(b)) => {
                    assert_eq!(*a, b, "{name} differs between runs: {a} and {b}")
                }
                (Figure::Measured { value, .. }, Figure::Measured { value: other, .. }) => {
                    *value = value.min(other)
                }
                _ => panic!("{name} changed kind between runs"),
            }
        }
    }
}

fn scenario(shape: Shape, numbers: u64) -> Figures {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut runs = generate(numbers, 42);
    let mut out = Figures::default();
    out.count("numbers", runs.iter().map(|r| r.len).sum::<u64>());
    out.count("runs", runs.len());
    out.count("tenants", TENANTS);

    let dir = tempfile::tempdir().expect("tempdir");
    let (sbc, upstream) = runtime.block_on(async {
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
        let upstream = match shape {
            Shape::Ranges => Upstream::Apio(
                ApioSim::start(any, ApioSimConfig::default())
                    .await
                    .expect("apio"),
            ),
            // No page size: one answer of every number, as the real group sends it.
            Shape::Numbers => Upstream::Fusion(
                FusionSim::start(any, FusionSimConfig::default())
                    .await
                    .expect("fusion"),
            ),
        };
        (sbc, upstream)
    });
    serve(&upstream, &runs);
    if let Upstream::Fusion(fusion) = &upstream {
        // The one answer's size: each item's JSON, a comma between, and the page's braces.
        let state = fusion.state();
        let bytes: usize = state
            .phone_usages
            .iter()
            .map(|item| item.to_string().len() + 1)
            .sum::<usize>()
            + r#"{"phoneUsages":[]}"#.len();
        out.measured("answer_mib", bytes as f64 / (1 << 20) as f64, 1);
        out.count(
            "answer_bytes_per_item",
            bytes / state.phone_usages.len().max(1),
        );
    }
    write_config(dir.path(), &sbc, &upstream);
    let lower_bound = maximal_runs(&runs);
    out.count("rules_lower_bound", lower_bound);

    let first = sync(dir.path(), &sbc, &mut out, "first_sync");
    let owned = owned_rules(&sbc);
    out.count("rules_owned", owned);
    out.count("rules_over_lower_bound", owned as i64 - lower_bound as i64);
    out.count("first_sync_exit", exit_code(first));

    let before = device_rules(&sbc);
    let second = sync(dir.path(), &sbc, &mut out, "no_change");
    out.count("no_change_exit", exit_code(second));
    out.count("no_change_ops", ops_between(&before, &device_rules(&sbc)));

    // 1 % of the runs move to another tenant: each is one modify, unless it now touches a
    // neighbour of the same tenant (the generator leaves gaps, so it never does).
    let moved = churn(&mut runs, 7);
    serve(&upstream, &runs);
    let minimum = moved;
    out.count("churn_runs_changed", moved);
    out.count("churn_ops_minimum", minimum);
    // Ops as the SBC saw them: the rows of its dial plan that the churn added, changed or
    // removed, not what dialsync says it applied.
    let before = device_rules(&sbc);
    let reported_before = applied_ops_history(dir.path());
    let third = sync(dir.path(), &sbc, &mut out, "churn");
    out.count("churn_exit", exit_code(third));
    let ops = ops_between(&before, &device_rules(&sbc));
    out.count("churn_ops", ops);
    out.count("churn_ops_over_minimum", ops as i64 - minimum as i64);
    let reported = applied_ops_history(dir.path()).saturating_sub(reported_before);
    out.count("churn_ops_reported", reported);
    out.count("rules_owned_after_churn", owned_rules(&sbc));
    out.count("rules_lower_bound_after_churn", maximal_runs(&runs));
    let unexpected = sbc.state().unexpected.len() + upstream.unexpected();
    out.count("emulator_unexpected_requests", unexpected);
    drop(upstream);
    drop(sbc);
    drop(runtime);
    // A failed sync makes every figure above meaningless: the bench fails rather than print
    // them as if they were results.
    for (name, status) in [
        ("first_sync", first),
        ("no_change", second),
        ("churn", third),
    ] {
        assert!(
            status.success(),
            "{} {name}: dialsync exited with {status}",
            shape.name()
        );
    }
    assert_eq!(
        reported, ops as u64,
        "dialsync reported {reported} ops, the SBC saw {ops}"
    );
    assert_eq!(unexpected, 0, "the emulators saw unexpected requests");
    out
}

/// Prints `shape.name=value` lines.
struct Printer(&'static str);

impl Printer {
    fn line(&self, name: &str, value: impl std::fmt::Display) {
        println!("{}.{name}={value}", self.0);
    }
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

fn serve(upstream: &Upstream, runs: &[Run]) {
    match upstream {
        Upstream::Fusion(fusion) => {
            let mut state = fusion.state();
            state.phone_usages.clear();
            for run in runs {
                let tenant = tenant_name(run.tenant);
                for n in run.first..run.first + run.len {
                    state.phone_usages.push(usage(&format!("+{n}"), &tenant));
                }
            }
        }
        Upstream::Apio(sim) => {
            let mut state = sim.state();
            for tenant in 0..TENANTS {
                let group = state.group(&tenant_name(tenant), "trunk");
                group.assigned = true;
                group.numbers.clear();
            }
            for run in runs {
                // A single number comes with an empty `maxPhoneNumber`, as the gateway sends it.
                let max = if run.len == 1 {
                    String::new()
                } else {
                    format!("+{}", run.first + run.len - 1)
                };
                let group = state.group(&tenant_name(run.tenant), "trunk");
                group
                    .numbers
                    .push(apio::number(&format!("+{}", run.first), &max, true));
            }
        }
    }
}

fn tenant_name(tenant: usize) -> String {
    format!("t{tenant:04}")
}

fn write_config(dir: &Path, sbc: &SbcSim, upstream: &Upstream) {
    let secret = |name: &str, value: &str| {
        let path = dir.join(name);
        fs::write(&path, value).expect("secret");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
    };
    secret("sbc-password", "bench-sbc");
    let source = match upstream {
        Upstream::Fusion(fusion) => {
            let f = fusion.config();
            secret("fusion-password", &f.password);
            format!(
                r#"name = "fusion"
kind = "fusion"
url = "{url}"
draas_instance = "{draas}"
group_uuid = "{group}"
username = "{user}"
password_file = "fusion-password"
tag = "Trunk={{tenant}}"
timeout = "120s"
"#,
                url = fusion.url(),
                draas = f.draas_instance,
                group = f.group_uuid,
                user = f.username,
            )
        }
        Upstream::Apio(sim) => {
            let a = sim.config();
            secret("apio-password", &a.password);
            let groups: Vec<String> = (0..TENANTS)
                .map(|t| {
                    format!(
                        "  {{ tenant = \"{}\", group = \"trunk\" }},",
                        tenant_name(t)
                    )
                })
                .collect();
            format!(
                r#"name = "apio"
kind = "apio"
url = "{url}"
auth = "jwt"
proxy_prefix = "{proxy}"
username = "{user}"
password_file = "apio-password"
tag = "Trunk={{tenant}}"
timeout = "120s"
groups = [
{groups}
]
"#,
                url = sim.url(),
                proxy = a.proxy_prefix,
                user = a.username,
                groups = groups.join("\n"),
            )
        }
    };
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
{source}"#,
        sbc = sbc.url(),
    );
    fs::write(dir.join("dialsync.toml"), config).expect("config");
}

/// Runs `dialsync sync` and prints its wall time, CPU time, peak RSS and SBC requests.
// The child is reaped by `wait4`, which std's `wait` cannot replace: it drops the rusage.
#[allow(clippy::zombie_processes)]
fn sync(dir: &Path, sbc: &SbcSim, out: &mut Figures, name: &str) -> ExitStatus {
    let requests_before = sbc.state().requests.len();
    let emulators_before = own_cpu_seconds();
    let started = Instant::now();
    // E2E_WRAP="valgrind --tool=massif" (or `perf record -g`, ...) runs each sync under a
    // profiler; its timings then say nothing.
    let wrap = std::env::var("E2E_WRAP").unwrap_or_default();
    let mut words = wrap.split_whitespace();
    let mut command = match words.next() {
        Some(program) => {
            let mut command = Command::new(program);
            command.args(words).arg(env!("CARGO_BIN_EXE_dialsync"));
            command
        }
        None => Command::new(env!("CARGO_BIN_EXE_dialsync")),
    };
    let child = command
        .arg("sync")
        .arg("--config")
        .arg(dir.join("dialsync.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start dialsync");
    let pid = child.id() as libc::pid_t;
    // Peak RSS is the child's VmHWM, sampled until it exits. Not rusage's ru_maxrss: Linux
    // carries that across exec, so a child forked from this (large) bench reports the bench's.
    let exited = Arc::new(AtomicBool::new(false));
    let sampler = {
        let exited = exited.clone();
        std::thread::spawn(move || {
            let path = format!("/proc/{pid}/status");
            let mut peak_kb = 0u64;
            while !exited.load(Ordering::Relaxed) {
                if let Some(kb) = fs::read_to_string(&path).ok().and_then(|text| {
                    text.lines()
                        .find_map(|l| l.strip_prefix("VmHWM:"))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                }) {
                    peak_kb = peak_kb.max(kb);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            peak_kb
        })
    };
    // Read stdout before reaping, so a full pipe cannot stall the child; then reap it with
    // wait4, whose rusage holds the child's CPU time.
    let mut stdout = child.stdout.expect("stdout");
    let mut summary = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut summary).expect("read stdout");
    let mut raw_status = 0;
    // SAFETY: rusage is plain data, valid when zeroed.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own child, not yet reaped; both pointers are to live locals.
    let reaped = unsafe { libc::wait4(pid, &mut raw_status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4");
    exited.store(true, Ordering::Relaxed);
    let peak_kb = sampler.join().expect("sampler");
    let elapsed = started.elapsed();
    for line in summary.lines().filter(|l| !l.contains("checksum")).take(4) {
        println!("# {name}: {line}");
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let cpu = seconds(usage.ru_utime) + seconds(usage.ru_stime);
    let rss_mb = peak_kb as f64 / 1024.0;
    // Each run's own figures, as commentary; the `name=value` lines are the best of the runs.
    println!(
        "# {name}: {:.3} s, {cpu:.3} s CPU, peak RSS {rss_mb:.1} MB",
        elapsed.as_secs_f64()
    );
    out.measured(format!("{name}_s"), elapsed.as_secs_f64(), 3);
    out.measured(format!("{name}_cpu_s"), cpu, 3);
    // The emulators serve from this process: what they cost shares the machine with dialsync.
    out.measured(
        format!("{name}_emulators_cpu_s"),
        own_cpu_seconds() - emulators_before,
        3,
    );
    out.measured(format!("{name}_peak_rss_mb"), rss_mb, 1);
    out.count(
        format!("{name}_sbc_requests"),
        sbc.state().requests.len() - requests_before,
    );
    ExitStatus::from_raw(raw_status)
}

/// CPU time of this process (the emulators, mostly) so far.
fn own_cpu_seconds() -> f64 {
    // SAFETY: rusage is plain data, valid when zeroed; getrusage only writes it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a live local, RUSAGE_SELF.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn exit_code(status: ExitStatus) -> i64 {
    status.code().map_or(-1, i64::from)
}

fn owned_rules(sbc: &SbcSim) -> usize {
    let state = sbc.state();
    state.plan("OCDialPlan").map_or(0, |(_, plan)| {
        plan.rules.values().filter(|r| r.name == "dialsync").count()
    })
}

/// The SBC's `OCDialPlan` rows as it holds them now.
fn device_rules(sbc: &SbcSim) -> std::collections::BTreeMap<u32, SimRule> {
    let state = sbc.state();
    state
        .plan("OCDialPlan")
        .map(|(_, plan)| plan.rules.clone())
        .unwrap_or_default()
}

/// Rows added, changed or removed between two reads of the dial plan: one op each.
fn ops_between(
    before: &std::collections::BTreeMap<u32, SimRule>,
    after: &std::collections::BTreeMap<u32, SimRule>,
) -> usize {
    let changed = after
        .iter()
        .filter(|(index, rule)| before.get(index) != Some(rule))
        .count();
    let removed = before
        .keys()
        .filter(|index| !after.contains_key(index))
        .count();
    changed + removed
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
