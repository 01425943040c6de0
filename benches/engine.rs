//! The engine benchmark: the DESIGN.md §8 targets, measured as ratios within one run.
//!
//! `cargo bench --bench engine` runs 1,000,000 ranges; `-- --quick` runs 100,000. Every figure
//! is one `name=value` line (`#` lines are commentary), so the output can be diffed and parsed.
//! The machine this runs on is shared and noisy, so each measurement is the best of several
//! repetitions and every target is a ratio against a baseline timed in the same process on the
//! same data.

mod workloads;

use std::collections::HashSet;
use std::hint::black_box;
use std::time::{Duration, Instant};

use dialsync::compile::{self as compiler, Encoding};
use dialsync::dialplan::pattern::{best_match, Pattern};
use dialsync::dialplan::rule::DialPlanRule;
use dialsync::dialplan::rule::Tag;
use dialsync::dialplan::rule_index::RuleIndex;
use dialsync::index::sweep::{self as sweeper, Interval};
use dialsync::index::{self, KeyRange, RangeIndex};
use dialsync::number::{Number, POW10};
use dialsync::plan::{self as planner, PlanSettings, Policy, Route, Safety};
use dialsync::resolve::{self as resolver, Coverage, Entry, Mapping, Provenance};
use rustc_hash::FxHashMap;
use workloads::Workload;

const SEED: u64 = 0x5EED_D1A1;

struct Settings {
    ranges: usize,
    probes: usize,
    repetitions: usize,
}

fn main() {
    // Cargo passes `--bench` and libtest-style flags; only `--quick` means anything here.
    let quick = std::env::args().any(|arg| arg == "--quick");
    // `-- --lookups` runs the lookup comparison alone.
    let lookups_only = std::env::args().any(|arg| arg == "--lookups");
    let settings = if quick {
        Settings {
            ranges: 100_000,
            probes: 2_000_000,
            repetitions: 3,
        }
    } else {
        Settings {
            ranges: 1_000_000,
            probes: 10_000_000,
            repetitions: 5,
        }
    };
    println!("ranges={}", settings.ranges);

    let realistic = workloads::realistic(settings.ranges, SEED);
    describe(&realistic);
    let other = workloads::realistic(settings.ranges, SEED + 10);
    lookups("", [&realistic.ranges, &other.ranges], &settings);
    drop(other);
    if lookups_only {
        let adversarial = workloads::adversarial(settings.ranges, SEED + 2);
        let other = workloads::adversarial(settings.ranges, SEED + 12);
        describe(&adversarial);
        lookups(
            "adversarial_",
            [&adversarial.ranges, &other.ranges],
            &settings,
        );
        return;
    }
    memory("", &realistic.ranges);
    build("", &realistic.ranges, &settings);
    diff("", &realistic.ranges, &settings);
    diff_sorted("", &realistic.ranges, &settings);
    sweep("", &realistic, &settings);
    compile("", &realistic, &settings);
    planning("", &realistic, &settings);
    rule_index("", &realistic, &settings);

    let mixed = workloads::mixed(settings.ranges, SEED + 1);
    describe(&mixed);
    let other = workloads::mixed(settings.ranges, SEED + 11);
    lookups("mixed_", [&mixed.ranges, &other.ranges], &settings);
    drop(other);
    memory("mixed_", &mixed.ranges);
    build("mixed_", &mixed.ranges, &settings);

    // Aligned blocks compile to `x` suffixes only: the encoding's easiest case, kept as a
    // check that it stays one rule per block.
    let aligned = workloads::aligned(settings.ranges, SEED + 3);
    describe(&aligned);
    compile("aligned_", &aligned, &settings);

    let adversarial = workloads::adversarial(settings.ranges, SEED + 2);
    describe(&adversarial);
    let other = workloads::adversarial(settings.ranges, SEED + 12);
    lookups(
        "adversarial_",
        [&adversarial.ranges, &other.ranges],
        &settings,
    );
    drop(other);
    memory("adversarial_", &adversarial.ranges);
    build("adversarial_", &adversarial.ranges, &settings);
}

