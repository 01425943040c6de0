//! `dialsync reload`: the client side of a reload systemd 252 can wait for. It signals the
//! running agent and waits for the record of a reload that began after the signal.

use std::io;
use std::path::Path;
use std::time::Duration;

use super::reload_ack::{monotonic_usec, ReloadAck};
use crate::error::{Classify, ErrorClass};

/// How often `dialsync reload` looks for the record.
const RELOAD_POLL: Duration = Duration::from_millis(50);

/// Why `dialsync reload` could not confirm a reload.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0} is not a process id")]
    BadPid(u32),
    #[error("cannot signal process {pid}: {source}")]
    Signal { pid: u32, source: io::Error },
    #[error("the configuration was refused; the previous one stays in force: {0}")]
    Refused(String),
    #[error("process {pid} exited before it reloaded")]
    Exited { pid: u32 },
    #[error(
        "process {pid} has not reloaded after {}; a cycle in progress defers a reload \
         until it ends, so it may still come (see the journal)",
        humantime::format_duration(*waited)
    )]
    TimedOut { pid: u32, waited: Duration },
}

impl Classify for ReloadError {
    fn class(&self) -> ErrorClass {
        match self {
            // The reload was deferred by a cycle in progress, not refused: it may still come.
            ReloadError::TimedOut { .. } => ErrorClass::Transient,
            // A wrong pid, a process gone or not ours, a configuration refused: asking again
            // changes nothing until someone acts.
            ReloadError::BadPid(_)
            | ReloadError::Signal { .. }
            | ReloadError::Refused(_)
            | ReloadError::Exited { .. } => ErrorClass::Fatal,
        }
    }
}

/// Sends SIGHUP to `pid` (a `dialsync run`) and waits, up to `timeout`, until it records in
/// `ack` a reload that began after the signal. `Ok` means the new configuration is in force.
pub fn request_reload(pid: u32, ack: &Path, timeout: Duration) -> Result<(), ReloadError> {
    use rustix::process::{kill_process, test_kill_process, Pid, Signal};
    let target = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or(ReloadError::BadPid(pid))?;
    let asked = monotonic_usec();
    kill_process(target, Signal::HUP).map_err(|e| ReloadError::Signal {
        pid,
        source: e.into(),
    })?;
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let exited = test_kill_process(target).is_err();
        let late = std::time::Instant::now() >= deadline;
        // Read after those checks: an answer written just before the agent exited or the
        // time ran out still counts.
        if let Some(ack) = ReloadAck::read(ack).filter(|a| a.started_usec >= asked) {
            return ack.refused.map_or(Ok(()), |e| Err(ReloadError::Refused(e)));
        }
        if exited {
            return Err(ReloadError::Exited { pid });
        }
        if late {
            return Err(ReloadError::TimedOut {
                pid,
                waited: timeout,
            });
        }
        std::thread::sleep(RELOAD_POLL);
    }
}
