//! Talking to the service manager through its notify socket (`sd_notify(3)`): READY=1,
//! RELOADING=1, STOPPING=1, STATUS= and WATCHDOG=1.
//!
//! The wire protocol lives here alone, so the loop and the watchdog say what happened and never
//! how systemd wants to hear it. It also records each finished reload for `dialsync reload`
//! (see `reload_ack`), because that record is the same news told to a second listener.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, warn};

use super::assignment::one_line;
use super::reload_ack::{monotonic_usec, reload_ack_path, ReloadAck};
use crate::error::{Classify, ErrorClass};

/// A notification the service manager could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("NOTIFY_SOCKET {0:?} is neither an absolute path nor an @abstract socket name")]
    UnsupportedAddress(OsString),
    #[error("sending {message:?} to the notify socket {socket:?}: {source}")]
    Send {
        message: String,
        socket: OsString,
        source: io::Error,
    },
    #[error("recording the reload in {}: {source}", path.display())]
    RecordReload { path: PathBuf, source: io::Error },
}

impl Classify for NotifyError {
    fn class(&self) -> ErrorClass {
        // A lost notification is repeated by the next one (watchdog, status): never fatal.
        ErrorClass::Transient
    }
}

/// Where the service manager listens.
#[derive(Clone, Debug, PartialEq, Eq)]
enum NotifyAddr {
    Path(PathBuf),
    /// A Linux abstract socket: `@name` in `NOTIFY_SOCKET`, the name without the `@`.
    Abstract(Vec<u8>),
    /// Kept rather than refused at start, so the operator hears about it where notifications
    /// fail instead of the service refusing to start (e.g. `vsock:` from a newer systemd).
    Unsupported(OsString),
}

impl NotifyAddr {
    fn parse(raw: &OsStr) -> Option<NotifyAddr> {
        let bytes = raw.as_bytes();
        match bytes.first() {
            None => None,
            Some(b'/') => Some(NotifyAddr::Path(PathBuf::from(raw))),
            Some(b'@') => Some(NotifyAddr::Abstract(bytes[1..].to_vec())),
            Some(_) => Some(NotifyAddr::Unsupported(raw.to_os_string())),
        }
    }

    fn describe(&self) -> OsString {
        match self {
            NotifyAddr::Path(path) => path.clone().into_os_string(),
            NotifyAddr::Abstract(name) => {
                let mut shown = OsString::from("@");
                shown.push(OsStr::from_bytes(name));
                shown
            }
            NotifyAddr::Unsupported(raw) => raw.clone(),
        }
    }
}

/// Talks to systemd's notify socket (`sd_notify(3)`).
///
/// Hand-rolled over a unix datagram rather than the `sd-notify` crate because that crate only
/// reads the socket from the environment (tests would race on process-wide env vars) and does
/// not reach abstract sockets. Every method is a no-op when there is no socket, so the same code
/// runs under systemd, in a terminal and in tests.
#[derive(Clone, Debug, Default)]
pub struct Notifier {
    addr: Option<NotifyAddr>,
    /// The whole watchdog timeout (`WATCHDOG_USEC`), when the watchdog is ours.
    watchdog: Option<Duration>,
    /// Whether a failed send was already logged loudly: under a broken socket every watchdog
    /// ping would otherwise warn.
    complained: Arc<AtomicBool>,
    /// Where each reload is recorded for `dialsync reload` (see [`ReloadAck`]).
    reload_ack: Option<PathBuf>,
}

impl Notifier {
    /// From `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`, as systemd sets them, and
    /// `RUNTIME_DIRECTORY` (`RuntimeDirectory=`) for the reload record.
    pub fn from_env() -> Notifier {
        Notifier::from_vars(
            std::env::var_os("NOTIFY_SOCKET").as_deref(),
            std::env::var_os("WATCHDOG_USEC").as_deref(),
            std::env::var_os("WATCHDOG_PID").as_deref(),
            std::process::id(),
        )
        .with_reload_ack(
            std::env::var_os("RUNTIME_DIRECTORY")
                .as_deref()
                .and_then(reload_ack_path),
        )
    }

    /// Sends to `socket`: an absolute path, or `@name` for an abstract socket.
    pub fn new(socket: impl AsRef<OsStr>) -> Notifier {
        Notifier {
            addr: NotifyAddr::parse(socket.as_ref()),
            ..Notifier::default()
        }
    }

    /// Sends nothing.
    pub fn disabled() -> Notifier {
        Notifier::default()
    }

    /// Records each reload in `path` for `dialsync reload` (`None`: nowhere).
    pub fn with_reload_ack(mut self, path: Option<PathBuf>) -> Notifier {
        self.reload_ack = path;
        self
    }

    /// Sets the watchdog timeout, as `WatchdogSec=` would (`None` turns the watchdog off).
    pub fn with_watchdog(mut self, timeout: Option<Duration>) -> Notifier {
        self.watchdog = timeout.filter(|t| !t.is_zero());
        self
    }

