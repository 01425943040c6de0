use std::path::{Path, PathBuf};

use super::*;
use crate::dialplan::pattern::Pattern;
use crate::dialplan::rule::{DialPlanRule, Tag};
use crate::error::{Classify, ErrorClass};
use crate::number::{Number, NumberRange, OpenPrefix};
use crate::plan::{Op, Route};
use crate::resolve::{Coverage, Entry, Provenance};

/// A scratch directory for one test's database, removed when dropped.
struct TempDir(tempfile::TempDir);

impl TempDir {
    fn new(label: &str) -> TempDir {
        TempDir(
            tempfile::Builder::new()
                .prefix(&format!("dialsync-store-{label}-"))
                .tempdir()
                .unwrap(),
        )
    }

    fn db(&self) -> PathBuf {
        self.0.path().join("state.db")
    }
}

fn tag(text: &str) -> Tag {
    Tag::parse(text, 64).unwrap()
}

fn rule(index: u32, name: &str, prefix: &str, tag_text: &str, owned: bool) -> MirrorRule {
    MirrorRule {
        rule: DialPlanRule {
            index,
            name: name.into(),
            prefix: Pattern::parse(prefix).unwrap(),
            tag: tag(tag_text),
        },
        owned,
    }
}

fn n(text: &str) -> Number {
    Number::parse(text).unwrap()
}

fn range(source: &str, lo: &str, hi: &str, tag_text: &str, item: &str) -> Entry {
    Entry {
        coverage: Coverage::Range(NumberRange::between(n(lo), n(hi)).unwrap()),
        tag: tag(tag_text),
        provenance: Provenance {
            source: std::sync::Arc::new(source.into()),
            item: item.into(),
        },
    }
}

fn prefix(source: &str, digits: &str, tag_text: &str, item: &str) -> Entry {
    Entry {
        coverage: Coverage::Prefix(OpenPrefix::parse(digits).unwrap()),
        tag: tag(tag_text),
        provenance: Provenance {
            source: std::sync::Arc::new(source.into()),
            item: item.into(),
        },
    }
}

fn route(prefix: &str, tag_text: &str) -> Route {
    Route {
        prefix: Pattern::parse(prefix).unwrap(),
        tag: tag(tag_text),
    }
}

fn ops() -> Vec<Op> {
    vec![
        Op {
            index: 12,
            before: None,
            after: Some(route("+322612700[0-2]#", "Trunk=7f2c0c61-1b44")),
        },
        Op {
            index: 3,
            before: Some(route("+3226127xxx#", "Trunk=a")),
            after: Some(route("+3226127[000-499]#", "Trunk=a;Site=10.0.0.1")),
        },
        Op {
            index: 40,
            before: Some(route("+3201", "Teams")),
            after: None,
        },
    ]
}

fn sample_mirror() -> Vec<MirrorRule> {
    vec![
        rule(7, "dialsync", "+322612700[0-2]#", "Trunk=acme", true),
        rule(0, "manual", "*", "Teams", false),
        rule(3, "dialsync", "+3226127xxx#", "Trunk=a;Site=10.0.0.1", true),
        rule(
            4_000_000_000,
            "dialsync",
            "+3201",
            "Host=sbc.example.net",
            true,
        ),
        rule(5, "legacy", "+32z\\xn.#", "Teams;Trunk=b", false),
    ]
}

fn sample_entries(source: &str) -> Vec<Entry> {
    vec![
        range(
            source,
            "+3226127000",
            "+3226127999",
            "Trunk=acme",
            "tenant=acme group=hq",
        ),
        range(
            source,
            "+3226127001",
            "+3226127001",
            "Trunk=emergency",
            "line 3",
        ),
        prefix(source, "+32-01", "Trunk=foo", "prefix +32-01"),
        // Provenance naming another source (a merged feed) must survive as well.
        range(
            "fusion-ranges",
            "+14155550100",
            "+14155550199",
            "Trunk=us",
            "range id 9",
        ),
        range(
            source,
            "+999999999999999",
            "+999999999999999",
            "Trunk=max",
            "15 digits",
        ),
    ]
}

fn cycle(started: i64, outcome: &str, adds: u64) -> CycleRecord {
    CycleRecord {
        started_unix_ms: started,
        finished_unix_ms: started + 1_500,
        outcome: outcome.to_string(),
        adds,
        modifies: 2,
        deletes: 1,
        rejected: 4,
        conflicts: 5,
        phases: vec![
            PhaseTiming {
                phase: "fetch".into(),
                duration_ms: 900,
            },
            PhaseTiming {
                phase: "apply".into(),
                duration_ms: 600,
            },
        ],
        plan_checksum: Some(format!("sha256-{started}")),
        error: (outcome == outcome::FAILED).then(|| "sbc answered 503".to_string()),
        fatal: false,
        owned_rules: 1_200,
        source_failures: 1,
        audit: None,
        issues: Vec::new(),
    }
}

