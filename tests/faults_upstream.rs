//! The upstream half of the fault matrix: each HTTP source (Fusion, APIO, Live Platform) meets
//! each body fault on the list endpoint it reads its numbers from, with the real binary
//! (`dialsync sync`) against the emulators.
//!
//! For every source × fault: a good sync first (so a last good snapshot exists), then the
//! fault on every list request and a sync, then the fault cleared and a sync again. What must
//! hold: no panic; the run names the source and the reason; the exit code is the agent's
//! contract (DESIGN.md §6/§7: 1 for a source that failed and was replaced by its snapshot);
//! every number of every source keeps its tag on the SBC and nothing is written; once the
//! fault is gone the next sync converges with zero writes. One line per case
//! (`fault=... source=... outcome=...`) is printed for the table (`--nocapture`).
//!
//! A last case has the fault hit the very first sync, with no snapshot to stand in: deletes
//! are held back (the policy narrows to upsert-only) and the other sources still land.

mod common;

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::config::{apio_source, livecloud_source, seed_apio};
use common::emulators::{start_apio, start_live};
use common::sbc::sim_rule;
use common::{command, Out, Rig, Settings};
use dialsync::sim::apio::{ApioSim, ApioSimConfig};
use dialsync::sim::livecloud::{live_number, LiveCloudSim, LiveSimConfig};
use dialsync::sim::{apio::Fault as ApioFault, fusion::Fault as FusionFault};
use dialsync::sim::{livecloud::Fault as LiveFault, BodyFault, WrongShape};

/// "50 MB".
const HUGE: usize = 50_000_000;
const TENANT: &str = "3371606b-f589-4b50-b827-1a95cacf7225";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Upstream {
    Fusion,
    Apio,
    Live,
}

impl Upstream {
    fn kind(self) -> &'static str {
        match self {
            Upstream::Fusion => "fusion",
            Upstream::Apio => "apio",
            Upstream::Live => "livecloud",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Upstream::Fusion => "fusion",
            Upstream::Apio => "apio",
            Upstream::Live => "live",
        }
    }
}

/// The rig (SBC, Fusion, static file) plus APIO and Live Platform sources.
struct Lab {
    rig: Rig,
    apio: ApioSim,
    live: LiveCloudSim,
}

impl Lab {
    fn start() -> Lab {
        let rig = Rig::start();
        let apio = rig.block_on(start_apio(ApioSimConfig::default()));
        seed_apio(&apio);
        let live = rig.block_on(start_live(
            LiveSimConfig {
                rate_max: 1000,
                ..LiveSimConfig::default()
            },
            Vec::new(),
        ));
        live.state().numbers.insert(
            TENANT.into(),
            (1..=20)
                .map(|i| live_number(&format!("+3228000{i:03}"), TENANT, "Active"))
                .collect(),
        );
        rig.secret("apio-password", &apio.config().password);
        rig.secret("live-secret", &live.config().client_secret);
        let lab = Lab { rig, apio, live };
        lab.rig.write_config(&lab.settings("sync"));
        lab
    }

    fn settings(&self, policy: &'static str) -> Settings {
        let apio = apio_source(&self.apio, self.rig.path("apio-password").display(), "2s");
        let live = livecloud_source(
            &self.live,
            self.rig.path("live-secret").display(),
            TENANT,
            "2s",
        );
        Settings {
            policy,
            extra: format!("\n{apio}\n{live}"),
            ..Settings::default()
        }
    }

    /// Every number each source routes, with the tag it must have on the SBC.
    fn expected(&self) -> Vec<(Upstream, String, &'static str)> {
        let mut all = Vec::new();
        for n in 3226120000u64..3226120100 {
            all.push((Upstream::Fusion, format!("+{n}"), "Trunk=acme"));
        }
        for n in 3226130000u64..3226130050 {
            all.push((Upstream::Fusion, format!("+{n}"), "Trunk=globex"));
        }
        for n in (3227000000u64..3227000010).chain([3227000100]) {
            all.push((Upstream::Apio, format!("+{n}"), "Trunk=apio"));
        }
        for i in 1..=20 {
            all.push((Upstream::Live, format!("+3228000{i:03}"), "Trunk=teams"));
        }
        all
    }

