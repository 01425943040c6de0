//! What `cli.rs` and `run.rs` share: the emulators on a runtime of their own, a config and its
//! secret files in a temporary directory, and the real `dialsync` binary run against them.
//!
//! The tests themselves are plain synchronous functions: the emulators serve from their own
//! runtime's threads while a test blocks on the child process.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::fmt;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dialsync::sim::fusion::{FusionSim, FusionSimConfig};
use dialsync::sim::sbc::{SbcSim, SbcState, SimRule, SimUser};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_dialsync");
/// One incremental script (one batch of rule operations) written to the SBC.
pub const PUT: &str = "PUT /api/v1/files/cliScript/incremental";
pub const SBC_USER: &str = "dialsync";
pub const SBC_PASSWORD: &str = "sbc-s3cret";

/// Environment a test host may carry that must not reach the child: a systemd or journald of
/// the CI runner, a proxy between loopback peers, a config or log filter of the developer's.
const SCRUBBED_ENV: &[&str] = &[
    "DIALSYNC_CONFIG",
    "RUST_LOG",
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "JOURNAL_STREAM",
    "CREDENTIALS_DIRECTORY",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
];

/// A `dialsync` command with a clean environment and no colours in its logs.
pub fn command() -> Command {
    let mut command = Command::new(BIN);
    for name in SCRUBBED_ENV {
        command.env_remove(name);
    }
    command.env("NO_COLOR", "1").stdin(Stdio::null());
    command
}

/// Runs `command` to its end.
pub fn run(command: &mut Command) -> Out {
    Out::of(command.output().expect("run dialsync"))
}

/// What a finished `dialsync` said.
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn of(output: Output) -> Out {
        Out {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Stdout as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }
}

impl fmt::Display for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// What the config says beyond the emulators' addresses.
#[derive(Clone, Debug)]
pub struct Settings {
    pub policy: &'static str,
    pub interval: &'static str,
    pub batch_size: usize,
    /// The file (in the rig's directory) holding the SBC password.
    pub sbc_password_file: &'static str,
    /// Appended verbatim: more sources, or whatever a test needs.
    pub extra: String,
    /// `sbc.timeout`: short where a test stalls the SBC on purpose (the `[sbc]` table cannot be
    /// reopened from `extra`).
    pub sbc_timeout: &'static str,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            policy: "sync",
            interval: "60s",
            batch_size: 200,
            sbc_password_file: "sbc-password",
            extra: String::new(),
            sbc_timeout: "5s",
        }
    }
}

/// An SBC with one foreign rule, a Fusion group (acme: 100 numbers, globex: 50), a static file
/// with one range, and a config tying them up, as tests/agent.rs sets them.
pub struct Rig {
    pub dir: tempfile::TempDir,
    pub sbc: SbcSim,
    pub fusion: FusionSim,
    /// Declared last so it is dropped last: the emulators' servers run on it.
    runtime: tokio::runtime::Runtime,
}

impl Rig {
    pub fn start() -> Rig {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (device, users) = (pbx_device(), sbc_users());
        let any_port = "127.0.0.1:0".parse().expect("addr");
        let sbc = runtime
            .block_on(SbcSim::start(any_port, device, users))
            .expect("sbc starts");
        let fusion = runtime
            .block_on(FusionSim::start(any_port, FusionSimConfig::default()))
            .expect("fusion starts");
        {
            let mut state = fusion.state();
            state.add_numbers(3226120000, 100, "acme");
            state.add_numbers(3226130000, 50, "globex");
        }
        let rig = Rig {
            dir: tempfile::tempdir().expect("tempdir"),
            sbc,
            fusion,
            runtime,
        };
        rig.secret("sbc-password", SBC_PASSWORD);
        rig.secret("fusion-password", &rig.fusion.config().password.clone());
        rig.write(
            "static.csv",
            "start,end,tag\n+3225000000,+3225000009,Trunk=static\n",
        );
        rig.write_config(&Settings::default());
        rig
    }

