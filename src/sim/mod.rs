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
/// fired: each emulator keeps it and stops its server when dropped.
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
