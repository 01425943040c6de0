//! Why a command could not do its job: exit code 1, and a message that says what to do.

use std::io;

use crate::app::agent::AgentError;
use crate::app::daemon;
use crate::app::lookup::LookupError;
use crate::config::ConfigError;
use crate::store::StoreError;

/// Why a command could not do its job (exit code 1).
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Lookup(#[from] LookupError),
    #[error("no state database at {path}{why}: run `dialsync sync` (or start the service) first")]
    NoState { path: String, why: &'static str },
    #[error("cannot write the output: {0}")]
    Output(#[from] io::Error),
    #[error("cannot listen on {addr} (admin.listen): {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Daemon(#[from] daemon::DaemonError),
}
