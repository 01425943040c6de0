//! Issue 8's security checks, as tests of the real binary against the emulators on loopback:
//! - secrets (passwords, the OAuth client secret, a machine token, and the HTTP Basic form of
//!   the SBC's credentials) never appear in anything dialsync emits: output, TRACE logs,
//!   errors, `/status`, `/metrics`, or the state database;
//! - secret files its group or others can read are refused (a symlink is judged by its
//!   target, and only a real systemd credential may show an ACL mask in its group bits);
//! - TLS verification cannot be turned off silently, and `https://` never falls back to plain;
//!   plain `http://` to a host that is not loopback is warned about;
//! - the admin port binds to loopback unless configured, and warns otherwise;
//! - unknown config keys are refused at every level, naming the key and its line.

mod common;

use std::ffi::OsStr;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use common::config::{apio_source, fusion_source, livecloud_source, sbc_table};
use common::daemon::Daemon;
use common::dir::{chmod, Dir};
use common::emulators::{own_runtime, start_apio, start_fusion, start_live, start_sbc};
use common::sbc::{administrator, pbx_device};
use common::{command, wait_for, Out};
use dialsync::config::Config;
use dialsync::sim::apio::{self, ApioSim, ApioSimConfig};
use dialsync::sim::fusion::{FusionSim, FusionSimConfig};
use dialsync::sim::livecloud::{live_number, LiveCloudSim, LiveSimConfig};
use dialsync::sim::sbc::SbcSim;
use rustix::process::Signal;
use serde_json::json;

/// How long anything the daemon does on its own may take on a slow, busy machine.
const PATIENCE: Duration = Duration::from_secs(15);

const SBC_USER: &str = "dialsync";
const SBC_PASSWORD: &str = "sbc-S3CRET-7f3a";
const SBC_WRONG: &str = "sbc-WRONG-S3CRET-0b9e";
const FUSION_USER: &str = "svc-dialsync";
const FUSION_PASSWORD: &str = "fusion-S3CRET-91c2";
const FUSION_WRONG: &str = "fusion-WRONG-S3CRET-33d1";
const FUSION_TOKEN: &str = "fusion-TOKEN-S3CRET-6a4f";
const APIO_USER: &str = "svc-apio";
const APIO_PASSWORD: &str = "apio-S3CRET-5d08";
const LIVE_CLIENT: &str = "dialsync-client";
const LIVE_SECRET: &str = "live-S3CRET-c4e6";
/// The content of a secret file left readable by others.
const OPEN_SECRET: &str = "open-S3CRET-e5b7";
const TENANT: &str = "3371606b-f589-4b50-b827-1a95cacf7225";

/// Every secret file of the lab: (file name under `secrets/`, content).
const SECRET_FILES: &[(&str, &str)] = &[
    ("sbc-password", SBC_PASSWORD),
    ("sbc-wrong", SBC_WRONG),
    ("fusion-password", FUSION_PASSWORD),
    ("fusion-wrong", FUSION_WRONG),
    ("fusion-token", FUSION_TOKEN),
    ("apio-password", APIO_PASSWORD),
    ("live-secret", LIVE_SECRET),
];

/// What a lab config varies.
#[derive(Clone, Debug)]
struct Opts {
    sbc_password_file: &'static str,
    fusion_password_file: &'static str,
    interval: &'static str,
    admin_listen: &'static str,
    /// Appended to `[sbc]`.
    sbc_extra: &'static str,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            sbc_password_file: "sbc-password",
            fusion_password_file: "fusion-password",
            interval: "1h",
            admin_listen: "127.0.0.1:0",
            sbc_extra: "",
        }
    }
}

/// The four emulators with distinctive secrets, and a config that reads every source kind,
/// every way of authenticating (Fusion login and machine token, APIO JWT and session, OAuth
/// client credentials) and writes the SBC with HTTP Basic.
struct Lab {
    dir: Dir,
    sbc: SbcSim,
    fusion: FusionSim,
    apio: ApioSim,
    live: LiveCloudSim,
    /// Declared last so it is dropped last: the emulators' servers run on it.
    _runtime: tokio::runtime::Runtime,
}

