//! A real crash in the middle of a journaled apply, and what the next start finds.
//!
//! The test re-runs its own binary as a child that journals a plan, records progress on some
//! ops, leaves a write transaction open, and then calls `abort()`: no destructors, no flushes,
//! no clean close of SQLite. The parent reopens the database and checks that the journal holds
//! exactly what was committed before the crash, and nothing of what was not.

mod common;

use std::path::Path;
use std::process::Command;

use common::plan::route;
use dialsync::plan::Op;
use dialsync::store::{OpState, PlanId, Store};

/// Set in the child's environment to the database path: "be the process that crashes".
const CHILD_ENV: &str = "DIALSYNC_STORE_CRASH_CHILD_DB";
const TEST_NAME: &str = "journal_survives_an_abort_mid_apply";
const OPS: u32 = 50;
const CHECKSUM: &str = "5f1d7a0c9e0b2f6a8c4d3e2b1a09f8e7d6c5b4a3928170615f4e3d2c1b0a9988";

/// A plan of adds, modifies and deletes, the same in parent and child.
fn plan_ops() -> Vec<Op> {
    (0..OPS)
        .map(|i| {
            let old = route(&format!("+32261{:02}xxx#", i), &format!("Trunk=t{}", i % 7));
            let new = route(
                &format!("+32261{:02}[000-499]#", i),
                &format!("Trunk=t{}", i % 5),
            );
            let (before, after) = match i % 3 {
                0 => (None, Some(new)),
                1 => (Some(old), Some(new)),
                _ => (Some(old), None),
            };
            Op {
                index: 100 + i,
                before,
                after,
            }
        })
        .collect()
}

/// What the child commits for op `seq` before crashing: (state, attempts, last error).
fn committed_progress(seq: u32) -> (OpState, u32, Option<String>) {
    match seq {
        // Applied and confirmed.
        0..=19 => (OpState::Done, 1, None),
        // Refused once, retried, confirmed.
        20 => (OpState::Done, 2, Some("409 device busy".into())),
        // Refused for good.
        21 => (OpState::Failed, 1, Some("400 prefix rejected".into())),
        // Sent, answer never recorded: the crash came here.
        22..=24 => (OpState::InFlight, 1, None),
        // Retried after a failure and in flight again at the crash.
        25 => (OpState::InFlight, 3, Some("timeout".into())),
        _ => (OpState::Pending, 0, None),
    }
}

/// The crashing process. Never returns.
fn child(db: &Path) -> ! {
    let mut store = Store::open(db).unwrap();
    // An earlier plan that finished cleanly: recovery must not pick it up.
    let earlier = store.journal_begin("earlier", &plan_ops()[..3]).unwrap();
    store.journal_finish(earlier, "applied").unwrap();

    let plan = store.journal_begin(CHECKSUM, &plan_ops()).unwrap();
    for seq in 0..OPS {
        let (state, attempts, error) = committed_progress(seq);
        for attempt in 1..=attempts {
            store.journal_mark_in_flight(plan, seq).unwrap();
            let last = attempt == attempts;
            match (&error, last, state) {
                (Some(error), false, _) | (Some(error), true, OpState::Failed) => {
                    store.journal_mark_failed(plan, seq, error).unwrap()
                }
                (_, true, OpState::Done) => store.journal_mark_done(plan, seq).unwrap(),
                _ => {}
            }
        }
    }

    // Work that is in progress but not committed at the crash must leave no trace: a second
    // connection marks every op done inside a transaction that never commits.
    let mut raw = rusqlite::Connection::open(db).unwrap();
    raw.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    let tx = raw
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    tx.execute(
        "UPDATE journal_op SET state = 'done', attempts = 99 WHERE plan_id = ?1",
        [plan.0],
    )
    .unwrap();
    tx.execute(
        "UPDATE journal_plan SET outcome = 'applied' WHERE id = ?1",
        [plan.0],
    )
    .unwrap();
    println!("child: plan {plan} journaled, aborting mid-apply");
    std::process::abort();
}

#[test]
fn journal_survives_an_abort_mid_apply() {
    if let Some(db) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&db));
    }

    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let db = dir.join("state.db");
    let output = Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &db)
        // Where a core dump of the abort lands, if the system writes one: not the source tree.
        .current_dir(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stdout.contains("aborting mid-apply"),
        "the child did not reach the crash point\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(!output.status.success(), "the child exited cleanly");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            output.status.signal(),
            Some(6),
            "the child must die of SIGABRT, not exit: {:?}",
            output.status
        );
    }
    // The crash left the write-ahead log behind, not yet checkpointed into the database.
    assert!(dir.join("state.db-wal").exists());

    let mut store = Store::open(&db).unwrap();
    let journal = store
        .unfinished_journal()
        .unwrap()
        .expect("the crashed plan is unfinished");
    assert_eq!(journal.id, PlanId(2));
    assert_eq!(journal.checksum, CHECKSUM);
    assert_eq!(journal.ops.len(), OPS as usize);
    for (journaled, op) in journal.ops.iter().zip(plan_ops()) {
        let (state, attempts, error) = committed_progress(journaled.seq);
        assert_eq!(journaled.op, op, "op {}", journaled.seq);
        assert_eq!(
            (
                journaled.state,
                journaled.attempts,
                journaled.last_error.clone()
            ),
            (state, attempts, error),
            "op {}",
            journaled.seq
        );
    }
    let seqs: Vec<u32> = journal.ops.iter().map(|op| op.seq).collect();
    assert_eq!(seqs, (0..OPS).collect::<Vec<_>>());

    // The recovered database takes writes again: recovery can finish the plan.
    store.journal_mark_done(journal.id, 22).unwrap();
    store.journal_finish(journal.id, "recovered").unwrap();
    assert_eq!(store.unfinished_journal().unwrap(), None);
    drop(store);
}
