//! Reloading when the config file changes: a watch on its directory, a filter that keeps only
//! the events that can change what the path resolves to, and a debounce so that one burst of
//! edits is one reload.

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::error::DaemonError;
use super::trigger::{ReloadCause, Trigger, TriggerSender};

/// How long the config file must stay quiet before a change reloads it: editors and deploy tools
/// write, rename and chmod in bursts, and one reload per burst is enough.
pub const RELOAD_DEBOUNCE: Duration = Duration::from_millis(500);

/// Watches the config file at `path` and sends a reload to `sender` once it has been quiet for
/// `quiet` after a change. The watcher must be kept alive as long as the task.
///
/// The directory is watched, not the file: editors and deploy tools replace a file by
/// renaming a new one over it, which a watch on the old inode would miss. Events are kept
/// when they name the file, or when what the path resolves to has changed, which catches a
/// symlinked config whose link (or a link it goes through, as a Kubernetes ConfigMap's
/// `..data`) is swapped.
pub(super) fn watch(
    path: &Path,
    quiet: Duration,
    sender: TriggerSender,
) -> Result<(notify::RecommendedWatcher, JoinHandle<()>), DaemonError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| DaemonError::NoRuntime)?;
    let path = std::path::absolute(path).map_err(|source| DaemonError::ConfigPath {
        path: path.to_path_buf(),
        source,
    })?;
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(DaemonError::NoFileName(path));
    };
    let (raw_tx, raw_rx) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event| {
        // Fails only once the debounce task is gone, i.e. the Triggers were dropped.
        let _ = raw_tx.send(event);
    })
    .map_err(|source| DaemonError::Watch {
        dir: dir.to_path_buf(),
        source,
    })?;
    watcher
        .watch(dir, RecursiveMode::NonRecursive)
        .map_err(|source| DaemonError::Watch {
            dir: dir.to_path_buf(),
            source,
        })?;
    let filter = ConfigFilter {
        name: name.to_os_string(),
        seen: FileIdentity::of(&path),
        path,
    };
    let task = runtime.spawn(debounce(raw_rx, filter, quiet, sender));
    Ok((watcher, task))
}

/// What the config path resolves to: a rename over it, or a swapped symlink, changes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileIdentity {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl FileIdentity {
    fn of(path: &Path) -> Option<FileIdentity> {
        std::fs::metadata(path).ok().map(|m| FileIdentity {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
        })
    }
}

#[derive(Debug)]
struct ConfigFilter {
    path: PathBuf,
    name: OsString,
    seen: Option<FileIdentity>,
}

impl ConfigFilter {
    fn is_relevant(&self, event: &notify::Event) -> bool {
        if event.need_rescan() {
            // The kernel dropped events: something may have changed.
            return true;
        }
        match event.kind {
            // Opening or reading the file, which every reload does, must not cause another.
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
            EventKind::Access(_) => return false,
            _ => {}
        }
        event
            .paths
            .iter()
            .any(|p| p.file_name() == Some(self.name.as_os_str()))
            || FileIdentity::of(&self.path) != self.seen
    }
}

async fn debounce(
    mut raw: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
    mut filter: ConfigFilter,
    quiet: Duration,
    sender: TriggerSender,
) {
    loop {
        loop {
            match raw.recv().await {
                None => return,
                Some(Ok(event)) if filter.is_relevant(&event) => break,
                Some(Ok(_)) => {}
                Some(Err(e)) => warn!(error = %e, "config file watcher"),
            }
        }
        let mut deadline = Instant::now() + quiet;
        loop {
            match tokio::time::timeout_at(deadline, raw.recv()).await {
                Err(_quiet) => break,
                Ok(None) => return,
                Ok(Some(Ok(event))) => {
                    if filter.is_relevant(&event) {
                        deadline = Instant::now() + quiet;
                    }
                }
                Ok(Some(Err(e))) => warn!(error = %e, "config file watcher"),
            }
        }
        filter.seen = FileIdentity::of(&filter.path);
        debug!(path = %filter.path.display(), "config file changed");
        if !sender.send(Trigger::Reload(ReloadCause::FileChanged)) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_the_config_is_not_a_change() {
        use notify::event::{AccessKind, ModifyKind, RenameMode};
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dialsync.toml");
        std::fs::write(&path, "x").expect("write");
        let filter = ConfigFilter {
            name: OsString::from("dialsync.toml"),
            seen: FileIdentity::of(&path),
            path: path.clone(),
        };
        let event = |kind, p: &Path| notify::Event::new(kind).add_path(p.to_path_buf());
        let open = EventKind::Access(AccessKind::Open(AccessMode::Any));
        let read = EventKind::Access(AccessKind::Close(AccessMode::Read));
        let written = EventKind::Access(AccessKind::Close(AccessMode::Write));
        let renamed = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        assert!(!filter.is_relevant(&event(open, &path)));
        assert!(!filter.is_relevant(&event(read, &path)));
        assert!(filter.is_relevant(&event(written, &path)));
        assert!(filter.is_relevant(&event(renamed, &path)));
        assert!(!filter.is_relevant(&event(renamed, &dir.path().join("other.toml"))));
        let rescan = notify::Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        assert!(filter.is_relevant(&rescan));
    }
}