impl Lab {
    fn start() -> Lab {
        let runtime = own_runtime(2);
        // Its own password, one the leak scan can tell from any other string.
        let users = vec![administrator(SBC_USER, SBC_PASSWORD)];
        let sbc = runtime.block_on(start_sbc(pbx_device(), users));
        let fusion = runtime.block_on(start_fusion(FusionSimConfig {
            username: FUSION_USER.into(),
            password: FUSION_PASSWORD.into(),
            machine_token: Some(FUSION_TOKEN.into()),
            ..FusionSimConfig::default()
        }));
        {
            let mut state = fusion.state();
            state.add_numbers(3226120000, 20, "acme");
            state.ranges = vec![json!({"id": 1, "countryCode": "32",
                "rangeStart": 23001000u64, "rangeEnd": 23001099u64,
                "numberType": "geographic"})];
        }
        let apio = runtime.block_on(start_apio(ApioSimConfig {
            username: APIO_USER.into(),
            password: APIO_PASSWORD.into(),
            ..ApioSimConfig::default()
        }));
        {
            let mut state = apio.state();
            state
                .group("t1", "g1")
                .numbers
                .push(apio::number("+3227000000", "+3227000009", true));
            state
                .group("t2", "g2")
                .numbers
                .push(apio::number("+3227100000", "+3227100009", true));
        }
        let live = runtime.block_on(start_live(
            LiveSimConfig {
                client_id: LIVE_CLIENT.into(),
                client_secret: LIVE_SECRET.into(),
                // The source reads one page per cycle; the lab's cycles must not throttle.
                rate_max: 1000,
                ..LiveSimConfig::default()
            },
            Vec::new(),
        ));
        live.state().numbers.insert(
            TENANT.into(),
            (1..=5)
                .map(|i| live_number(&format!("+322800000{i}"), TENANT, "Active"))
                .collect(),
        );
        let lab = Lab {
            dir: Dir::new(),
            sbc,
            fusion,
            apio,
            live,
            _runtime: runtime,
        };
        std::fs::create_dir(lab.path("secrets")).expect("mkdir secrets");
        for (name, value) in SECRET_FILES {
            lab.secret(name, value, 0o600);
        }
        lab.dir.write(
            "static.csv",
            "start,end,tag\n+3225000000,+3225000009,Trunk=static\n",
        );
        lab.write_config(&Opts::default());
        lab
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path(name)
    }

    fn config_path(&self) -> PathBuf {
        self.dir.config_path()
    }

    /// `secrets/<name>` holding `value` with `mode`.
    fn secret(&self, name: &str, value: &str, mode: u32) -> PathBuf {
        let name = format!("secrets/{name}");
        self.dir.secret(&name, &format!("{value}\n"));
        let path = self.path(&name);
        chmod(&path, mode);
        path
    }

    fn config_text(&self, opts: &Opts) -> String {
        let fusion = self.fusion.config();
        let secret = |name: &str| self.path("secrets").join(name).display().to_string();
        format!(
            r#"[agent]
policy = "sync"
interval = "{interval}"
state_db = "{state_db}"

[admin]
listen = "{admin}"

{sbc}{sbc_extra}
{fusion_source}
[[sources]]
name = "fusion-ranges"
kind = "fusion"
url = "{fusion_url}"
draas_instance = "{draas}"
group_uuid = "{group}"
token_file = "{fusion_token}"
ranges_path = "{ranges_path}"
tag = "Trunk=ranges"
timeout = "3s"

{apio_source}
[[sources]]
name = "apio-session"
kind = "apio"
url = "{apio_url}"
auth = "session"
username = "{APIO_USER}"
password_file = "{apio_password}"
timeout = "3s"
groups = [ {{ tenant = "t2", group = "g2", tag = "Trunk=apio2" }} ]

{live_source}[sources.tags]
"Any Tenant" = "Trunk=any"

[[sources]]
name = "static"
kind = "file"
path = "{static_csv}"
"#,
            interval = opts.interval,
            state_db = self.path("state.db").display(),
            admin = opts.admin_listen,
            sbc = sbc_table(&self.sbc.url(), secret(opts.sbc_password_file), "5s"),
            sbc_extra = opts.sbc_extra,
            fusion_source = fusion_source(&self.fusion, secret(opts.fusion_password_file), "3s"),
            fusion_url = self.fusion.url(),
            draas = fusion.draas_instance,
            group = fusion.group_uuid,
            fusion_token = secret("fusion-token"),
            ranges_path = fusion.ranges_path,
            apio_source = apio_source(&self.apio, secret("apio-password"), "3s"),
            apio_url = self.apio.url(),
            apio_password = secret("apio-password"),
            live_source = livecloud_source(&self.live, secret("live-secret"), TENANT, "3s"),
            static_csv = self.path("static.csv").display(),
        )
    }

    fn write_config(&self, opts: &Opts) {
        self.write_config_text(&self.config_text(opts));
    }

    /// Replaces the config in one step (a rename), so that the daemon's file watcher never
    /// reads half a file.
    fn write_config_text(&self, text: &str) {
        self.dir.replace("dialsync.toml", text);
    }

    /// `dialsync ARGS... --config <the lab's config>` with `env` added.
    fn dialsync(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        let mut cmd = command();
        cmd.args(args).arg("--config").arg(self.config_path());
        for (name, value) in env {
            cmd.env(name, value);
        }
        Out::of(cmd.output().expect("run dialsync"))
    }

    /// `dialsync run` on the lab's config, logging at `rust_log`.
    fn daemon(&self, rust_log: &str) -> Daemon {
        Daemon::start_with(&self.config_path(), &[("RUST_LOG", OsStr::new(rust_log))])
    }
}

/// The 1-based line of the one line of `text` that contains `needle`.
fn line_with(text: &str, needle: &str) -> usize {
    let lines: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "{needle:?} must be on exactly one line of:\n{text}"
    );
    lines[0]
}

/// Whether the error names `key` as the key at fault: serde's "unknown field `key`", or the
/// config's own "<table>.key: ..." for a key of another kind.
fn names(out: &Out, key: &str) -> bool {
    out.stderr.contains(&format!("`{key}`")) || out.stderr.contains(&format!(".{key}:"))
}

