//! The data files of `dialsync sim fusion|apio|livecloud`: read once, the same way for the
//! three upstream emulators, so that every refusal names the file and says why.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::Emulator;
use crate::error::{Classify, ErrorClass};

/// A data file for `dialsync sim fusion|apio|livecloud` that cannot be used. Every message
/// names the file.
///
/// The underlying error is part of the message rather than a `#[source]`: `main` prints the
/// whole chain, and a reason that were both would be printed twice.
#[derive(Debug, thiserror::Error)]
pub enum SimDataError {
    #[error("emulator data {path}: cannot read: {reason}")]
    Read {
        path: PathBuf,
        reason: std::io::Error,
    },
    /// Not JSON, or JSON of another shape; serde_json's reason carries line and column.
    #[error("emulator data {path} is not valid {kind} data: {reason}")]
    Json {
        path: PathBuf,
        kind: &'static str,
        reason: serde_json::Error,
    },
    /// Well-formed, but the emulator cannot serve it as written.
    #[error("emulator data {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

impl Classify for SimDataError {
    fn class(&self) -> ErrorClass {
        // An emulator's data file stays unreadable or malformed until someone edits it.
        ErrorClass::Fatal
    }
}

/// What the data file of one emulator holds: JSON of its own shape, what the emulator must
/// refuse beyond that shape, and the emulator it starts.
pub trait SimData: DeserializeOwned {
    /// The emulator's name in messages: `fusion`, `apio`, `livecloud`.
    const KIND: &'static str;

    /// The emulator this data starts.
    type State: Emulator;

    /// Why the emulator cannot serve this data as written, if it cannot.
    fn check(&self) -> Result<(), String>;

    /// The emulator's configuration, and its state holding the data.
    fn into_parts(self) -> (<Self::State as Emulator>::Config, Self::State);
}

/// Reads the data file at `path` and checks it.
pub(crate) fn load<T: SimData>(path: &Path) -> Result<T, SimDataError> {
    let text = std::fs::read_to_string(path).map_err(|reason| SimDataError::Read {
        path: path.to_path_buf(),
        reason,
    })?;
    let data: T = serde_json::from_str(&text).map_err(|reason| SimDataError::Json {
        path: path.to_path_buf(),
        kind: T::KIND,
        reason,
    })?;
    data.check().map_err(|reason| SimDataError::Invalid {
        path: path.to_path_buf(),
        reason,
    })?;
    Ok(data)
}

/// Whether `text` may be one segment of a route path. The emulators build routes from data
/// files, and the router panics on capture syntax (`{`, `:`, `*`), so anything beyond URL
/// unreserved characters is refused up front with a message instead.
pub(crate) fn is_path_segment(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}
