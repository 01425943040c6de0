//! The agent as the daemon loop drives it: loading and accepting a reloaded configuration,
//! running a cycle in the service's mode, and publishing its status after every cycle.

use std::path::Path;
use std::time::Duration;

use super::publish::{fresh_status, publish};
use crate::app::agent::{Agent, Mode, Outcome};
use crate::app::commands::insecure_warning;
use crate::app::lookup::LookupCache;
use crate::app::{admin, daemon};
use crate::config::Config;
use crate::sink::ApplyControl;

/// The agent as the daemon loop drives it, publishing its status after every cycle.
pub(super) struct AgentService {
    pub(super) agent: Agent,
    pub(super) status: tokio::sync::watch::Sender<admin::Status>,
    /// What `/lookup` answers from, rebuilt after a cycle only when the state changed.
    pub(super) lookup: LookupCache,
}

impl daemon::Service for AgentService {
    type Config = Config;
    type Error = String;

    fn load_config(&self, path: &Path) -> Result<Config, String> {
        Config::load(path).map_err(|e| e.to_string())
    }

    fn interval(&self, config: &Config) -> Duration {
        config.agent.interval
    }

    fn accept_reload(&mut self, current: &Config, new: &Config) -> Result<(), String> {
        if new.admin_listen != current.admin_listen {
            return Err(format!(
                "admin.listen changed from {} to {}: restart dialsync to move the admin port",
                current.admin_listen, new.admin_listen
            ));
        }
        self.agent
            .reconfigure(new.clone())
            .map_err(|e| e.to_string())?;
        let previous = self.status.borrow().clone();
        self.status.send_replace(admin::Status {
            totals: previous.totals,
            last_cycle: previous.last_cycle,
            last_success_unix_ms: previous.last_success_unix_ms,
            lookup: previous.lookup,
            ..fresh_status(new)
        });
        Ok(())
    }

    async fn cycle(&mut self, config: &Config, ctx: &daemon::CycleContext) -> daemon::CycleSummary {
        // DESIGN.md §5.1: an SBC whose certificate is not verified is said every cycle, not
        // only when the sink is built.
        if let Some(warning) = insecure_warning(config) {
            tracing::warn!("{warning}");
        }
        self.status.send_modify(|s| s.cycle_running = true);
        self.agent.set_watchdog(ctx.watchdog.clone());
        let mode = if config.agent.dry_run {
            Mode::DryRun
        } else {
            Mode::Sync
        };
        let stop = ApplyControl::default();
        let agent = &mut self.agent;
        let report = ctx
            .shutdown
            .relay(agent.cycle(&mode, &stop), || stop.request())
            .await;
        // Whatever the outcome: a failed cycle still leaves the mirror and snapshots `/lookup`
        // should answer from, and an unreadable state keeps the last good answer.
        let lookup = match self.lookup.refresh(config, self.agent.store()) {
            Ok(lookup) => Some(lookup),
            Err(e) => {
                tracing::warn!("/lookup keeps the state of an earlier cycle: {e}");
                None
            }
        };
        self.status.send_modify(|status| {
            publish(status, &report, config.agent.interval);
            if lookup.is_some() {
                status.lookup = lookup;
            }
        });
        let line = report.summary();
        if report.outcome == Outcome::Failed || report.failed_sources().next().is_some() {
            daemon::CycleSummary::failed(line)
        } else {
            daemon::CycleSummary::ok(line)
        }
    }
}