/// Inserts `line` right after the one line of `text` that contains `after` ("" = at the top).
fn insert_after(text: &str, after: &str, line: &str) -> String {
    if after.is_empty() {
        return format!("{line}\n{text}");
    }
    let at = line_with(text, after);
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(at, line);
    lines.join("\n") + "\n"
}

// ---------------------------------------------------------------------------------------------
// The leak scan.

/// Everything dialsync emitted or stored, by where it came from.
#[derive(Default)]
struct Evidence(Vec<(String, Vec<u8>)>);

impl Evidence {
    fn bytes(&mut self, what: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        self.0.push((what.into(), bytes.into()));
    }

    fn out(&mut self, what: &str, out: &Out) {
        self.bytes(format!("{what}: stdout"), out.stdout.clone());
        self.bytes(format!("{what}: stderr"), out.stderr.clone());
    }

    /// Every file under `dir` but the `secrets/` it was given (the state database, its WAL
    /// and journal, and whatever else dialsync may have written).
    fn files(&mut self, dir: &Path) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.file_name().is_some_and(|n| n == "secrets") {
                continue;
            }
            if path.is_dir() {
                self.files(&path);
            } else {
                let bytes = std::fs::read(&path).expect("read file");
                self.bytes(format!("file {}", path.display()), bytes);
            }
        }
    }

    /// Where each needle appears: `(needle's name, where)`.
    fn find(&self, needles: &[(String, Vec<u8>)]) -> Vec<String> {
        let mut found = Vec::new();
        for (name, needle) in needles {
            for (what, haystack) in &self.0 {
                let lower = haystack.to_ascii_lowercase();
                if lower
                    .windows(needle.len())
                    .any(|w| w == needle.to_ascii_lowercase().as_slice())
                {
                    found.push(format!("{name} in {what}"));
                }
            }
        }
        found
    }

    fn total(&self) -> usize {
        self.0.iter().map(|(_, b)| b.len()).sum()
    }
}

/// Each secret in the forms that could give it away: as is, in HTTP Basic (base64 of
/// `user:password`, padded or not), and base64 of the value alone; plus the marker every
/// secret of the lab carries, which also catches a secret cut short by a truncated message.
fn needles() -> Vec<(String, Vec<u8>)> {
    let b64 = &base64::engine::general_purpose::STANDARD;
    let b64_bare = &base64::engine::general_purpose::STANDARD_NO_PAD;
    let mut needles = vec![("the marker \"S3CRET\"".to_string(), b"S3CRET".to_vec())];
    let pairs = [
        (SBC_USER, SBC_PASSWORD),
        (SBC_USER, SBC_WRONG),
        (FUSION_USER, FUSION_PASSWORD),
        (FUSION_USER, FUSION_WRONG),
        ("", FUSION_TOKEN),
        (APIO_USER, APIO_PASSWORD),
        (LIVE_CLIENT, LIVE_SECRET),
        ("", OPEN_SECRET),
    ];
    for (user, secret) in pairs {
        needles.push((secret.to_string(), secret.as_bytes().to_vec()));
        let bare = b64_bare.encode(secret);
        needles.push((format!("base64({secret})"), bare.into_bytes()));
        if !user.is_empty() {
            let basic = b64.encode(format!("{user}:{secret}"));
            needles.push((
                format!("HTTP Basic {user}:{secret}"),
                basic.trim_end_matches('=').as_bytes().to_vec(),
            ));
        }
    }
    needles
}

/// The tokens and sessions the emulators handed out: not secrets from the config, but as
/// good as a password while they last, so they must not be logged or stored either.
fn issued_tokens(lab: &Lab) -> Vec<(String, Vec<u8>)> {
    let mut tokens: Vec<String> = Vec::new();
    {
        let fusion = lab.fusion.state();
        tokens.extend(fusion.access_tokens.keys().cloned());
        tokens.extend(fusion.refresh_tokens.keys().cloned());
    }
    {
        let apio = lab.apio.state();
        tokens.extend(apio.tokens.keys().cloned());
        tokens.extend(apio.sessions.keys().cloned());
    }
    tokens.extend(lab.live.state().tokens.keys().cloned());
    assert!(
        tokens.len() >= 4,
        "each token-issuing login was made: {tokens:?}"
    );
    tokens
        .into_iter()
        .map(|t| (format!("issued token {t}"), t.into_bytes()))
        .collect()
}

