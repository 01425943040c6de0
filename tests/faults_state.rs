//! The state-database part of the fault matrix: the real binary against the emulators, with
//! the SQLite file deleted, truncated, corrupted, locked by a foreign process, and on a full
//! disk.
//!
//! Every case asserts the same four things: no panic (a normal exit code, never 101 or a
//! signal); a message that names the file, the reason and what to do; no route lost on the SBC
//! (every number routed before still routes to the same tag, the foreign rule untouched, no
//! unexpected request); and convergence once the fault is gone (the owned rules equal a clean
//! sync's, and a following sync writes nothing).
//!
//! Each case prints `fault=... stage=... outcome=...` lines (run with `--nocapture`) so the
//! table can be quoted.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::binary::scrub;
use common::daemon::Daemon;
use common::sbc::{owned_routes, CHECK_ONLY_UNREADABLE};
use common::{command, run, Out, Rig, Settings, BIN};
use dialsync::sim::sbc::SimPlan;
use rustix::process::Signal;

// ---------------------------------------------------------------------------------------------
// What every case checks.

/// Every number the rig's upstreams assign.
fn assigned_numbers() -> Vec<String> {
    let mut numbers = Vec::new();
    numbers.extend((3226120000u64..3226120100).map(|n| format!("+{n}")));
    numbers.extend((3226130000u64..3226130050).map(|n| format!("+{n}")));
    numbers.extend((3225000000u64..3225000010).map(|n| format!("+{n}")));
    numbers
}

/// What the SBC routed before a fault: each number's tag, the foreign rules, dialsync's rules.
struct Baseline {
    routes: Vec<(String, Option<String>)>,
    foreign: Vec<(u32, String, String, String)>,
    owned: Vec<(u32, String, String)>,
}

impl Baseline {
    fn take(rig: &Rig) -> Baseline {
        let numbers = assigned_numbers();
        let tags = tags_of(rig, &numbers);
        let routes: Vec<(String, Option<String>)> = numbers.into_iter().zip(tags).collect();
        assert!(
            routes.iter().all(|(_, tag)| tag.is_some()),
            "the baseline routes every number: {routes:?}"
        );
        Baseline {
            routes,
            foreign: rig.foreign_rules(),
            owned: rig.owned_rules(),
        }
    }

    /// No route lost: every number routes as before, the foreign rules are untouched and
    /// neither emulator saw a request it did not expect.
    fn assert_kept(&self, rig: &Rig, what: &str) {
        let numbers: Vec<String> = self.routes.iter().map(|(n, _)| n.clone()).collect();
        let now = tags_of(rig, &numbers);
        for ((number, before), after) in self.routes.iter().zip(now) {
            assert_eq!(
                before, &after,
                "{what}: {number} routed to {before:?} before the fault, now {after:?}"
            );
        }
        assert_eq!(rig.foreign_rules(), self.foreign, "{what}: foreign rules");
        rig.assert_no_unexpected();
    }
}

fn tags_of(rig: &Rig, numbers: &[String]) -> Vec<Option<String>> {
    let refs: Vec<&str> = numbers.iter().map(String::as_str).collect();
    rig.sbc_tags(&refs)
}

/// A normal exit: no panic, no signal, one of the documented codes.
fn assert_sane(out: &Out, what: &str) {
    assert!(
        !out.stderr.contains("panicked") && !out.stdout.contains("panicked"),
        "{what}: panicked:\n{out}"
    );
    assert!(
        matches!(out.code, Some(0..=3)),
        "{what}: exit code must be 0-3 (not 101, not a signal):\n{out}"
    );
}

/// The line an operator reads first: the error on stderr, or the first line of stdout.
fn message(out: &Out) -> String {
    let text = out
        .stderr
        .lines()
        .find(|l| l.starts_with("dialsync:"))
        .or_else(|| out.stdout.lines().find(|l| !l.trim().is_empty()))
        .or_else(|| out.stderr.lines().find(|l| l.contains("ERROR")))
        .unwrap_or("")
        .trim()
        .to_string();
    text
}