fn describe(workload: &Workload) {
    let numbers: u64 = workload.ranges.iter().map(|r| r.hi - r.lo + 1).sum();
    let tags: HashSet<u32> = workload.ranges.iter().map(|r| r.value).collect();
    println!(
        "# workload={} ranges={} numbers={} tags={} nested={} overlapping={}",
        workload.name,
        workload.ranges.len(),
        numbers,
        tags.len(),
        workload.nested.len(),
        workload.overlapping.len()
    );
}

/// The shortest of `repetitions` runs of `run`, each given fresh input from `prepare` (prepared
/// outside the timing, and dropped outside it too).
fn best_of<I, O>(
    repetitions: usize,
    mut prepare: impl FnMut() -> I,
    mut run: impl FnMut(I) -> O,
) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..repetitions {
        let input = prepare();
        let started = Instant::now();
        let output = black_box(run(black_box(input)));
        best = best.min(started.elapsed());
        drop(output);
    }
    best
}

fn ratio(numerator: Duration, denominator: Duration) -> f64 {
    numerator.as_secs_f64() / denominator.as_secs_f64()
}

/// One `sort_unstable` by `lo` of `ranges`: the baseline every bulk operation is compared with.
fn sort_baseline(ranges: &[KeyRange], settings: &Settings) -> Duration {
    best_of(
        settings.repetitions,
        || ranges.to_vec(),
        |mut copy| {
            copy.sort_unstable_by_key(|range| range.lo);
            copy
        },
    )
}

/// Share of probes that miss every range (numbers in the gaps between ranges).
const MISS_SHARE: f64 = 0.15;

/// Millions of lookups per second of `lookup` over `probes` (best of the repetitions), and a
/// checksum of what it found.
fn time_loop(
    probes: &[u64],
    settings: &Settings,
    lookup: impl Fn(u64) -> Option<u32>,
) -> (f64, u64) {
    let mut checksum = 0;
    let elapsed = best_of(
        settings.repetitions,
        || (),
        |()| {
            let mut sum = 0u64;
            for &probe in probes {
                if let Some(value) = lookup(black_box(probe)) {
                    sum += u64::from(value) + 1;
                }
            }
            checksum = sum;
            sum
        },
    );
    (probes.len() as f64 / elapsed.as_secs_f64() / 1e6, checksum)
}

/// Keys per batch, for the index's [`RangeIndex::lookup_batch`] and for the hash map's batched
/// loop alike: enough independent reads in flight to cover the index's chain of dependent ones.
const BATCH: usize = 32;

/// One data set for the lookup comparison: every structure over the same ranges, the probes,
/// and what an independent brute force says they should find.
struct LookupSet {
    index: RangeIndex,
    sorted: SortedRanges,
    exact: FxHashMap<u64, u32>,
    trie: DigitTrie,
    probes: Vec<u64>,
    /// The index's line for each probe, found before timing: the floor's input.
    lines: Vec<usize>,
    /// Sum over the probes of `value + 1` of the range holding each (0 for a miss), from the
    /// brute force.
    expected: u64,
}