fn issue(kind: IssueKind, item: &str) -> CycleIssue {
    CycleIssue {
        kind,
        source: (kind != IssueKind::Blocked).then(|| "fusion".to_string()),
        item: item.to_string(),
        detail: format!("why {item}"),
    }
}

#[test]
fn a_cycle_keeps_the_items_behind_its_counts() {
    let mut store = Store::open_in_memory().unwrap();
    assert_eq!(store.last_cycle().unwrap(), None);
    let mut first = cycle(1_000, outcome::BLOCKED, 0);
    first.fatal = true;
    first.issues = vec![
        issue(IssueKind::Rejected, "line 7"),
        issue(IssueKind::Conflict, "+3226120000..+3226120099"),
        issue(IssueKind::Blocked, "deletes 40 %"),
        issue(IssueKind::Foreign, "+3226#"),
        issue(IssueKind::Source, "fusion"),
        issue(IssueKind::Quarantined, "index 12"),
    ];
    store.record_cycle(&first).unwrap();
    assert_eq!(store.last_cycle().unwrap(), Some(first.clone()));
    // The history lists counts only.
    let listed = store.history(1).unwrap();
    assert!(listed[0].issues.is_empty() && listed[0].fatal);

    let mut flood = cycle(2_000, outcome::CONVERGED, 1);
    flood.issues = (0..MAX_ISSUES_PER_CYCLE + 5)
        .map(|i| issue(IssueKind::Rejected, &format!("line {i}")))
        .collect();
    store.record_cycle(&flood).unwrap();
    let last = store.last_cycle().unwrap().unwrap();
    assert_eq!(last.issues.len(), MAX_ISSUES_PER_CYCLE, "capped");
    assert_eq!(last.issues[0], flood.issues[0]);

    assert_eq!(store.prune_history(1).unwrap(), 1);
    let left: i64 = store
        .conn
        .query_row("SELECT count(*) FROM cycle_issue", [], |row| row.get(0))
        .unwrap();
    assert_eq!(
        left, MAX_ISSUES_PER_CYCLE as i64,
        "the pruned cycle's issues went with it"
    );
}

#[test]
fn a_version_1_database_is_upgraded_keeping_its_history() {
    let dir = TempDir::new("v1");
    let path = dir.db();
    {
        let conn = written_by_version(&path, 1);
        conn.execute(
            "INSERT INTO cycle (started_unix_ms, finished_unix_ms, outcome, adds, modifies,
                                deletes, rejected, conflicts)
             VALUES (5, 6, 'converged', 1, 0, 0, 0, 0)",
            [],
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SUPPORTED_VERSION);
    let last = store.last_cycle().unwrap().unwrap();
    assert_eq!((last.started_unix_ms, last.adds, last.fatal), (5, 1, false));
    assert!(last.issues.is_empty());
}

#[test]
fn a_journal_left_unfinished_by_version_5_survives_the_upgrade() {
    let dir = TempDir::new("v5");
    let path = dir.db();
    {
        let conn = written_by_version(&path, 5);
        conn.execute_batch(
            "INSERT INTO journal_plan (id, checksum, op_count) VALUES (4, 'crashed', 2);
             INSERT INTO journal_op (plan_id, seq, rule_index, after_prefix, after_tag, state,
                                     attempts)
                 VALUES (4, 0, 12, '+3201', 'Trunk=a', 'done', 1),
                        (4, 1, 13, '+3202', 'Trunk=b', 'in_flight', 2);",
        )
        .unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SUPPORTED_VERSION);
    let journal = store.unfinished_journal().unwrap().unwrap();
    assert_eq!(
        (journal.id, journal.checksum.as_str()),
        (PlanId(4), "crashed")
    );
    let progress: Vec<(u32, OpState, u32)> = journal
        .ops
        .iter()
        .map(|op| (op.seq, op.state, op.attempts))
        .collect();
    assert_eq!(progress, [(0, OpState::Done, 1), (1, OpState::InFlight, 2)]);
    // The rewritten CHECK still allows the four states and no other.
    let refused = store.conn.execute(
        "UPDATE journal_op SET state = 'sent' WHERE plan_id = 4 AND seq = 1",
        [],
    );
    assert!(refused.is_err(), "{refused:?}");
    store.journal_mark_batch_done(PlanId(4), &[1]).unwrap();
    store.journal_finish(PlanId(4), "recovered").unwrap();
}

