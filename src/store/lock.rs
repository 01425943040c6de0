//! One agent per state database.
//!
//! Two agents on one database (a `run` service and a `sync` from a timer, or two services
//! after a copy-pasted unit) would both plan from the same mirror and both apply: every op
//! twice, deletes refused half-way, a journal that no longer tells the truth. So an agent
//! holds an exclusive advisory lock on `<state_db>.lock` for as long as it lives, and a
//! second one refuses to start, naming the holder. Readers (`status`, `lookup`) take no
//! lock. The kernel drops the lock when the process dies, even by SIGKILL, so a crash never
//! leaves a stale lock behind.
//!
//! That also makes the lock the one trustworthy sign that an agent is alive: `check` asks
//! [`StateLock::holder`] when nothing is recorded yet, to tell "the first cycle is running"
//! from "nothing runs". A pid file could outlive its process and name a reused pid; the lock
//! cannot. The holder writes its pid into the file when it takes the lock, so the file's
//! modification time is when it did.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{ErrorKind, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

use super::StoreError;

/// How long [`StateLock::acquire`] keeps trying a lock that is taken before it refuses.
/// [`StateLock::holder`] takes a shared lock for the microseconds of its probe, and an agent
/// starting in just that instant must not take the prober for a second agent.
const ACQUIRE_GRACE: Duration = Duration::from_millis(500);
const ACQUIRE_RETRY: Duration = Duration::from_millis(20);

/// The process holding a state database's lock, as [`StateLock::holder`] found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockHolder {
    /// From the lock file's text; `None` if it could not be read.
    pub pid: Option<u32>,
    /// When the holder took the lock (the lock file's modification time), in milliseconds
    /// since the Unix epoch.
    pub locked_unix_ms: i64,
}

/// The lock, held until dropped.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
    path: PathBuf,
}

impl StateLock {
    /// Takes the lock of the database at `database`, or says who holds it.
    pub fn acquire(database: &Path) -> Result<StateLock, StoreError> {
        let path = lock_path(database);
        let failed = |source| StoreError::Lock {
            lock: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(failed)?;
        let grace = Instant::now() + ACQUIRE_GRACE;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if Instant::now() < grace => {
                    std::thread::sleep(ACQUIRE_RETRY);
                }
                Err(TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    let holder = holder.trim();
                    return Err(StoreError::Locked {
                        database: database.to_path_buf(),
                        lock: path.clone(),
                        holder: if holder.is_empty() {
                            "holder unknown".to_string()
                        } else {
                            holder.to_string()
                        },
                    });
                }
                Err(TryLockError::Error(e)) => return Err(failed(e)),
            }
        }
        // Who holds it, for the refusal a second agent prints. Best effort: the lock itself is
        // what protects.
        let _ = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "pid {}", std::process::id()));
        Ok(StateLock { _file: file, path })
    }

    /// The agent holding the lock of the database at `database`, or `None` when no process
    /// holds it (or no agent ever took it). Creates nothing and never waits: it asks the
    /// kernel with a shared lock, taken and dropped at once, which only fails while an agent
    /// holds its exclusive one.
    pub fn holder(database: &Path) -> Result<Option<LockHolder>, StoreError> {
        let path = lock_path(database);
        let failed = |source| StoreError::Lock {
            lock: path.clone(),
            source,
        };
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(failed(e)),
        };
        match file.try_lock_shared() {
            // Dropping the file (at return) releases it.
            Ok(()) => return Ok(None),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(failed(e)),
        }
        let modified = file.metadata().and_then(|m| m.modified()).map_err(failed)?;
        let locked_unix_ms = match modified.duration_since(UNIX_EPOCH) {
            Ok(since) => i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
            // A clock set before 1970 when the file was written: say "long ago" rather than
            // fail, the caller then judges the agent's age as too old.
            Err(_) => 0,
        };
        let mut text = String::new();
        // Best effort, as the holder's write is: the lock is the fact, the pid a courtesy.
        let _ = file.read_to_string(&mut text);
        let pid = text
            .trim()
            .strip_prefix("pid ")
            .and_then(|pid| pid.parse().ok());
        Ok(Some(LockHolder {
            pid,
            locked_unix_ms,
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the lock file was deleted or replaced since it was locked: the lock then
    /// protects nothing (a second agent would create and lock a new file), and must be taken
    /// again.
    pub fn replaced(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        let held = self._file.metadata().ok().map(|m| (m.dev(), m.ino()));
        let now = std::fs::metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        held.is_none() || held != now
    }
}

/// `<database>.lock`.
fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("state.db");
        let first = StateLock::acquire(&database).unwrap();
        assert_eq!(first.path(), dir.path().join("state.db.lock"));
        let refused = StateLock::acquire(&database).unwrap_err();
        let message = refused.to_string();
        assert!(
            message.contains(&format!("pid {}", std::process::id()))
                && message.contains("state.db.lock")
                && message.contains("in use by another dialsync"),
            "{message}"
        );
        drop(first);
        StateLock::acquire(&database).expect("free again once dropped");
    }

    #[test]
    fn the_holder_is_known_while_the_lock_is_held_and_only_then() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("state.db");
        assert_eq!(StateLock::holder(&database).unwrap(), None, "no lock file");
        assert!(
            !dir.path().join("state.db.lock").exists(),
            "asking creates nothing"
        );
        let lock = StateLock::acquire(&database).unwrap();
        let holder = StateLock::holder(&database).unwrap().expect("held");
        assert_eq!(holder.pid, Some(std::process::id()));
        let written = std::fs::metadata(lock.path()).unwrap().modified().unwrap();
        let written_ms = written.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
        assert_eq!(holder.locked_unix_ms, written_ms);
        // The probe must not stand in the holder's way, nor in the next one's.
        assert!(!lock.replaced());
        drop(lock);
        assert_eq!(StateLock::holder(&database).unwrap(), None, "released");
        let again = StateLock::acquire(&database).expect("free after the probe");
        assert!(StateLock::holder(&database).unwrap().is_some());
        drop(again);
    }

    #[test]
    fn an_agent_starting_during_a_probe_waits_it_out() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("state.db");
        drop(StateLock::acquire(&database).unwrap());
        // A probe's shared lock, held far longer than a real one.
        let probe = File::open(dir.path().join("state.db.lock")).unwrap();
        probe.try_lock_shared().unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            drop(probe);
        });
        StateLock::acquire(&database).expect("taken once the probe let go");
        release.join().unwrap();
    }
}