impl LookupSet {
    /// `probes` draws from a pool of as many distinct numbers as there are ranges, each inside
    /// a range, and [`MISS_SHARE`] of draws from a pool of numbers in gaps. The hash map holds
    /// exactly the hit pool (one key per probed number, the value the brute force finds), the
    /// smallest exact-match table that answers these probes and so the hash map's best case: a
    /// map of every routed number would hold the workload's whole number count.
    fn new(ranges: &[KeyRange], total: usize, seed: u64) -> LookupSet {
        let index = RangeIndex::build(ranges.to_vec()).expect("workload ranges are disjoint");
        let sorted = SortedRanges::new(ranges);
        let hits = workloads::probes_inside(ranges, ranges.len(), seed ^ 1);
        let misses = workloads::probes_outside(ranges, ranges.len() / 4, seed ^ 4);
        let mut exact: FxHashMap<u64, u32> = FxHashMap::default();
        for &number in &hits {
            exact.insert(number, sorted.lookup(number).expect("probes inside hit"));
        }
        let hit_count = (total as f64 * (1.0 - MISS_SHARE)) as usize;
        let mut probes = workloads::draws(&hits, hit_count, seed ^ 2);
        probes.extend(workloads::draws(&misses, total - hit_count, seed ^ 3));
        workloads::shuffle(&mut probes, seed ^ 5);
        let expected = probes
            .iter()
            .filter_map(|&key| sorted.lookup(key))
            .map(|value| u64::from(value) + 1)
            .sum();
        let lines = probes.iter().map(|&key| index.line_for(key)).collect();
        LookupSet {
            trie: DigitTrie::new(ranges),
            index,
            lines,
            sorted,
            exact,
            probes,
            expected,
        }
    }

    /// Every probe, one by one: the index single and batched, the map, and the trie against
    /// the brute force (checksums only cover what the timed loops saw).
    fn check(&self) {
        for (at, chunk) in self.probes.chunks_exact(BATCH).enumerate() {
            let keys: &[u64; BATCH] = chunk.try_into().expect("chunks of BATCH");
            let batch = self.index.lookup_batch(keys);
            for (i, &key) in keys.iter().enumerate() {
                let truth = self.sorted.lookup(key);
                assert_eq!(self.index.lookup(key).map(|r| r.value), truth, "{key:#x}");
                assert_eq!(self.floor(at * BATCH + i, key), truth, "floor {key:#x}");
                assert_eq!(batch[i], truth, "batched {key:#x}");
                assert_eq!(self.exact.get(&key).copied(), truth, "map {key:#x}");
                assert_eq!(self.trie.lookup(key), truth, "trie {key:#x}");
            }
        }
        let misses = self
            .probes
            .iter()
            .filter(|&&key| self.sorted.lookup(key).is_none())
            .count();
        println!(
            "# probes={} misses={misses} ({:.0} %)",
            self.probes.len(),
            100.0 * misses as f64 / self.probes.len() as f64
        );
    }

    /// Probe `at` (`key`) as the index answers it when handed its line: the one read from
    /// memory and the search in it, with nothing before. The index finds the line with reads
    /// of cached tables, which this skips, so it is the most single lookups of this layout
    /// could reach however the line were found.
    #[inline(always)]
    fn floor(&self, at: usize, key: u64) -> Option<u32> {
        self.index
            .lookup_in_line(self.lines[at], key)
            .map(|range| range.value)
    }
}

/// The structures timed, in the order each repetition runs them.
const STRUCTURES: [&str; 7] = [
    "index_single",
    "index_batched",
    "fxhash_single",
    "fxhash_batched",
    "sortedvec_single",
    "digittrie_single",
    "floor_single",
];

