//! The lookup benchmark of issue 14: `dialsync lookup` at the scale of a large operator, the
//! whole command (load included), and the rule index it stands on.
//!
//! A state database of 100,000 rules is written through the store's API: 90,000 rules
//! dialsync owns, one per run of consecutive numbers (`+3226120[3-7]#`), across five country
//! codes and 2,000 tenants, 1 % of them with a hand-edited tag; and 10,000 foreign rules as
//! Live Platform writes them (one number, no `#`, an FQDN tag), half of them inside runs, where
//! they win. One file source's snapshot assigns every run. A file of 1,000,000 numbers (90 %
//! inside runs, 10 % in a country code no rule covers, so misses count) is looked up by the
//! release binary, `--csv` into a pipe; its exit code and its rows are checked.
//!
//! Figures, one `name=value` line each (`#` lines are commentary), each the best of several
//! runs on this shared, noisy machine:
//! - `lookup_cli_numbers_per_s`: the whole command, load included;
//! - `rule_index_build_ms`: the rule index over the 100,000 rules;
//! - `lookup_rule_index_mops`, `lookup_fxhash_mops` and their ratio, one lookup at a time on
//!   both sides, over the same probes (misses included), after checking that both agree with
//!   an independent expectation built by the generator;
//! - `lookup_state_mb`: what the daemon holds for `/lookup` once loaded, counted by the
//!   bench's own allocator.
//!
//! `cargo bench --bench lookup`; `-- --quick` uses 100,000 numbers and 10,000 rules. A figure
//! is one function taking the [`Fixture`]; a new one is one more call in `main`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fs;
use std::hint::black_box;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dialsync::app::lookup::LookupState;
use dialsync::config::Config;
use dialsync::dialplan::pattern::{best_match, Pattern};
use dialsync::dialplan::rule::{DialPlanRule, Tag};
use dialsync::dialplan::rule_index::RuleIndex;
use dialsync::number::{Number, NumberRange};
use dialsync::resolve::{Coverage, Entry, Provenance};
use dialsync::store::{MirrorRule, Store};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rustc_hash::FxHashMap;

const SEED: u64 = 0x100C_0014;
const TENANTS: usize = 2_000;
/// Country code and national significant number length.
const COUNTRIES: [(u64, u32); 5] = [(32, 9), (31, 9), (44, 10), (49, 10), (33, 9)];
/// The country code of the misses: no rule holds a number of it.
const NOWHERE: (u64, u32) = (39, 9);
const REPETITIONS: usize = 3;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rules, numbers) = if quick {
        (10_000, 100_000)
    } else {
        (100_000, 1_000_000)
    };
    let fixture = Fixture::build(rules, numbers);
    println!(
        "# {} rules ({} owned, {} foreign), {} numbers",
        fixture.rules.len(),
        fixture.rules.iter().filter(|r| r.owned).count(),
        fixture.rules.iter().filter(|r| !r.owned).count(),
        fixture.numbers.len()
    );
    lookup_cli(&fixture);
    rule_index(&fixture);
    lookup_state(&fixture);
}

/// Counts the bytes the bench holds on the heap, so that what a loaded state keeps can be
/// read as the difference before and after it is built.
struct CountingAllocator;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged; only a counter is kept.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size, Ordering::Relaxed);
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// What the daemon holds for `/lookup` once its cache is built: the state loaded from the
/// database (the mirror, the snapshots' entries, their resolution and the rule index), as
/// heap bytes the load leaves allocated.
fn lookup_state(fixture: &Fixture) {
    let config = Config::load(&fixture.config).expect("the bench's config");
    let store = Store::open(&config.agent.state_db).expect("state database");
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    let state = LookupState::load(&config, &store).expect("the state loads");
    let held = LIVE_BYTES.load(Ordering::Relaxed).saturating_sub(before);
    println!("# lookup state: {state:?}");
    println!("lookup_state_mb={:.1}", held as f64 / 1e6);
    println!(
        "lookup_state_bytes_per_rule={:.0}",
        held as f64 / fixture.rules.len() as f64
    );
}

