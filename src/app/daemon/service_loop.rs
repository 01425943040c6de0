//! The service loop: READY, a first cycle, then cycles on the jittered schedule, on demand and
//! after reloads, until a stop; STATUS= after each cycle, WATCHDOG=1 while idle. Reloads never
//! swap the config under a running cycle, and a stop waits for the in-flight batch.

use std::path::Path;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::SeedableRng;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use super::assignment::one_line;
use super::inbox::Triggers;
use super::reload_ack::{monotonic_usec, ReloadAck};
use super::schedule::next_wakeup;
use super::sd_notify::Notifier;
use super::service::{CycleContext, CycleReason, Service};
use super::shutdown::{Shutdown, ShutdownTrigger};
use super::trigger::{ReloadCause, Trigger};
use super::watchdog::Watchdog;

/// How long a stop waits for the in-flight cycle. `dialsync run` must exit within 10 s of
/// SIGTERM; a second is left for everything after the loop (closing the database, the listener).
pub const STOP_GRACE: Duration = Duration::from_secs(9);

/// Tuning of [`run_loop`].
#[derive(Clone, Debug)]
pub struct LoopOptions {
    /// How long a stop waits for the in-flight cycle before abandoning it.
    pub grace: Duration,
    /// Run a cycle right after a successful reload, so a new source or tag takes effect now
    /// rather than up to an interval later.
    pub sync_after_reload: bool,
}

impl Default for LoopOptions {
    fn default() -> Self {
        LoopOptions {
            grace: STOP_GRACE,
            sync_after_reload: true,
        }
    }
}

/// How [`run_loop`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stopped {
    /// The stop's origin (`"SIGTERM"`, ...).
    pub by: &'static str,
    /// The in-flight cycle did not finish within the grace period (or a second stop came) and
    /// was dropped at its next await; its journal lets the next run recover.
    pub abandoned: bool,
}

/// Runs `service` until a stop: READY=1 at once (the caller has loaded the config, opened the
/// database and bound the admin listener), a first cycle right away, then cycles at a jittered
/// interval, on SyncNow, and after reloads; STATUS= after each cycle; WATCHDOG=1 while idle.
pub async fn run_loop<S: Service>(
    service: &mut S,
    config: S::Config,
    config_path: &Path,
    triggers: &mut Triggers,
    notifier: &Notifier,
    options: &LoopOptions,
) -> Stopped {
    let (stop, shutdown) = Shutdown::new();
    let mut driver = Driver {
        service,
        config_path,
        triggers,
        notifier,
        options,
        watchdog: Watchdog::new(notifier),
        shutdown,
        stop,
        due: Some(CycleReason::Startup),
        pending_reload: None,
    };
    driver.run(config).await
}

struct Driver<'a, S: Service> {
    service: &'a mut S,
    config_path: &'a Path,
    triggers: &'a mut Triggers,
    notifier: &'a Notifier,
    options: &'a LoopOptions,
    watchdog: Watchdog,
    shutdown: Shutdown,
    stop: ShutdownTrigger,
    /// A cycle to run as soon as the loop is idle; at most one, however many asked.
    due: Option<CycleReason>,
    /// A reload that arrived during a cycle: the config cannot change under a running cycle.
    pending_reload: Option<ReloadCause>,
}

enum CycleEnd {
    Finished,
    Stopped(Stopped),
}

