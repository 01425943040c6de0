//! `dialsync run` as systemd runs it: the real binary against the emulators, with a fake
//! service manager on `NOTIFY_SOCKET`, the admin port on a free loopback port, real signals,
//! config reloads (SIGHUP and an edited file, good and bad), and SIGTERM in the middle of a
//! long apply.

mod common;

use std::ffi::OsStr;
use std::ops::{Deref, DerefMut};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::sbc::CHECK_ONLY_UNREADABLE;
use common::{command, wait_for, Rig, Settings};
use dialsync::sim::fusion::usage;
use rustix::process::{kill_process, Pid, Signal};
use serde_json::Value;

/// How long anything the daemon does on its own may take on a slow, busy machine.
const PATIENCE: Duration = Duration::from_secs(15);

/// systemd's end of `NOTIFY_SOCKET`: every datagram, in order, as it arrives.
struct FakeSystemd {
    path: PathBuf,
    notes: Arc<Mutex<Vec<String>>>,
    done: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
}

impl FakeSystemd {
    fn bind(dir: &Path) -> FakeSystemd {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("read timeout");
        let notes = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let (notes, done) = (notes.clone(), done.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 8192];
                while !done.load(Ordering::Relaxed) {
                    if let Ok(n) = socket.recv(&mut buf) {
                        let note = String::from_utf8_lossy(&buf[..n]).into_owned();
                        notes.lock().expect("notes").push(note);
                    }
                }
            })
        };
        FakeSystemd {
            path,
            notes,
            done,
            reader: Some(reader),
        }
    }

    fn notes(&self) -> Vec<String> {
        self.notes.lock().expect("notes").clone()
    }

    /// The position of the first notification at or after `from` that satisfies `matches`.
    fn wait(&self, what: &str, from: usize, matches: impl Fn(&str) -> bool) -> usize {
        wait_for(what, PATIENCE, || {
            self.notes()
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, n)| matches(n))
                .map(|(i, _)| i)
        })
    }

    /// The first STATUS= at or after `from`: its position and its text.
    fn status(&self, from: usize) -> (usize, String) {
        let at = self.wait("STATUS=", from, |n| n.starts_with("STATUS="));
        (at, self.notes()[at]["STATUS=".len()..].to_string())
    }

    fn count(&self, from: usize, note: &str) -> usize {
        self.notes()
            .iter()
            .skip(from)
            .filter(|n| *n == note)
            .count()
    }
}

impl Drop for FakeSystemd {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// A `dialsync run` under a fake systemd with a 400 ms watchdog.
struct Daemon {
    run: common::daemon::Daemon,
    systemd: FakeSystemd,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts `dialsync run --config <config>` with `NOTIFY_SOCKET` and `WATCHDOG_USEC` set,
    /// and waits for the admin address it logs.
    fn start(config: &Path) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let systemd = FakeSystemd::bind(dir.path());
        let env = [
            ("NOTIFY_SOCKET", systemd.path.as_os_str()),
            ("WATCHDOG_USEC", OsStr::new("400000")),
        ];
        let run = common::daemon::Daemon::start_with(config, &env);
        Daemon {
            run,
            systemd,
            _dir: dir,
        }
    }
}

impl Deref for Daemon {
    type Target = common::daemon::Daemon;

    fn deref(&self) -> &Self::Target {
        &self.run
    }
}

impl DerefMut for Daemon {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.run
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Before the process's log, which the daemon's own drop prints.
        if std::thread::panicking() {
            eprintln!("notifications: {:?}", self.systemd.notes());
        }
    }
}

/// The value of the sample `series` (name and labels exactly) in a Prometheus text.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
        .parse()
        .expect("a number")
}

/// A config whose reloads only SIGHUP causes: the daemon is given a symlink in a directory of
/// its own, and the file it points to is edited elsewhere, where the config watcher (which
/// watches the link's directory) sees nothing.
fn linked_config(rig: &Rig) -> PathBuf {
    let etc = rig.path("etc");
    std::fs::create_dir(&etc).expect("mkdir etc");
    let link = etc.join("dialsync.toml");
    std::os::unix::fs::symlink(rig.config_path(), &link).expect("symlink");
    link
}

