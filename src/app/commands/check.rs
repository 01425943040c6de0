//! `check`, the monitoring plugin: reads the state database (and, before any cycle is
//! recorded, its lock) and hands what it found to `app::check`'s pure judgement.

use std::time::Duration;

use super::state_db::open_existing;
use crate::app::check::{self, Thresholds, Verdict};
use crate::config::{Config, ConfigError};
use crate::store::StateLock;

/// `check`: the monitoring plugin. Never fails: what it cannot read is UNKNOWN.
pub fn check(
    config: Result<Config, ConfigError>,
    warning: Option<Duration>,
    critical: Option<Duration>,
    now_unix_ms: i64,
) -> Verdict {
    let config = match config {
        Ok(config) => config,
        Err(error) => return Verdict::unknown(error),
    };
    let mut thresholds = Thresholds::for_interval(config.agent.interval);
    thresholds.warning = warning.unwrap_or(thresholds.warning);
    thresholds.critical = critical.unwrap_or(thresholds.critical);
    if thresholds.warning > thresholds.critical {
        return Verdict::unknown(format!(
            "-w {:?} is longer than -c {:?}",
            thresholds.warning, thresholds.critical
        ));
    }
    let store = match open_existing(&config.agent.state_db) {
        Ok(store) => store,
        Err(error) => return Verdict::unknown(error),
    };
    let last = match store.last_cycle() {
        Ok(last) => last,
        Err(error) => return Verdict::unknown(error),
    };
    let success = match store.last_success() {
        Ok(success) => success,
        Err(error) => return Verdict::unknown(error),
    };
    // Only when nothing is recorded: the lock then tells a first cycle in progress from no
    // agent at all. Asked after reading, so an agent that records its first cycle meanwhile
    // is at worst judged as still running.
    let agent = if last.is_none() {
        match StateLock::holder(&config.agent.state_db) {
            Ok(agent) => agent,
            Err(error) => {
                return Verdict::unknown(format!(
                    "no cycle recorded yet, and whether an agent is running is unknown: {error}"
                ))
            }
        }
    } else {
        None
    };
    check::evaluate(
        last.as_ref(),
        success.as_ref(),
        agent.as_ref(),
        now_unix_ms,
        thresholds,
    )
}