/// What every figure runs against: the state database, its config, the numbers file, and the
/// generator's own expectation of each number's winning rule.
struct Fixture {
    _dir: tempfile::TempDir,
    config: PathBuf,
    numbers_file: PathBuf,
    /// The mirror as stored, ordered by index (position = rule index).
    rules: Vec<MirrorRule>,
    numbers: Vec<Number>,
    /// The rule index (in `rules`) the SBC picks for each number inside a run, by number key,
    /// worked out from how the rules were generated, not by any dialsync code.
    expected: FxHashMap<u64, u32>,
}

/// One run of consecutive numbers within one block of ten, assigned to one tenant.
struct Run {
    base: u64,
    lo: u64,
    hi: u64,
    tenant: usize,
}

impl Fixture {
    fn build(rule_count: usize, number_count: usize) -> Fixture {
        let started = Instant::now();
        let mut rng = SmallRng::seed_from_u64(SEED);
        let owned_count = rule_count * 9 / 10;
        let foreign_count = rule_count - owned_count;

        // Runs: distinct blocks of ten (`base`), a sub-range of each, at least two numbers so
        // a per-number foreign rule inside one always wins by its last digit.
        let mut runs: Vec<Run> = Vec::with_capacity(owned_count);
        let mut used = rustc_hash::FxHashSet::default();
        while runs.len() < owned_count {
            let (cc, nsn) = COUNTRIES[rng.random_range(0..COUNTRIES.len())];
            let base = cc * 10u64.pow(nsn - 1) + rng.random_range(0..10u64.pow(nsn - 1));
            if !used.insert(base) {
                continue;
            }
            let lo = rng.random_range(0..9u64);
            let hi = rng.random_range(lo + 1..10);
            runs.push(Run {
                base,
                lo,
                hi,
                tenant: rng.random_range(0..TENANTS),
            });
        }

        let mut rules = Vec::with_capacity(rule_count);
        let mut entries = Vec::with_capacity(owned_count);
        let source = Arc::new("static".to_string());
        let mut expected = FxHashMap::default();
        for (i, run) in runs.iter().enumerate() {
            let desired = format!("Trunk=t{}", run.tenant);
            // 1 % hand-edited on the SBC: misrouted until the next sync.
            let tag = if i % 100 == 7 {
                "Trunk=edited".to_string()
            } else {
                desired.clone()
            };
            let prefix = format!("+{}[{}-{}]#", run.base, run.lo, run.hi);
            rules.push(MirrorRule {
                rule: DialPlanRule {
                    index: rules.len() as u32,
                    name: "dialsync".into(),
                    prefix: Pattern::parse(&prefix).expect("a run's prefix parses"),
                    tag: Tag::held(&tag),
                },
                owned: true,
            });
            let (lo, hi) = (run.base * 10 + run.lo, run.base * 10 + run.hi);
            entries.push(Entry {
                coverage: Coverage::Range(
                    NumberRange::new(number(lo), number(hi), 10).expect("a run is a range"),
                ),
                tag: Tag::held(&desired),
                provenance: Provenance {
                    source: Arc::clone(&source),
                    item: format!("line {}", i + 2).into(),
                },
            });
            for value in lo..=hi {
                expected.insert(number(value).key(), i as u32);
            }
        }
        // Foreign rules: half on a number inside a run (it wins there: a digit beats the
        // bracket), half on numbers no run holds.
        let mut foreign = 0;
        while foreign < foreign_count {
            let run = &runs[rng.random_range(0..runs.len())];
            let value = if foreign % 2 == 0 {
                run.base * 10 + rng.random_range(run.lo..=run.hi)
            } else {
                // The block after a run's own, unless a run holds it.
                let base = run.base + 1;
                if used.contains(&base) {
                    continue;
                }
                base * 10 + rng.random_range(0..10)
            };
            let key = number(value).key();
            if expected
                .get(&key)
                .is_some_and(|&i| !rules[i as usize].owned)
            {
                continue; // one foreign rule a number
            }
            let position = rules.len() as u32;
            rules.push(MirrorRule {
                rule: DialPlanRule {
                    index: position,
                    name: "LivePlatform".into(),
                    prefix: Pattern::parse(&format!("+{value}")).expect("a number parses"),
                    tag: Tag::held("sandbox1.audiocodes.be"),
                },
                owned: false,
            });
            expected.insert(key, position);
            foreign += 1;
        }

        let dir = tempfile::tempdir().expect("temporary directory");
        let state_db = dir.path().join("state.db");
        let mut store = Store::open(&state_db).expect("state database");
        store.replace_mirror(&rules).expect("mirror stored");
        store
            .save_snapshot("static", 1_700_000_000, &entries)
            .expect("snapshot stored");
        drop(store);
        let config = write_config(dir.path(), &state_db);

        // 90 % inside runs (hits, some shadowed, some misrouted), 10 % misses.
        let numbers: Vec<Number> = (0..number_count)
            .map(|i| {
                if i % 10 == 9 {
                    let (cc, nsn) = NOWHERE;
                    number(cc * 10u64.pow(nsn) + rng.random_range(0..10u64.pow(nsn)))
                } else {
                    let run = &runs[rng.random_range(0..runs.len())];
                    number(run.base * 10 + rng.random_range(run.lo..=run.hi))
                }
            })
            .collect();
        let numbers_file = dir.path().join("numbers.txt");
        let mut file = BufWriter::new(fs::File::create(&numbers_file).expect("numbers file"));
        writeln!(file, "# {} numbers", numbers.len()).expect("write numbers");
        for n in &numbers {
            writeln!(file, "{n}").expect("write numbers");
        }
        file.flush().expect("write numbers");
        println!(
            "# fixture built in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Fixture {
            _dir: dir,
            config,
            numbers_file,
            rules,
            numbers,
            expected,
        }
    }
}