impl<S: Service> Driver<'_, S> {
    async fn run(&mut self, mut config: S::Config) -> Stopped {
        // Jitter only has to differ between hosts; a clock-seeded fallback is good enough.
        let mut rng = SmallRng::try_from_os_rng().unwrap_or_else(|_| {
            SmallRng::seed_from_u64(monotonic_usec() ^ u64::from(std::process::id()))
        });
        self.notifier.log_failure(self.notifier.ready());
        info!(
            config = %self.config_path.display(),
            watchdog = ?self.notifier.watchdog_interval(),
            "running"
        );
        let mut next_at = Instant::now();
        loop {
            if let Some(cause) = self.pending_reload.take() {
                let interval = self.service.interval(&config);
                if self.reload(&mut config, cause) {
                    if self.options.sync_after_reload {
                        self.due
                            .get_or_insert(CycleReason::Requested("config reload"));
                    } else if self.service.interval(&config) != interval {
                        next_at = next_wakeup(self.service.interval(&config), &mut rng);
                    }
                }
                continue;
            }
            if let Some(reason) = self.due.take() {
                match self.cycle(&config, reason).await {
                    CycleEnd::Finished => {
                        next_at = next_wakeup(self.service.interval(&config), &mut rng);
                    }
                    CycleEnd::Stopped(stopped) => return stopped,
                }
                continue;
            }
            tokio::select! {
                // A stop must win over a timer that is also due.
                biased;
                trigger = self.triggers.recv() => match trigger {
                    Trigger::Stop(by) => {
                        info!(signal = by, "stopping");
                        self.notifier.log_failure(self.notifier.stopping());
                        return Stopped { by, abandoned: false };
                    }
                    Trigger::Reload(cause) => self.pending_reload = Some(cause),
                    Trigger::SyncNow(who) => self.due = Some(CycleReason::Requested(who)),
                },
                () = tokio::time::sleep_until(next_at) => self.due = Some(CycleReason::Scheduled),
                () = sleep_until_opt(self.watchdog.next_due()) => self.watchdog.ping(),
            }
        }
    }

    /// Returns whether the new config is now in force.
    fn reload(&mut self, config: &mut S::Config, cause: ReloadCause) -> bool {
        let started_usec = monotonic_usec();
        self.notifier
            .log_failure(self.notifier.reloading_at(started_usec));
        info!(%cause, config = %self.config_path.display(), "reloading the configuration");
        let service = &mut *self.service;
        let outcome = service
            .load_config(self.config_path)
            .and_then(|new| service.accept_reload(config, &new).map(|()| new));
        let refused = match outcome {
            Ok(new) => {
                *config = new;
                info!(%cause, "configuration reloaded");
                None
            }
            Err(e) => {
                error!(
                    %cause,
                    error = %e,
                    "configuration reload failed; the previous configuration stays in force"
                );
                self.notifier.log_failure(
                    self.notifier
                        .status(&format!("config reload failed, previous config kept: {e}")),
                );
                Some(one_line(&e.to_string()))
            }
        };
        self.notifier.log_failure(self.notifier.ready());
        let swapped = refused.is_none();
        let ack = ReloadAck {
            started_usec,
            refused,
        };
        if let Err(e) = self.notifier.reloaded(&ack) {
            warn!(error = %e, "`dialsync reload` will not see this reload");
        }
        swapped
    }

    async fn cycle(&mut self, config: &S::Config, reason: CycleReason) -> CycleEnd {
        let ctx = CycleContext {
            reason,
            shutdown: self.shutdown.clone(),
            watchdog: self.watchdog.clone(),
        };
        self.watchdog.ping();
        debug!(%reason, "cycle starting");
        let started = Instant::now();
        let grace = self.options.grace;
        let mut stopping: Option<(&'static str, Instant)> = None;
        let cycle = self.service.cycle(config, &ctx);
        tokio::pin!(cycle);
        let summary = loop {
            tokio::select! {
                summary = &mut cycle => break summary,
                trigger = self.triggers.recv() => match trigger {
                    Trigger::Stop(by) => match stopping {
                        Some((first, _)) => {
                            warn!(signal = by, "second stop request: abandoning the cycle now");
                            return CycleEnd::Stopped(Stopped { by: first, abandoned: true });
                        }
                        None => {
                            info!(signal = by, ?grace, "stopping after the in-flight batch");
                            self.notifier.log_failure(self.notifier.stopping());
                            self.stop.trigger();
                            stopping = Some((by, Instant::now() + grace));
                        }
                    },
                    Trigger::Reload(cause) => {
                        debug!(%cause, "reload deferred until the cycle ends");
                        self.pending_reload = Some(cause);
                    }
                    Trigger::SyncNow(who) => {
                        self.due.get_or_insert(CycleReason::Requested(who));
                    }
                },
                () = sleep_until_opt(stopping.map(|(_, deadline)| deadline)) => {
                    warn!(?grace, "the cycle did not stop within the grace period: abandoning it");
                    let by = stopping.map_or("stop", |(by, _)| by);
                    return CycleEnd::Stopped(Stopped { by, abandoned: true });
                }
            }
        };
        self.watchdog.ping();
        let took = started.elapsed();
        if summary.ok {
            info!(%reason, ?took, "{}", summary.status);
        } else {
            warn!(%reason, ?took, "{}", summary.status);
        }
        self.notifier
            .log_failure(self.notifier.status(&summary.status));
        match stopping {
            Some((by, _)) => CycleEnd::Stopped(Stopped {
                by,
                abandoned: false,
            }),
            None => CycleEnd::Finished,
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