/// Everything the command said.
fn said(out: &Out) -> String {
    format!("{}\n{}", out.stdout, out.stderr)
}

fn table(fault: &str, stage: &str, out: &Out, note: &str) {
    println!(
        "fault={fault} stage={stage} outcome=\"exit {} | {} | {note}\"",
        out.code.map_or("signal".to_string(), |c| c.to_string()),
        message(out)
    );
}

/// A `sync` that must converge: exit 0, then a second sync that writes nothing. Returns the
/// writes the first one made.
fn assert_converges(rig: &Rig, what: &str) -> usize {
    let before = rig.writes();
    let first = rig.dialsync(&["sync"]);
    assert_sane(&first, what);
    assert_eq!(
        first.code,
        Some(0),
        "{what}: the sync after the fault:\n{first}"
    );
    let made = rig.writes() - before;
    let again = rig.dialsync(&["sync"]);
    assert_eq!(again.code, Some(0), "{what}: the sync after that:\n{again}");
    assert_eq!(
        rig.writes() - before,
        made,
        "{what}: the second sync after the fault wrote again:\n{again}"
    );
    made
}

/// Removes the state database and its -wal and -shm files, as an operator "resetting" it.
fn delete_state(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        match fs::remove_file(PathBuf::from(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("remove {}{suffix}: {e}", path.display()),
        }
    }
}

/// A clean sync's dial plan for the current upstreams: a scratch state database, the SBC as it
/// is now; afterwards the SBC (rules and request log) is put back as it was.
fn reference(rig: &Rig) -> Vec<(String, String)> {
    let (plans, requests, scripts, reads, applied, save_needed) = {
        let s = rig.sbc.state();
        (
            s.plans.clone(),
            s.requests.clone(),
            s.scripts_received,
            s.reads_received,
            s.applied_scripts,
            s.save_needed,
        )
    };
    let scratch = tempfile::tempdir().expect("tempdir");
    let config = scratch.path().join("dialsync.toml");
    let text = rig.config_text(&Settings::default()).replace(
        &rig.path("state.db").display().to_string(),
        &scratch.path().join("state.db").display().to_string(),
    );
    fs::write(&config, text).expect("write the scratch config");
    let out = run(command().arg("sync").arg("--config").arg(&config));
    assert_eq!(out.code, Some(0), "the reference sync:\n{out}");
    let routes = owned_routes(&rig.sbc);
    let mut s = rig.sbc.state();
    s.plans = plans;
    s.requests = requests;
    s.scripts_received = scripts;
    s.reads_received = reads;
    s.applied_scripts = applied;
    s.save_needed = save_needed;
    routes
}

fn restore_sbc(rig: &Rig, plans: &std::collections::BTreeMap<u32, SimPlan>) {
    rig.sbc.state().plans = plans.clone();
}

/// A rig after its first, clean sync.
fn synced_rig() -> (Rig, Baseline) {
    let rig = Rig::start();
    let first = rig.dialsync(&["sync"]);
    assert_eq!(first.code, Some(0), "the first sync:\n{first}");
    let baseline = Baseline::take(&rig);
    (rig, baseline)
}

// ---------------------------------------------------------------------------------------------
// 1. The state database deleted.