    /// Runs `future` on the emulators' runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn config_path(&self) -> PathBuf {
        self.path("dialsync.toml")
    }

    /// A secret file, mode 0600 as the agent demands.
    pub fn secret(&self, name: &str, value: &str) {
        let path = self.path(name);
        fs::write(&path, value).expect("write secret");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
    }

    pub fn write(&self, name: &str, text: &str) {
        fs::write(self.path(name), text).expect("write file");
    }

    /// The config for `settings`. Paths are absolute, so the file works from anywhere (a
    /// symlink to it in another directory included).
    pub fn config_text(&self, settings: &Settings) -> String {
        let fusion = self.fusion.config();
        format!(
            r#"[agent]
policy = "{policy}"
interval = "{interval}"
state_db = "{state_db}"

[admin]
listen = "127.0.0.1:0"

[sbc]
url = "{sbc}"
username = "{SBC_USER}"
password_file = "{password_file}"
timeout = "{sbc_timeout}"
batch_size = {batch_size}

[[sources]]
name = "fusion"
kind = "fusion"
url = "{fusion_url}"
draas_instance = "{draas}"
group_uuid = "{group}"
username = "{user}"
password_file = "{fusion_password}"
tag = "Trunk={{tenant}}"
timeout = "2s"

[[sources]]
name = "static"
kind = "file"
path = "{static_csv}"
{extra}"#,
            policy = settings.policy,
            interval = settings.interval,
            state_db = self.path("state.db").display(),
            sbc = self.sbc.url(),
            password_file = self.path(settings.sbc_password_file).display(),
            batch_size = settings.batch_size,
            sbc_timeout = settings.sbc_timeout,
            fusion_url = self.fusion.url(),
            draas = fusion.draas_instance,
            group = fusion.group_uuid,
            user = fusion.username,
            fusion_password = self.path("fusion-password").display(),
            static_csv = self.path("static.csv").display(),
            extra = settings.extra,
        )
    }

    pub fn write_config(&self, settings: &Settings) {
        fs::write(self.config_path(), self.config_text(settings)).expect("write config");
    }

    /// `dialsync ARGS... --config <the rig's config>` (the global flag after the subcommand).
    pub fn dialsync(&self, args: &[&str]) -> Out {
        let output = command()
            .args(args)
            .arg("--config")
            .arg(self.config_path())
            .output()
            .expect("run dialsync");
        Out::of(output)
    }

    /// `dialsync --config <the rig's config> ARGS...` (the global flag before the subcommand).
    pub fn dialsync_config_first(&self, args: &[&str]) -> Out {
        let output = command()
            .arg("--config")
            .arg(self.config_path())
            .args(args)
            .output()
            .expect("run dialsync");
        Out::of(output)
    }

    /// The tag the SBC routes `number` with.
    pub fn sbc_tag(&self, number: &str) -> Option<String> {
        self.sbc.state().lookup("OCDialPlan", number)
    }

    /// [`Rig::sbc_tag`] of each of `numbers`, the rules parsed once.
    pub fn sbc_tags(&self, numbers: &[&str]) -> Vec<Option<String>> {
        self.sbc.state().lookup_many("OCDialPlan", numbers)
    }

    fn rules_named(&self, owned: bool) -> Vec<(u32, String, String, String)> {
        let state = self.sbc.state();
        let (_, plan) = state.plan("OCDialPlan").expect("OCDialPlan");
        plan.rules
            .iter()
            .filter(|(_, r)| (r.name == "dialsync") == owned)
            .map(|(i, r)| (*i, r.name.clone(), r.prefix.clone(), r.tag.clone()))
            .collect()
    }

    /// dialsync's rules on the SBC: (index, prefix, tag), by index.
    pub fn owned_rules(&self) -> Vec<(u32, String, String)> {
        self.rules_named(true)
            .into_iter()
            .map(|(i, _, p, t)| (i, p, t))
            .collect()
    }

    /// Everyone else's rules on the SBC: (index, name, prefix, tag), by index.
    pub fn foreign_rules(&self) -> Vec<(u32, String, String, String)> {
        self.rules_named(false)
    }

    /// Incremental scripts the SBC was sent so far.
    pub fn writes(&self) -> usize {
        self.sbc
            .state()
            .requests
            .iter()
            .filter(|r| *r == PUT)
            .count()
    }

    pub fn assert_no_unexpected(&self) {
        assert_eq!(self.sbc.state().unexpected, Vec::<String>::new());
        assert_eq!(self.fusion.state().unexpected, Vec::<String>::new());
    }
}

/// The 1-based line of the first line of `text` that starts with `prefix`.
pub fn line_of(text: &str, prefix: &str) -> usize {
    text.lines()
        .position(|l| l.trim_start().starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{text}"))
        + 1
}

/// An SBC whose `OCDialPlan` holds what the field puts there before dialsync comes, at the
/// indexes a first sync's adds would otherwise take: Live Platform's own Operator Connect rule
/// (one number, no `#`, a bare FQDN for a tag), a site-coded rule with a 4-digit bracket, a
/// PBX's rule (`+3222`, name `pbx`), and a row in the vendor's suffix notation, which dialsync
/// cannot read. All of them must stay byte-identical whatever dialsync does.
pub fn pbx_device() -> SbcState {
    let mut device = SbcState::with_oc_dial_plan();
    let oc = device.plans.get_mut(&0).expect("OCDialPlan");
    for (index, name, prefix, tag) in [
        (0, "LivePlatform", "+97239753000", "sandbox1.audiocodes.be"),
        (
            1,
            "GSBFZUBGHWOFI",
            "+2711123[1000-1999]",
            "sbc01.teams.contoso.com",
        ),
        (2, "pbx", "+3222", "Trunk=pbx"),
        (3, "legacy", "53([2-4])", "A"),
    ] {
        oc.rules.insert(
            index,
            SimRule {
                name: name.into(),
                prefix: prefix.into(),
                tag: tag.into(),
            },
        );
    }
    device
}

/// What `check` says of the rigs' SBC once all else is well: its row in suffix notation stays a
/// WARNING every cycle until someone looks at it.
pub const CHECK_ONLY_UNREADABLE: &str =
    "DIALSYNC WARNING - 1 unreadable dial-plan row left alone (index 3) | ";

/// The SBC's one administrator, whose password the rigs write to `sbc-password`.
pub fn sbc_users() -> Vec<SimUser> {
    vec![SimUser {
        username: SBC_USER.into(),
        password: SBC_PASSWORD.into(),
        administrator: true,
    }]
}

/// `text` without ANSI escape sequences (CSI: ESC [ parameters, then a final byte in @..~),
/// for tests that read logs a terminal would colour.
pub fn strip_ansi(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

/// The lines `stderr` writes, collected by a thread until EOF (when the process exits), for a
/// test to search while the process runs.
pub fn collect_lines(stderr: std::process::ChildStderr) -> Arc<Mutex<Vec<String>>> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().expect("log").push(line);
        }
    });
    log
}

/// Polls `probe` every 10 ms until it answers, failing the test after `patience`.
pub fn wait_for<T>(what: &str, patience: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + patience;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
