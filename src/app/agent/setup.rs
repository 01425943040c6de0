//! The agent and what it is set up with: the configuration, the source and sink clients built
//! from it, the state database and its lock. Building it sends nothing; a reload rebuilds the
//! clients, and a state database deleted under a running agent is reopened.

use crate::app::daemon::Watchdog;
use crate::config::{Config, ConfigError};
use crate::error::{Classify, ErrorClass};
use crate::sink::Sink;
use crate::sink::{DeviceDialPlan, SinkError};
use crate::source::Source;
use crate::store::{StateLock, Store, StoreError};

/// The agent could not be set up (bad secrets, an unusable state database).
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Classify for AgentError {
    fn class(&self) -> ErrorClass {
        match self {
            AgentError::Config(_) => ErrorClass::Fatal,
            AgentError::Store(e) => e.class(),
        }
    }
}

/// The agent: the configuration, the clients it built from it, and the state database.
pub struct Agent {
    pub(super) config: Config,
    pub(super) sources: Vec<Source>,
    pub(super) sink: Sink,
    pub(super) store: Store,
    /// Petted between phases, so systemd restarts an agent whose cycle is wedged.
    pub(super) watchdog: Watchdog,
    /// No other agent applies from this state database while this one lives.
    pub(super) _lock: StateLock,
}

impl Agent {
    /// Reads the secrets, builds the clients and opens the state database. Sends nothing.
    pub fn new(config: Config) -> Result<Agent, AgentError> {
        let sources = config.sources()?;
        let sink = config.sink()?;
        let store = Store::open(&config.agent.state_db)?;
        let lock = StateLock::acquire(&config.agent.state_db)?;
        Ok(Agent {
            config,
            sources,
            sink,
            store,
            watchdog: Watchdog::default(),
            _lock: lock,
        })
    }

    /// The watchdog to pet between the phases of a cycle.
    pub fn set_watchdog(&mut self, watchdog: Watchdog) {
        self.watchdog = watchdog;
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Swaps in a new configuration (already validated), rebuilding the clients. On error the
    /// agent keeps the old one.
    pub fn reconfigure(&mut self, config: Config) -> Result<(), AgentError> {
        let sources = config.sources()?;
        let sink = config.sink()?;
        if config.agent.state_db != self.config.agent.state_db {
            let store = Store::open(&config.agent.state_db)?;
            self._lock = StateLock::acquire(&config.agent.state_db)?;
            self.store = store;
        }
        self.config = config;
        self.sources = sources;
        self.sink = sink;
        Ok(())
    }

    /// Reopens the state database (and retakes its lock) when its file was deleted or
    /// replaced since it was opened, so that a long-running agent does not keep its state in
    /// an unlinked file no reader can see and a restart would lose. The new file starts empty
    /// and is rebuilt by the cycle from the SBC (rules named `dialplan.rule_name` are
    /// recognised as dialsync's) and the sources.
    pub(super) fn reopen_if_replaced(&mut self) -> Result<(), StoreError> {
        let path = self.config.agent.state_db.clone();
        if self._lock.replaced() {
            tracing::warn!(
                lock = %self._lock.path().display(),
                "the state database's lock file was deleted or replaced; locking it again"
            );
            self._lock = StateLock::acquire(&path)?;
        }
        if self.store.replaced() {
            tracing::warn!(
                state_db = %path.display(),
                "the state database was deleted or replaced while dialsync ran; reopening it \
                 and rebuilding its state from the SBC and the sources"
            );
            self.store = Store::open(&path)?;
        }
        Ok(())
    }

    /// Reads the dial plan once, for `status` and tests.
    pub async fn read_sbc(&self) -> Result<DeviceDialPlan, SinkError> {
        self.sink.read().await
    }
}