#[test]
fn an_unchanged_snapshot_or_mirror_is_not_rewritten() {
    let mut store = Store::open_in_memory().unwrap();
    let entries = sample_entries("fusion");
    store.save_snapshot("fusion", 1, &entries).unwrap();
    // A marker the store did not write shows whether a save rewrote the rows.
    store
        .conn
        .execute(
            "UPDATE snapshot_entry SET item = 'marker' WHERE seq = 0",
            [],
        )
        .unwrap();
    let first_item = |store: &Store| {
        store.snapshot("fusion").unwrap().unwrap().entries[0]
            .provenance
            .item
            .clone()
    };
    store.save_snapshot("fusion", 2, &entries).unwrap();
    assert_eq!(first_item(&store), "marker", "same content: not rewritten");
    assert_eq!(
        store.snapshot_sources().unwrap()[0].fetched_at_unix,
        2,
        "time moves"
    );
    let mut changed = entries.clone();
    changed.pop();
    store.save_snapshot("fusion", 3, &changed).unwrap();
    assert_eq!(store.snapshot("fusion").unwrap().unwrap().entries, changed);

    let mirror = sample_mirror();
    store.replace_mirror(&mirror).unwrap();
    store
        .conn
        .execute("UPDATE mirror_rule SET tag = 'Trunk=marker' WHERE rowid = (SELECT min(rowid) FROM mirror_rule)", [])
        .unwrap();
    let mut reordered = mirror.clone();
    reordered.reverse();
    store.replace_mirror(&reordered).unwrap();
    assert!(
        store
            .mirror()
            .unwrap()
            .iter()
            .any(|r| r.rule.tag.as_str() == "Trunk=marker"),
        "the same rules in another order: not rewritten"
    );
    let mut fewer = mirror.clone();
    fewer.pop();
    store.replace_mirror(&fewer).unwrap();
    let mut expected = fewer.clone();
    expected.sort_by_key(|r| r.rule.index);
    assert_eq!(store.mirror().unwrap(), expected);
}

#[test]
fn mirror_round_trips_ordered_by_index() {
    let mut store = Store::open_in_memory().unwrap();
    assert_eq!(store.mirror().unwrap(), vec![]);
    let rules = sample_mirror();
    store.replace_mirror(&rules).unwrap();
    let mut expected = rules.clone();
    expected.sort_by_key(|r| r.rule.index);
    assert_eq!(store.mirror().unwrap(), expected);
}

#[test]
fn replacing_the_mirror_removes_the_old_rows() {
    let mut store = Store::open_in_memory().unwrap();
    store.replace_mirror(&sample_mirror()).unwrap();
    let next = vec![
        rule(3, "dialsync", "+3226128xxx#", "Trunk=b", true),
        rule(10, "dialsync", "+44", "Trunk=uk", true),
    ];
    store.replace_mirror(&next).unwrap();
    assert_eq!(store.mirror().unwrap(), next);
    store.replace_mirror(&[]).unwrap();
    assert_eq!(store.mirror().unwrap(), vec![]);
}

#[test]
fn a_broken_read_never_half_replaces_the_mirror() {
    let mut store = Store::open_in_memory().unwrap();
    store.replace_mirror(&sample_mirror()).unwrap();
    let duplicate = vec![
        rule(1, "dialsync", "+3226", "Trunk=a", true),
        rule(1, "dialsync", "+3227", "Trunk=b", true),
    ];
    let err = store.replace_mirror(&duplicate).unwrap_err();
    assert!(err.to_string().contains("mirror rule index 1"), "{err}");
    assert_eq!(store.mirror().unwrap().len(), sample_mirror().len());
}

#[test]
fn snapshots_round_trip_ranges_prefixes_and_provenance() {
    let mut store = Store::open_in_memory().unwrap();
    assert_eq!(store.snapshot("fusion").unwrap(), None);
    let fusion = sample_entries("fusion");
    let apio = vec![prefix("apio", "+3202", "Trunk=foo", "tenant=t group=g")];
    store
        .save_snapshot("fusion", 1_700_000_000, &fusion)
        .unwrap();
    store.save_snapshot("apio", 1_700_000_060, &apio).unwrap();
    store.save_snapshot("empty", 1_700_000_120, &[]).unwrap();

    let loaded = store.snapshot("fusion").unwrap().unwrap();
    assert_eq!(loaded.fetched_at_unix, 1_700_000_000);
    assert_eq!(loaded.entries, fusion);
    assert_eq!(
        store.snapshot("empty").unwrap(),
        Some(Snapshot {
            fetched_at_unix: 1_700_000_120,
            entries: vec![]
        })
    );
    assert_eq!(
        store.snapshot_sources().unwrap(),
        vec![
            SnapshotSummary {
                source: "apio".into(),
                fetched_at_unix: 1_700_000_060,
                entry_count: 1,
                answer_digest: None,
                answer_trail: Vec::new(),
            },
            SnapshotSummary {
                source: "empty".into(),
                fetched_at_unix: 1_700_000_120,
                entry_count: 0,
                answer_digest: None,
                answer_trail: Vec::new(),
            },
            SnapshotSummary {
                source: "fusion".into(),
                fetched_at_unix: 1_700_000_000,
                entry_count: 5,
                answer_digest: None,
                answer_trail: Vec::new(),
            },
        ]
    );

    // A new snapshot replaces the old one whole and leaves the other sources alone.
    let newer = vec![range("fusion", "+3226", "+3229", "Trunk=x", "line 1")];
    store
        .save_snapshot("fusion", 1_700_000_600, &newer)
        .unwrap();
    assert_eq!(
        store.snapshot("fusion").unwrap(),
        Some(Snapshot {
            fetched_at_unix: 1_700_000_600,
            entries: newer
        })
    );
    assert_eq!(store.snapshot("apio").unwrap().unwrap().entries, apio);

    assert!(store.delete_snapshot("apio").unwrap());
    assert!(!store.delete_snapshot("apio").unwrap());
    assert_eq!(store.snapshot("apio").unwrap(), None);
    let rows: i64 = store
        .conn
        .query_row("SELECT count(*) FROM snapshot_entry", [], |row| row.get(0))
        .unwrap();
    assert_eq!(
        rows, 1,
        "replaced and deleted snapshots leave no entries behind"
    );
}