    fn from_vars(
        socket: Option<&OsStr>,
        watchdog_usec: Option<&OsStr>,
        watchdog_pid: Option<&OsStr>,
        our_pid: u32,
    ) -> Notifier {
        fn parse(v: Option<&OsStr>) -> Option<&str> {
            v.and_then(|v| v.to_str()).map(str::trim)
        }
        // As sd_watchdog_enabled(3): a WATCHDOG_PID that is not ours (or not a number) means the
        // watchdog belongs to another process, e.g. the parent that exec'd us without it.
        let ours = match watchdog_pid {
            None => true,
            Some(pid) => parse(Some(pid)).and_then(|p| p.parse::<u32>().ok()) == Some(our_pid),
        };
        let timeout = parse(watchdog_usec)
            .and_then(|usec| usec.parse::<u64>().ok())
            .filter(|_| ours)
            .map(Duration::from_micros);
        Notifier {
            addr: socket.and_then(NotifyAddr::parse),
            ..Notifier::default()
        }
        .with_watchdog(timeout)
    }

    /// Whether notifications go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.addr.is_some()
    }

    /// How often to send WATCHDOG=1: half the timeout, as `sd_watchdog_enabled(3)` advises.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|timeout| timeout / 2)
    }

    /// READY=1: start-up (or a reload) is complete.
    pub fn ready(&self) -> Result<(), NotifyError> {
        self.send("READY=1")
    }

    /// RELOADING=1 with the MONOTONIC_USEC= that `Type=notify-reload` (systemd >= 253) needs to
    /// match this reload with the one it asked for; older systemd ignores the extra field.
    pub fn reloading(&self) -> Result<(), NotifyError> {
        self.reloading_at(monotonic_usec())
    }

    pub(super) fn reloading_at(&self, usec: u64) -> Result<(), NotifyError> {
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"))
    }

    /// Records a finished reload where `dialsync reload` waits for it, if anywhere. Sent after
    /// the READY=1 that ends the reload, so the service manager has heard of the end first.
    pub fn reloaded(&self, ack: &ReloadAck) -> Result<(), NotifyError> {
        let Some(path) = &self.reload_ack else {
            return Ok(());
        };
        ack.write(path).map_err(|source| NotifyError::RecordReload {
            path: path.clone(),
            source,
        })
    }

    /// STOPPING=1: the service is shutting down.
    pub fn stopping(&self) -> Result<(), NotifyError> {
        self.send("STOPPING=1")
    }

    /// STATUS=: shown by `systemctl status`. Newlines would start new assignments, so they
    /// become spaces.
    pub fn status(&self, line: &str) -> Result<(), NotifyError> {
        self.send(&format!("STATUS={}", one_line(line)))
    }

    /// WATCHDOG=1: the main loop is alive.
    pub fn watchdog(&self) -> Result<(), NotifyError> {
        self.send("WATCHDOG=1")
    }

    /// Sends `message` (newline-separated assignments) as one datagram.
    pub fn send(&self, message: &str) -> Result<(), NotifyError> {
        let Some(addr) = &self.addr else {
            return Ok(());
        };
        let fail = |source| NotifyError::Send {
            message: message.to_string(),
            socket: addr.describe(),
            source,
        };
        let socket = UnixDatagram::unbound().map_err(fail)?;
        // A full queue at the service manager must not stall the loop: a lost status or ping is
        // replaced by the next one, a stalled loop is not.
        socket.set_nonblocking(true).map_err(fail)?;
        let sent = match addr {
            NotifyAddr::Path(path) => socket.send_to(message.as_bytes(), path),
            NotifyAddr::Abstract(name) => send_abstract(&socket, name, message.as_bytes()),
            NotifyAddr::Unsupported(raw) => {
                return Err(NotifyError::UnsupportedAddress(raw.clone()));
            }
        };
        match sent {
            Ok(n) if n == message.len() => Ok(()),
            Ok(_) => Err(fail(io::Error::new(
                io::ErrorKind::WriteZero,
                "short datagram",
            ))),
            Err(e) => Err(fail(e)),
        }
    }

    /// Logs a failed notification: loudly the first time, quietly after.
    pub(super) fn log_failure(&self, result: Result<(), NotifyError>) {
        if let Err(e) = result {
            if self.complained.swap(true, Ordering::Relaxed) {
                debug!(error = %e, "systemd notification failed");
            } else {
                warn!(
                    error = %e,
                    "systemd notification failed (further failures are logged at debug)"
                );
            }
        }
    }
}

#[cfg(target_os = "linux")]
fn send_abstract(socket: &UnixDatagram, name: &[u8], message: &[u8]) -> io::Result<usize> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    socket.send_to_addr(message, &addr)
}