#[test]
fn secrets_never_appear_in_output_logs_admin_port_errors_or_the_state_database() {
    let lab = Lab::start();
    let trace = [("RUST_LOG", "trace")];
    let mut seen = Evidence::default();

    let checked = lab.dialsync(&["config", "check"], &trace);
    assert_eq!(checked.code, Some(0), "{checked}");
    seen.out("config check", &checked);

    // A full sync at TRACE: every source logs in its own way and the SBC is written.
    let sync = lab.dialsync(&["sync"], &trace);
    assert_eq!(sync.code, Some(0), "{sync}");
    for source in [
        "fusion (fusion): ok",
        "fusion-ranges (fusion): ok",
        "apio (apio): ok",
        "apio-session (apio): ok",
        "live (livecloud): ok",
        "static (file): ok",
    ] {
        assert!(sync.stdout.contains(source), "{source}: {sync}");
    }
    assert!(
        sync.stderr.contains("TRACE") && sync.stderr.contains("DEBUG"),
        "the sync logged at TRACE: {sync}"
    );
    assert!(lab.sbc.state().applied_scripts > 0, "the SBC was written");
    seen.out("sync at TRACE", &sync);
    for args in [
        &["plan", "--json"][..],
        &["lookup", "+3226120001", "+3228000003"],
        &["status"],
        &["history"],
        &["check"],
    ] {
        let out = lab.dialsync(args, &trace);
        assert!(matches!(out.code, Some(0..=2)), "{args:?}: {out}");
        seen.out(&args.join(" "), &out);
    }

    // The daemon at TRACE: a good cycle, then one whose Fusion login is refused (so that
    // `/status` and `/metrics` carry a source error), then SIGTERM.
    let daemon = lab.daemon("trace");
    let status = daemon.wait_cycles(1);
    assert_eq!(status["last_cycle"]["outcome"], "converged", "{status}");
    for path in ["/status", "/metrics", "/readyz", "/livez"] {
        let (code, answer) = daemon.http("GET", path);
        assert_eq!(code, 200, "{path}: {answer}");
        seen.bytes(format!("run: GET {path} after a good cycle"), answer);
    }
    lab.write_config(&Opts {
        fusion_password_file: "fusion-wrong",
        ..Opts::default()
    });
    let reloads = daemon.log().matches("configuration reloaded").count();
    daemon.signal(Signal::HUP);
    wait_for("the reload", PATIENCE, || {
        (daemon.log().matches("configuration reloaded").count() > reloads).then_some(())
    });
    // A reload runs a cycle of its own; POST /sync asks for one more.
    let (code, answer) = daemon.http("POST", "/sync");
    assert!((200..300).contains(&code), "POST /sync: {answer}");
    seen.bytes("run: POST /sync", answer);
    let fusion = wait_for("a cycle with the refused login", PATIENCE, || {
        let status = daemon.status();
        let fusion = status["sources"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == "fusion"))
            .cloned()?;
        (status["totals"]["cycles"].as_u64() >= Some(3)
            && status["cycle_running"] == false
            && fusion["state"] == "stale")
            .then_some(fusion)
    });
    assert!(
        fusion["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("refused")),
        "the login was refused: {fusion}"
    );
    for path in ["/status", "/metrics", "/readyz"] {
        let (_, answer) = daemon.http("GET", path);
        seen.bytes(format!("run: GET {path} after a refused login"), answer);
    }
    let (exit, stdout, stderr) = daemon.stop();
    assert!(exit.success(), "{exit}");
    assert!(
        String::from_utf8_lossy(&stderr).contains("TRACE"),
        "the daemon logged at TRACE"
    );
    seen.bytes("run at TRACE: stdout", stdout);
    seen.bytes("run at TRACE: stderr", stderr);

    // Refused credentials: the error says so without the password that was sent.
    lab.write_config(&Opts {
        sbc_password_file: "sbc-wrong",
        ..Opts::default()
    });
    let sent = lab.sbc.state().requests.len();
    let refused = lab.dialsync(&["sync"], &trace);
    assert_eq!(refused.code, Some(1), "{refused}");
    assert!(
        refused.stdout.contains("authentication refused"),
        "{refused}"
    );
    assert!(
        lab.sbc.state().requests.len() > sent,
        "the wrong password was sent"
    );
    seen.out("sync with a wrong SBC password", &refused);

    lab.write_config(&Opts {
        fusion_password_file: "fusion-wrong",
        ..Opts::default()
    });
    let refused_logins = lab.fusion.state().unauthorized;
    let stale = lab.dialsync(&["sync"], &trace);
    assert_eq!(stale.code, Some(1), "{stale}");
    assert!(
        stale.stdout.contains("source fusion (fusion): stale"),
        "{stale}"
    );
    assert!(lab.fusion.state().unauthorized > refused_logins);
    seen.out("sync with a wrong Fusion password", &stale);

    // A secret file others can read: refused, and its content is not shown.
    lab.secret("open-secret", OPEN_SECRET, 0o644);
    lab.write_config(&Opts {
        sbc_password_file: "open-secret",
        ..Opts::default()
    });
    for args in [&["config", "check"][..], &["sync"]] {
        let open = lab.dialsync(args, &trace);
        assert_eq!(open.code, Some(1), "{open}");
        assert!(open.stderr.contains("chmod 600"), "{open}");
        seen.out(
            &format!("{} with a 0644 secret file", args.join(" ")),
            &open,
        );
    }

    // What the failures left behind, as the monitoring commands read it.
    lab.write_config(&Opts::default());
    for args in [&["status"][..], &["history"], &["check"]] {
        let out = lab.dialsync(args, &trace);
        seen.out(&format!("{} after the failures", args.join(" ")), &out);
    }
    let history = lab.dialsync(&["history"], &[]);
    assert!(
        history.stdout.contains("authentication refused"),
        "the refusal is recorded, so the scan covers it: {history}"
    );

    // The state database and anything else written next to it.
    seen.files(lab.dir.root());
    assert!(
        seen.0.iter().any(|(what, _)| what.ends_with("state.db")),
        "the state database was scanned"
    );

    let mut needles = needles();
    needles.extend(issued_tokens(&lab));
    let leaks = seen.find(&needles);
    assert!(
        leaks.is_empty(),
        "secrets leaked ({} bytes scanned):\n{}",
        seen.total(),
        leaks.join("\n")
    );
}