#[test]
fn journal_records_every_op_and_its_progress() {
    let mut store = Store::open_in_memory().unwrap();
    assert_eq!(store.unfinished_journal().unwrap(), None);
    let ops = ops();
    let plan = store.journal_begin("abc123", &ops).unwrap();

    let journal = store.unfinished_journal().unwrap().unwrap();
    assert_eq!(journal.id, plan);
    assert_eq!(journal.checksum, "abc123");
    assert_eq!(journal.ops.len(), 3);
    for (seq, (journaled, op)) in journal.ops.iter().zip(&ops).enumerate() {
        assert_eq!(journaled.seq, seq as u32);
        assert_eq!(&journaled.op, op);
        assert_eq!(journaled.state, OpState::Pending);
        assert_eq!(journaled.attempts, 0);
        assert_eq!(journaled.last_error, None);
    }

    store.journal_mark_in_flight(plan, 0).unwrap();
    store.journal_mark_done(plan, 0).unwrap();
    store.journal_mark_in_flight(plan, 1).unwrap();
    store
        .journal_mark_failed(plan, 1, "409 device busy")
        .unwrap();
    store.journal_mark_in_flight(plan, 1).unwrap();
    store.journal_mark_in_flight(plan, 2).unwrap();

    let journal = store.unfinished_journal().unwrap().unwrap();
    let progress: Vec<_> = journal
        .ops
        .iter()
        .map(|op| (op.state, op.attempts, op.last_error.as_deref()))
        .collect();
    assert_eq!(
        progress,
        vec![
            (OpState::Done, 1, None),
            (OpState::InFlight, 2, Some("409 device busy")),
            (OpState::InFlight, 1, None),
        ]
    );

    store.journal_finish(plan, "applied").unwrap();
    assert_eq!(store.unfinished_journal().unwrap(), None);
    assert!(matches!(
        store.journal_mark_done(plan, 2),
        Err(StoreError::PlanFinished { .. })
    ));
    assert!(matches!(
        store.journal_finish(plan, "applied"),
        Err(StoreError::PlanFinished { .. })
    ));
}

#[test]
fn the_newest_unfinished_plan_is_the_one_returned() {
    let mut store = Store::open_in_memory().unwrap();
    let first = store.journal_begin("first", &ops()).unwrap();
    let second = store.journal_begin("second", &ops()[..1]).unwrap();
    let third = store.journal_begin("third", &ops()[1..]).unwrap();
    store.journal_finish(third, "applied").unwrap();
    let journal = store.unfinished_journal().unwrap().unwrap();
    assert_eq!((journal.id, journal.checksum.as_str()), (second, "second"));
    assert_eq!(journal.ops.len(), 1);
    store.journal_finish(second, "recovered").unwrap();
    assert_eq!(store.unfinished_journal().unwrap().unwrap().id, first);
}

/// Each op of the unfinished journal: its state and attempts.
fn progress(store: &Store) -> Vec<(OpState, u32)> {
    store
        .unfinished_journal()
        .unwrap()
        .unwrap()
        .ops
        .iter()
        .map(|op| (op.state, op.attempts))
        .collect()
}