    /// The numbers of `only` (or of every source) whose tag on the SBC is not theirs.
    fn misrouted(&self, only: Option<Upstream>) -> Vec<String> {
        let mut wrong = Vec::new();
        for (up, number, tag) in self.expected() {
            if only.is_some_and(|o| o != up) {
                continue;
            }
            let found = self.rig.sbc_tag(&number);
            if found.as_deref() != Some(tag) {
                wrong.push(format!("{number}: {found:?}, want {tag}"));
            }
        }
        for i in 0..10 {
            let number = format!("+322500000{i}");
            if self.rig.sbc_tag(&number).as_deref() != Some("Trunk=static") {
                wrong.push(format!("{number} (static)"));
            }
        }
        wrong
    }

    /// Sets `fault` on every list request of `up` (None clears it).
    fn fault(&self, up: Upstream, fault: Option<BodyFault>) {
        match up {
            Upstream::Fusion => self.rig.fusion.state().sticky_fault = fault.map(FusionFault::Body),
            Upstream::Apio => self.apio.state().sticky_fault = fault.map(ApioFault::Body),
            Upstream::Live => self.live.state().sticky_fault = fault.map(LiveFault::Body),
        }
    }

    fn assert_no_unexpected(&self) {
        self.rig.assert_no_unexpected();
        assert_eq!(self.apio.state().unexpected, Vec::<String>::new());
        assert_eq!(self.live.state().unexpected, Vec::<String>::new());
    }
}

/// `dialsync sync`, with the child's peak resident memory (VmHWM, KiB) read from
/// `/proc/<pid>/status` while it runs (the high-water mark only grows; the last reading
/// before it exits is kept).
fn sync_measured(rig: &Rig) -> (Out, u64) {
    let mut child = command()
        .arg("sync")
        .arg("--config")
        .arg(rig.config_path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dialsync");
    let status_path = format!("/proc/{}/status", child.id());
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stdout.read_to_end(&mut text);
        text
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text);
        text
    });
    let mut peak_kib = 0u64;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_path) {
            let hwm = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
            if let Some(hwm) = hwm {
                peak_kib = peak_kib.max(hwm);
            }
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let out = Out {
        code: status.code(),
        stdout: String::from_utf8_lossy(&out_reader.join().expect("stdout")).into_owned(),
        stderr: String::from_utf8_lossy(&err_reader.join().expect("stderr")).into_owned(),
    };
    (out, peak_kib)
}

/// What a faulty sync must show.
struct Expect {
    /// The exit code.
    code: i32,
    /// Texts the output must hold (beyond the source's name).
    says: &'static [&'static str],
}

/// The first line of the output that names `source` as failed (or blocked), for the table.
fn operator_line(out: &Out, source: &str) -> String {
    let text = format!("{}{}", out.stdout, out.stderr);
    let needle = format!("source {source} (");
    text.lines()
        .find(|l| l.contains(&needle))
        .or_else(|| text.lines().find(|l| l.contains("BLOCKED")))
        .unwrap_or("")
        .trim()
        .chars()
        .take(400)
        .collect()
}