fn number(value: u64) -> Number {
    Number::from_u64(value).expect("generated numbers are numbers")
}

/// A config whose one source is the snapshot's, and an SBC that is never asked.
fn write_config(dir: &Path, state_db: &Path) -> PathBuf {
    let password = dir.join("sbc-password");
    fs::write(&password, "bench-sbc").expect("secret");
    fs::set_permissions(&password, fs::Permissions::from_mode(0o600)).expect("chmod");
    fs::write(dir.join("static.csv"), "start,end,tag\n").expect("static file");
    let config = dir.join("dialsync.toml");
    fs::write(
        &config,
        format!(
            r#"[agent]
policy = "sync"
state_db = "{state_db}"

[sbc]
url = "https://127.0.0.1:9"
username = "Admin"
password_file = "{password}"

[[sources]]
name = "static"
kind = "file"
path = "{static_csv}"
"#,
            state_db = state_db.display(),
            password = password.display(),
            static_csv = dir.join("static.csv").display(),
        ),
    )
    .expect("config");
    config
}

/// `dialsync lookup --file NUMBERS --csv`, the whole command: best of [`REPETITIONS`], exit
/// code and rows checked.
fn lookup_cli(fixture: &Fixture) {
    let mut best = Duration::MAX;
    for _ in 0..REPETITIONS {
        let started = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_dialsync"))
            .arg("lookup")
            .arg("--file")
            .arg(&fixture.numbers_file)
            .arg("--csv")
            .arg("--config")
            .arg(&fixture.config)
            .env_remove("DIALSYNC_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("dialsync runs");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut verdicts: FxHashMap<String, u64> = FxHashMap::default();
        let mut rows = 0u64;
        for line in BufReader::with_capacity(1 << 16, stdout).lines().skip(1) {
            let line = line.expect("CSV output is text");
            rows += 1;
            // `...,verdict,error`: the error column is empty on a number's row.
            let verdict = line.rsplit(',').nth(1).unwrap_or("").to_string();
            *verdicts.entry(verdict).or_default() += 1;
        }
        let output = child.wait_with_output().expect("dialsync finishes");
        let elapsed = started.elapsed();
        assert!(
            output.status.success(),
            "dialsync lookup failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(rows, fixture.numbers.len() as u64, "one row a number");
        let misses = fixture.numbers.len() as u64 / 10;
        assert_eq!(
            verdicts.get("not-desired").copied(),
            Some(misses),
            "{verdicts:?}"
        );
        for verdict in ["routed", "misrouted", "shadowed"] {
            assert!(
                verdicts.get(verdict).is_some_and(|&n| n > 0),
                "{verdicts:?}"
            );
        }
        best = best.min(elapsed);
        println!(
            "# lookup verdicts: {verdicts:?} in {:.2} s",
            elapsed.as_secs_f64()
        );
    }
    println!("lookup_cli_ms={:.0}", best.as_secs_f64() * 1e3);
    println!(
        "lookup_cli_numbers_per_s={:.0}",
        fixture.numbers.len() as f64 / best.as_secs_f64()
    );
}

/// The rule index over the mirror: build time, and lookups one at a time against an
/// `FxHashMap` holding every number's answer, on the same probes (misses included).
fn rule_index(fixture: &Fixture) {
    let patterns: Vec<(u32, &Pattern)> = fixture
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| (i as u32, &r.rule.prefix))
        .collect();
    let mut build = Duration::MAX;
    for _ in 0..REPETITIONS {
        let rules = patterns.clone();
        let started = Instant::now();
        let index = black_box(RuleIndex::build(rules).expect("the dial plan indexes"));
        build = build.min(started.elapsed());
        drop(index);
    }
    let index = RuleIndex::build(patterns.iter().copied()).expect("the dial plan indexes");

    // Agreement first: with the generator's expectation on every probe, and with the
    // brute-force best match on a sample.
    let probes: Vec<Number> = fixture.numbers.clone();
    for &number in &probes {
        assert_eq!(
            index.lookup(number),
            fixture.expected.get(&number.key()).copied(),
            "{number}"
        );
    }
    for &number in probes.iter().step_by(probes.len() / 200) {
        let brute = best_match(
            patterns.iter().map(|&(i, p)| (i, p, &())),
            &number.to_string(),
        );
        assert_eq!(index.lookup(number), brute.map(|(i, _)| i), "{number}");
    }

    let index_mops = best_mops(&probes, |n| index.lookup(n));
    let map = &fixture.expected;
    let fxhash_mops = best_mops(&probes, |n| map.get(&n.key()).copied());
    println!(
        "# rule index: {} rules, {} intervals, {} residual",
        patterns.len(),
        index.len(),
        index.residual_rules()
    );
    println!("rule_index_build_ms={:.1}", build.as_secs_f64() * 1e3);
    println!("lookup_rule_index_mops={index_mops:.1}");
    println!("lookup_fxhash_mops={fxhash_mops:.1}");
    println!(
        "lookup_rule_index_single_over_fxhash_single={:.2}",
        index_mops / fxhash_mops
    );
}

/// Millions of lookups a second, one at a time, best of [`REPETITIONS`].
fn best_mops(probes: &[Number], lookup: impl Fn(Number) -> Option<u32>) -> f64 {
    let mut best = Duration::MAX;
    for _ in 0..REPETITIONS {
        let started = Instant::now();
        let mut found = 0u64;
        for &number in probes {
            if let Some(rule) = lookup(black_box(number)) {
                found = found.wrapping_add(u64::from(rule) + 1);
            }
        }
        black_box(found);
        best = best.min(started.elapsed());
    }
    probes.len() as f64 / best.as_secs_f64() / 1e6
}