/// Lookup throughput of the index and of the baselines, like with like: single lookups against
/// single lookups, batches of [`BATCH`] against the same batches probed in a loop. Two data
/// sets (two seeds of the workload) alternate, so that no structure runs twice in a row on the
/// data its caches and branch predictors just learned; a repetition times every structure on
/// both sets, and each figure is the best repetition. The floor ([`LookupSet::floor`]) is what
/// single lookups would reach if finding their line cost nothing: the index's one read from
/// memory and its search in the line, and nothing before.
fn lookups(prefix: &str, sets: [&[KeyRange]; 2], settings: &Settings) {
    let sets = [
        LookupSet::new(sets[0], settings.probes / 2, SEED ^ 0x11),
        LookupSet::new(sets[1], settings.probes / 2, SEED ^ 0x22),
    ];
    for set in &sets {
        set.check();
    }
    let mut best = [Duration::MAX; STRUCTURES.len()];
    for _ in 0..settings.repetitions {
        let mut elapsed = [Duration::ZERO; STRUCTURES.len()];
        for set in &sets {
            let index = &set.index;
            let timings = [
                time_single(set, |key| index.lookup(key).map(|range| range.value)),
                time_batched(set, |keys| index.lookup_batch(keys)),
                time_single(set, |key| set.exact.get(&key).copied()),
                time_batched(set, |keys| keys.map(|key| set.exact.get(&key).copied())),
                time_single(set, |key| set.sorted.lookup(key)),
                time_single(set, |key| set.trie.lookup(key)),
                time_floor(set),
            ];
            for (total, timing) in elapsed.iter_mut().zip(timings) {
                *total += timing;
            }
        }
        for (best, elapsed) in best.iter_mut().zip(elapsed) {
            *best = (*best).min(elapsed);
        }
    }
    let probes = sets.iter().map(|set| set.probes.len()).sum::<usize>() as f64;
    let mops = best.map(|elapsed| probes / elapsed.as_secs_f64() / 1e6);
    for (name, mops) in STRUCTURES.iter().zip(mops) {
        println!("{prefix}lookup_{name}_mops={mops:.1}");
    }
    let [index_single, index_batched, fx_single, fx_batched, _, trie, floor] = mops;
    println!(
        "{prefix}lookup_index_single_over_fxhash={:.2}",
        index_single / fx_single
    );
    println!(
        "{prefix}lookup_index_batched_over_fxhash={:.2}",
        index_batched / fx_batched
    );
    println!(
        "{prefix}lookup_index_single_over_digittrie={:.2}",
        index_single / trie
    );
    println!(
        "{prefix}lookup_floor_single_over_fxhash={:.2}",
        floor / fx_single
    );
    println!(
        "# {prefix}lookups against FxHashMap (target >= 0.8x): single {:.2}x, batched {:.2}x; \
         single lookups handed their line (the floor) {:.2}x",
        index_single / fx_single,
        index_batched / fx_batched,
        floor / fx_single
    );
    println!(
        "# {prefix}index_depth={} digittrie_bytes_per_range={:.1}",
        sets[0].index.depth(),
        (sets[0].trie.nodes.len() * std::mem::size_of::<TrieNode>()) as f64
            / sets[0].index.len() as f64
    );
}

/// The time of one pass of `lookup` over the set's probes, one key at a time; panics if what
/// it found disagrees with the brute force.
fn time_single(set: &LookupSet, lookup: impl Fn(u64) -> Option<u32>) -> Duration {
    let started = Instant::now();
    let mut sum = 0u64;
    for &probe in &set.probes {
        if let Some(value) = lookup(black_box(probe)) {
            sum += u64::from(value) + 1;
        }
    }
    agreed(set, started.elapsed(), sum)
}

/// As [`time_single`], for [`LookupSet::floor`]: each probe read with its line beside it.
fn time_floor(set: &LookupSet) -> Duration {
    let started = Instant::now();
    let mut sum = 0u64;
    for (at, &probe) in set.probes.iter().enumerate() {
        if let Some(value) = set.floor(black_box(at), black_box(probe)) {
            sum += u64::from(value) + 1;
        }
    }
    agreed(set, started.elapsed(), sum)
}

/// As [`time_single`], [`BATCH`] keys at a time (every set's probe count is a multiple).
fn time_batched(
    set: &LookupSet,
    lookup: impl Fn(&[u64; BATCH]) -> [Option<u32>; BATCH],
) -> Duration {
    let started = Instant::now();
    let mut sum = 0u64;
    for chunk in set.probes.chunks_exact(BATCH) {
        let keys: &[u64; BATCH] = chunk.try_into().expect("chunks of BATCH");
        for value in lookup(black_box(keys)).into_iter().flatten() {
            sum += u64::from(value) + 1;
        }
    }
    agreed(set, started.elapsed(), sum)
}

/// `elapsed`, once the pass's checksum `sum` matches the brute force's.
fn agreed(set: &LookupSet, elapsed: Duration, sum: u64) -> Duration {
    assert_eq!(
        black_box(sum),
        set.expected,
        "lookups disagree with the brute force"
    );
    elapsed
}

