//! The SBC's part of the fault matrix: the real `dialsync sync` against the emulated device
//! failing at a chosen stage of a multi-batch apply (or of the reads before planning), and
//! killed with SIGKILL at random points of an apply.
//!
//! What an operator relies on, and what every case asserts:
//! - no route lost: a number routed before and after the change routes, whatever the fault,
//!   to its old or its new tag, never to another and never to nothing; foreign rules stay;
//! - the faulted run says what happened (exit code and message);
//! - the next plain `sync` converges to exactly what a clean sync produces, and the one after
//!   writes nothing.
//!
//! Each case prints one `fault=… stage=… situation=… outcome=…` line, so the table can be
//! quoted; `cargo test --test faults_sbc -- --nocapture` shows them.

mod common;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::sbc::{owned_routes, quiet_dropped_connections};
use common::{command, wait_for, Out, Rig, Settings};
use dialsync::sim::sbc::{ReadFault, ScriptFault, SimPlan};

/// Rule operations per incremental script: small, so that a few hundred rules make a dozen
/// batches and a fault can hit the first, a middle or the last one.
const BATCH: usize = 20;
/// `sbc.timeout` in the cases that stall the device: the stall must outlast it, and every
/// second of it is test time.
const SHORT_TIMEOUT: &str = "500ms";
/// How long a stalled request hangs: well past [`SHORT_TIMEOUT`].
const STALL: Duration = Duration::from_millis(1200);
/// A `Retry-After` longer than the sink's whole retry budget for one request (60 s): the
/// device asks for more patience than the agent has.
const RETRY_AFTER_BEYOND_BUDGET: u32 = 3600;

/// Numbers a tenant has in Fusion: `count` consecutive numbers from `first`.
struct Block {
    first: u64,
    count: u64,
    tenant: String,
}

fn block(first: u64, count: u64, tenant: String) -> Block {
    Block {
        first,
        count,
        tenant,
    }
}

/// How many blocks the numbers start with; with gaps between them and neighbours of
/// different tenants, each compiles to a rule of its own.
const BLOCKS: u64 = 240;
const BASE: u64 = 3_227_000_000;
/// Where the churn's new numbers go.
const NEW_BASE: u64 = 3_228_000_000;

/// Before the churn: 240 blocks of 3 numbers, 10 apart, over five tenants.
fn layout_before() -> Vec<Block> {
    (0..BLOCKS)
        .map(|i| block(BASE + i * 10, 3, format!("t{}", i % 5)))
        .collect()
}

/// After the churn: every kind of change the planner makes, spread over the plan.
fn layout_after() -> Vec<Block> {
    let mut blocks = Vec::new();
    for i in 0..BLOCKS {
        let first = BASE + i * 10;
        let tenant = format!("t{}", i % 5);
        match (i % 10, i % 20) {
            // The customer left: the rule goes.
            (3, _) => {}
            // Ported to another trunk: same prefix, new tag.
            (5, _) => blocks.push(block(first, 3, format!("u{}", i % 5))),
            // Grew: a new prefix at the same index.
            (_, 7) => blocks.push(block(first, 5, tenant)),
            // Took over the next block's numbers: one rule grows over another's numbers, which
            // change tag, and that other rule goes; its numbers must never go unrouted.
            (_, 9) => blocks.push(block(first, 13, tenant)),
            (_, 10) => {}
            // Gave back its middle number: one rule becomes two.
            (_, 11) => {
                blocks.push(block(first, 1, tenant.clone()));
                blocks.push(block(first + 2, 1, tenant));
            }
            _ => blocks.push(block(first, 3, tenant)),
        }
    }
    // Fewer new blocks than rules going away, so that the planner, which turns a removal and
    // an addition into one modify, is left with deletes as well.
    blocks.extend((0..12).map(|j| block(NEW_BASE + j * 10, 3, format!("n{}", j % 3))));
    blocks
}

/// Number -> tag, as the SBC must route it when `blocks` (and the rig's static range) are
/// all there is.
type Routing = BTreeMap<String, String>;