#[test]
fn the_leak_scan_finds_what_it_looks_for() {
    // The scan itself must be able to fail: a secret, its Basic form and a cut-off secret.
    let mut seen = Evidence::default();
    seen.bytes("a", format!("login with {FUSION_PASSWORD}"));
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{SBC_USER}:{SBC_PASSWORD}"));
    seen.bytes("b", format!("Authorization: Basic {basic}"));
    seen.bytes("c", "password 'live-s3cret-c4' (truncated)");
    seen.bytes("d", "nothing to see");
    let found = seen.find(&needles()).join("\n");
    assert!(
        found.contains(&format!("{FUSION_PASSWORD} in a")),
        "{found}"
    );
    assert!(
        found.contains("HTTP Basic dialsync:sbc-S3CRET-7f3a in b"),
        "{found}"
    );
    assert!(found.contains("the marker \"S3CRET\" in c"), "{found}");
    assert!(!found.contains(" in d"), "{found}");
}

#[test]
fn secret_files_readable_by_group_or_others_are_refused() {
    let lab = Lab::start();
    let text = lab.config_text(&Opts::default());
    let key = "sources[0].password_file";
    let line = line_with(&text, "secrets/fusion-password");
    let path = lab.path("secrets").join("fusion-password");
    for (mode, who) in [
        (0o640, "its group"),
        (0o660, "its group"),
        (0o604, "others"),
        (0o644, "others"),
        (0o444, "others"),
    ] {
        chmod(&path, mode);
        let refused = lab.dialsync(&["config", "check"], &[]);
        assert_eq!(refused.code, Some(1), "mode {mode:o}: {refused}");
        for said in [
            format!("dialsync.toml:{line}: {key}:"),
            format!("readable by {who}"),
            format!("chmod 600 {}", path.display()),
        ] {
            assert!(
                refused.stderr.contains(&said),
                "mode {mode:o}: {said}: {refused}"
            );
        }
        assert!(!refused.stderr.contains(FUSION_PASSWORD), "{refused}");
    }
    let sync = lab.dialsync(&["sync"], &[]);
    assert_eq!(sync.code, Some(1), "sync refuses it too: {sync}");
    assert!(sync.stderr.contains("chmod 600"), "{sync}");
    assert_eq!(
        lab.sbc.state().requests,
        Vec::<String>::new(),
        "no cycle ran"
    );
    assert_eq!(lab.fusion.state().logins, 0, "the password was not sent");

    for mode in [0o600, 0o400] {
        chmod(&path, mode);
        let accepted = lab.dialsync(&["config", "check"], &[]);
        assert_eq!(accepted.code, Some(0), "mode {mode:o}: {accepted}");
    }

    // A symlink is judged by the file it points to.
    let sbc_line = line_with(&text, "secrets/sbc-password");
    let target = lab.secret("sbc-open", SBC_PASSWORD, 0o644);
    let link = lab.path("secrets").join("sbc-password");
    std::fs::remove_file(&link).expect("rm");
    symlink(&target, &link).expect("symlink");
    let refused = lab.dialsync(&["config", "check"], &[]);
    assert_eq!(refused.code, Some(1), "a link to a 0644 file: {refused}");
    assert!(
        refused
            .stderr
            .contains(&format!("dialsync.toml:{sbc_line}: sbc.password_file:"))
            && refused.stderr.contains("readable by others")
            && !refused.stderr.contains(SBC_PASSWORD),
        "{refused}"
    );
    chmod(&target, 0o600);
    let accepted = lab.dialsync(&["config", "check"], &[]);
    assert_eq!(accepted.code, Some(0), "a link to a 0600 file: {accepted}");
}