#[test]
fn a_batch_is_marked_in_one_commit_all_or_nothing() {
    let mut store = Store::open_in_memory().unwrap();
    let plan = store.journal_begin("batch", &ops()).unwrap();
    store.journal_mark_batch_in_flight(plan, &[0, 2]).unwrap();
    store.journal_mark_batch_in_flight(plan, &[0, 2]).unwrap();
    store.journal_mark_batch_done(plan, &[0]).unwrap();
    assert_eq!(
        progress(&store),
        [
            (OpState::Done, 2),
            (OpState::Pending, 0),
            (OpState::InFlight, 2)
        ]
    );
    // An unknown op anywhere in the batch: none of it is recorded.
    let err = store.journal_mark_batch_done(plan, &[1, 2, 9]).unwrap_err();
    assert!(err.to_string().contains('9'), "{err}");
    assert_eq!(
        progress(&store),
        [
            (OpState::Done, 2),
            (OpState::Pending, 0),
            (OpState::InFlight, 2)
        ]
    );
    store.journal_finish(plan, "applied").unwrap();
    assert!(store.journal_mark_batch_done(plan, &[1]).is_err());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// A batch is marked one statement per run of consecutive ops; what it records (or the op
    /// it names on refusal, with nothing recorded) is what marking each op in turn would be.
    #[test]
    fn a_batch_marks_what_its_ops_one_by_one_would(
        batches in proptest::collection::vec(
            (proptest::bool::ANY, proptest::collection::vec(0u32..8, 0..10)),
            1..6,
        )
    ) {
        let mut store = Store::open_in_memory().unwrap();
        let journaled: Vec<Op> = ops().into_iter().cycle().take(6).collect();
        let plan = store.journal_begin("runs", &journaled).unwrap();
        let mut model = vec![(OpState::Pending, 0u32); journaled.len()];
        for (in_flight, seqs) in &batches {
            let marked = if *in_flight {
                store.journal_mark_batch_in_flight(plan, seqs)
            } else {
                store.journal_mark_batch_done(plan, seqs)
            };
            match seqs.iter().find(|&&seq| seq as usize >= model.len()) {
                Some(&unknown) => {
                    let named = matches!(
                        marked,
                        Err(StoreError::UnknownOp { seq, .. }) if seq == unknown
                    );
                    proptest::prop_assert!(named, "{marked:?} for {seqs:?}");
                }
                None => {
                    proptest::prop_assert!(marked.is_ok(), "{marked:?}");
                    for &seq in seqs {
                        let op = &mut model[seq as usize];
                        if *in_flight {
                            *op = (OpState::InFlight, op.1 + 1);
                        } else {
                            op.0 = OpState::Done;
                        }
                    }
                }
            }
            proptest::prop_assert_eq!(&progress(&store), &model);
        }
    }
}

