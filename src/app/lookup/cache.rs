//! The daemon's lookup state, kept from cycle to cycle: the admin port's `/lookup` answers from
//! the last cycle's state, and rebuilding it costs a read of every rule and entry, so it is
//! rebuilt only when the state database's fingerprint (or the configured sources) changed.

use std::sync::Arc;

use super::error::LookupError;
use super::state::LookupState;
use crate::config::Config;
use crate::store::Store;

/// The last built state and what it was built from.
#[derive(Debug, Default)]
pub struct LookupCache {
    built_from: Option<String>,
    state: Option<Arc<LookupState>>,
}

impl LookupCache {
    /// The state for what `store` holds now under `config`'s sources: the one already built
    /// when nothing changed, else a fresh one.
    pub fn refresh(
        &mut self,
        config: &Config,
        store: &Store,
    ) -> Result<Arc<LookupState>, LookupError> {
        let mut key = store.routing_fingerprint()?;
        // The sources' order is their priority, and a source dropped from the config no longer
        // counts even while its snapshot lingers.
        for source in &config.sources {
            key.push('|');
            key.push_str(&source.name);
        }
        if let (Some(built_from), Some(state)) = (&self.built_from, &self.state) {
            if *built_from == key {
                return Ok(Arc::clone(state));
            }
        }
        let state = Arc::new(LookupState::load(config, store)?);
        self.built_from = Some(key);
        self.state = Some(Arc::clone(&state));
        Ok(state)
    }
}