#[cfg(not(target_os = "linux"))]
fn send_abstract(_: &UnixDatagram, _: &[u8], _: &[u8]) -> io::Result<usize> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract unix sockets exist only on Linux",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::daemon::reload_ack::RELOAD_ACK_FILE;
    use crate::app::daemon::test_socket::{receiver, recv};

    #[test]
    fn each_notification_is_one_datagram() {
        let (_dir, path, socket) = receiver();
        let n = Notifier::new(&path);
        assert!(n.is_enabled());
        n.ready().expect("ready");
        n.status("3 added\n1 deleted").expect("status");
        n.stopping().expect("stopping");
        n.watchdog().expect("watchdog");
        assert_eq!(recv(&socket), "READY=1");
        assert_eq!(recv(&socket), "STATUS=3 added 1 deleted");
        assert_eq!(recv(&socket), "STOPPING=1");
        assert_eq!(recv(&socket), "WATCHDOG=1");
    }

    #[test]
    fn reloading_carries_the_monotonic_clock() {
        let (_dir, path, socket) = receiver();
        let before = monotonic_usec();
        Notifier::new(&path).reloading().expect("reloading");
        let after = monotonic_usec();
        let msg = recv(&socket);
        let mut lines = msg.lines();
        assert_eq!(lines.next(), Some("RELOADING=1"));
        let usec: u64 = lines
            .next()
            .and_then(|l| l.strip_prefix("MONOTONIC_USEC="))
            .and_then(|v| v.parse().ok())
            .expect("MONOTONIC_USEC=<number>");
        assert!(
            before <= usec && usec <= after,
            "{before} <= {usec} <= {after}"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn abstract_sockets_are_reached() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("dialsync-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .expect("abstract address");
        let socket = UnixDatagram::bind_addr(&addr).expect("bind abstract");
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        Notifier::new(format!("@{name}"))
            .ready()
            .expect("sent to the abstract socket");
        assert_eq!(recv(&socket), "READY=1");
    }

    #[test]
    fn without_a_socket_nothing_is_sent_and_nothing_fails() {
        let n = Notifier::from_vars(None, None, None, 1);
        assert!(!n.is_enabled());
        assert!(n.ready().is_ok());
        assert!(n.reloading().is_ok());
        assert_eq!(n.watchdog_interval(), None);
        assert!(!Notifier::from_vars(Some(OsStr::new("")), None, None, 1).is_enabled());
    }

    #[test]
    fn an_unsupported_socket_address_is_reported_when_sending() {
        let n = Notifier::from_vars(Some(OsStr::new("vsock:2:1234")), None, None, 1);
        assert!(matches!(n.ready(), Err(NotifyError::UnsupportedAddress(_))));
    }

    #[test]
    fn a_vanished_socket_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let n = Notifier::new(dir.path().join("gone.sock"));
        assert!(matches!(n.ready(), Err(NotifyError::Send { .. })));
    }

    #[test]
    fn the_watchdog_interval_is_half_the_timeout_and_only_for_us() {
        let usec = Some(OsStr::new("3000000"));
        let interval = |pid: Option<&str>| {
            Notifier::from_vars(None, usec, pid.map(OsStr::new), 42).watchdog_interval()
        };
        assert_eq!(interval(None), Some(Duration::from_millis(1500)));
        assert_eq!(interval(Some("42")), Some(Duration::from_millis(1500)));
        assert_eq!(interval(Some("43")), None);
        assert_eq!(interval(Some("x")), None);
        for bad in ["0", "", "-1", "soon"] {
            let n = Notifier::from_vars(None, Some(OsStr::new(bad)), None, 42);
            assert_eq!(n.watchdog_interval(), None, "WATCHDOG_USEC={bad:?}");
        }
    }

    #[test]
    fn reload_records_round_trip_and_name_the_refusal_on_one_line() {
        let ok = ReloadAck {
            started_usec: 42,
            refused: None,
        };
        assert_eq!(ok.render(), "MONOTONIC_USEC=42\nRESULT=reloaded\n");
        assert_eq!(ReloadAck::parse(&ok.render()), Some(ok));
        let refused = ReloadAck {
            started_usec: 7,
            refused: Some("dialsync.toml:3: unknown key\n`polcy`".into()),
        };
        let parsed = ReloadAck::parse(&refused.render()).expect("parsed");
        assert_eq!(parsed.started_usec, 7);
        assert_eq!(
            parsed.refused.as_deref(),
            Some("dialsync.toml:3: unknown key `polcy`")
        );
        for bad in [
            "",
            "RESULT=reloaded",
            "MONOTONIC_USEC=x\nRESULT=reloaded",
            "MONOTONIC_USEC=1\nRESULT=maybe",
        ] {
            assert_eq!(ReloadAck::parse(bad), None, "{bad:?}");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(RELOAD_ACK_FILE);
        let notifier = Notifier::disabled().with_reload_ack(Some(path.clone()));
        notifier.reloaded(&refused).expect("recorded");
        assert_eq!(ReloadAck::read(&path), Some(parsed));
        assert!(Notifier::disabled().reloaded(&refused).is_ok());
    }
}