#[test]
fn deleted_between_two_syncs_is_rebuilt_from_the_sbc_without_a_write() {
    let (rig, baseline) = synced_rig();
    let db = rig.path("state.db");
    let writes = rig.writes();
    delete_state(&db);
    let out = rig.dialsync(&["sync"]);
    assert_sane(&out, "sync after delete");
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        rig.writes(),
        writes,
        "rebuilding the state from the SBC wrote to it:\n{out}"
    );
    assert_eq!(rig.owned_rules(), baseline.owned, "owned rules churned");
    baseline.assert_kept(&rig, "deleted");
    assert!(db.exists(), "the state database is recreated");
    let made = assert_converges(&rig, "deleted");
    assert_eq!(made, 0);
    table("deleted(db+wal+shm)", "between syncs", &out, "writes 0");

    // status/check/lookup before any sync: a clear "no state database".
    delete_state(&db);
    for args in [&["status"][..], &["lookup", "+3226120001"][..]] {
        let out = rig.dialsync(args);
        assert_sane(&out, args[0]);
        assert_eq!(out.code, Some(1), "{out}");
        assert!(
            out.stderr.contains("no state database") && out.stderr.contains("state.db"),
            "{out}"
        );
        table("deleted", args[0], &out, "");
    }
    let out = rig.dialsync(&["check"]);
    assert_sane(&out, "check");
    assert!(matches!(out.code, Some(2 | 3)), "{out}");
    assert!(out.stdout.contains("state.db"), "{out}");
    table("deleted", "check", &out, "");
    assert!(
        !db.exists(),
        "the read-only commands must not create the database"
    );
    assert_converges(&rig, "deleted, read-only commands");
    assert_eq!(rig.writes(), writes);
}

#[test]
fn deleted_under_a_running_daemon_is_reopened_and_rebuilt() {
    let rig = Rig::start();
    rig.write_config(&Settings {
        interval: "1h",
        ..Settings::default()
    });
    let db = rig.path("state.db");
    let daemon = Daemon::start(&rig.config_path());
    let status = daemon.wait_cycles_at_least(1);
    assert_eq!(status["last_cycle"]["outcome"], "converged", "{status}");
    let baseline = Baseline::take(&rig);
    let writes = rig.writes();

    delete_state(&db);
    daemon.signal(Signal::USR1);
    let status = daemon.wait_cycles_at_least(2);
    assert_eq!(
        status["last_cycle"]["outcome"],
        "converged",
        "the cycle after the delete: {status}\n{}",
        daemon.log()
    );
    assert!(
        daemon.log().contains("deleted or replaced"),
        "the daemon says it noticed:\n{}",
        daemon.log()
    );
    assert_eq!(rig.writes(), writes, "the rebuild wrote to the SBC");
    assert_eq!(rig.owned_rules(), baseline.owned);
    baseline.assert_kept(&rig, "deleted under run");
    assert!(db.exists(), "the daemon recreated the state database");
    // The readers see the daemon's state again, not a file nobody writes.
    let check = rig.dialsync(&["check"]);
    assert_sane(&check, "check");
    assert_eq!(check.code, Some(1), "{check}");
    assert!(
        check.stdout.starts_with(CHECK_ONLY_UNREADABLE),
        "only the unreadable row: {check}"
    );
    let line = format!(
        "last cycle {} after the delete, writes 0",
        status["last_cycle"]["outcome"]
    );
    table("deleted(db+wal+shm)", "under `run`", &check, &line);

    // `rm state.db*`: the lock file too. The daemon locks a new one, so a second agent is
    // still refused.
    delete_state(&db);
    let mut lock = db.as_os_str().to_owned();
    lock.push(".lock");
    fs::remove_file(PathBuf::from(&lock)).expect("remove the lock file");
    daemon.signal(Signal::USR1);
    let status = daemon.wait_cycles_at_least(3);
    assert_eq!(status["last_cycle"]["outcome"], "converged", "{status}");
    assert!(PathBuf::from(&lock).exists(), "the lock file is recreated");
    let second = rig.dialsync(&["sync"]);
    assert_sane(&second, "a second agent");
    assert_eq!(second.code, Some(1), "{second}");
    assert!(
        second.stderr.contains("in use by another dialsync"),
        "the daemon still holds the lock:\n{second}"
    );
    table(
        "deleted(db+wal+shm+lock)",
        "under `run`",
        &second,
        "second agent refused",
    );
    assert_eq!(rig.writes(), writes);

    let (stopped, _, _) = daemon.stop();
    assert_eq!(stopped.code(), Some(0), "dialsync run stops cleanly");
    // And after a restart.
    let daemon = Daemon::start(&rig.config_path());
    let status = daemon.wait_cycles_at_least(1);
    assert_eq!(status["last_cycle"]["outcome"], "converged", "{status}");
    assert_eq!(daemon.stop().0.code(), Some(0));
    assert_eq!(rig.writes(), writes, "the restart wrote to the SBC");
    assert_eq!(assert_converges(&rig, "deleted under run, restarted"), 0);
    baseline.assert_kept(&rig, "deleted under run, restarted");
}