/// One case on a lab that has converged: inject, sync, check, clear, sync, check.
fn case(lab: &Lab, up: Upstream, label: &str, fault: BodyFault, expect: &Expect) {
    let started = Instant::now();
    let writes = lab.rig.writes();
    lab.fault(up, Some(fault));
    let (out, peak_kib) = sync_measured(&lab.rig);
    lab.fault(up, None);
    let faulty_s = started.elapsed().as_secs_f64();
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        !all.contains("panicked"),
        "{label}/{}: a panic:\n{out}",
        up.name()
    );
    assert_eq!(
        out.code,
        Some(expect.code),
        "{label}/{}: exit code\n{out}",
        up.name()
    );
    let line = operator_line(&out, up.name());
    assert!(
        line.contains(&format!("source {} (", up.name())),
        "{label}/{}: the source is not named:\n{out}",
        up.name()
    );
    if expect.code == 1 {
        // Failed, and its last good snapshot stood in.
        assert!(
            line.contains(&format!("source {} ({}): stale,", up.name(), up.kind())),
            "{label}/{}: not stale:\n{out}",
            up.name()
        );
    }
    for said in expect.says {
        assert!(
            all.contains(said),
            "{label}/{}: no {said:?} in:\n{out}",
            up.name()
        );
    }
    assert_eq!(
        lab.misrouted(None),
        Vec::<String>::new(),
        "{label}/{}: routes lost or changed\n{out}",
        up.name()
    );
    assert_eq!(
        lab.rig.writes(),
        writes,
        "{label}/{}: the faulty sync wrote\n{out}",
        up.name()
    );
    let again = lab.rig.dialsync(&["sync"]);
    assert_eq!(
        again.code,
        Some(0),
        "{label}/{}: no convergence\n{again}",
        up.name()
    );
    let converge_writes = lab.rig.writes() - writes;
    assert_eq!(converge_writes, 0, "{label}/{}: {again}", up.name());
    lab.assert_no_unexpected();
    println!(
        "fault={label} source={} outcome=exit {} | {line} | routes kept | writes on \
         convergence {converge_writes} | peak RSS {:.1} MiB | {faulty_s:.1}s",
        up.name(),
        expect.code,
        peak_kib as f64 / 1024.0
    );
}

/// The faults and what each must show, the same for every source but the reasons' wording.
fn matrix(up: Upstream) -> Vec<(&'static str, BodyFault, Expect)> {
    let shape_says: &'static [&'static str] = match up {
        Upstream::Fusion => &["not of the documented shape", "expected a sequence"],
        Upstream::Apio => &["\"numbers\" is an object, expected an array"],
        Upstream::Live => &["\"data\" is an object, expected an array"],
    };
    let missing_says: &'static [&'static str] = match up {
        Upstream::Fusion => &["no phoneUsages list"],
        Upstream::Apio => &["no \"numbers\" list"],
        Upstream::Live => &["no \"data\" list"],
    };
    let array_says: &'static [&'static str] = match up {
        Upstream::Fusion => &["expected an object with phoneUsages"],
        Upstream::Apio => &["expected an object"],
        Upstream::Live => &["no integer currentPage"],
    };
    let integers_says: &'static [&'static str] = match up {
        Upstream::Fusion => &[
            "invalid type: integer",
            "expected a string",
            "every one of its 150 items was rejected",
        ],
        Upstream::Apio => &[
            "minPhoneNumber 3227000000 is not a string",
            "every one of its 2 items was rejected",
        ],
        Upstream::Live => &[
            "telephoneNumber 3228000001 is not a string",
            "every one of its 20 items was rejected",
        ],
    };
    vec![
        (
            "padded-50MB-json",
            BodyFault::Padded(HUGE),
            Expect { code: 0, says: &[] },
        ),
        (
            "50MB-not-json",
            BodyFault::NotJson(HUGE),
            Expect {
                code: 1,
                says: &["the answer is not valid JSON", "stale"],
            },
        ),
        (
            "slow-drip",
            BodyFault::Drip {
                chunk: 16,
                pause: Duration::from_millis(100),
            },
            Expect {
                code: 1,
                says: &["timed out after 2s"],
            },
        ),
        (
            "invalid-utf8",
            BodyFault::InvalidUtf8,
            Expect {
                code: 1,
                says: &["the answer is not valid UTF-8"],
            },
        ),
        (
            "list-as-object",
            BodyFault::Shape(WrongShape::ListAsObject),
            Expect {
                code: 1,
                says: shape_says,
            },
        ),
        (
            "list-missing",
            BodyFault::Shape(WrongShape::MissingList),
            Expect {
                code: 1,
                says: missing_says,
            },
        ),
        (
            "array-for-page",
            BodyFault::Shape(WrongShape::ArrayForPage),
            Expect {
                code: 1,
                says: array_says,
            },
        ),
        (
            "numbers-as-integers",
            BodyFault::Shape(WrongShape::NumbersAsIntegers),
            // Every item rejected is a failed fetch, not an emptied source: with
            // `allow_empty` an empty answer could delete every route of the source.
            Expect {
                code: 1,
                says: integers_says,
            },
        ),
    ]
}

