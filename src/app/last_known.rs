//! What the state database last knew: the dial plan as last read (owned and foreign rules) and
//! the entries of each configured source's last good snapshot, in config order, which is the
//! order resolution ranks them by, as in a cycle.
//!
//! `lookup` and `audit` both answer from exactly this, with the SBC and the upstreams out of
//! reach; one loader keeps them from ever disagreeing about what "the state" is.

use crate::config::Config;
use crate::resolve::Entry;
use crate::store::{MirrorRule, Store, StoreError};

/// The mirror and the desired entries, as the state database holds them.
pub struct LastKnown {
    /// The dial plan as last read, ordered by index.
    pub mirror: Vec<MirrorRule>,
    /// Every configured source's last good entries, in priority order.
    pub entries: Vec<Entry>,
}

impl LastKnown {
    /// Reads both from `store`; a configured source with no snapshot yet contributes nothing.
    pub fn load(config: &Config, store: &Store) -> Result<LastKnown, StoreError> {
        let mirror = store.mirror()?;
        let mut entries = Vec::new();
        for source in &config.sources {
            if let Some(snapshot) = store.snapshot(&source.name)? {
                entries.extend(snapshot.entries);
            }
        }
        Ok(LastKnown { mirror, entries })
    }
}