#[test]
fn only_a_real_systemd_credential_may_show_group_bits() {
    // systemd shows the ACL mask of a credential in its group bits (0440 for 0400 plus
    // `user:dialsync:r`): accepted in $CREDENTIALS_DIRECTORY, but not for a symlink there to
    // a file elsewhere, whose group bits are real.
    let lab = Lab::start();
    let credentials = lab.path("credentials");
    std::fs::create_dir(&credentials).expect("mkdir");
    let credential = credentials.join("sbc-password");
    std::fs::write(&credential, SBC_PASSWORD).expect("write");
    chmod(&credential, 0o440);
    let text = lab.config_text(&Opts::default()).replace(
        &lab.path("secrets")
            .join("sbc-password")
            .display()
            .to_string(),
        &credential.display().to_string(),
    );
    lab.write_config_text(&text);
    let dir = credentials.display().to_string();
    let env = [("CREDENTIALS_DIRECTORY", dir.as_str())];
    let accepted = lab.dialsync(&["config", "check"], &env);
    assert_eq!(
        accepted.code,
        Some(0),
        "a credential with an ACL mask: {accepted}"
    );
    let outside = lab.dialsync(&["config", "check"], &[]);
    assert_eq!(
        outside.code,
        Some(1),
        "without $CREDENTIALS_DIRECTORY it is an ordinary group-readable file: {outside}"
    );

    std::fs::remove_file(&credential).expect("rm");
    let elsewhere = lab.secret("group-readable", SBC_PASSWORD, 0o640);
    symlink(&elsewhere, &credential).expect("symlink");
    let refused = lab.dialsync(&["config", "check"], &env);
    assert_eq!(
        refused.code,
        Some(1),
        "a link out of the credentials: {refused}"
    );
    assert!(
        refused.stderr.contains("readable by its group") && refused.stderr.contains("chmod 600"),
        "{refused}"
    );

    std::fs::remove_file(&credential).expect("rm");
    std::fs::write(&credential, SBC_PASSWORD).expect("write");
    chmod(&credential, 0o444);
    let refused = lab.dialsync(&["config", "check"], &env);
    assert_eq!(
        refused.code,
        Some(1),
        "others may never read one: {refused}"
    );
}

#[test]
fn insecure_skip_verify_is_never_silent() {
    let lab = Lab::start();
    const WARNING: &str = "sbc.insecure_skip_verify is set";
    let quiet = lab.dialsync(&["config", "check"], &[]);
    assert_eq!(quiet.code, Some(0), "{quiet}");
    assert!(!format!("{quiet}").contains(WARNING), "{quiet}");

    lab.write_config(&Opts {
        sbc_extra: "insecure_skip_verify = true\n",
        ..Opts::default()
    });
    let checked = lab.dialsync(&["config", "check"], &[]);
    assert_eq!(checked.code, Some(0), "{checked}");
    assert!(
        checked.stdout.contains(&format!("WARNING: {WARNING}")),
        "in config check's own answer: {checked}"
    );
    let sync = lab.dialsync(&["sync"], &[]);
    assert_eq!(sync.code, Some(0), "{sync}");
    assert!(
        sync.stderr.contains(WARNING),
        "at the start of sync: {sync}"
    );

    // The daemon: at start and again at every cycle.
    let daemon = lab.daemon("info");
    daemon.wait_cycles(1);
    let after_one = daemon.log().matches(WARNING).count();
    assert!(after_one >= 1, "{}", daemon.log());
    daemon.http("POST", "/sync");
    daemon.wait_cycles(2);
    let after_two = daemon.log().matches(WARNING).count();
    assert!(
        after_two > after_one,
        "the second cycle repeated the warning ({after_one} then {after_two}):\n{}",
        daemon.log()
    );
    let (exit, _, _) = daemon.stop();
    assert!(exit.success());
}

#[test]
fn https_never_falls_back_to_plain_http() {
    // The emulators speak plain HTTP: an https:// URL to them must fail in the TLS
    // handshake, with or without insecure_skip_verify, and no request may reach them.
    let lab = Lab::start();
    let text = lab.config_text(&Opts::default());
    let sbc_https = text.replace(&lab.sbc.url(), &lab.sbc.url().replace("http:", "https:"));
    lab.write_config_text(&sbc_https);
    let failed = lab.dialsync(&["sync"], &[]);
    assert_eq!(failed.code, Some(1), "{failed}");
    assert!(
        failed
            .stdout
            .starts_with("FAILED: TLS configuration: reading the device status: "),
        "the failure names TLS: {failed}"
    );
    lab.write_config_text(&insert_after(
        &sbc_https,
        "timeout = \"5s\"",
        "insecure_skip_verify = true",
    ));
    let failed = lab.dialsync(&["sync"], &[]);
    assert_eq!(
        failed.code,
        Some(1),
        "skipping verification is not plain HTTP: {failed}"
    );
    assert_eq!(
        lab.sbc.state().requests,
        Vec::<String>::new(),
        "no request reached the plain-HTTP SBC"
    );

    let fusion_https = text.replace(
        &lab.fusion.url(),
        &lab.fusion.url().replace("http:", "https:"),
    );
    lab.write_config_text(&fusion_https);
    let before = {
        let fusion = lab.fusion.state();
        (fusion.logins, fusion.list_requests, fusion.unexpected.len())
    };
    let failed = lab.dialsync(&["sync"], &[]);
    assert_eq!(failed.code, Some(1), "{failed}");
    for source in ["fusion", "fusion-ranges"] {
        let line = failed
            .stdout
            .lines()
            .find(|l| l.contains(&format!("source {source} (fusion): ")))
            .unwrap_or_else(|| panic!("no line for {source}: {failed}"));
        assert!(
            !line.contains(": ok,") && line.contains("TLS handshake failed"),
            "{source} failed in the handshake: {failed}"
        );
    }
    let fusion = lab.fusion.state();
    assert_eq!(
        (fusion.logins, fusion.list_requests, fusion.unexpected.len()),
        before,
        "no request reached the plain-HTTP Fusion"
    );
}

