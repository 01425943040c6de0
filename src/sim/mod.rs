//! Emulators of the systems dialsync talks to, strict enough to test against: the SBC's device
//! REST API today; the upstreams (Fusion, APIO, Live Platform) join them. Used by the tests,
//! by `dialsync demo` and by `dialsync sim` for staging.

pub mod apio;
pub mod fusion;
pub mod livecloud;
pub mod sbc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

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