fn run_matrix(up: Upstream) {
    let started = Instant::now();
    let lab = Lab::start();
    let first = lab.rig.dialsync(&["sync"]);
    assert_eq!(first.code, Some(0), "{first}");
    assert_eq!(lab.misrouted(None), Vec::<String>::new(), "{first}");
    let (steady, steady_kib) = sync_measured(&lab.rig);
    assert_eq!(steady.code, Some(0), "{steady}");
    println!(
        "fault=none source={} outcome=exit 0 | baseline peak RSS {:.1} MiB",
        up.name(),
        steady_kib as f64 / 1024.0
    );
    for (label, fault, expect) in matrix(up) {
        case(&lab, up, label, fault, &expect);
    }
    println!(
        "source={} matrix done in {:.1}s",
        up.name(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn fusion_faults_fall_back_on_the_last_good_snapshot() {
    run_matrix(Upstream::Fusion);
}

#[test]
fn apio_faults_fall_back_on_the_last_good_snapshot() {
    run_matrix(Upstream::Apio);
}

#[test]
fn livecloud_faults_fall_back_on_the_last_good_snapshot() {
    run_matrix(Upstream::Live);
}

/// The very first sync, and one source answers garbage: it has no snapshot to stand in, so
/// the cycle narrows to upsert-only (nothing is deleted, not even a rule the config no longer
/// wants), the others still land, and the next sync (fault gone) adds the rest.
#[test]
fn a_fault_on_the_first_sync_holds_deletes_back() {
    for up in [Upstream::Fusion, Upstream::Apio, Upstream::Live] {
        let lab = Lab::start();
        // A rule of dialsync's own that no source wants any more: a plain sync would delete it.
        lab.rig
            .sbc
            .state()
            .plans
            .get_mut(&0)
            .expect("OCDialPlan")
            .rules
            .insert(50, sim_rule("dialsync", "+3229999", "Trunk=old"));
        lab.fault(up, Some(BodyFault::NotJson(1_000_000)));
        let out = lab.rig.dialsync(&["sync"]);
        lab.fault(up, None);
        let all = format!("{}{}", out.stdout, out.stderr);
        assert!(!all.contains("panicked"), "{out}");
        assert_eq!(out.code, Some(1), "{out}");
        assert!(all.contains("the answer is not valid JSON"), "{out}");
        let line = operator_line(&out, up.name());
        assert!(line.contains("failed"), "{line}\n{out}");
        assert_eq!(
            lab.rig.sbc_tag("+32299991234").as_deref(),
            Some("Trunk=old"),
            "a delete went through with a source missing\n{out}"
        );
        for other in [Upstream::Fusion, Upstream::Apio, Upstream::Live] {
            if other != up {
                assert_eq!(
                    lab.misrouted(Some(other)),
                    Vec::<String>::new(),
                    "{} lost\n{out}",
                    other.name()
                );
            }
        }
        let next = lab.rig.dialsync(&["sync"]);
        assert_eq!(next.code, Some(0), "{next}");
        assert_eq!(lab.misrouted(None), Vec::<String>::new(), "{next}");
        assert_eq!(lab.rig.sbc_tag("+32299991234"), None, "{next}");
        let settled = lab.rig.writes();
        let again = lab.rig.dialsync(&["sync"]);
        assert_eq!(
            (again.code, lab.rig.writes()),
            (Some(0), settled),
            "{again}"
        );
        lab.assert_no_unexpected();
        println!(
            "fault=50MB-not-json(1MB) first-sync source={} outcome=exit 1 | {line} | deletes \
             held back (upsert-only), other sources added | next sync converges",
            up.name()
        );
    }
}
