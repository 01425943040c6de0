//! The record `run` leaves after each reload, for `dialsync reload` to wait on, and the clock
//! it is stamped with.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::assignment::one_line;

/// The file, in the runtime directory, where `run` records its last reload.
pub const RELOAD_ACK_FILE: &str = "reloaded";

/// The reload record for `RUNTIME_DIRECTORY` as systemd sets it: its first directory (several
/// are separated by colons), `None` when empty.
pub fn reload_ack_path(runtime_directory: &OsStr) -> Option<PathBuf> {
    let first = runtime_directory.as_bytes().split(|&b| b == b':').next()?;
    (!first.is_empty()).then(|| Path::new(OsStr::from_bytes(first)).join(RELOAD_ACK_FILE))
}

/// What `run` records after each reload, for `dialsync reload` to wait on.
///
/// systemd 252 (Debian 12) ends `systemctl reload` when `ExecReload=` exits, and knows nothing
/// of `RELOADING=1`/`READY=1` until `Type=notify-reload` (253). So `ExecReload=` runs
/// `dialsync reload`, which sends SIGHUP and returns once the agent has recorded a reload that
/// began after the signal: the new configuration in force, or refused with its error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReloadAck {
    /// CLOCK_MONOTONIC when the reload began (its RELOADING=1's MONOTONIC_USEC).
    pub started_usec: u64,
    /// The error that kept the previous configuration in force; `None` when reloaded.
    pub refused: Option<String>,
}

impl ReloadAck {
    pub(super) fn render(&self) -> String {
        match &self.refused {
            None => format!("MONOTONIC_USEC={}\nRESULT=reloaded\n", self.started_usec),
            Some(error) => format!(
                "MONOTONIC_USEC={}\nRESULT=refused\nERROR={}\n",
                self.started_usec,
                one_line(error)
            ),
        }
    }

    pub(super) fn parse(text: &str) -> Option<ReloadAck> {
        let field = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
        };
        let started_usec = field("MONOTONIC_USEC")?.parse().ok()?;
        let refused = match field("RESULT")? {
            "reloaded" => None,
            "refused" => Some(field("ERROR").unwrap_or("").to_string()),
            _ => return None,
        };
        Some(ReloadAck {
            started_usec,
            refused,
        })
    }

    /// Replaces the record at `path` whole (a reader never sees half of it).
    pub(super) fn write(&self, path: &Path) -> io::Result<()> {
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(".new");
        std::fs::write(&temporary, self.render())?;
        std::fs::rename(&temporary, path)
    }

    pub(super) fn read(path: &Path) -> Option<ReloadAck> {
        ReloadAck::parse(&std::fs::read_to_string(path).ok()?)
    }
}

/// CLOCK_MONOTONIC in microseconds, the clock systemd stamps reloads with (std's `Instant`
/// hides its value).
pub(super) fn monotonic_usec() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let micros = u64::try_from(now.tv_nsec / 1_000).unwrap_or(0);
    secs.saturating_mul(1_000_000).saturating_add(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reload_record_lives_in_the_first_runtime_directory() {
        assert_eq!(
            reload_ack_path(OsStr::new("/run/dialsync")),
            Some(PathBuf::from("/run/dialsync/reloaded"))
        );
        assert_eq!(
            reload_ack_path(OsStr::new("/run/dialsync:/run/other")),
            Some(PathBuf::from("/run/dialsync/reloaded"))
        );
        assert_eq!(reload_ack_path(OsStr::new("")), None);
    }
}