// ---------------------------------------------------------------------------------------------
// 2. The state database truncated or corrupted.

#[derive(Clone, Copy, Debug)]
enum Damage {
    Empty,
    Half,
    GarbageHeader,
}

fn damage(path: &Path, how: Damage) {
    let len = fs::metadata(path).expect("state.db").len();
    match how {
        Damage::Empty => fs::write(path, b"").expect("truncate"),
        Damage::Half => {
            let file = fs::OpenOptions::new().write(true).open(path).expect("open");
            file.set_len(len / 2).expect("truncate");
        }
        Damage::GarbageHeader => {
            use std::io::{Seek, Write};
            let mut file = fs::OpenOptions::new().write(true).open(path).expect("open");
            file.rewind().expect("rewind");
            file.write_all(&[0xa5; 100]).expect("garbage");
        }
    }
}

#[test]
fn truncated_or_corrupt_is_a_clear_error_or_a_rebuild_never_a_lost_route() {
    let (rig, baseline) = synced_rig();
    let db = rig.path("state.db");
    let good = rig.path("good.db");
    assert!(
        !rig.path("state.db-wal").exists(),
        "a clean exit checkpoints"
    );
    fs::copy(&db, &good).expect("keep a good copy");
    let writes = rig.writes();
    for how in [Damage::Empty, Damage::Half, Damage::GarbageHeader] {
        let fault = format!("corrupt({how:?})");
        delete_state(&db);
        fs::copy(&good, &db).expect("restore the good copy");
        damage(&db, how);

        // The read-only commands first, on the damaged file as found.
        for args in [
            &["status"][..],
            &["lookup", "+3226120001"][..],
            &["check"][..],
        ] {
            let out = rig.dialsync(args);
            assert_sane(&out, &format!("{fault} {}", args[0]));
            let text = said(&out);
            if args[0] == "check" {
                assert!(matches!(out.code, Some(2 | 3)), "{fault}: {out}");
                assert!(out.stdout.starts_with("DIALSYNC "), "{out}");
            }
            assert_ne!(out.code, Some(0), "{fault}: {out}");
            assert!(text.contains(&db.display().to_string()), "{fault}: {out}");
            if matches!(how, Damage::Empty) {
                assert!(text.contains("the file is empty"), "{fault}: {out}");
            } else {
                assert!(
                    text.contains("is corrupt") && text.contains("move the file aside"),
                    "{fault}: {out}"
                );
            }
            table(&fault, args[0], &out, "");
        }

        let out = rig.dialsync(&["sync"]);
        assert_sane(&out, &fault);
        baseline.assert_kept(&rig, &fault);
        assert_eq!(rig.writes(), writes, "{fault}: the sync wrote:\n{out}");
        let text = said(&out);
        if out.code == Some(0) {
            // Rebuilt (only an empty file, which holds nothing to lose, may be).
            assert!(matches!(how, Damage::Empty), "{fault}: accepted:\n{out}");
            table(&fault, "sync", &out, "rebuilt from the SBC, writes 0");
        } else {
            assert!(
                text.contains(&db.display().to_string())
                    && text.contains("is corrupt")
                    && text.contains("move the file aside"),
                "{fault}: {out}"
            );
            table(&fault, "sync", &out, "");
            // What the message says to do.
            let mut aside = db.as_os_str().to_owned();
            aside.push(".corrupt");
            fs::rename(&db, PathBuf::from(aside)).expect("move aside");
            delete_state(&db);
        }
        assert_eq!(assert_converges(&rig, &fault), 0, "{fault}");
        assert_eq!(rig.owned_rules(), baseline.owned, "{fault}");
        baseline.assert_kept(&rig, &fault);
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Locked by a foreign SQLite connection.

/// Holds a write lock on `db` from a thread of this process until the returned sender is
/// dropped or sent to. `exclusive_mode` also shuts out readers (`locking_mode=EXCLUSIVE`).
fn hold_lock(db: &Path, exclusive_mode: bool) -> (mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (locked_tx, locked_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let db = db.to_path_buf();
    let holder = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(&db).expect("open");
        if exclusive_mode {
            conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
                .expect("locking_mode");
        }
        conn.execute_batch("BEGIN EXCLUSIVE; INSERT INTO state_meta VALUES ('locker', 'x');")
            .expect("BEGIN EXCLUSIVE");
        locked_tx.send(()).expect("locked");
        let _ = release_rx.recv();
        conn.execute_batch("ROLLBACK").expect("rollback");
    });
    locked_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the lock is taken");
    (release_tx, holder)
}

#[test]
fn locked_by_a_foreign_connection_is_reported_and_writes_nothing() {
    let (rig, baseline) = synced_rig();
    let db = rig.path("state.db");
    for (variant, exclusive_mode, upstream_changes) in [
        ("BEGIN EXCLUSIVE, nothing upstream", false, false),
        ("BEGIN EXCLUSIVE, upstream changed", false, true),
        ("locking_mode=EXCLUSIVE", true, false),
    ] {
        let fault = format!("locked({variant})");
        if upstream_changes {
            rig.fusion.state().add_numbers(3226140000, 20, "initech");
        }
        let writes = rig.writes();
        let (release, holder) = hold_lock(&db, exclusive_mode);
        let started = Instant::now();
        let out = rig.dialsync(&["sync"]);
        let took = started.elapsed();
        let check = rig.dialsync(&["check"]);
        let _ = release.send(());
        holder.join().expect("the holder thread");
        assert_sane(&out, &fault);
        assert_eq!(out.code, Some(1), "{fault}: {out}");
        let text = said(&out);
        assert!(
            text.contains(&db.display().to_string())
                && text.contains("locked by another process")
                && text.contains(&format!("pid {}", std::process::id())),
            "{fault}: the message names the file, the reason and the holder:\n{out}"
        );
        assert_eq!(rig.writes(), writes, "{fault}: wrote to the SBC:\n{out}");
        baseline.assert_kept(&rig, &fault);
        table(&fault, "sync", &out, &format!("took {took:.1?}"));
        assert_sane(&check, "check while locked");
        if exclusive_mode {
            assert_eq!(check.code, Some(3), "{check}");
            assert!(
                check.stdout.contains("locked by another process"),
                "{check}"
            );
        }
        table(&fault, "check", &check, "");

        let made = assert_converges(&rig, &fault);
        if upstream_changes {
            assert!(
                made > 0,
                "{fault}: the new numbers are written once unlocked"
            );
            let tags = tags_of(&rig, &["+3226140000".to_string()]);
            assert_eq!(tags, vec![Some("Trunk=initech".to_string())]);
        } else {
            assert_eq!(made, 0, "{fault}");
        }
        baseline.assert_kept(&rig, &fault);
    }
    let expected = reference(&rig);
    assert_eq!(owned_routes(&rig.sbc), expected, "a clean sync's rules");
}

// ---------------------------------------------------------------------------------------------
// 4. Disk full: the state database on a small tmpfs.

/// A tmpfs of its own at a fresh mount point, unmounted when dropped (even on a panic).
/// Mounted directly as root; otherwise inside a user and mount namespace held open by a child
/// (`unshare -r -m`), whose namespace every command touching it enters (`nsenter`).
struct Tmpfs {
    mount_point: PathBuf,
    /// The namespace holder when not mounted directly.
    namespace: Option<Child>,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size_kib: u64) -> Tmpfs {
        let parent = tempfile::tempdir().expect("tempdir");
        let mount_point = parent.path().join("mnt");
        fs::create_dir(&mount_point).expect("mkdir mnt");
        let options = format!("size={size_kib}k");
        let forced = std::env::var("DIALSYNC_TEST_TMPFS").unwrap_or_default();
        if forced != "userns" {
            let direct = Command::new("mount")
                .args(["-t", "tmpfs", "-o", &options, "tmpfs"])
                .arg(&mount_point)
                .stderr(Stdio::piped())
                .output();
            if let Ok(output) = &direct {
                if output.status.success() {
                    return Tmpfs {
                        mount_point,
                        namespace: None,
                        _parent: parent,
                    };
                }
            }
        }
        let script = format!(
            "mount -t tmpfs -o {options} tmpfs '{}' && echo ready && exec sleep 3600",
            mount_point.display()
        );
        let holder = Command::new("unshare")
            .args(["-r", "-m", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut holder = match holder {
            Ok(holder) => holder,
            Err(e) => panic!(
                "the disk-full case needs root (to mount a tmpfs) or user namespaces \
                 (`unshare -r -m`): mount failed and unshare cannot run: {e}"
            ),
        };
        let mut line = String::new();
        let stdout = holder.stdout.take().expect("stdout");
        let _ = BufReader::new(stdout).read_line(&mut line);
        if line.trim() != "ready" {
            let mut err = String::new();
            if let Some(mut stderr) = holder.stderr.take() {
                let _ = stderr.read_to_string(&mut err);
            }
            let _ = holder.kill();
            let _ = holder.wait();
            panic!(
                "the disk-full case needs root (to mount a tmpfs) or user namespaces \
                 (`unshare -r -m`), and neither works here: {}",
                err.trim()
            );
        }
        Tmpfs {
            mount_point,
            namespace: Some(holder),
            _parent: parent,
        }
    }

    fn mode(&self) -> &'static str {
        if self.namespace.is_some() {
            "userns"
        } else {
            "root"
        }
    }

    /// `program` run where the tmpfs is mounted.
    fn command(&self, program: &str) -> Command {
        let mut command = match &self.namespace {
            None => {
                if program == BIN {
                    command()
                } else {
                    Command::new(program)
                }
            }
            Some(holder) => {
                let mut c = Command::new("nsenter");
                c.args([
                    "-t",
                    &holder.id().to_string(),
                    "-U",
                    "-m",
                    "--preserve-credentials",
                ])
                .arg("--")
                .arg(program);
                if program == BIN {
                    scrub(&mut c);
                }
                c
            }
        };
        command.stdin(Stdio::null());
        command
    }

    /// A shell script run where the tmpfs is mounted; panics when it fails.
    fn sh(&self, script: &str) -> String {
        let out = run(self.command("sh").args(["-c", script]));
        assert_eq!(out.code, Some(0), "sh -c {script:?}:\n{out}");
        out.stdout
    }

    fn path(&self, name: &str) -> PathBuf {
        self.mount_point.join(name)
    }

    /// Bytes a user may still write.
    fn free(&self) -> u64 {
        let text = self.sh(&format!(
            "stat -f -c '%a %S' '{}'",
            self.mount_point.display()
        ));
        let mut words = text
            .split_whitespace()
            .map(|w| w.parse::<u64>().expect("a number"));
        let (blocks, size) = (words.next().expect("free"), words.next().expect("bsize"));
        blocks * size
    }

    /// Fills the file system with `filler` until `left` bytes (rounded to pages) are free.
    fn fill_until(&self, left: u64) {
        let free = self.free();
        let filler = self.path("filler");
        if free > left {
            self.sh(&format!(
                "head -c {} /dev/zero > '{}'",
                free - left,
                filler.display()
            ));
        }
    }

    fn dialsync(&self, config: &Path, args: &[&str]) -> Out {
        run(self.command(BIN).args(args).arg("--config").arg(config))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        match &mut self.namespace {
            // The namespace, and its mount, go with the last process in it.
            Some(holder) => {
                let _ = holder.kill();
                let _ = holder.wait();
            }
            None => {
                let _ = Command::new("umount")
                    .arg("-l")
                    .arg(&self.mount_point)
                    .status();
            }
        }
    }
}

/// Where a failing cycle first stopped, from what the store was doing (the first "no space
/// left on the device (<what>: ..." of the output, stdout's summary before stderr's log).
fn stage_of(out: &Out) -> String {
    const MARK: &str = "no space left on the device (";
    let text = format!("{}\n{}", out.stdout, out.stderr);
    let Some(at) = text.find(MARK) else {
        return "other".into();
    };
    let what = &text[at + MARK.len()..];
    let what = &what[..what.find(':').unwrap_or(what.len())];
    let stage = [
        ("journal", "journal"),
        ("snapshot", "snapshot"),
        ("mirror", "mirror"),
        ("cycle", "history"),
        ("header", "open"),
        ("WAL", "open"),
        ("open", "open"),
        ("schema", "open"),
    ]
    .iter()
    .find(|(needle, _)| what.contains(needle))
    .map_or("other", |(_, stage)| stage);
    format!("{stage} ({what})")
}

/// Routes as (prefix, tag).
type Routes = BTreeSet<(String, String)>;

/// The journal's before-routes and after-routes, over all its ops.
fn journaled(db_copy: &Path) -> (Routes, Routes) {
    let conn = rusqlite::Connection::open(db_copy).expect("open the copy");
    let mut after = BTreeSet::new();
    let mut before = BTreeSet::new();
    let mut query = conn
        .prepare("SELECT before_prefix, before_tag, after_prefix, after_tag FROM journal_op")
        .expect("prepare");
    let rows = query
        .query_map([], |row| {
            Ok((
                row.get::<_, Option<String>>(0)?,
                row.get::<_, Option<String>>(1)?,
                row.get::<_, Option<String>>(2)?,
                row.get::<_, Option<String>>(3)?,
            ))
        })
        .expect("query");
    for row in rows {
        let (bp, bt, ap, at) = row.expect("row");
        if let (Some(p), Some(t)) = (bp, bt) {
            before.insert((p, t));
        }
        if let (Some(p), Some(t)) = (ap, at) {
            after.insert((p, t));
        }
    }
    (before, after)
}

#[test]
fn disk_full_fails_clearly_never_writes_unjournaled_and_converges_once_freed() {
    let rig = Rig::start();
    let tmp = Tmpfs::mount(2048);
    let config = rig.path("tmpfs.toml");
    fs::write(
        &config,
        rig.config_text(&Settings::default()).replace(
            &rig.path("state.db").display().to_string(),
            &tmp.path("state.db").display().to_string(),
        ),
    )
    .expect("write the config");
    let first = tmp.dialsync(&config, &["sync"]);
    assert_eq!(first.code, Some(0), "the first sync on the tmpfs:\n{first}");
    let baseline = Baseline::take(&rig);
    let plans = rig.sbc.state().plans.clone();
    let good = rig.path("good.db");
    tmp.sh(&format!(
        "cp '{}' '{}'",
        tmp.path("state.db").display(),
        good.display()
    ));

    // A big apply: 600 numbers that are each a rule of their own.
    {
        let mut fusion = rig.fusion.state();
        for i in 0..600u64 {
            let tenant = if i % 2 == 0 { "umbrella" } else { "hooli" };
            fusion.add_numbers(3226150000 + 2 * i, 1, tenant);
        }
    }
    let expected = reference(&rig);
    assert!(expected.len() > 600, "the plan is big: {}", expected.len());

    let mut stages = BTreeSet::new();
    for left_kib in [0u64, 16, 32, 64, 128, 144, 160, 176, 192, 256, 384] {
        let what = format!("disk full, {left_kib} KiB free");
        restore_sbc(&rig, &plans);
        tmp.sh(&format!(
            "rm -f '{db}' '{db}-wal' '{db}-shm' '{filler}' && cp '{good}' '{db}'",
            db = tmp.path("state.db").display(),
            filler = tmp.path("filler").display(),
            good = good.display()
        ));
        tmp.fill_until(left_kib * 1024);
        let writes = rig.writes();
        let out = tmp.dialsync(&config, &["sync"]);
        assert_sane(&out, &what);
        baseline.assert_kept(&rig, &what);
        let text = said(&out);
        let stage = if out.code == Some(0) {
            "none (enough space)".to_string()
        } else {
            assert!(
                text.contains("no space left") || text.contains("No space left"),
                "{what}: the message says the disk is full:\n{out}"
            );
            assert!(
                text.contains(&tmp.path("state.db").display().to_string()),
                "{what}: the message names the file:\n{out}"
            );
            stage_of(&out)
        };
        stages.insert(stage.split(' ').next().unwrap_or("").to_string());

        // Whatever reached the SBC is in the journal.
        tmp.sh(&format!("rm -f '{}'", tmp.path("filler").display()));
        let copy = tempfile::tempdir().expect("tempdir");
        tmp.sh(&format!(
            "for f in '{db}' '{db}-wal'; do [ -e \"$f\" ] && cp \"$f\" '{dir}/'; done; true",
            db = tmp.path("state.db").display(),
            dir = copy.path().display()
        ));
        let sent = rig.writes() - writes;
        if sent > 0 {
            let (before, after) = journaled(&copy.path().join("state.db"));
            let old: BTreeSet<(String, String)> = baseline
                .owned
                .iter()
                .map(|(_, p, t)| (p.clone(), t.clone()))
                .collect();
            let now: BTreeSet<(String, String)> = owned_routes(&rig.sbc).into_iter().collect();
            for added in now.difference(&old) {
                assert!(
                    after.contains(added),
                    "{what}: {added:?} reached the SBC unjournaled:\n{out}"
                );
            }
            for removed in old.difference(&now) {
                assert!(
                    before.contains(removed),
                    "{what}: {removed:?} left the SBC unjournaled:\n{out}"
                );
            }
        }

        // Space again: the next sync converges to what a clean sync gives.
        let before = rig.writes();
        let next = tmp.dialsync(&config, &["sync"]);
        assert_sane(&next, &what);
        assert_eq!(next.code, Some(0), "{what}: the sync once freed:\n{next}");
        let made = rig.writes() - before;
        let again = tmp.dialsync(&config, &["sync"]);
        assert_eq!(again.code, Some(0), "{what}: {again}");
        assert_eq!(rig.writes() - before, made, "{what}: churn:\n{again}");
        assert_eq!(
            owned_routes(&rig.sbc),
            expected,
            "{what}: a clean sync's rules"
        );
        baseline.assert_kept(&rig, &what);
        table(
            &format!("disk-full({left_kib}KiB free, {})", tmp.mode()),
            &stage,
            &out,
            &format!("SBC writes during fault {sent}, on convergence {made}"),
        );
    }
    assert!(
        stages.contains("journal"),
        "some fill level must stop the journal of the big apply: {stages:?}"
    );
    assert!(
        stages.contains("snapshot") || stages.contains("history") || stages.contains("mirror"),
        "some fill level must stop the snapshot or history write: {stages:?}"
    );
}