fn routing(blocks: &[Block]) -> Routing {
    let mut routing: Routing = (0..10)
        .map(|n| (format!("+32250000{n:02}"), "Trunk=static".to_string()))
        .collect();
    for b in blocks {
        for n in b.first..b.first + b.count {
            routing.insert(format!("+{n}"), format!("Trunk={}", b.tenant));
        }
    }
    routing
}

/// Replaces Fusion's numbers with `blocks`.
fn provision(rig: &Rig, blocks: &[Block]) {
    let mut fusion = rig.fusion.state();
    fusion.phone_usages.clear();
    for b in blocks {
        fusion.add_numbers(b.first, b.count, &b.tenant);
    }
}

/// Where a faulted sync starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Situation {
    /// An empty `OCDialPlan` (but for a foreign rule): a load of adds.
    FirstSync,
    /// The SBC holds the "before" numbers; the "after" ones add, modify and delete rules.
    Churn,
}

impl Situation {
    fn name(self) -> &'static str {
        match self {
            Situation::FirstSync => "first-sync",
            Situation::Churn => "churn",
        }
    }

    /// What the SBC routes before the faulted sync.
    fn before(self) -> Routing {
        match self {
            Situation::FirstSync => Routing::new(),
            Situation::Churn => routing(&layout_before()),
        }
    }

    /// What Fusion says during the faulted sync.
    fn layout(self) -> Vec<Block> {
        match self {
            Situation::FirstSync => layout_before(),
            Situation::Churn => layout_after(),
        }
    }
}

/// A clean sync of a situation, on a rig of its own: what every faulted one must end up as.
struct Control {
    /// The device's dial plans before the sync.
    start: BTreeMap<u32, SimPlan>,
    /// dialsync's rules after it, as (prefix, tag), sorted: what routes, whatever the indexes.
    routes: Vec<(String, String)>,
    ops: usize,
    batches: usize,
}

fn control(situation: Situation) -> &'static Control {
    static FIRST: OnceLock<Control> = OnceLock::new();
    static CHURN: OnceLock<Control> = OnceLock::new();
    let cell = match situation {
        Situation::FirstSync => &FIRST,
        Situation::Churn => &CHURN,
    };
    cell.get_or_init(|| {
        let rig = Rig::start();
        rig.write_config(&settings("5s"));
        provision(&rig, &layout_before());
        if situation == Situation::Churn {
            let load = rig.dialsync(&["sync"]);
            assert_eq!(load.code, Some(0), "{load}");
            provision(&rig, &layout_after());
        }
        let start = rig.sbc.state().plans.clone();
        let writes = rig.writes();
        let clean = rig.dialsync(&["sync"]);
        assert_eq!(clean.code, Some(0), "control {situation:?}: {clean}");
        assert!(!clean.stdout.contains("refused"), "{clean}");
        let (ops, batches) = applied(&clean).expect("the control applies");
        assert_eq!(rig.writes() - writes, batches, "{clean}");
        assert!(batches >= 5, "{situation:?}: {batches} batches are too few");
        let routes = owned_routes(&rig.sbc);
        assert_routes_exactly(&rig, &routing(&situation.layout()), "control");
        rig.assert_no_unexpected();
        println!(
            "control situation={} ops={ops} batches={batches} rules={}",
            situation.name(),
            routes.len()
        );
        Control {
            start,
            routes,
            ops,
            batches,
        }
    })
}

fn settings(sbc_timeout: &'static str) -> Settings {
    Settings {
        interval: "1h",
        batch_size: BATCH,
        sbc_timeout,
        // The churn modifies a third of the rules: past the change gate's defaults, which are
        // not what these tests are about.
        extra: "\n[safety]\nmax_update_fraction = 0.9\nmax_delete_fraction = 0.9\n".into(),
        ..Settings::default()
    }
}

/// A rig whose SBC holds what `situation` starts from and whose Fusion serves its numbers.
fn rig_for(situation: Situation, sbc_timeout: &'static str) -> Rig {
    quiet_dropped_connections();
    let control = control(situation);
    let rig = Rig::start();
    rig.write_config(&settings(sbc_timeout));
    provision(&rig, &situation.layout());
    rig.sbc.state().plans = control.start.clone();
    rig
}