#[test]
fn journal_misuse_is_refused_with_what_was_wrong() {
    let mut store = Store::open_in_memory().unwrap();
    let plan = store.journal_begin("abc", &ops()).unwrap();
    let err = store.journal_mark_done(plan, 3).unwrap_err();
    assert!(matches!(err, StoreError::UnknownOp { seq: 3, .. }), "{err}");
    let ghost = PlanId(plan.0 + 100);
    let err = store.journal_mark_in_flight(ghost, 0).unwrap_err();
    assert!(matches!(err, StoreError::UnknownPlan { .. }), "{err}");
    let err = store.journal_finish(ghost, "applied").unwrap_err();
    assert!(matches!(err, StoreError::UnknownPlan { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Fatal);

    let mut empty = ops();
    empty[1].before = None;
    empty[1].after = None;
    let err = store.journal_begin("bad", &empty).unwrap_err();
    assert!(matches!(err, StoreError::EmptyOp { seq: 1, .. }), "{err}");
    // Nothing of the refused plan was journaled.
    assert_eq!(store.unfinished_journal().unwrap().unwrap().id, plan);
}

#[test]
fn pruning_the_journal_keeps_unfinished_plans() {
    let mut store = Store::open_in_memory().unwrap();
    let open = store.journal_begin("open", &ops()).unwrap();
    let mut finished = Vec::new();
    for i in 0..4 {
        let plan = store.journal_begin(&format!("p{i}"), &ops()).unwrap();
        store.journal_finish(plan, "applied").unwrap();
        finished.push(plan);
    }
    assert_eq!(store.prune_journal(1).unwrap(), 3);
    let plans: Vec<i64> = store
        .conn
        .prepare("SELECT id FROM journal_plan ORDER BY id")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(plans, vec![open.0, finished[3].0]);
    let ops_left: i64 = store
        .conn
        .query_row("SELECT count(*) FROM journal_op", [], |row| row.get(0))
        .unwrap();
    assert_eq!(ops_left, 6);
    assert_eq!(store.unfinished_journal().unwrap().unwrap().id, open);
}

#[test]
fn history_is_newest_first_and_limited() {
    let mut store = Store::open_in_memory().unwrap();
    assert_eq!(store.history(10).unwrap(), vec![]);
    assert_eq!(store.last_success().unwrap(), None);
    let records = [
        cycle(1_000, outcome::CONVERGED, 10),
        cycle(2_000, outcome::CONVERGED, 0),
        cycle(3_000, outcome::BLOCKED, 7),
        // Recorded later with an earlier start (the clock stepped back): still the newest.
        cycle(500, outcome::FAILED, 0),
    ];
    let mut ids = Vec::new();
    for record in &records {
        ids.push(store.record_cycle(record).unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]));

    let history = store.history(3).unwrap();
    assert_eq!(
        history,
        vec![records[3].clone(), records[2].clone(), records[1].clone()]
    );
    assert_eq!(store.history(100).unwrap().len(), 4);
    assert_eq!(store.history(0).unwrap(), vec![]);
    assert_eq!(store.last_success().unwrap(), Some(records[1].clone()));

    assert_eq!(store.prune_history(2).unwrap(), 2);
    assert_eq!(
        store.history(10).unwrap(),
        vec![records[3].clone(), records[2].clone()]
    );
    let phases: i64 = store
        .conn
        .query_row("SELECT count(*) FROM cycle_phase", [], |row| row.get(0))
        .unwrap();
    assert_eq!(phases, 4, "pruned cycles take their phases with them");
}

#[test]
fn reopening_the_file_keeps_everything() {
    let dir = TempDir::new("reopen");
    // A missing parent directory is created.
    let path = dir.0.path().join("var/lib/dialsync/state.db");
    let plan;
    {
        let mut store = Store::open(&path).unwrap();
        store.replace_mirror(&sample_mirror()).unwrap();
        store
            .save_snapshot("fusion", 42, &sample_entries("fusion"))
            .unwrap();
        plan = store.journal_begin("sum", &ops()).unwrap();
        store.journal_mark_in_flight(plan, 0).unwrap();
        store
            .record_cycle(&cycle(1_000, outcome::CONVERGED, 3))
            .unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.path(), path);
    assert_eq!(store.schema_version().unwrap(), SUPPORTED_VERSION);
    let mode: String = store
        .conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let synchronous: i64 = store
        .conn
        .query_row("PRAGMA synchronous", [], |row| row.get(0))
        .unwrap();
    assert_eq!(synchronous, 2, "synchronous=FULL");
    let mut mirror = sample_mirror();
    mirror.sort_by_key(|r| r.rule.index);
    assert_eq!(store.mirror().unwrap(), mirror);
    assert_eq!(
        store.snapshot("fusion").unwrap().unwrap().entries,
        sample_entries("fusion")
    );
    let journal = store.unfinished_journal().unwrap().unwrap();
    assert_eq!((journal.id, journal.ops[0].attempts), (plan, 1));
    assert_eq!(journal.ops[0].state, OpState::InFlight);
    assert_eq!(
        store.history(5).unwrap(),
        vec![cycle(1_000, outcome::CONVERGED, 3)]
    );
}

fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

/// A database at `path` as dialsync at schema `version` created it, open for the test to put
/// rows in as that version wrote them.
fn written_by_version(path: &Path, version: usize) -> rusqlite::Connection {
    let conn = raw(path);
    for sql in &schema::MIGRATIONS[..version] {
        conn.execute_batch(sql).unwrap();
    }
    conn.pragma_update(None, "user_version", version as i64)
        .unwrap();
    conn.pragma_update(None, "application_id", schema::APPLICATION_ID)
        .unwrap();
    conn
}

#[test]
fn a_database_from_a_newer_dialsync_is_refused() {
    let dir = TempDir::new("newer");
    let path = dir.db();
    drop(Store::open(&path).unwrap());
    let newer = SUPPORTED_VERSION + 1;
    raw(&path)
        .pragma_update(None, "user_version", newer)
        .unwrap();
    let err = Store::open(&path).unwrap_err();
    match &err {
        StoreError::NewerSchema {
            found, supported, ..
        } => assert_eq!((*found, *supported), (newer, SUPPORTED_VERSION)),
        other => panic!("expected NewerSchema, got {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&format!("schema version {newer}"))
            && message.contains(&format!("version {SUPPORTED_VERSION} "))
            && message.contains("newer dialsync")
            && message.contains(&path.display().to_string()),
        "{message}"
    );
    assert_eq!(err.class(), ErrorClass::Fatal);
    // Refusing wrote nothing: the version is still the newer one.
    let version: i64 = raw(&path)
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, newer);
}

#[test]
fn files_that_are_not_our_database_are_refused() {
    let dir = TempDir::new("foreign");
    let garbage = dir.0.path().join("garbage.db");
    std::fs::write(&garbage, vec![b'x'; 8192]).unwrap();
    let err = Store::open(&garbage).unwrap_err();
    assert!(err.to_string().contains("garbage.db"), "{err}");
    assert_eq!(err.class(), ErrorClass::Fatal);
    assert_eq!(std::fs::read(&garbage).unwrap(), vec![b'x'; 8192]);

    let other = dir.0.path().join("other.db");
    raw(&other)
        .execute_batch("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
        .unwrap();
    let err = Store::open(&other).unwrap_err();
    assert!(matches!(err, StoreError::ForeignDatabase { .. }), "{err}");
    assert!(err.to_string().contains("other.db"), "{err}");
}

#[test]
fn a_corrupt_mirror_row_is_reported_by_its_index() {
    let mut store = Store::open_in_memory().unwrap();
    store.replace_mirror(&sample_mirror()).unwrap();
    store
        .conn
        .execute(
            "UPDATE mirror_rule SET prefix = '+32[1-' WHERE rule_index = 7",
            [],
        )
        .unwrap();
    let err = store.mirror().unwrap_err();
    match &err {
        StoreError::CorruptRow { table, row, .. } => {
            assert_eq!((*table, row.as_str()), ("mirror_rule", "index 7"))
        }
        other => panic!("expected CorruptRow, got {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(":memory:") && message.contains("index 7") && message.contains("+32[1-"),
        "{message}"
    );
    assert_eq!(err.class(), ErrorClass::Item);

    store
        .conn
        .execute(
            "UPDATE mirror_rule SET prefix = '+3226', tag = 'A;B' WHERE rule_index = 7",
            [],
        )
        .unwrap();
    // A tag is whatever the SBC holds, another system's syntax included: kept, not judged.
    let mirror = store.mirror().unwrap();
    let rule = &mirror.iter().find(|m| m.rule.index == 7).unwrap().rule;
    assert_eq!(rule.tag.as_str(), "A;B");
}

#[test]
fn a_corrupt_snapshot_entry_is_reported_by_source_and_position() {
    let mut store = Store::open_in_memory().unwrap();
    store
        .save_snapshot("fusion", 1, &sample_entries("fusion"))
        .unwrap();
    // hi one digit shorter than lo: not a range.
    store
        .conn
        .execute("UPDATE snapshot_entry SET hi = 322612799 WHERE seq = 0", [])
        .unwrap();
    let err = store.snapshot("fusion").unwrap_err().to_string();
    assert!(
        err.contains("source \"fusion\" entry 0") && err.contains("not a range"),
        "{err}"
    );

    // A snapshot equal to the stored one is not rewritten (its digest matches), so the
    // damaged one is dropped first.
    store.delete_snapshot("fusion").unwrap();
    store
        .save_snapshot("fusion", 1, &sample_entries("fusion"))
        .unwrap();
    store
        .conn
        .execute("DELETE FROM snapshot_entry WHERE seq = 2", [])
        .unwrap();
    let err = store.snapshot("fusion").unwrap_err().to_string();
    assert!(err.contains("entry 3") && err.contains("missing"), "{err}");

    // A snapshot equal to the stored one is not rewritten (its digest matches), so the
    // damaged one is dropped first.
    store.delete_snapshot("fusion").unwrap();
    store
        .save_snapshot("fusion", 1, &sample_entries("fusion"))
        .unwrap();
    store
        .conn
        .execute("DELETE FROM snapshot_entry WHERE seq = 4", [])
        .unwrap();
    let err = store.snapshot("fusion").unwrap_err().to_string();
    assert!(err.contains("5 entries saved, 4 found"), "{err}");
}

#[test]
fn a_corrupt_journal_op_is_reported_by_plan_and_seq() {
    let mut store = Store::open_in_memory().unwrap();
    let plan = store.journal_begin("abc", &ops()).unwrap();
    store
        .conn
        .execute(
            "UPDATE journal_op SET after_tag = 'Trunk=' WHERE plan_id = ?1 AND seq = 1",
            [plan.0],
        )
        .unwrap();
    let err = store.unfinished_journal().unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(&format!("plan {plan} op 1")) && message.contains("after tag"),
        "{message}"
    );
    assert_eq!(err.class(), ErrorClass::Item);
}

#[test]
fn a_deleted_or_replaced_file_is_noticed() {
    let dir = TempDir::new("replaced");
    let store = Store::open(dir.db()).unwrap();
    assert!(!store.replaced());
    std::fs::remove_file(dir.db()).unwrap();
    assert!(store.replaced(), "deleted");
    let other = Store::open(dir.db()).unwrap();
    assert!(store.replaced(), "another file in its place");
    assert!(!other.replaced());
    assert!(!Store::open_in_memory().unwrap().replaced());
}

#[test]
fn a_corrupt_file_says_so_and_what_to_do() {
    let dir = TempDir::new("corrupt");
    std::fs::write(dir.db(), [0xa5u8; 4096]).unwrap();
    let error = Store::open(dir.db()).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(&dir.db().display().to_string())
            && message.contains("is corrupt")
            && message.contains("move the file aside"),
        "{message}"
    );
    assert_eq!(error.class(), ErrorClass::Fatal);
}

#[test]
fn a_foreign_write_lock_is_busy_and_transient_and_names_the_file() {
    let dir = TempDir::new("busy");
    let mut store = Store::open(dir.db()).unwrap();
    let locker = rusqlite::Connection::open(dir.db()).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    store.conn.busy_timeout(Duration::from_millis(50)).unwrap();
    let error = store.replace_mirror(&sample_mirror()).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(&dir.db().display().to_string())
            && message.contains("locked by another process"),
        "{message}"
    );
    assert_eq!(error.class(), ErrorClass::Transient);
    locker.execute_batch("ROLLBACK").unwrap();
    store.replace_mirror(&sample_mirror()).unwrap();
}

#[test]
fn a_snapshot_keeps_its_answer_digest_and_rejected_items_and_is_touched_only_by_that_answer() {
    let mut store = Store::open_in_memory().unwrap();
    let entries = sample_entries("fusion");
    let answer = |digest, rejected| SnapshotAnswer {
        digest,
        trail: b"trail",
        rejected,
    };
    store
        .save_snapshot_of(
            "fusion",
            1,
            &entries,
            answer(
                Some("d1"),
                &[("line 3", "not a number"), ("line 9", "empty tag")],
            ),
        )
        .unwrap();
    let summary = |store: &Store| store.snapshot_sources().unwrap().remove(0);
    assert_eq!(summary(&store).answer_digest.as_deref(), Some("d1"));
    assert_eq!(summary(&store).answer_trail, b"trail");
    let rejected = store.snapshot_rejected("fusion").unwrap();
    assert_eq!(
        rejected,
        [
            ("line 3".to_string(), "not a number".to_string()),
            ("line 9".to_string(), "empty tag".to_string())
        ]
    );

    store.touch_snapshot("fusion", 5, "d1").unwrap();
    assert_eq!(store.standing_snapshot("fusion").unwrap().entries, entries);
    assert!(store.standing_snapshot("absent").is_err());
    assert_eq!(summary(&store).fetched_at_unix, 5);
    // Another answer's digest changes nothing and says so.
    let refused = store.touch_snapshot("fusion", 6, "d2").unwrap_err();
    assert!(refused.to_string().contains("fusion"), "{refused}");
    assert_eq!(summary(&store).fetched_at_unix, 5);
    assert!(store.touch_snapshot("absent", 6, "d1").is_err());

    // The same entries from another answer (its rejected items changed): the digest and the
    // rejected items follow the answer, the entries stay.
    store
        .save_snapshot_of("fusion", 7, &entries, answer(Some("d3"), &[]))
        .unwrap();
    assert_eq!(summary(&store).answer_digest.as_deref(), Some("d3"));
    assert!(store.snapshot_rejected("fusion").unwrap().is_empty());
    // Other entries with no digest (a forced empty snapshot): nothing can be touched.
    store.save_snapshot("fusion", 8, &[]).unwrap();
    assert_eq!(summary(&store).answer_digest, None);
    assert!(store.touch_snapshot("fusion", 9, "d3").is_err());
    assert!(store.delete_snapshot("fusion").unwrap());
    assert!(store.snapshot_rejected("fusion").unwrap().is_empty());
}

#[test]
fn snapshots_saved_by_version_6_survive_the_upgrade_without_an_answer_digest() {
    let dir = TempDir::new("v6");
    let path = dir.db();
    let entries = sample_entries("fusion");
    {
        // Saved as version 6 saved it: no answer digest, no rejected items.
        let conn = written_by_version(&path, 6);
        conn.execute(
            "INSERT INTO source_snapshot (id, source, fetched_at_unix, entry_count)
             VALUES (1, 'fusion', 3, 0)",
            [],
        )
        .unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SUPPORTED_VERSION);
    let summary = store.snapshot_sources().unwrap().remove(0);
    assert_eq!((summary.fetched_at_unix, summary.answer_digest), (3, None));
    assert!(store.touch_snapshot("fusion", 4, "d1").is_err());
    assert_eq!(store.steady_state().unwrap(), None);
    store
        .save_snapshot_of(
            "fusion",
            5,
            &entries,
            SnapshotAnswer {
                digest: Some("d1"),
                trail: &[],
                rejected: &[],
            },
        )
        .unwrap();
    store.touch_snapshot("fusion", 6, "d1").unwrap();
}

#[test]
fn the_steady_state_is_one_record_replaced_or_forgotten_whole() {
    let mut store = Store::open_in_memory().unwrap();
    assert_eq!(store.steady_state().unwrap(), None);
    let steady = |inputs: &str| SteadyState {
        inputs: inputs.into(),
        findings: format!("{{\"of\":\"{inputs}\"}}"),
    };
    store.set_steady_state(Some(&steady("a b"))).unwrap();
    assert_eq!(store.steady_state().unwrap(), Some(steady("a b")));
    store.set_steady_state(Some(&steady("c d"))).unwrap();
    assert_eq!(store.steady_state().unwrap(), Some(steady("c d")));
    store.set_steady_state(None).unwrap();
    assert_eq!(store.steady_state().unwrap(), None);
}
