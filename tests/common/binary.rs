//! The real `dialsync` binary, run as an operator or a timer runs it: with a clean environment,
//! and what it said kept whole for the assertions.

use std::fmt;
use std::process::{Command, Output, Stdio};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_dialsync");

/// Environment a test host may carry that must not reach the child: a systemd or journald of
/// the CI runner (its runtime directory included), a proxy between loopback peers, a config or
/// log filter of the developer's.
const SCRUBBED_ENV: &[&str] = &[
    "DIALSYNC_CONFIG",
    "RUST_LOG",
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "JOURNAL_STREAM",
    "RUNTIME_DIRECTORY",
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
    scrub(&mut command);
    command.stdin(Stdio::null());
    command
}

/// Takes the host's environment of [`SCRUBBED_ENV`] from `command`, and its colours: for a
/// `dialsync` started through another program (`nsenter`, say).
pub fn scrub(command: &mut Command) {
    for name in SCRUBBED_ENV {
        command.env_remove(name);
    }
    command.env("NO_COLOR", "1");
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

/// The 1-based line of the first line of `text` that starts with `prefix`.
pub fn line_of(text: &str, prefix: &str) -> usize {
    text.lines()
        .position(|l| l.trim_start().starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{text}"))
        + 1
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