#[test]
fn no_key_but_insecure_skip_verify_turns_verification_off() {
    let lab = Lab::start();
    let text = lab.config_text(&Opts::default());
    let cases = [
        (
            "timeout = \"5s\"",
            "danger_accept_invalid_certs = true",
            "sbc",
        ),
        ("timeout = \"5s\"", "tls_verify = false", "sbc"),
        ("timeout = \"5s\"", "verify = false", "sbc"),
        ("timeout = \"5s\"", "insecure = true", "sbc"),
        ("name = \"fusion\"", "insecure_skip_verify = true", "source"),
        (
            "name = \"live\"",
            "danger_accept_invalid_certs = true",
            "source",
        ),
    ];
    for (after, line, table) in cases {
        let bad = insert_after(&text, after, line);
        lab.write_config_text(&bad);
        let key = line.split(' ').next().expect("key");
        let at = line_with(&bad, line);
        let refused = lab.dialsync(&["config", "check"], &[]);
        assert_eq!(refused.code, Some(1), "{table}: {line}: {refused}");
        assert!(
            refused.stderr.contains(&format!("dialsync.toml:{at}:")) && names(&refused, key),
            "{table}: {line}: names the key and line {at}: {refused}"
        );
    }
    // The one key takes a boolean, not a word that reads like one.
    let bad = insert_after(
        &text,
        "timeout = \"5s\"",
        "insecure_skip_verify = \"false\"",
    );
    lab.write_config_text(&bad);
    let refused = lab.dialsync(&["config", "check"], &[]);
    assert_eq!(refused.code, Some(1), "{refused}");
    assert!(
        refused.stderr.contains(&format!(
            "dialsync.toml:{}:",
            line_with(&bad, "insecure_skip_verify")
        )),
        "{refused}"
    );
}

#[test]
fn plain_http_to_a_host_that_is_not_loopback_is_warned_about() {
    // 0.0.0.0 is not a loopback address to the checks, yet Linux delivers it to loopback:
    // nothing leaves the machine.
    let lab = Lab::start();
    let loopback = lab.dialsync(&["sync"], &[]);
    assert_eq!(loopback.code, Some(0), "{loopback}");
    assert!(!loopback.stderr.contains("plain http"), "{loopback}");

    let text = lab
        .config_text(&Opts::default())
        .replace("http://127.0.0.1:", "http://0.0.0.0:");
    lab.write_config_text(&text);
    let expected = [
        format!(
            "sbc.url: {} is plain http",
            lab.sbc.url().replace("127.0.0.1", "0.0.0.0")
        ),
        "source fusion: http://0.0.0.0:".to_string(),
        "source fusion-ranges: http://0.0.0.0:".to_string(),
        "source apio: http://0.0.0.0:".to_string(),
        "source apio-session: http://0.0.0.0:".to_string(),
        "source live: http://0.0.0.0:".to_string(),
        format!(
            "source live: {} is plain http://",
            lab.live.token_url().replace("127.0.0.1", "0.0.0.0")
        ),
    ];
    for args in [&["config", "check"][..], &["sync"]] {
        let out = lab.dialsync(args, &[]);
        for warning in &expected {
            assert!(
                out.stderr.contains(warning.as_str()),
                "{args:?}: {warning}: {out}"
            );
        }
    }
}

#[test]
fn credentials_written_into_the_config_are_refused_without_being_echoed() {
    let lab = Lab::start();
    let text = lab.config_text(&Opts::default());
    let sbc_url = lab.sbc.url();
    let with_userinfo = sbc_url.replace("http://", &format!("http://{SBC_USER}:{SBC_PASSWORD}@"));
    let cases = [
        (
            text.replace(
                &format!("url = \"{sbc_url}\""),
                &format!("url = \"{with_userinfo}\""),
            ),
            "sbc.url:",
            with_userinfo.clone(),
        ),
        (
            insert_after(
                &text,
                "timeout = \"5s\"",
                &format!("password = \"{SBC_PASSWORD}\""),
            ),
            "`password`",
            format!("password = \"{SBC_PASSWORD}\""),
        ),
        (
            insert_after(
                &text,
                "name = \"live\"",
                &format!("client_secret = \"{LIVE_SECRET}\""),
            ),
            "`client_secret`",
            format!("client_secret = \"{LIVE_SECRET}\""),
        ),
        (
            insert_after(
                &text,
                "name = \"fusion-ranges\"",
                &format!("token = \"{FUSION_TOKEN}\""),
            ),
            "`token`",
            format!("token = \"{FUSION_TOKEN}\""),
        ),
    ];
    for (bad, key, line) in cases {
        lab.write_config_text(&bad);
        let at = line_with(&bad, &line);
        for args in [&["config", "check"][..], &["sync"], &["status"]] {
            let refused = lab.dialsync(args, &[]);
            assert_eq!(refused.code, Some(1), "{key}: {args:?}: {refused}");
            assert!(
                refused.stderr.contains(&format!("dialsync.toml:{at}:"))
                    && refused.stderr.contains(key),
                "{key}: names the key and line {at}: {refused}"
            );
            let all = format!("{refused}");
            assert!(
                !all.contains("S3CRET"),
                "{key}: the secret is echoed: {refused}"
            );
        }
    }
    assert_eq!(lab.sbc.state().requests, Vec::<String>::new(), "no network");
}