/// Settings with a second file source, `extra`, serving `csv`.
fn with_extra_source(rig: &Rig, csv: &str) -> Settings {
    rig.write("extra.csv", csv);
    Settings {
        interval: "1h",
        extra: format!(
            "\n[[sources]]\nname = \"extra\"\nkind = \"file\"\npath = \"{}\"\n",
            rig.path("extra.csv").display()
        ),
        ..Settings::default()
    }
}

/// An unknown key: every reload of it must fail.
fn broken(settings: &Settings) -> Settings {
    Settings {
        extra: format!("{}\n[safety]\nmax_delete_fractoin = 0.5\n", settings.extra),
        ..settings.clone()
    }
}

fn hourly() -> Settings {
    Settings {
        interval: "1h",
        ..Settings::default()
    }
}

#[test]
fn run_notifies_systemd_serves_the_admin_port_and_syncs_on_demand() {
    let rig = Rig::start();
    rig.write_config(&hourly());
    let mut daemon = Daemon::start(&rig.config_path());
    let systemd = &daemon.systemd;

    let (first, line) = systemd.status(0);
    assert_eq!(systemd.notes()[0], "READY=1", "{:?}", systemd.notes());
    assert_eq!(
        line, "synced: 3 added, 0 modified, 0 deleted; 3 rules owned",
        "the cycle's one-line summary"
    );
    // WATCHDOG_USEC=400000: a ping every 200 ms while idle.
    wait_for("three watchdog pings after the cycle", PATIENCE, || {
        (systemd.count(first, "WATCHDOG=1") >= 3).then_some(())
    });
    assert_eq!(rig.sbc_tag("+3226120042").as_deref(), Some("Trunk=acme"));

    assert_eq!(daemon.get("/livez").0, 200);
    let (ready, why) = daemon.get("/readyz");
    assert_eq!(ready, 200, "{why}");
    let status = daemon.wait_cycles(1);
    assert_eq!(status["last_cycle"]["outcome"], "converged", "{status:#}");
    assert_eq!(status["last_cycle"]["adds"], 3, "{status:#}");
    assert_eq!(status["interval_ms"], 3_600_000, "{status:#}");
    assert_eq!(status["policy"], "sync", "{status:#}");
    let sources: Vec<(&str, &str)> = status["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or(""),
                s["state"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(sources, [("fusion", "ok"), ("static", "ok")], "{status:#}");
    assert_eq!(
        status["rules"]["owned"],
        rig.owned_rules().len(),
        "{status:#}"
    );
    assert_eq!(status["rules"]["foreign"], 3, "{status:#}");
    // The row in suffix notation: reported every cycle, its index never written.
    assert_eq!(status["unreadable_rows_total"], 1, "{status:#}");
    let unreadable = status["unreadable_rows"][0].as_str().unwrap_or("");
    assert!(
        unreadable.starts_with("row 3: name \"legacy\": prefix \"53([2-4])\""),
        "{status:#}"
    );
    assert!(
        status["last_success_unix_ms"].as_i64().is_some(),
        "{status:#}"
    );

    // The audit after the cycle: acme's 100, globex's 50 and the static file's 10 numbers all
    // route to their tags; the foreign rules route only numbers no source assigns.
    let audit = &status["audit"];
    assert_eq!(audit["routed"], 160, "{status:#}");
    for verdict in [
        "misrouted",
        "shadowed",
        "unrouted",
        "stray_rules",
        "findings",
    ] {
        assert_eq!(audit[verdict], 0, "{verdict}: {status:#}");
    }

    let (code, metrics) = daemon.get("/metrics");
    assert_eq!(code, 200);
    assert_eq!(
        metric(&metrics, "dialsync_audit_numbers{result=\"routed\"}"),
        160.0
    );
    assert_eq!(
        metric(&metrics, "dialsync_audit_numbers{result=\"shadowed\"}"),
        0.0
    );
    assert_eq!(metric(&metrics, "dialsync_audit_stray_rules"), 0.0);
    assert_eq!(metric(&metrics, "dialsync_owned_rules"), 3.0);
    assert_eq!(metric(&metrics, "dialsync_foreign_rules"), 3.0);
    assert_eq!(metric(&metrics, "dialsync_unreadable_rules"), 1.0);
    assert_eq!(metric(&metrics, "dialsync_cycles_total"), 1.0);
    assert_eq!(
        metric(&metrics, "dialsync_ops_applied_total{kind=\"add\"}"),
        3.0
    );
    assert_eq!(
        metric(&metrics, "dialsync_source_up{source=\"fusion\"}"),
        1.0
    );
    let success = metric(&metrics, "dialsync_last_success_timestamp_seconds");
    let last_success_ms = status["last_success_unix_ms"].as_i64().expect("ms") as f64;
    assert!(
        (success - last_success_ms / 1000.0).abs() < 0.002,
        "{success} vs {last_success_ms} ms"
    );

    // POST /sync: a cycle now, picking up a number gone from the middle of acme's run.
    rig.fusion
        .state()
        .phone_usages
        .retain(|u| u["phoneNumber"] != "+3226120050");
    let notes = daemon.systemd.notes().len();
    let (code, body) = daemon.post("/sync");
    assert_eq!(code, 202, "{body}");
    let status = daemon.wait_cycles(2);
    assert_eq!(
        (
            &status["last_cycle"]["adds"],
            &status["last_cycle"]["modifies"]
        ),
        (&Value::from(1), &Value::from(1)),
        "{status:#}"
    );
    assert_eq!(rig.sbc_tag("+3226120050"), None);
    let (_, line) = daemon.systemd.status(notes);
    assert_eq!(
        line,
        "synced: 1 added, 1 modified, 0 deleted; 4 rules owned"
    );
    let metrics = daemon.get("/metrics").1;
    assert_eq!(
        metric(&metrics, "dialsync_ops_applied_total{kind=\"add\"}"),
        4.0
    );
    assert_eq!(
        metric(&metrics, "dialsync_ops_applied_total{kind=\"modify\"}"),
        1.0
    );
    assert_eq!(metric(&metrics, "dialsync_owned_rules"), 4.0);
    assert_eq!(metric(&metrics, "dialsync_cycles_total"), 2.0);

    // SIGUSR1: another cycle, with nothing to do.
    let notes = daemon.systemd.notes().len();
    daemon.signal(Signal::USR1);
    let status = daemon.wait_cycles(3);
    assert_eq!(status["last_cycle"]["outcome"], "converged", "{status:#}");
    assert_eq!(daemon.systemd.status(notes).1, "in sync: 4 rules owned");
    assert!(daemon.logged("SIGUSR1"), "{}", daemon.log());

    let notes = daemon.systemd.notes().len();
    daemon.signal(Signal::TERM);
    let exit = daemon.exit(Duration::from_secs(10));
    assert_eq!(exit.code(), Some(0), "{}", daemon.log());
    daemon
        .systemd
        .wait("STOPPING=1", notes, |n| n == "STOPPING=1");

    // The service recorded its cycles where `check` reads them.
    let check = rig.dialsync(&["check"]);
    assert_eq!(check.code, Some(1), "{check}");
    assert!(
        check.stdout.starts_with(CHECK_ONLY_UNREADABLE),
        "only the unreadable row: {check}"
    );
    assert!(check.stdout.contains(" owned_rules=4 "), "{check}");
    rig.assert_no_unexpected();
}

#[test]
fn sighup_reloads_a_good_config_and_keeps_the_running_one_on_a_bad_one() {
    let rig = Rig::start();
    rig.write_config(&hourly());
    let link = linked_config(&rig);
    let mut daemon = Daemon::start(&link);
    let (first, line) = daemon.systemd.status(0);
    assert!(line.starts_with("synced: 3 added"), "{line}");

    // A second source, then SIGHUP: RELOADING=1, READY=1, and a cycle that brings it in.
    let good = with_extra_source(&rig, "start,end,tag\n+3227000000,+3227000009,Trunk=extra\n");
    rig.write_config(&good);
    daemon.signal(Signal::HUP);
    let systemd = &daemon.systemd;
    let reloading = systemd.wait("RELOADING=1", first + 1, |n| n.starts_with("RELOADING=1\n"));
    let note = &systemd.notes()[reloading];
    assert!(
        note.lines()
            .nth(1)
            .and_then(|l| l.strip_prefix("MONOTONIC_USEC="))
            .is_some_and(|usec| usec.parse::<u64>().is_ok()),
        "{note:?}"
    );
    let ready = systemd.wait("READY=1", reloading, |n| n == "READY=1");
    let (_, line) = systemd.status(ready);
    assert_eq!(
        line,
        "synced: 1 added, 0 modified, 0 deleted; 4 rules owned"
    );
    assert_eq!(rig.sbc_tag("+3227000005").as_deref(), Some("Trunk=extra"));
    assert!(
        daemon.logged("cause=SIGHUP") && daemon.logged("configuration reloaded"),
        "{}",
        daemon.log()
    );
    let status = daemon.status();
    assert_eq!(status["sources"][2]["name"], "extra", "{status:#}");

    // A broken config: the reload fails, says so, and the running config stays.
    let notes = daemon.systemd.notes().len();
    rig.write_config(&broken(&good));
    daemon.signal(Signal::HUP);
    let (failed, line) = daemon.systemd.status(notes);
    assert!(
        line.starts_with("config reload failed, previous config kept: ")
            && line.contains("max_delete_fractoin"),
        "{line}"
    );
    daemon.systemd.wait("READY=1", failed, |n| n == "READY=1");
    assert!(daemon.alive(), "{}", daemon.log());
    // The extra source is still configured: its new tag reaches the SBC on the next cycle.
    rig.write(
        "extra.csv",
        "start,end,tag\n+3227000000,+3227000009,Trunk=extra2\n",
    );
    let notes = daemon.systemd.notes().len();
    daemon.signal(Signal::USR1);
    let (_, line) = daemon.systemd.status(notes);
    assert_eq!(
        line,
        "synced: 0 added, 1 modified, 0 deleted; 4 rules owned"
    );
    assert_eq!(rig.sbc_tag("+3227000005").as_deref(), Some("Trunk=extra2"));
    assert!(
        !daemon.logged("cause=config file changed"),
        "only SIGHUP reloaded: {}",
        daemon.log()
    );

    daemon.signal(Signal::TERM);
    assert_eq!(daemon.exit(Duration::from_secs(10)).code(), Some(0));
    rig.assert_no_unexpected();
}

#[test]
fn an_edited_config_file_is_reloaded_without_a_signal() {
    let rig = Rig::start();
    rig.write_config(&hourly());
    let mut daemon = Daemon::start(&rig.config_path());
    let (first, _) = daemon.systemd.status(0);

    let good = with_extra_source(&rig, "start,end,tag\n+3227000000,+3227000009,Trunk=extra\n");
    rig.write_config(&good);
    let systemd = &daemon.systemd;
    let reloading = systemd.wait("RELOADING=1", first + 1, |n| n.starts_with("RELOADING=1\n"));
    let ready = systemd.wait("READY=1", reloading, |n| n == "READY=1");
    let (_, line) = systemd.status(ready);
    assert_eq!(
        line,
        "synced: 1 added, 0 modified, 0 deleted; 4 rules owned"
    );
    assert_eq!(rig.sbc_tag("+3227000005").as_deref(), Some("Trunk=extra"));
    assert!(
        daemon.logged("cause=config file changed"),
        "{}",
        daemon.log()
    );

    let notes = daemon.systemd.notes().len();
    rig.write_config(&broken(&good));
    let (_, line) = daemon.systemd.status(notes);
    assert!(
        line.starts_with("config reload failed, previous config kept: ")
            && line.contains("max_delete_fractoin"),
        "{line}"
    );
    assert!(daemon.alive(), "{}", daemon.log());
    let (code, _) = daemon.get("/livez");
    assert_eq!(code, 200);
    let status = daemon.status();
    assert_eq!(status["sources"][2]["name"], "extra", "{status:#}");

    daemon.signal(Signal::TERM);
    assert_eq!(daemon.exit(Duration::from_secs(10)).code(), Some(0));
    rig.assert_no_unexpected();
}

#[test]
fn sigterm_mid_apply_stops_after_the_batch_in_flight() {
    let rig = Rig::start();
    // 200 numbers of distinct tenants, one rule each, and the static range: 201 adds, in 41
    // batches of 5.
    {
        let mut fusion = rig.fusion.state();
        fusion.phone_usages.clear();
        for i in 0..200u64 {
            fusion
                .phone_usages
                .push(usage(&format!("+32261{:05}", i * 2), &format!("t{i}")));
        }
    }
    rig.write_config(&Settings {
        interval: "1h",
        batch_size: 5,
        ..Settings::default()
    });
    let plan = rig.dialsync(&["plan", "--json"]);
    assert_eq!(plan.code, Some(2), "{plan}");
    let plan = plan.json();
    let ops: Vec<(u32, String, String)> = plan["ops"]
        .as_array()
        .expect("ops")
        .iter()
        .map(|op| {
            assert_eq!(op["kind"], "add", "{op}");
            (
                op["index"].as_u64().expect("index") as u32,
                op["after"]["prefix"].as_str().expect("prefix").to_string(),
                op["after"]["tag"].as_str().expect("tag").to_string(),
            )
        })
        .collect();
    assert_eq!(ops.len(), 201);

    rig.sbc.state().faults.latency = Duration::from_millis(100);
    let mut daemon = Daemon::start(&rig.config_path());
    wait_for("two batches on the SBC", PATIENCE, || {
        (rig.sbc.state().applied_scripts >= 2).then_some(())
    });
    // Four more batches take at least 400 ms at 100 ms each: a whole WATCHDOG_USEC, which
    // systemd would end the service after if the apply sent no ping meanwhile.
    let before = daemon.systemd.notes().len();
    wait_for("six batches on the SBC", PATIENCE, || {
        (rig.sbc.state().applied_scripts >= 6).then_some(())
    });
    assert!(
        daemon.systemd.count(before, "WATCHDOG=1") >= 1,
        "a long apply keeps the watchdog fed: {:?}",
        &daemon.systemd.notes()[before..]
    );
    let notes = daemon.systemd.notes().len();
    let asked = Instant::now();
    daemon.signal(Signal::TERM);
    let exit = daemon.exit(Duration::from_secs(10));
    assert_eq!(exit.code(), Some(0), "{}", daemon.log());
    assert!(asked.elapsed() < Duration::from_secs(10));
    daemon
        .systemd
        .wait("STOPPING=1", notes, |n| n == "STOPPING=1");
    assert!(
        daemon.logged("stopping after the in-flight batch"),
        "{}",
        daemon.log()
    );

    // Some batches landed, whole, in plan order; the rest did not.
    let batches = rig.sbc.state().applied_scripts;
    assert!((6..41).contains(&batches), "{batches} of 41 batches");
    let owned = rig.owned_rules();
    assert_eq!(owned.len(), batches * 5, "whole batches only");
    let mut landed = ops[..owned.len()].to_vec();
    landed.sort();
    assert_eq!(owned, landed, "a prefix of the plan");

    rig.sbc.state().faults.latency = Duration::ZERO;
    let finish = rig.dialsync(&["sync"]);
    assert_eq!(finish.code, Some(0), "{finish}");
    assert_eq!(rig.owned_rules().len(), 201);
    for i in [0u64, 57, 199] {
        assert_eq!(
            rig.sbc_tag(&format!("+32261{:05}", i * 2)),
            Some(format!("Trunk=t{i}"))
        );
    }
    let history = rig.dialsync(&["history"]);
    assert!(
        history.stdout.contains("stopped between batches"),
        "the stopped cycle is recorded: {history}"
    );
    rig.assert_no_unexpected();
}

#[test]
fn check_during_the_first_cycle_says_it_runs_and_warns_as_it_drags_on() {
    let rig = Rig::start();
    // Every SBC request takes 5 s, so the first cycle (several requests) is still running,
    // with nothing recorded, while `check` is asked below. The timeout leaves room for it.
    rig.write_config(&Settings {
        sbc_timeout: "20s",
        ..hourly()
    });
    rig.sbc.state().faults.latency = Duration::from_secs(5);
    let mut daemon = Daemon::start(&rig.config_path());
    let pid = daemon.pid();

    let ok = rig.dialsync(&["check"]);
    assert_eq!(ok.code, Some(0), "{ok}");
    assert!(
        ok.stdout
            .starts_with("DIALSYNC OK - first cycle running for ")
            && ok
                .stdout
                .contains(&format!("s (pid {pid}), nothing recorded yet | ")),
        "{ok}"
    );
    let perfdata = ok.stdout.split_once(" | ").expect("perfdata").1;
    assert!(
        perfdata.starts_with("last_success_age=U;10800;36000;0 first_cycle_age=")
            && perfdata.trim_end().ends_with("s;10800;36000;0"),
        "thresholds of 3 and 10 hourly intervals: {ok}"
    );
    // The first cycle has been running for longer than a threshold of zero.
    let warning = rig.dialsync(&["check", "-w", "0", "-c", "1h"]);
    assert_eq!(warning.code, Some(1), "{warning}");
    assert!(
        warning
            .stdout
            .starts_with("DIALSYNC WARNING - first cycle running for "),
        "{warning}"
    );
    let critical = rig.dialsync(&["check", "-w", "0", "-c", "0"]);
    assert_eq!(critical.code, Some(2), "{critical}");
    assert!(
        critical
            .stdout
            .starts_with("DIALSYNC CRITICAL - first cycle running for "),
        "{critical}"
    );
    assert_eq!(
        daemon.status()["totals"]["cycles"],
        0,
        "all of that within the first cycle"
    );

    // Killed before it recorded anything: its lock file still names its pid, but the kernel
    // dropped the lock with the process, so nothing runs, and check says it does not know.
    daemon.signal(Signal::KILL);
    daemon.exit(PATIENCE);
    let lock = std::fs::read_to_string(rig.path("state.db.lock")).expect("the lock file");
    assert_eq!(lock.trim(), format!("pid {pid}"), "a stale pid in the file");
    let unknown = rig.dialsync(&["check"]);
    assert_eq!(unknown.code, Some(3), "{unknown}");
    assert!(
        unknown
            .stdout
            .starts_with("DIALSYNC UNKNOWN - no cycle recorded yet and no agent running"),
        "{unknown}"
    );

    // A new agent without the delay: its first cycle records a success, judged as usual.
    rig.sbc.state().faults.latency = Duration::ZERO;
    let daemon = Daemon::start(&rig.config_path());
    daemon.wait_cycles(1);
    // Judged as usual: what is left to say is the rigs' row in suffix notation.
    let in_sync = rig.dialsync(&["check"]);
    assert_eq!(in_sync.code, Some(1), "{in_sync}");
    assert!(
        in_sync.stdout.starts_with(CHECK_ONLY_UNREADABLE),
        "{in_sync}"
    );
    drop(daemon);
    rig.assert_no_unexpected();
}

/// Everything `dialsync run` writes to stderr from its start until it stops on SIGTERM: its
/// stderr is `stderr`, read from `output` (the pipe's or the terminal's other end), and
/// `NO_COLOR` is `no_color` (unset with `None`).
fn logs_of_a_short_run(
    rig: &Rig,
    stderr: Stdio,
    mut output: impl std::io::Read + Send + 'static,
    no_color: Option<&str>,
) -> String {
    let mut command = command();
    command.env_remove("NO_COLOR");
    if let Some(value) = no_color {
        command.env("NO_COLOR", value);
    }
    command
        .arg("run")
        .arg("--config")
        .arg(rig.config_path())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(stderr);
    let mut child = command.spawn().expect("start dialsync run");
    // The command keeps its copy of our end of `stderr` open, and the reader below would
    // wait for it for ever.
    drop(command);
    let text = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let text = text.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Until EOF (a pipe) or EIO (a terminal whose other side all closed).
            while let Ok(n @ 1..) = output.read(&mut buf) {
                text.lock().expect("text").extend_from_slice(&buf[..n]);
            }
        })
    };
    let seen = |what: &str| String::from_utf8_lossy(&text.lock().expect("text")).contains(what);
    wait_for("the `dialsync starting` log line", PATIENCE, || {
        seen("dialsync starting").then_some(())
    });
    kill_process(Pid::from_child(&child), Signal::TERM).expect("SIGTERM");
    let exit = wait_for("dialsync run to exit", PATIENCE, || {
        child.try_wait().expect("try_wait")
    });
    assert_eq!(exit.code(), Some(0));
    // The reader ends once no process holds the writing side: dialsync starts no other
    // process, so its exit is that moment.
    reader.join().expect("reader");
    let text = String::from_utf8_lossy(&text.lock().expect("text")).into_owned();
    assert!(text.contains("stopped"), "the whole log: {text:?}");
    text
}