fn memory(prefix: &str, ranges: &[KeyRange]) {
    let index = RangeIndex::build(ranges.to_vec()).expect("workload ranges are disjoint");
    println!(
        "{prefix}index_bytes_per_range={:.1}",
        index.memory_bytes() as f64 / index.len() as f64
    );
}

/// Building the index from unsorted input, against one sort of the same input.
fn build(prefix: &str, ranges: &[KeyRange], settings: &Settings) {
    let sort = sort_baseline(ranges, settings);
    let build = best_of(
        settings.repetitions,
        || ranges.to_vec(),
        |copy| RangeIndex::build(copy).expect("workload ranges are disjoint"),
    );
    println!(
        "# {prefix}sort_ms={:.1} build_ms={:.1}",
        sort.as_secs_f64() * 1e3,
        build.as_secs_f64() * 1e3
    );
    println!("{prefix}build_over_sort={:.2}", ratio(build, sort));
}

/// Diffing two unsorted snapshots (1 % churn), against one sort of one snapshot.
fn diff(prefix: &str, ranges: &[KeyRange], settings: &Settings) {
    let next = workloads::churn(ranges, 0.01, SEED ^ 3);
    let sort = sort_baseline(ranges, settings);
    let mut changed = 0;
    let diff = best_of(
        settings.repetitions,
        || (),
        |()| {
            let difference = index::diff(ranges, &next);
            changed = difference.len();
            difference
        },
    );
    println!(
        "# {prefix}diff_ms={:.1} changed={changed}",
        diff.as_secs_f64() * 1e3
    );
    println!("{prefix}diff_over_sort={:.2}", ratio(diff, sort));
}

/// The merge alone, on snapshots already sorted, counting both inputs' entries.
fn diff_sorted(prefix: &str, ranges: &[KeyRange], settings: &Settings) {
    let mut old = ranges.to_vec();
    old.sort_unstable();
    let mut new = workloads::churn(ranges, 0.01, SEED ^ 3);
    new.sort_unstable();
    let elapsed = best_of(
        settings.repetitions,
        || (),
        |()| index::diff_sorted(&old, &new),
    );
    let entries = (old.len() + new.len()) as f64;
    println!(
        "{prefix}diff_sorted_mentries_per_s={:.0}",
        entries / elapsed.as_secs_f64() / 1e6
    );
}

/// The overlap sweep over the workload with its nested and overlapping entries, from unsorted
/// input, against one sort of the same intervals (the sweep's input).
fn sweep(prefix: &str, workload: &Workload, settings: &Settings) {
    let all: Vec<KeyRange> = workload
        .ranges
        .iter()
        .chain(&workload.nested)
        .chain(&workload.overlapping)
        .copied()
        .collect();
    let intervals: Vec<Interval> = all
        .iter()
        .enumerate()
        .map(|(id, range)| Interval {
            lo: range.lo,
            hi: range.hi,
            nest: 0,
            id: id as u32,
        })
        .collect();
    // The baseline sorts the sweep's own input, the intervals.
    let sort = best_of(
        settings.repetitions,
        || intervals.clone(),
        |mut copy| {
            copy.sort_unstable_by_key(|interval| interval.lo);
            copy
        },
    );
    let mut contests = 0;
    let elapsed = best_of(
        settings.repetitions,
        || intervals.clone(),
        |intervals| {
            let swept = sweeper::sweep(intervals);
            contests = swept.contests.len();
            swept
        },
    );
    println!(
        "# {prefix}sweep_ms={:.1} intervals={} contests={contests}",
        elapsed.as_secs_f64() * 1e3,
        intervals.len()
    );
    println!("{prefix}sweep_over_sort={:.2}", ratio(elapsed, sort));
}

