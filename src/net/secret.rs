//! Secrets (passwords, client secrets, machine tokens) read from files, as DESIGN.md §7 asks.
//!
//! A secret in the config file would be copied into backups, diffs and support tickets; in its
//! own file it can be owned by the service user alone and handed over by systemd credentials.
//! So a secret file that its group or others can read is refused, not just warned about, and
//! the value never shows in `Debug`, `Display` or any error.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Classify, ErrorClass};

/// Why a secret file could not be used. Never carries the secret itself.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "secret file {path} is readable by {who} (mode {mode:04o}); \
         run: chmod 600 {path} (and chown it to the service user)"
    )]
    TooOpen {
        path: PathBuf,
        mode: u32,
        who: &'static str,
    },
    #[error("secret file {path} is empty")]
    Empty { path: PathBuf },
}

impl Classify for SecretError {
    fn class(&self) -> ErrorClass {
        // A missing, empty or too-open secret file stays so until the operator fixes it.
        ErrorClass::Fatal
    }
}

/// A secret value. `Debug` and `Display` print `<redacted>`; [`Secret::expose`] is the one way
/// to the value, so every use of it is easy to find.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Reads the secret in `path`: its first line, without the line break editors add.
    ///
    /// The file is opened once and its mode judged on the open handle, so the mode checked is
    /// the mode of the very file read (a symlink is judged by the file it points to).
    pub fn from_file(path: &Path) -> Result<Secret, SecretError> {
        use std::io::Read as _;
        let read_error = |source| SecretError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(read_error)?;
        check_mode(path, &file)?;
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(read_error)?;
        let value = text.lines().next().unwrap_or("").trim_end_matches('\r');
        if value.is_empty() {
            return Err(SecretError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(Secret(value.to_string()))
    }

    /// A secret given directly (tests, emulators).
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A secret given directly, as `Secret::new` takes it: so a config struct's secret field takes
/// a literal or a `String` as readily as its plain fields do.
impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret::new(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where systemd puts the credentials of each unit (`LoadCredential=`): `<this>/<unit>/<name>`.
const CREDENTIALS_ROOT: &str = "/run/credentials";

/// Whether `path` is a systemd credential: directly in `$CREDENTIALS_DIRECTORY` (as the service
/// sees it) or in a unit's directory under `/run/credentials` (as root sees it from a shell).
///
/// systemd writes a credential read-only (0400, owned by root) and grants the service user read
/// access with an ACL entry where the file system has ACLs, else by chown. With the ACL, `stat`
/// shows the ACL mask, `r`, in the group bits although no group can read the file; only root
/// can write there, so those group bits are not refused.
fn is_credential(path: &Path, credentials_directory: Option<&std::ffi::OsStr>) -> bool {
    let parent = path.parent();
    credentials_directory.is_some_and(|dir| parent == Some(Path::new(dir)))
        || parent.and_then(Path::parent) == Some(Path::new(CREDENTIALS_ROOT))
}

#[cfg(unix)]
fn check_mode(path: &Path, file: &std::fs::File) -> Result<(), SecretError> {
    use std::os::unix::fs::PermissionsExt as _;
    let metadata = file.metadata().map_err(|source| SecretError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = metadata.permissions().mode() & 0o7777;
    // Where the file really is: a symlink inside the credentials directory that points to a
    // file elsewhere is not a credential (its group bits are real), while a link elsewhere to
    // a credential is one.
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let credentials_directory = std::env::var_os("CREDENTIALS_DIRECTORY")
        .map(|dir| std::fs::canonicalize(&dir).unwrap_or_else(|_| PathBuf::from(dir)));
    let credential = is_credential(&real, credentials_directory.as_deref().map(Path::as_os_str));
    judge_mode(path, mode, credential)
}

/// Refuses a mode that lets others, or its group, read the file; a credential's group bits are
/// an ACL mask (see [`is_credential`]).
fn judge_mode(path: &Path, mode: u32, credential: bool) -> Result<(), SecretError> {
    let who = match (mode & 0o040 != 0 && !credential, mode & 0o004 != 0) {
        (_, true) => "others",
        (true, false) => "its group",
        (false, false) => return Ok(()),
    };
    Err(SecretError::TooOpen {
        path: path.to_path_buf(),
        mode,
        who,
    })
}

#[cfg(not(unix))]
fn check_mode(_path: &Path, _file: &std::fs::File) -> Result<(), SecretError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn file_with(mode: u32, text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        (dir, path)
    }

    #[test]
    fn reads_the_first_line_of_a_private_file() {
        let (_dir, path) = file_with(0o600, "hunter2\n");
        let secret = Secret::from_file(&path).unwrap();
        assert_eq!(secret.expose(), "hunter2");
        assert_eq!(format!("{secret:?} {secret}"), "<redacted> <redacted>");
        let (_dir, path) = file_with(0o400, "tok\r\nignored\n");
        assert_eq!(Secret::from_file(&path).unwrap().expose(), "tok");
    }

    #[test]
    fn refuses_files_others_can_read_without_showing_the_secret() {
        for (mode, who) in [(0o640, "its group"), (0o644, "others"), (0o604, "others")] {
            let (_dir, path) = file_with(mode, "hunter2\n");
            let err = Secret::from_file(&path).unwrap_err();
            let message = err.to_string();
            assert!(message.contains(who), "{message}");
            assert!(message.contains("chmod 600"), "{message}");
            assert!(!message.contains("hunter2"), "{message}");
        }
    }

    #[test]
    fn systemd_credentials_may_show_an_acl_mask_in_the_group_bits() {
        let unit = Path::new("/run/credentials/dialsync.service/sbc-password");
        assert!(is_credential(unit, None));
        let elsewhere = Path::new("/var/lib/creds/sbc-password");
        assert!(is_credential(
            elsewhere,
            Some(std::ffi::OsStr::new("/var/lib/creds"))
        ));
        assert!(!is_credential(elsewhere, None));
        assert!(!is_credential(
            Path::new("/run/credentials/sbc-password"),
            None
        ));
        assert!(!is_credential(
            Path::new("/etc/dialsync/secrets/sbc-password"),
            Some(std::ffi::OsStr::new("/run/credentials/dialsync.service"))
        ));
        // 0440 is what stat shows for systemd's 0400 file with a `user:dialsync:r` ACL entry.
        assert!(judge_mode(unit, 0o440, true).is_ok());
        assert!(judge_mode(unit, 0o400, true).is_ok());
        let err = judge_mode(unit, 0o444, true).unwrap_err().to_string();
        assert!(err.contains("others"), "{err}");
        let err = judge_mode(elsewhere, 0o440, false).unwrap_err().to_string();
        assert!(err.contains("its group"), "{err}");
    }

    #[test]
    fn missing_and_empty_files_are_named() {
        let (dir, path) = file_with(0o600, "\n");
        assert!(matches!(
            Secret::from_file(&path),
            Err(SecretError::Empty { .. })
        ));
        let missing = dir.path().join("nope");
        let err = Secret::from_file(&missing).unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
    }
}
