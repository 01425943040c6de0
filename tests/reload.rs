//! `dialsync reload`, the unit's `ExecReload=`: systemd 252 ends `systemctl reload` when that
//! command exits, so it must return only once the running agent has reloaded (exit 0) or
//! refused the new configuration (exit 1, the error named). The real binary against a real
//! `dialsync run` and an emulated SBC.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::config::sbc_table;
use common::daemon::Daemon;
use common::dir::Dir;
use common::emulators::{own_runtime, start_sbc};
use common::sbc::{sbc_users, SBC_PASSWORD};
use common::{command, run, Out};
use dialsync::sim::sbc::{SbcSim, SbcState};

const PATIENCE: Duration = Duration::from_secs(20);

/// `dialsync reload --pid PID --runtime-dir DIR --timeout TIMEOUT`.
fn reload(pid: u32, runtime_dir: &Path, timeout: &str) -> Out {
    run(command()
        .args(["reload", "--pid", &pid.to_string(), "--timeout", timeout])
        .arg("--runtime-dir")
        .arg(runtime_dir))
}

/// `dialsync run` with its runtime directory in `runtime_dir`, as systemd gives it one.
fn agent(config: &Path, runtime_dir: &Path) -> Daemon {
    Daemon::start_with(config, &[("RUNTIME_DIRECTORY", runtime_dir.as_os_str())])
}

struct Setup {
    dir: Dir,
    sbc: SbcSim,
    /// Declared last so it is dropped last: the emulator serves from it.
    _runtime: tokio::runtime::Runtime,
}

impl Setup {
    fn new() -> Setup {
        let runtime = own_runtime(1);
        let sbc = runtime.block_on(start_sbc(SbcState::with_oc_dial_plan(), sbc_users()));
        let dir = Dir::new();
        dir.secret("sbc-password", &format!("{SBC_PASSWORD}\n"));
        dir.write(
            "static.csv",
            "start,end,tag\n+3225000000,+3225000009,Trunk=static\n",
        );
        fs::create_dir(dir.path("run")).expect("runtime dir");
        let setup = Setup {
            dir,
            sbc,
            _runtime: runtime,
        };
        setup.write_config("");
        setup
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path(name)
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

{sbc}
[[sources]]
name = "static"
kind = "file"
path = "static.csv"
"#,
            state_db = self.path("state.db").display(),
            sbc = sbc_table(&self.sbc.url(), "sbc-password", "5s"),
        );
        self.dir.write("dialsync.toml", &text);
    }
}

#[test]
fn reload_returns_once_the_agent_has_reloaded_or_refused() {
    let setup = Setup::new();
    let runtime_dir = setup.path("run");
    let agent = agent(&setup.path("dialsync.toml"), &runtime_dir);
    agent.wait_logged("synced");
    let pid = agent.pid();

    // A good config: exit 0 once the new configuration is in force.
    setup.write_config("dry_run = true");
    let done = reload(pid, &runtime_dir, "20s");
    assert_eq!(done.code, Some(0), "{done}");
    assert!(done.stdout.contains("reloaded its configuration"), "{done}");
    // By the time `reload` returned, the agent had logged the reload.
    agent.wait_logged("configuration reloaded");
    let record = fs::read_to_string(runtime_dir.join("reloaded")).expect("the reload record");
    assert!(record.contains("RESULT=reloaded"), "{record}");
    assert!(record.contains("MONOTONIC_USEC="), "{record}");

    // A broken config: exit 1 with the agent's reason; the agent keeps running.
    setup.write_config("polcy = \"sync\"");
    let refused = reload(pid, &runtime_dir, "20s");
    assert_eq!(refused.code, Some(1), "{refused}");
    let stderr = &refused.stderr;
    assert!(stderr.contains("refused"), "{refused}");
    assert!(stderr.contains("polcy"), "names the key: {refused}");

    // Fixed again, and RUNTIME_DIRECTORY (as systemd sets it for ExecReload=) instead of the flag.
    setup.write_config("");
    let again = run(command()
        .args(["reload", "--pid", &pid.to_string()])
        .env("RUNTIME_DIRECTORY", &runtime_dir));
    assert_eq!(again.code, Some(0), "{again}");

    assert_eq!(agent.stop().0.code(), Some(0));
    // Nobody left to reload.
    let gone = reload(pid, &runtime_dir, "5s");
    assert_eq!(gone.code, Some(1), "{gone}");
}

#[test]
fn reload_fails_when_the_process_dies_or_never_answers() {
    let dir = Dir::new();

    // SIGHUP's default action ends `sleep`: the agent "exited before it reloaded".
    let mut sleeper = Command::new("sleep").arg("30").spawn().expect("sleep");
    let pid = sleeper.id();
    let reaper = std::thread::spawn(move || sleeper.wait());
    let started = Instant::now();
    let died = reload(pid, dir.root(), "20s");
    assert_eq!(died.code, Some(1), "{died}");
    assert!(died.stderr.contains("exited before it reloaded"), "{died}");
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
    let silent = reload(deaf.id(), dir.root(), "300ms");
    let _ = deaf.kill();
    let _ = deaf.wait();
    assert_eq!(silent.code, Some(1), "{silent}");
    assert!(
        silent.stderr.contains("has not reloaded after 300ms"),
        "{silent}"
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
