//! `dialsync run` as a child process, as systemd runs it: everything it writes kept whole, the
//! admin port it logs, its `/status`, signals, and a kill if the test fails before stopping it.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::process::{kill_process, Pid, Signal};
use serde_json::Value;

use super::binary::{command, strip_ansi};
use super::wait::wait_for;

/// How long anything the daemon does on its own may take on a slow, shared machine.
pub const PATIENCE: Duration = Duration::from_secs(40);

/// A running `dialsync run`, killed if a test fails before stopping it.
pub struct Daemon {
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// The admin port, from the `dialsync starting` log line.
    pub admin: SocketAddr,
}

impl Daemon {
    /// `dialsync run --config <config>`, logging at `info`; waits for the admin address it
    /// logs.
    pub fn start(config: &Path) -> Daemon {
        Daemon::start_with(config, &[("RUST_LOG", OsStr::new("info"))])
    }

    /// [`Daemon::start`] with `env` set (a `RUST_LOG` there replaces `info`).
    pub fn start_with(config: &Path, env: &[(&str, &OsStr)]) -> Daemon {
        let mut run = command();
        run.arg("run").arg("--config").arg(config);
        run.env("RUST_LOG", "info");
        for (name, value) in env {
            run.env(name, value);
        }
        let mut child = run
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dialsync run");
        let stdout = collect(child.stdout.take().expect("stdout"));
        let stderr = collect(child.stderr.take().expect("stderr"));
        let mut daemon = Daemon {
            child,
            stdout,
            stderr,
            admin: SocketAddr::from(([127, 0, 0, 1], 9)),
        };
        daemon.admin = wait_for("the `dialsync starting` log line", PATIENCE, || {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!("dialsync run exited ({status}):\n{}", daemon.log());
            }
            let log = daemon.log();
            let line = log.lines().find(|l| l.contains("dialsync starting"))?;
            let at = line.find("admin=")? + "admin=".len();
            let addr = line[at..].split_whitespace().next()?;
            Some(addr.parse().expect("admin= is an address"))
        });
        daemon
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stderr so far, without terminal colours.
    pub fn log(&self) -> String {
        strip_ansi(&String::from_utf8_lossy(
            &self.stderr.lock().expect("stderr"),
        ))
    }

    pub fn logged(&self, what: &str) -> bool {
        self.log().contains(what)
    }

    /// Waits until the log holds `what`.
    pub fn wait_logged(&self, what: &str) {
        wait_for(&format!("{what:?} in the log"), PATIENCE, || {
            self.logged(what).then_some(())
        });
    }

    /// `METHOD path` on the admin port, as HTTP/1.0 (no chunking): status and whole answer,
    /// headers included.
    pub fn http(&self, method: &str, path: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(self.admin).expect("connect to the admin port");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        write!(
            stream,
            "{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n"
        )
        .expect("send");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read answer");
        let code = answer
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {answer:?}"));
        (code, answer)
    }

    /// `GET path`: status and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        body_of(self.http("GET", path))
    }

    /// `POST path`: status and body.
    pub fn post(&self, path: &str) -> (u16, String) {
        body_of(self.http("POST", path))
    }

    pub fn status(&self) -> Value {
        let (code, body) = self.get("/status");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("/status is not JSON ({e}): {body}"))
    }

    /// Waits until `/status` counts exactly `cycles` finished cycles and none running.
    pub fn wait_cycles(&self, cycles: u64) -> Value {
        self.wait_status(&format!("cycle {cycles}"), |total| total == cycles)
    }

    /// Waits until `/status` counts `cycles` finished cycles or more, and none running: for a
    /// daemon whose own interval may add cycles meanwhile.
    pub fn wait_cycles_at_least(&self, cycles: u64) -> Value {
        self.wait_status(&format!("cycle {cycles}"), |total| total >= cycles)
    }

    fn wait_status(&self, what: &str, done: impl Fn(u64) -> bool) -> Value {
        wait_for(what, PATIENCE, || {
            let status = self.status();
            let total = status["totals"]["cycles"].as_u64();
            (total.is_some_and(&done) && status["cycle_running"] == false).then_some(status)
        })
    }

    pub fn signal(&self, signal: Signal) {
        kill_process(Pid::from_child(&self.child), signal).expect("kill");
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Waits for the process to end on its own.
    pub fn exit(&mut self, patience: Duration) -> ExitStatus {
        let child = &mut self.child;
        wait_for("dialsync run to exit", patience, || {
            child.try_wait().expect("try_wait")
        })
    }

    /// SIGTERM, then everything it wrote: (exit, stdout, stderr).
    pub fn stop(mut self) -> (ExitStatus, Vec<u8>, Vec<u8>) {
        self.signal(Signal::TERM);
        let status = self.exit(PATIENCE);
        // The readers end at EOF, right after the exit.
        let complete = |buffer: &Arc<Mutex<Vec<u8>>>| {
            wait_for("the end of the output", PATIENCE, || {
                (Arc::strong_count(buffer) == 1).then_some(())
            });
            buffer.lock().expect("buffer").clone()
        };
        (status, complete(&self.stdout), complete(&self.stderr))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("dialsync run's log:\n{}", self.log());
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The body of an HTTP answer read whole.
fn body_of((code, answer): (u16, String)) -> (u16, String) {
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (code, body.to_string())
}

/// Reads `from` to its end on a thread of its own, into the buffer returned (whose other
/// reference is dropped at EOF).
fn collect(mut from: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let writer = buffer.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = from.read(&mut chunk) {
            if n == 0 {
                break;
            }
            writer
                .lock()
                .expect("buffer")
                .extend_from_slice(&chunk[..n]);
        }
    });
    buffer
}