#[test]
fn the_admin_port_is_loopback_unless_configured() {
    let minimal = |admin: &str| {
        format!(
            "[agent]\npolicy = \"sync\"\n{admin}\n[sbc]\nurl = \"https://sbc\"\nusername = \"u\"\n\
             password_file = \"p\"\n\n[[sources]]\nname = \"static\"\nkind = \"file\"\npath = \"s.csv\"\n"
        )
    };
    let path = Path::new("/etc/dialsync/dialsync.toml");
    let default = Config::parse(&minimal(""), path).expect("a valid config");
    assert_eq!(
        default.admin_listen,
        "127.0.0.1:9797".parse().expect("addr")
    );
    assert!(default.admin_listen.ip().is_loopback());
    let empty = Config::parse(&minimal("[admin]\n"), path).expect("an empty [admin]");
    assert_eq!(empty.admin_listen, default.admin_listen);
    let open = Config::parse(&minimal("[admin]\nlisten = \"0.0.0.0:9797\""), path)
        .expect("an explicit address");
    assert!(open.admin_listen.ip().is_unspecified());
    let named = Config::parse(&minimal("[admin]\nlisten = \"localhost:9797\""), path);
    assert!(
        named.is_err(),
        "an address, not a name that may resolve anywhere"
    );

    // `run` says so when it listens beyond loopback, and only then.
    let lab = Lab::start();
    let daemon = lab.daemon("info");
    let log = daemon.log();
    assert!(!log.contains("listens on"), "{log}");
    let (exit, _, _) = daemon.stop();
    assert!(exit.success());

    lab.write_config(&Opts {
        admin_listen: "0.0.0.0:0",
        ..Opts::default()
    });
    let daemon = lab.daemon("info");
    let log = daemon.log();
    assert!(
        log.lines()
            .any(|l| l.contains("WARN")
                && l.contains("admin port 0.0.0.0:0 listens on every interface")),
        "{log}"
    );
    let (exit, _, _) = daemon.stop();
    assert!(exit.success());
}

#[test]
fn unknown_keys_are_refused_at_every_level() {
    let lab = Lab::start();
    let text = lab.config_text(&Opts::default());
    // (insert after the line containing, the line, the key the error names)
    let cases: &[(&str, &str, &str)] = &[
        ("", "verbose = true", "verbose"),
        ("policy = \"sync\"", "dry_runn = true", "dry_runn"),
        ("listen = ", "listn = \"0.0.0.0:1\"", "listn"),
        ("", "[dialplan]\nmax_rule = 10\n", "max_rule"),
        ("", "[safety]\nmin_existin = 3\n", "min_existin"),
        ("timeout = \"5s\"", "batchsize = 10", "batchsize"),
        ("name = \"fusion\"", "pasword_file = \"x\"", "pasword_file"),
        ("name = \"fusion-ranges\"", "token_fil = \"x\"", "token_fil"),
        ("name = \"apio\"", "proxy = \"/x\"", "proxy"),
        (
            "name = \"live\"",
            "client_secret_path = \"x\"",
            "client_secret_path",
        ),
        ("name = \"static\"", "delimiter = \";\"", "delimiter"),
        // A key of another kind is no better than an unknown one.
        ("name = \"fusion\"", "scope = \"x\"", "scope"),
    ];
    for (after, line, key) in cases {
        let bad = insert_after(&text, after, line);
        lab.write_config_text(&bad);
        let first = line
            .lines()
            .find(|l| l.contains(key))
            .expect("the key's line");
        let at = line_with(&bad, first);
        let refused = lab.dialsync(&["config", "check"], &[]);
        assert_eq!(refused.code, Some(1), "{key}: {refused}");
        assert!(
            refused.stderr.contains(&format!("dialsync.toml:{at}:")) && names(&refused, key),
            "{key}: names the key and line {at}: {refused}"
        );
    }

    // An APIO group is a table of its own.
    let bad = text.replace(
        "{ tenant = \"t1\", group = \"g1\" }",
        "{ tenant = \"t1\", group = \"g1\", tennant = \"t9\" }",
    );
    assert_ne!(bad, text);
    lab.write_config_text(&bad);
    let at = line_with(&bad, "tennant");
    let refused = lab.dialsync(&["config", "check"], &[]);
    assert_eq!(refused.code, Some(1), "{refused}");
    assert!(
        refused.stderr.contains(&format!("dialsync.toml:{at}:")) && names(&refused, "tennant"),
        "{refused}"
    );

    // `[sources.tags]` is a map of tenant names: any key is a tenant (the lab has one).
    lab.write_config_text(&text);
    assert!(text.contains("\"Any Tenant\" = \"Trunk=any\""));
    let accepted = lab.dialsync(&["config", "check"], &[]);
    assert_eq!(accepted.code, Some(0), "{accepted}");
}