/// Compilation with the `ranges` encoding of the workload's (disjoint) mapping, and the whole
/// engine from entries (nested and overlapping ones included) to rules: rules emitted per
/// maximal same-tag range, whose lower bound is 1.
fn compile(prefix: &str, workload: &Workload, settings: &Settings) {
    let mapping = workloads::mapping(workload);
    let mut rules = 0;
    let elapsed = best_of(
        settings.repetitions,
        || (),
        |()| {
            let compiled = compiler::compile(&mapping, Encoding::Ranges, 9);
            rules = compiled.len();
            compiled
        },
    );
    println!(
        "# {prefix}compile_ms={:.1} maximal_ranges={} rules={rules}",
        elapsed.as_secs_f64() * 1e3,
        mapping.ranges().len()
    );
    println!(
        "{prefix}compile_ranges_per_s={:.0}",
        mapping.ranges().len() as f64 / elapsed.as_secs_f64()
    );

    let tags = mapping.tags();
    let entries: Vec<Entry> = workload
        .ranges
        .iter()
        .chain(&workload.nested)
        .chain(&workload.overlapping)
        .enumerate()
        .map(|(item, r)| Entry {
            coverage: Coverage::Range(r.number_range().expect("workload keys are numbers")),
            tag: tags[r.value as usize % tags.len()].clone(),
            provenance: Provenance {
                source: std::sync::Arc::new("bench".into()),
                item: format!("item {item}").into(),
            },
        })
        .collect();
    let started = Instant::now();
    let resolution = resolver::resolve(&entries);
    let resolve_elapsed = started.elapsed();
    let rules = compiler::compile(&resolution.mapping, Encoding::Ranges, 9);
    println!(
        "# {prefix}resolve_ms={:.1} entries={} conflicts={} maximal_ranges={} rules={}",
        resolve_elapsed.as_secs_f64() * 1e3,
        entries.len(),
        resolution.conflicts.len(),
        resolution.mapping.ranges().len(),
        rules.len()
    );
    println!(
        "{prefix}rules_per_maximal_range={:.3}",
        rules.len() as f64 / resolution.mapping.ranges().len() as f64
    );
}

/// The workload's ranges compiled (ranges encoding) into routes tagged `Trunk=t<value>`.
fn routes(ranges: &[KeyRange]) -> Vec<Route> {
    let tag_count = ranges.iter().map(|r| r.value).max().unwrap_or(0) + 1;
    let tags: Vec<Tag> = (0..tag_count)
        .map(|t| Tag::parse(&format!("Trunk=t{t}"), 64).expect("valid tag"))
        .collect();
    let pairs = ranges
        .iter()
        .map(|r| {
            (
                r.number_range().expect("workload keys are numbers"),
                r.value,
            )
        })
        .collect();
    let mapping = Mapping::new(tags, Vec::new(), pairs).expect("disjoint workload");
    compiler::compile(&mapping, Encoding::Ranges, 9)
        .into_iter()
        .map(|rule| Route {
            prefix: rule.prefix,
            tag: mapping.tag(rule.tag).clone(),
        })
        .collect()
}