/// A pseudo-terminal: its controller (read by the test) and the terminal itself (the child's
/// stderr).
fn terminal() -> (std::fs::File, std::fs::File) {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    use std::os::unix::fs::OpenOptionsExt;
    let controller =
        openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("a pseudo-terminal (/dev/ptmx)");
    grantpt(&controller).expect("grantpt");
    unlockpt(&controller).expect("unlockpt");
    let name = ptsname(&controller, Vec::new()).expect("ptsname");
    let name = name.to_str().expect("a UTF-8 terminal name");
    let terminal = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(name)
        .expect("open the terminal");
    (std::fs::File::from(controller), terminal)
}

/// Whether `text` holds an ANSI colour sequence (SGR: ESC [ digits and semicolons, then `m`).
fn coloured(text: &str) -> bool {
    text.split('\u{1b}').skip(1).any(|rest| {
        rest.strip_prefix('[').is_some_and(|rest| {
            let end = rest.trim_start_matches(|c: char| c.is_ascii_digit() || c == ';');
            end.starts_with('m')
        })
    })
}

#[test]
fn logs_are_coloured_on_a_terminal_only_and_never_with_no_color() {
    let rig = Rig::start();
    rig.write_config(&hourly());
    // To a pipe (a file, a collector, `2>&1 | tee`): not one escape byte, with or without
    // NO_COLOR.
    for no_color in [None, Some("1")] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        let text = logs_of_a_short_run(&rig, Stdio::from(writer), reader, no_color);
        assert!(
            !text.contains('\u{1b}'),
            "NO_COLOR {no_color:?}, stderr to a pipe: {text:?}"
        );
    }
    // On a terminal, colours: so the check above is not passing for want of them. NO_COLOR
    // with any non-empty value turns them off; an empty one counts as unset.
    for (no_color, expected) in [(None, true), (Some(""), true), (Some("1"), false)] {
        let (controller, terminal) = terminal();
        let text = logs_of_a_short_run(&rig, Stdio::from(terminal), controller, no_color);
        assert_eq!(
            coloured(&text),
            expected,
            "NO_COLOR {no_color:?}, stderr on a terminal: {text:?}"
        );
        if !expected {
            assert!(!text.contains('\u{1b}'), "{text:?}");
        }
    }
    rig.assert_no_unexpected();
}
