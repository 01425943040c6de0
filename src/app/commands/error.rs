//! Why a command could not do its job: exit code 1, and a message that says what to do.

use std::io;

use crate::app::agent::AgentError;
use crate::app::audit::AuditError;
use crate::app::daemon;
use crate::app::lookup::LookupError;
use crate::config::ConfigError;
use crate::error::{Classify, ErrorClass};
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
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("no state database at {path}{why}: run `dialsync sync` (or start the service) first")]
    NoState { path: String, why: &'static str },
    #[error("cannot write the output: {0}")]
    Output(#[from] io::Error),
    #[error("cannot read {path}: {source}")]
    Input {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot listen on {addr} (admin.listen): {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Daemon(#[from] daemon::DaemonError),
}

impl Classify for CommandError {
    fn class(&self) -> ErrorClass {
        match self {
            CommandError::Agent(e) => e.class(),
            CommandError::Store(e) => e.class(),
            CommandError::Lookup(e) => e.class(),
            CommandError::Audit(e) => e.class(),
            CommandError::Daemon(e) => e.class(),
            // A bad config, no state yet, a closed stdout, an admin port taken: an operator
            // acts before running the command again.
            CommandError::Config(_)
            | CommandError::NoState { .. }
            | CommandError::Output(_)
            | CommandError::Input { .. }
            | CommandError::Listen { .. } => ErrorClass::Fatal,
        }
    }
}