/// `(ops, batches)` of `sync`'s "applied N ops in B batches" line.
fn applied(out: &Out) -> Option<(usize, usize)> {
    let line = out
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("applied "))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    Some((words.first()?.parse().ok()?, words.get(3)?.parse().ok()?))
}

/// The safety invariant, at whatever point a fault or a kill left the dial plan: a number
/// routed before and after routes to its old or its new tag; a new one to its new tag or not
/// yet at all; one on its way out to its old tag or to nothing. Never to a wrong tag.
fn assert_no_route_lost(rig: &Rig, before: &Routing, after: &Routing, context: &str) {
    let numbers: Vec<&str> = before
        .keys()
        .chain(after.keys())
        .map(String::as_str)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let actual = rig.sbc_tags(&numbers);
    let mut wrong = Vec::new();
    for (number, tag) in numbers.iter().zip(&actual) {
        let old = before.get(*number);
        let new = after.get(*number);
        let fine = match tag {
            Some(tag) => old == Some(tag) || new == Some(tag),
            // Unrouted is only fine for a number that was not routed before, or is leaving.
            None => old.is_none() || new.is_none(),
        };
        if !fine {
            wrong.push(format!(
                "{number}: routes to {tag:?}, was {old:?}, wanted {new:?}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{context}: {} numbers misrouted, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
}

/// Every number routes exactly as `routing` says.
fn assert_routes_exactly(rig: &Rig, routing: &Routing, context: &str) {
    let numbers: Vec<&str> = routing.keys().map(String::as_str).collect();
    let actual = rig.sbc_tags(&numbers);
    let wrong: Vec<String> = numbers
        .iter()
        .zip(&actual)
        .filter(|(number, tag)| tag.as_ref() != routing.get(**number))
        .map(|(number, tag)| format!("{number}: {tag:?}"))
        .take(5)
        .collect();
    assert!(wrong.is_empty(), "{context}: misrouted, e.g. {wrong:?}");
}

/// After whatever happened: a plain `sync` converges to the control's rules, and the next one
/// writes nothing. Returns the writes the converging sync needed, and what it said.
fn assert_converges(rig: &Rig, situation: Situation, context: &str) -> (usize, Out) {
    let writes = rig.writes();
    let converge = rig.dialsync(&["sync"]);
    assert_eq!(
        converge.code,
        Some(0),
        "{context}: converging sync: {converge}"
    );
    let converge_writes = rig.writes() - writes;
    assert_eq!(
        owned_routes(&rig.sbc),
        control(situation).routes,
        "{context}: the SBC's rules differ from a clean sync's"
    );
    assert_routes_exactly(rig, &routing(&situation.layout()), context);
    let writes = rig.writes();
    let again = rig.dialsync(&["sync"]);
    assert_eq!(again.code, Some(0), "{context}: {again}");
    assert!(again.stdout.starts_with("in sync: "), "{context}: {again}");
    assert_eq!(
        rig.writes(),
        writes,
        "{context}: a converged SBC is not written"
    );
    (converge_writes, converge)
}

/// Where in the sync the fault strikes.
#[derive(Clone, Copy, Debug)]
enum Stage {
    /// The first read before planning (the device status).
    ReadStatus,
    /// The second (the configuration script, with the dial plan).
    ReadScript,
    FirstBatch,
    MiddleBatch,
    LastBatch,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::ReadStatus => "read-status",
            Stage::ReadScript => "read-script",
            Stage::FirstBatch => "first-batch",
            Stage::MiddleBatch => "middle-batch",
            Stage::LastBatch => "last-batch",
        }
    }

    /// The ordinal, from the start of the sync, of the write this stage's batch is.
    fn batch(self, batches: usize) -> usize {
        match self {
            Stage::FirstBatch => 1,
            Stage::MiddleBatch => batches.div_ceil(2),
            Stage::LastBatch => batches,
            Stage::ReadStatus | Stage::ReadScript => 0,
        }
    }
}

#[derive(Clone, Debug)]
enum Fault {
    Script(ScriptFault),
    Read(ReadFault),
}

impl Fault {
    fn name(&self) -> String {
        let busy = |retry: &Option<u32>| match retry {
            None => "409".to_string(),
            Some(seconds) => format!("409-retry-after-{seconds}s"),
        };
        match self {
            Fault::Script(ScriptFault::Busy { retry_after_secs })
            | Fault::Read(ReadFault::Busy { retry_after_secs }) => busy(retry_after_secs),
            Fault::Script(ScriptFault::ServerError) | Fault::Read(ReadFault::ServerError) => {
                "500".into()
            }
            Fault::Script(ScriptFault::StallNotApplied(_)) => "stall-not-applied".into(),
            Fault::Script(ScriptFault::AppliedAnswerLate(_)) => "applied-answer-late".into(),
            Fault::Read(ReadFault::Stall(_)) => "stall".into(),
            Fault::Script(ScriptFault::DropBeforeApply) => "drop-before-apply".into(),
            Fault::Script(ScriptFault::DropAfterApply) => "drop-after-apply".into(),
            Fault::Read(ReadFault::Drop) => "drop".into(),
            Fault::Script(ScriptFault::Failure) => "status-failure".into(),
        }
    }

    /// Whether the client's timeout must be short for the case to be quick.
    fn stalls(&self) -> bool {
        matches!(
            self,
            Fault::Script(ScriptFault::StallNotApplied(_))
                | Fault::Script(ScriptFault::AppliedAnswerLate(_))
                | Fault::Read(ReadFault::Stall(_))
        )
    }

    /// What the faulted run must do, when the batch it hits holds `batch_ops` ops (none for a
    /// read). One fault is absorbed by the retries: the device busy for a moment, an error or
    /// a timeout whose outcome the sink settles by re-reading, a refused script re-sent op by
    /// op. A refused script of one op is that op refused: reported, and left to the next
    /// cycle. A device asking to be left alone for longer than the retry budget ends the run,
    /// with exit 1 and the reason.
    fn expected(&self, batch_ops: usize) -> Expect {
        match self {
            Fault::Script(ScriptFault::Busy {
                retry_after_secs: Some(RETRY_AFTER_BEYOND_BUDGET),
            }) => Expect::Fails("FAILED: applying an incremental script: the device stayed busy (409) for 1 attempt over "),
            Fault::Read(ReadFault::Busy {
                retry_after_secs: Some(RETRY_AFTER_BEYOND_BUDGET),
            }) => Expect::Fails("FAILED: reading the "),
            Fault::Script(ScriptFault::Failure) if batch_ops == 1 => Expect::Refused,
            _ => Expect::Absorbed,
        }
    }
}

enum Expect {
    /// Exit 0, every op applied in the one run.
    Absorbed,
    /// Exit 0, every op but one applied, the one reported as refused by the SBC.
    Refused,
    /// Exit 1, and the first line starts with this.
    Fails(&'static str),
}

struct Case {
    fault: Fault,
    stage: Stage,
    situation: Situation,
}

impl Case {
    fn name(&self) -> String {
        format!(
            "fault={} stage={} situation={}",
            self.fault.name(),
            self.stage.name(),
            self.situation.name()
        )
    }
}

/// Runs one case; returns its outcome for the table.
fn run_case(case: &Case) -> String {
    let name = case.name();
    let control = control(case.situation);
    let timeout = if case.fault.stalls() {
        SHORT_TIMEOUT
    } else {
        "5s"
    };
    let rig = rig_for(case.situation, timeout);
    let foreign = rig.foreign_rules();
    {
        let mut device = rig.sbc.state();
        match (&case.fault, case.stage) {
            (Fault::Read(fault), Stage::ReadStatus) => device.fault_read_in(1, fault.clone()),
            (Fault::Read(fault), Stage::ReadScript) => device.fault_read_in(2, fault.clone()),
            (Fault::Script(fault), stage) => {
                device.fault_script_in(stage.batch(control.batches), fault.clone())
            }
            (Fault::Read(_), stage) => panic!("{name}: a read fault at {stage:?}"),
        }
    }
    let started = Instant::now();
    let writes = rig.writes();
    let faulted = rig.dialsync(&["sync"]);
    let took = started.elapsed();
    assert_eq!(
        rig.sbc.state().pending_faults(),
        Vec::<String>::new(),
        "{name}: the fault never struck: {faulted}"
    );
    assert_no_route_lost(
        &rig,
        &case.situation.before(),
        &routing(&case.situation.layout()),
        &name,
    );
    assert_eq!(
        rig.foreign_rules(),
        foreign,
        "{name}: foreign rules changed"
    );
    let first_line = faulted.stdout.lines().next().unwrap_or("").to_string();
    let batch_ops = match case.stage.batch(control.batches) {
        0 => 0,
        last if last == control.batches => control.ops - (control.batches - 1) * BATCH,
        _ => BATCH,
    };
    let expected = case.fault.expected(batch_ops);
    match expected {
        Expect::Absorbed => {
            assert_eq!(faulted.code, Some(0), "{name}: {faulted}");
            assert!(first_line.starts_with("synced: "), "{name}: {faulted}");
            assert_eq!(
                applied(&faulted).map(|(ops, _)| ops),
                Some(control.ops),
                "{name}: every op applied: {faulted}"
            );
            assert!(!faulted.stdout.contains("refused"), "{name}: {faulted}");
        }
        Expect::Refused => {
            assert_eq!(faulted.code, Some(0), "{name}: {faulted}");
            assert!(first_line.starts_with("synced: "), "{name}: {faulted}");
            assert_eq!(
                applied(&faulted).map(|(ops, _)| ops),
                Some(control.ops - 1),
                "{name}: {faulted}"
            );
            let refusal = faulted
                .stdout
                .lines()
                .filter(|l| l.trim_start().starts_with("refused by the SBC, index "))
                .collect::<Vec<_>>();
            assert_eq!(refusal.len(), 1, "{name}: {faulted}");
            assert!(
                refusal[0].ends_with(
                    ": the device refused the script: Script execution failed: fault injected: \
                     the device refused the script"
                ),
                "{name}: {faulted}"
            );
        }
        Expect::Fails(message) => {
            assert_eq!(faulted.code, Some(1), "{name}: {faulted}");
            assert!(first_line.starts_with(message), "{name}: {faulted}");
            if let Fault::Read(_) = case.fault {
                assert_eq!(rig.writes(), writes, "{name}: written without reading");
            }
            if let Fault::Script(ScriptFault::Busy { .. }) | Fault::Read(ReadFault::Busy { .. }) =
                case.fault
            {
                assert!(
                    first_line.contains(&format!(
                        "asked to be retried in {RETRY_AFTER_BEYOND_BUDGET} s, past the retry budget"
                    )),
                    "{name}: {faulted}"
                );
            }
        }
    }
    let (converge_writes, _) = assert_converges(&rig, case.situation, &name);
    match expected {
        Expect::Absorbed => assert_eq!(converge_writes, 0, "{name}: converged already"),
        Expect::Refused => assert_eq!(converge_writes, 1, "{name}: the refused op, again"),
        Expect::Fails(_) => {}
    }
    rig.assert_no_unexpected();
    format!(
        "outcome=exit-{} writes-to-converge={converge_writes} took={}ms says={first_line:?}",
        faulted.code.map_or("signal".to_string(), |c| c.to_string()),
        took.as_millis()
    )
}

/// Runs every case, printing one line each, and fails naming every case that failed.
fn run_matrix(cases: Vec<Case>) {
    let mut failed = Vec::new();
    for case in &cases {
        match catch_unwind(AssertUnwindSafe(|| run_case(case))) {
            Ok(outcome) => println!("{} {outcome}", case.name()),
            Err(panic) => {
                let why = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                println!("{} outcome=TEST-FAILED", case.name());
                failed.push(format!("{}: {why}", case.name()));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} cases failed:\n{}",
        failed.len(),
        failed.join("\n\n")
    );
}

fn script_faults() -> Vec<ScriptFault> {
    vec![
        ScriptFault::Busy {
            retry_after_secs: None,
        },
        ScriptFault::Busy {
            retry_after_secs: Some(1),
        },
        ScriptFault::Busy {
            retry_after_secs: Some(RETRY_AFTER_BEYOND_BUDGET),
        },
        ScriptFault::ServerError,
        ScriptFault::StallNotApplied(STALL),
        ScriptFault::AppliedAnswerLate(STALL),
        ScriptFault::DropBeforeApply,
        ScriptFault::DropAfterApply,
        ScriptFault::Failure,
    ]
}

fn write_cases(situation: Situation) -> Vec<Case> {
    let mut cases = Vec::new();
    for fault in script_faults() {
        for stage in [Stage::FirstBatch, Stage::MiddleBatch, Stage::LastBatch] {
            cases.push(Case {
                fault: Fault::Script(fault.clone()),
                stage,
                situation,
            });
        }
    }
    cases
}

#[test]
fn faults_while_writing_a_first_sync() {
    run_matrix(write_cases(Situation::FirstSync));
}

#[test]
fn faults_while_writing_a_churn() {
    run_matrix(write_cases(Situation::Churn));
}

#[test]
fn faults_while_reading_before_planning() {
    let faults = [
        ReadFault::Busy {
            retry_after_secs: None,
        },
        ReadFault::Busy {
            retry_after_secs: Some(RETRY_AFTER_BEYOND_BUDGET),
        },
        ReadFault::ServerError,
        ReadFault::Stall(STALL),
        ReadFault::Drop,
    ];
    let mut cases = Vec::new();
    for situation in [Situation::FirstSync, Situation::Churn] {
        for fault in &faults {
            for stage in [Stage::ReadStatus, Stage::ReadScript] {
                cases.push(Case {
                    fault: Fault::Read(fault.clone()),
                    stage,
                    situation,
                });
            }
        }
    }
    run_matrix(cases);
}

/// A small, seedable generator (splitmix64), so that a failing seed replays exactly on any
/// machine.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
}

/// Latency of every SBC request while a sync is being killed: it stretches the apply so that
/// a kill lands inside it.
const KILL_LATENCY: Duration = Duration::from_millis(25);

/// `dialsync sync` killed with SIGKILL at a seeded random moment of its apply: whatever was
/// in flight, the dial plan routes every number to its old or new tag, and the next sync
/// settles the journal, converges, and leaves nothing to write.
#[test]
fn sigkill_at_random_points_of_an_apply() {
    use std::os::unix::process::ExitStatusExt;
    let seeds: u64 = std::env::var("DIALSYNC_KILL_SEEDS")
        .ok()
        .map(|v| v.parse().expect("DIALSYNC_KILL_SEEDS is a number"))
        .unwrap_or(12);
    for seed in 1..=seeds {
        let situation = if seed % 2 == 0 {
            Situation::Churn
        } else {
            Situation::FirstSync
        };
        let context = format!("seed={seed} situation={}", situation.name());
        let control = control(situation);
        let rig = rig_for(situation, "5s");
        let foreign = rig.foreign_rules();
        rig.sbc.state().faults.latency = KILL_LATENCY;
        // The window is about the apply's length: every batch and the reads around it, each
        // taking the latency and as long again to render, parse and journal.
        let window = 2 * KILL_LATENCY.as_millis() as u64 * (control.batches as u64 + 1);
        let delay = Duration::from_millis(SplitMix64(seed).below(window));
        let mut child = command()
            .args(["sync", "--config"])
            .arg(rig.config_path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dialsync starts");
        // From the first request to the SBC, not from the spawn: how long a process takes
        // to start depends on the machine's load, and the point is to kill inside the apply.
        wait_for(
            &format!("{context}: the first request"),
            Duration::from_secs(20),
            || (rig.sbc.state().reads_received > 0).then_some(()),
        );
        std::thread::sleep(delay);
        let _ = child.kill();
        let status = child.wait().expect("wait");
        // A request already inside the emulator may still land after the kill: let it, so
        // the invariant is checked on what the device keeps.
        std::thread::sleep(KILL_LATENCY * 4);
        let (applied_at_kill, received) = {
            let device = rig.sbc.state();
            (device.applied_scripts, device.scripts_received)
        };
        let point = if status.signal() == Some(9) {
            format!(
                "killed {}ms into the apply, {applied_at_kill} of {} batches applied, \
                 {received} sent",
                delay.as_millis(),
                control.batches
            )
        } else {
            format!("finished before the kill ({status})")
        };
        assert_no_route_lost(
            &rig,
            &situation.before(),
            &routing(&situation.layout()),
            &context,
        );
        assert_eq!(
            rig.foreign_rules(),
            foreign,
            "{context}: foreign rules changed"
        );
        rig.sbc.state().faults.latency = Duration::ZERO;
        let (converge_writes, converge) = assert_converges(&rig, situation, &context);
        rig.assert_no_unexpected();
        let settled = converge
            .stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("settled an interrupted apply: "))
            .unwrap_or("no journal to settle");
        println!("{context} {point}; settled: {settled}; writes-to-converge={converge_writes}");
    }
}

/// The device refuses one rule of a churn (a 200 with `"status": "failure"` to its batch and
/// to the rule sent alone): the rule that was to take over the numbers of another is refused,
/// so the op that moves that other rule away must not be sent either, or those numbers go
/// unrouted. The run reports both, the rest of the plan lands, and the next cycle retries.
#[test]
fn a_refused_rule_holds_back_the_ops_that_depend_on_it() {
    let situation = Situation::Churn;
    let rig = rig_for(situation, "5s");
    let plan = rig.dialsync(&["plan", "--json"]);
    assert_eq!(plan.code, Some(2), "{plan}");
    let plan = plan.json();
    let ops = plan["ops"].as_array().expect("ops");
    // Block 9 grows over block 10's numbers, whose rule moves elsewhere later in the plan.
    let takeover = ops
        .iter()
        .position(|op| op["after"]["prefix"] == "+3227000[090-102]#")
        .expect("the takeover is planned");
    let refused_index = ops[takeover]["index"].as_u64().expect("index");
    let (batch, within) = (takeover / BATCH + 1, takeover % BATCH);
    {
        let mut device = rig.sbc.state();
        device.fault_script_in(batch, ScriptFault::Failure);
        // Sent one by one after its batch is refused: the batch's ops before it, then it.
        device.fault_script_in(batch + 1 + within, ScriptFault::Failure);
    }
    let foreign = rig.foreign_rules();
    let faulted = rig.dialsync(&["sync"]);
    assert_eq!(rig.sbc.state().pending_faults(), Vec::<String>::new());
    assert_no_route_lost(
        &rig,
        &situation.before(),
        &routing(&situation.layout()),
        "refused takeover",
    );
    assert_eq!(rig.foreign_rules(), foreign);
    assert_eq!(faulted.code, Some(0), "{faulted}");
    assert!(
        faulted.stdout.contains(&format!(
            "refused by the SBC, index {refused_index}: the device refused the script"
        )),
        "{faulted}"
    );
    let held: Vec<&str> = faulted
        .stdout
        .lines()
        .filter(|l| {
            l.contains(&format!(
                "held back: it touches numbers of rule {refused_index}, which the SBC refused"
            ))
        })
        .collect();
    assert!(!held.is_empty(), "{faulted}");
    let (converge_writes, _) = assert_converges(&rig, situation, "refused takeover");
    rig.assert_no_unexpected();
    println!(
        "fault=status-failure-one-rule stage=batch-{batch} situation=churn outcome=exit-{} \
         held-back={} writes-to-converge={converge_writes}",
        faulted.code.unwrap_or(-1),
        held.len()
    );
}
