//! `dialsync reload`, the unit's `ExecReload=`: systemd 252 ends `systemctl reload` when that
//! command exits, so it must return only once the running agent has reloaded (exit 0) or
//! refused the new configuration (exit 1, the error named). The real binary against a real
//! `dialsync run` and an emulated SBC.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dialsync::sim::sbc::{SbcSim, SbcState, SimUser};

const BIN: &str = env!("CARGO_BIN_EXE_dialsync");
const PATIENCE: Duration = Duration::from_secs(20);

/// A `dialsync` command with none of the host's systemd or config environment.
fn dialsync() -> Command {
    let mut command = Command::new(BIN);
    for name in [
        "DIALSYNC_CONFIG",
        "RUST_LOG",
        "NOTIFY_SOCKET",
        "WATCHDOG_USEC",
        "WATCHDOG_PID",
        "JOURNAL_STREAM",
        "RUNTIME_DIRECTORY",
        "CREDENTIALS_DIRECTORY",
    ] {
        command.env_remove(name);
    }
    command.env("NO_COLOR", "1").stdin(Stdio::null());
    command
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `dialsync reload --pid PID --runtime-dir DIR --timeout TIMEOUT`.
fn reload(pid: u32, runtime_dir: &Path, timeout: &str) -> Output {
    dialsync()
        .args(["reload", "--pid", &pid.to_string(), "--timeout", timeout])
        .arg("--runtime-dir")
        .arg(runtime_dir)
        .output()
        .expect("run dialsync reload")
}

/// A `dialsync run` whose log lines arrive on a channel; killed if a test fails.
struct Agent {
    child: Child,
    log: mpsc::Receiver<String>,
}

impl Agent {
    fn start(config: &Path, runtime_dir: &Path) -> Agent {
        let mut child = dialsync()
            .args(["run", "--config"])
            .arg(config)
            .env("RUNTIME_DIRECTORY", runtime_dir)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dialsync run");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Agent { child, log }
    }

    /// Log lines up to the first containing `needle`.
    fn wait_for(&self, needle: &str) -> Vec<String> {
        let deadline = Instant::now() + PATIENCE;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(needle);
                    seen.push(line);
                    if found {
                        return seen;
                    }
                }
                Err(_) => panic!("no log line with {needle:?}; saw:\n{}", seen.join("\n")),
            }
        }
    }

    fn terminate(mut self) -> Option<i32> {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(Instant::now() < deadline, "dialsync run did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Setup {
    dir: tempfile::TempDir,
    sbc: SbcSim,
    /// Declared last so it is dropped last: the emulator serves from it.
    _runtime: tokio::runtime::Runtime,
}

impl Setup {
    fn new() -> Setup {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let users = vec![SimUser {
            username: "dialsync".into(),
            password: "sbc-s3cret".into(),
            administrator: true,
        }];
        let sbc = runtime
            .block_on(SbcSim::start(
                "127.0.0.1:0".parse().expect("addr"),
                SbcState::with_oc_dial_plan(),
                users,
            ))
            .expect("sbc starts");
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = dir.path().join("sbc-password");
        fs::write(&secret, "sbc-s3cret\n").expect("secret");
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).expect("chmod");
        fs::write(
            dir.path().join("static.csv"),
            "start,end,tag\n+3225000000,+3225000009,Trunk=static\n",
        )
        .expect("csv");
        fs::create_dir(dir.path().join("run")).expect("runtime dir");
        let setup = Setup {
            dir,
            sbc,
            _runtime: runtime,
        };
        setup.write_config("");
        setup
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The config, with `agent_extra` appended to its [agent] table.
    fn write_config(&self, agent_extra: &str) {
        let text = format!(
            r#"[agent]
policy = "sync"
interval = "1h"
state_db = "{state_db}"
{agent_extra}

[admin]
listen = "127.0.0.1:0"

[sbc]
url = "{sbc}"
username = "dialsync"
password_file = "sbc-password"
timeout = "5s"

[[sources]]
name = "static"
kind = "file"
path = "static.csv"
"#,
            state_db = self.path("state.db").display(),
            sbc = self.sbc.url(),
        );
        fs::write(self.path("dialsync.toml"), text).expect("config");
    }
}

#[test]
fn reload_returns_once_the_agent_has_reloaded_or_refused() {
    let setup = Setup::new();
    let runtime_dir = setup.path("run");
    let agent = Agent::start(&setup.path("dialsync.toml"), &runtime_dir);
    agent.wait_for("synced");
    let pid = agent.child.id();

    // A good config: exit 0 once the new configuration is in force.
    setup.write_config("dry_run = true");
    let done = reload(pid, &runtime_dir, "20s");
    assert_eq!(done.status.code(), Some(0), "{}", text(&done));
    assert!(
        String::from_utf8_lossy(&done.stdout).contains("reloaded its configuration"),
        "{}",
        text(&done)
    );
    // By the time `reload` returned, the agent had logged the reload.
    agent.wait_for("configuration reloaded");
    let record = fs::read_to_string(runtime_dir.join("reloaded")).expect("the reload record");
    assert!(record.contains("RESULT=reloaded"), "{record}");
    assert!(record.contains("MONOTONIC_USEC="), "{record}");

    // A broken config: exit 1 with the agent's reason; the agent keeps running.
    setup.write_config("polcy = \"sync\"");
    let refused = reload(pid, &runtime_dir, "20s");
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("refused"), "{}", text(&refused));
    assert!(
        stderr.contains("polcy"),
        "names the key: {}",
        text(&refused)
    );

    // Fixed again, and RUNTIME_DIRECTORY (as systemd sets it for ExecReload=) instead of the flag.
    setup.write_config("");
    let again = dialsync()
        .args(["reload", "--pid", &pid.to_string()])
        .env("RUNTIME_DIRECTORY", &runtime_dir)
        .output()
        .expect("run dialsync reload");
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));

    assert_eq!(agent.terminate(), Some(0));
    // Nobody left to reload.
    let gone = reload(pid, &runtime_dir, "5s");
    assert_eq!(gone.status.code(), Some(1), "{}", text(&gone));
}

