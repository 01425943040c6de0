//! An emulator while it serves: where it listens, the state its handlers share, and the handle
//! that stops it. Written once, so that each emulator is only its state, its routes and its
//! handlers.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::SimData;

/// What makes an emulator, implemented by its state: what it is started with, how it serves
/// its connections, and its routes.
pub trait Emulator: Send + Sized + 'static {
    /// What the emulator is started with: its configuration (for the SBC, its users).
    type Config: Send + Sync + 'static;

    /// How its connections are served: [`serve`], or
    /// [`serve_with_faults`](super::conn::serve_with_faults) for one whose answers can drip.
    const SERVE: Serve;

    /// The router of its endpoints, for this configuration.
    fn routes(config: &Self::Config) -> Router<Shared<Self>>;
}

/// Serves a router on a listener until the sender it returns is dropped or fired.
pub type Serve = fn(TcpListener, Router) -> oneshot::Sender<()>;

/// A running emulator with state `S`. Dropping it stops the server.
pub struct Running<S: Emulator> {
    addr: SocketAddr,
    shared: Shared<S>,
    /// Dropping it (with the emulator) stops the server.
    _stop: oneshot::Sender<()>,
}

/// What every handler of an emulator reads: what the emulator was started with, and its state.
pub struct Shared<S: Emulator> {
    pub(crate) config: Arc<S::Config>,
    pub(crate) state: Arc<Mutex<S>>,
}

// By hand: a derive would ask `S` and its configuration to be `Clone`, and only the `Arc`s are
// cloned.
impl<S: Emulator> Clone for Shared<S> {
    fn clone(&self) -> Self {
        Shared {
            config: self.config.clone(),
            state: self.state.clone(),
        }
    }
}

impl<S: Emulator> Running<S> {
    /// Binds `listen` (port 0 picks a free port) and serves the emulator. `state` is in place
    /// before the listener accepts anything, so no client ever sees an emulator that is up but
    /// still empty.
    pub(crate) async fn bind(
        listen: SocketAddr,
        config: S::Config,
        state: S,
    ) -> io::Result<Running<S>> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = Shared {
            config: Arc::new(config),
            state: Arc::new(Mutex::new(state)),
        };
        let app = S::routes(&shared.config).with_state(shared.clone());
        let stop = S::SERVE(listener, app);
        Ok(Running {
            addr,
            shared,
            _stop: stop,
        })
    }

    /// Starts the emulator on `listen` serving `data`, as read by the emulator's `load_data`.
    pub async fn start_with_data<D: SimData<State = S>>(
        listen: SocketAddr,
        data: D,
    ) -> io::Result<Running<S>> {
        let (config, state) = data.into_parts();
        Running::bind(listen, config, state).await
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, `http://127.0.0.1:PORT`: what a client's `url` setting names.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What the emulator was started with.
    pub fn config(&self) -> &S::Config {
        &self.shared.config
    }

    /// The emulator's state, for assertions and out-of-band edits.
    pub fn state(&self) -> MutexGuard<'_, S> {
        lock(&self.shared.state)
    }
}

/// Serves `app` on `listener` in the background until the returned sender is dropped or
/// fired: a [`Running`] keeps it, so dropping the emulator stops its server.
pub(crate) fn serve(listener: TcpListener, app: Router) -> oneshot::Sender<()> {
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
pub(crate) fn lock<T>(state: &Mutex<T>) -> MutexGuard<'_, T> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
