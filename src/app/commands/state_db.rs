//! The state database as the read-only commands open it: only if it is there.

use std::io;
use std::path::Path;

use super::error::CommandError;
use crate::store::Store;

/// Opens the state database only if it exists: the read-only commands must not create an
/// empty one where the agent expects its own. An empty file (a crash right after creating it,
/// a truncation) holds no state either, and is left for the agent to set up.
pub(super) fn open_existing(path: &Path) -> Result<Store, CommandError> {
    let why = match std::fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => "",
        Ok(meta) if meta.is_file() && meta.len() == 0 => " (the file is empty)",
        // Anything else (a permission error, a directory) is Store::open's to report.
        _ => return Ok(Store::open(path)?),
    };
    Err(CommandError::NoState {
        path: path.display().to_string(),
        why,
    })
}
