//! The signals `dialsync run` answers, turned into triggers: SIGHUP reloads, SIGUSR1 syncs
//! now, SIGTERM and SIGINT stop (DESIGN.md §1).

use tokio::task::JoinHandle;
use tracing::debug;

use super::error::DaemonError;
use super::trigger::{ReloadCause, Trigger, TriggerSender};

/// Installs the handlers and forwards each signal to `sender` until the loop is gone. From here
/// on those signals no longer have their default effect on the process.
pub(super) fn forward(sender: TriggerSender) -> Result<JoinHandle<()>, DaemonError> {
    use tokio::signal::unix::{signal, SignalKind};
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| DaemonError::NoRuntime)?;
    let install = |kind, name| {
        signal(kind).map_err(|source| DaemonError::Signal {
            signal: name,
            source,
        })
    };
    let mut hup = install(SignalKind::hangup(), "SIGHUP")?;
    let mut usr1 = install(SignalKind::user_defined1(), "SIGUSR1")?;
    let mut term = install(SignalKind::terminate(), "SIGTERM")?;
    let mut int = install(SignalKind::interrupt(), "SIGINT")?;
    Ok(runtime.spawn(async move {
        loop {
            let trigger = tokio::select! {
                Some(()) = hup.recv() => Trigger::Reload(ReloadCause::Signal),
                Some(()) = usr1.recv() => Trigger::SyncNow("SIGUSR1"),
                Some(()) = term.recv() => Trigger::Stop("SIGTERM"),
                Some(()) = int.recv() => Trigger::Stop("SIGINT"),
                else => break,
            };
            debug!(?trigger, "signal received");
            if !sender.send(trigger) {
                break;
            }
        }
    }))
}
