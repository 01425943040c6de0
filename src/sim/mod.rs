//! Emulators of the systems dialsync talks to, strict enough to test against: the SBC's device
//! REST API and the upstreams (Fusion, APIO, Live Platform). Used by the tests, by
//! `dialsync demo` and by `dialsync sim` for staging, where the upstreams serve the items of a
//! JSON data file (see each module's `load_data`).

pub mod apio;
pub mod fusion;
pub mod livecloud;
pub mod sbc;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

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

/// Reads the data file at `path` as a `T` (`kind` names the emulator in errors).
pub(crate) fn load_json<T: DeserializeOwned>(
    path: &Path,
    kind: &'static str,
) -> Result<T, SimDataError> {
    let text = std::fs::read_to_string(path).map_err(|reason| SimDataError::Read {
        path: path.to_path_buf(),
        reason,
    })?;
    serde_json::from_str(&text).map_err(|reason| SimDataError::Json {
        path: path.to_path_buf(),
        kind,
        reason,
    })
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

/// Serves `app` on `listener` in the background until the returned sender is dropped or
/// fired: each emulator keeps it as a field, so dropping the emulator stops its server.
pub(crate) fn serve(listener: TcpListener, app: axum::Router) -> oneshot::Sender<()> {
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    stop
}

/// The emulator's state behind its lock. A panic while holding it only happens in a failing
/// test (or on purpose, to drop a connection), and the state is still the best evidence of what
/// happened: read through the poison.
pub(crate) fn lock<T>(state: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