/// The rule index over a shared dial plan: the workload compiled to rules, plus one Live
/// Platform per-number rule (open, no `#`) for every tenth range, as in the field. Build time
/// against one sort of the rules' ranges, lookups against the plain range index over the
/// workload's ranges, on the same probes.
fn rule_index(prefix: &str, workload: &Workload, settings: &Settings) {
    let mut patterns: Vec<Pattern> = routes(&workload.ranges)
        .into_iter()
        .map(|route| route.prefix)
        .collect();
    for range in workload.ranges.iter().step_by(10) {
        let number = Number::from_key(range.lo).expect("workload keys are numbers");
        patterns.push(Pattern::parse(&number.to_string()).expect("a number is a prefix"));
    }
    let rules: Vec<(u32, &Pattern)> = patterns.iter().zip(0u32..).map(|(p, i)| (i, p)).collect();
    let sort = sort_baseline(&workload.ranges, settings);
    let build = best_of(
        settings.repetitions,
        || rules.clone(),
        |rules| RuleIndex::build(rules).expect("a dial plan indexes"),
    );
    let index = RuleIndex::build(rules.clone()).expect("a dial plan indexes");

    let pool = workloads::probes_inside(&workload.ranges, workload.ranges.len(), SEED ^ 1);
    let probes = workloads::draws(&pool, settings.probes, SEED ^ 2);
    for &key in probes.iter().take(100) {
        let number = Number::from_key(key).expect("probes are numbers");
        let brute = best_match(rules.iter().map(|&(i, p)| (i, p, &())), &number.to_string());
        assert_eq!(index.lookup(number), brute.map(|(i, _)| i), "{number}");
    }
    let ranges = RangeIndex::build(workload.ranges.to_vec()).expect("disjoint workload");
    let (rule_mops, _) = time_loop(&probes, settings, |key| {
        index.lookup(Number::from_key(key).expect("probes are numbers"))
    });
    let (range_mops, _) = time_loop(&probes, settings, |key| {
        ranges.lookup(key).map(|range| range.value)
    });
    println!(
        "# {prefix}rule_index_rules={} intervals={} residual={} build_ms={:.1} sort_ms={:.1}",
        rules.len(),
        index.len(),
        index.residual_rules(),
        build.as_secs_f64() * 1e3,
        sort.as_secs_f64() * 1e3
    );
    println!(
        "{prefix}rule_index_build_over_sort={:.2}",
        ratio(build, sort)
    );
    println!(
        "{prefix}rule_index_bytes_per_rule={:.1}",
        index.memory_bytes() as f64 / rules.len() as f64
    );
    println!("{prefix}lookup_rule_index_mops={rule_mops:.1}");
    println!(
        "{prefix}lookup_rule_index_over_index={:.2}",
        rule_mops / range_mops
    );
}

/// Planning a 1 % churn: the dial plan holds the workload's rules, the desired state is the
/// churned workload's. Ops are set against the minimum, counted independently: every rule
/// that is not in both sets costs one op, and a Modify pays for one old and one new rule.
fn planning(prefix: &str, workload: &Workload, settings: &Settings) {
    let actual: Vec<DialPlanRule> = routes(&workload.ranges)
        .into_iter()
        .enumerate()
        .map(|(index, route)| DialPlanRule {
            index: index as u32,
            name: "dialsync".into(),
            prefix: route.prefix,
            tag: route.tag,
        })
        .collect();
    let desired = routes(&workloads::churn(&workload.ranges, 0.01, SEED ^ 3));
    let config = PlanSettings {
        rule_name: "dialsync".into(),
        policy: Policy::Sync,
        adopt_foreign: false,
        safety: Safety::default(),
        max_rules: usize::MAX,
    };
    let mut ops = 0;
    let elapsed = best_of(
        settings.repetitions.min(3),
        || (),
        |()| {
            let plan = planner::plan(&desired, &actual, &[], &[], &config);
            ops = plan.ops.len();
            plan
        },
    );
    let old: HashSet<(&str, &str)> = actual
        .iter()
        .map(|r| (r.prefix.as_str(), r.tag.as_str()))
        .collect();
    let new: HashSet<(&str, &str)> = desired
        .iter()
        .map(|r| (r.prefix.as_str(), r.tag.as_str()))
        .collect();
    let minimum = old
        .difference(&new)
        .count()
        .max(new.difference(&old).count());
    println!(
        "# {prefix}plan_rules_actual={} plan_rules_desired={}",
        actual.len(),
        desired.len()
    );
    println!("{prefix}plan_ms={:.1}", elapsed.as_secs_f64() * 1e3);
    println!("{prefix}plan_ops={ops}");
    println!("{prefix}plan_ops_minimum={minimum}");
}

/// The "look at every range" baseline: a sorted vector of `lo`s, binary search, `hi` check.
struct SortedRanges {
    lo: Vec<u64>,
    hi: Vec<u64>,
    value: Vec<u32>,
}