#[test]
fn reload_fails_when_the_process_dies_or_never_answers() {
    let dir = tempfile::tempdir().expect("tempdir");

    // SIGHUP's default action ends `sleep`: the agent "exited before it reloaded".
    let mut sleeper = Command::new("sleep").arg("30").spawn().expect("sleep");
    let pid = sleeper.id();
    let reaper = std::thread::spawn(move || sleeper.wait());
    let started = Instant::now();
    let died = reload(pid, dir.path(), "20s");
    assert_eq!(died.status.code(), Some(1), "{}", text(&died));
    assert!(
        String::from_utf8_lossy(&died.stderr).contains("exited before it reloaded"),
        "{}",
        text(&died)
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "it waited in vain"
    );
    let _ = reaper.join();

    // A process that ignores SIGHUP and records nothing: the timeout.
    let mut deaf = Command::new("sh")
        .args(["-c", "trap '' HUP; exec sleep 30"])
        .spawn()
        .expect("sh");
    let deadline = Instant::now() + PATIENCE;
    while !ignores_sighup(deaf.id()) {
        assert!(Instant::now() < deadline, "the shell never ignored SIGHUP");
        std::thread::sleep(Duration::from_millis(5));
    }
    let silent = reload(deaf.id(), dir.path(), "300ms");
    let _ = deaf.kill();
    let _ = deaf.wait();
    assert_eq!(silent.status.code(), Some(1), "{}", text(&silent));
    assert!(
        String::from_utf8_lossy(&silent.stderr).contains("has not reloaded after 300ms"),
        "{}",
        text(&silent)
    );
}

/// Whether `pid` has SIGHUP (signal 1, the lowest bit) in its ignored set.
fn ignores_sighup(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let mask = status.lines().find_map(|l| l.strip_prefix("SigIgn:"))?;
            u64::from_str_radix(mask.trim(), 16).ok()
        })
        .is_some_and(|mask| mask & 1 != 0)
}
