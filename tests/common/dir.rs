//! A temporary directory holding what a test hands `dialsync`: its config, secret files and
//! data files, written the way the agent demands (secrets mode 0600).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A directory removed when dropped.
pub struct Dir(tempfile::TempDir);

impl Dir {
    pub fn new() -> Dir {
        Dir(tempfile::tempdir().expect("tempdir"))
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        self.0.path()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root().join(name)
    }

    /// `dialsync.toml` in the directory.
    pub fn config_path(&self) -> PathBuf {
        self.path("dialsync.toml")
    }

    /// Writes `dialsync.toml` in place (an edit, as a watcher sees one).
    pub fn write_config(&self, text: &str) {
        self.write("dialsync.toml", text);
    }

    pub fn write(&self, name: &str, text: &str) {
        fs::write(self.path(name), text).expect("write file");
    }

    /// A secret file holding exactly `value`, mode 0600 as the agent demands.
    pub fn secret(&self, name: &str, value: &str) {
        let path = self.path(name);
        fs::write(&path, value).expect("write secret");
        chmod(&path, 0o600);
    }

    /// Replaces `name` in one step (a rename), so that a watcher never reads half a file.
    pub fn replace(&self, name: &str, text: &str) {
        let temporary = self.path(&format!("{name}.new"));
        fs::write(&temporary, text).expect("write file");
        fs::rename(&temporary, self.path(name)).expect("rename file");
    }
}

pub fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}
