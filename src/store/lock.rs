//! One agent per state database.
//!
//! Two agents on one database (a `run` service and a `sync` from a timer, or two services
//! after a copy-pasted unit) would both plan from the same mirror and both apply: every op
//! twice, deletes refused half-way, a journal that no longer tells the truth. So an agent
//! holds an exclusive advisory lock on `<state_db>.lock` for as long as it lives, and a
//! second one refuses to start, naming the holder. Readers (`check`, `status`, `lookup`)
//! take no lock. The kernel drops the lock when the process dies, even by SIGKILL, so a
//! crash never leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use super::StoreError;

/// The lock, held until dropped.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
    path: PathBuf,
}

impl StateLock {
    /// Takes the lock of the database at `database`, or says who holds it.
    pub fn acquire(database: &Path) -> Result<StateLock, StoreError> {
        let mut name = database.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
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
        match file.try_lock() {
            Ok(()) => {}
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
        // Who holds it, for the refusal a second agent prints. Best effort: the lock itself is
        // what protects.
        let _ = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "pid {}", std::process::id()));
        Ok(StateLock { _file: file, path })
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
}