impl SortedRanges {
    fn new(ranges: &[KeyRange]) -> SortedRanges {
        let mut sorted = ranges.to_vec();
        sorted.sort_unstable();
        SortedRanges {
            lo: sorted.iter().map(|r| r.lo).collect(),
            hi: sorted.iter().map(|r| r.hi).collect(),
            value: sorted.iter().map(|r| r.value).collect(),
        }
    }

    #[inline]
    fn lookup(&self, key: u64) -> Option<u32> {
        let after = self.lo.partition_point(|&lo| lo <= key);
        let at = after.checked_sub(1)?;
        (key <= self.hi[at]).then(|| self.value[at])
    }
}

/// A node of the plain trie: one child per decimal digit, and the value of the prefix that
/// ends here (`NO_VALUE` if none).
#[derive(Clone, Copy)]
struct TrieNode {
    children: [u32; 10],
    value: u32,
}

const NO_VALUE: u32 = u32::MAX;
const EMPTY_NODE: TrieNode = TrieNode {
    children: [0; 10],
    value: NO_VALUE,
};

/// The honest "plain trie" baseline: a 10-ary digit trie per number length (a prefix of a
/// 10-digit range must not match an 11-digit number), walked one digit per level with the
/// deepest value seen winning. Ranges are stored as their minimal cover of aligned blocks, each
/// block being the node of its common digits, as a dial plan of `x` patterns would.
struct DigitTrie {
    /// Node 0 is unused (0 means "no child"); `roots[length]` is that length's root.
    nodes: Vec<TrieNode>,
    roots: [u32; 16],
}

impl DigitTrie {
    fn new(ranges: &[KeyRange]) -> DigitTrie {
        let mut trie = DigitTrie {
            nodes: vec![EMPTY_NODE],
            roots: [0; 16],
        };
        for length in 1..16 {
            trie.roots[length] = trie.add_node();
        }
        for range in ranges {
            let number_range = range.number_range().expect("workload keys are numbers");
            let digits = number_range.len();
            let (mut lo, hi) = (number_range.lo().value(), number_range.hi().value());
            while lo <= hi {
                // The largest aligned block starting at `lo` that stays inside the range.
                let mut free = 0;
                while free < digits
                    && lo % POW10[free as usize + 1] == 0
                    && lo + POW10[free as usize + 1] - 1 <= hi
                {
                    free += 1;
                }
                trie.insert(
                    digits,
                    lo / POW10[free as usize],
                    digits - free,
                    range.value,
                );
                lo += POW10[free as usize];
            }
        }
        trie
    }

    fn add_node(&mut self) -> u32 {
        self.nodes.push(EMPTY_NODE);
        (self.nodes.len() - 1) as u32
    }

    fn insert(&mut self, length: u32, prefix: u64, prefix_digits: u32, value: u32) {
        let mut node = self.roots[length as usize];
        for position in (0..prefix_digits).rev() {
            let digit = ((prefix / POW10[position as usize]) % 10) as usize;
            let mut child = self.nodes[node as usize].children[digit];
            if child == 0 {
                child = self.add_node();
                self.nodes[node as usize].children[digit] = child;
            }
            node = child;
        }
        self.nodes[node as usize].value = value;
    }

    #[inline]
    fn lookup(&self, key: u64) -> Option<u32> {
        let length = (key >> 50) as usize;
        let mut node = *self.roots.get(length)?;
        // Digits least significant first, by division by a constant (a multiply), so the walk
        // itself is only the trie's memory accesses.
        let mut digits = [0u8; 16];
        let mut rest = key & ((1 << 50) - 1);
        for digit in digits.iter_mut().take(length) {
            *digit = (rest % 10) as u8;
            rest /= 10;
        }
        let mut found = NO_VALUE;
        for &digit in digits[..length].iter().rev() {
            node = self.nodes[node as usize].children[digit as usize];
            if node == 0 {
                break;
            }
            let here = self.nodes[node as usize].value;
            if here != NO_VALUE {
                found = here;
            }
        }
        (found != NO_VALUE).then_some(found)
    }
}
