//! The assembly of `dialsync run`: open the agent, bind the admin port, install the triggers,
//! and hand over to the daemon loop until a stop.

use std::sync::Arc;

use super::agent_service::AgentService;
use super::publish::fresh_status;
use crate::app::agent::Agent;
use crate::app::commands::{sbc_url, CommandError};
use crate::app::{admin, daemon};
use crate::config::Config;
use crate::store::Store;

/// `run`: the agent as a service, until SIGTERM or SIGINT. READY=1 is sent once the config,
/// the state database and the admin listener are up; the first cycle follows at once.
pub async fn run(config: Config) -> Result<u8, CommandError> {
    let notifier = daemon::Notifier::from_env();
    let path = config.path.clone();
    let agent = Agent::new(config.clone())?;
    let listener = tokio::net::TcpListener::bind(config.admin_listen)
        .await
        .map_err(|source| CommandError::Listen {
            addr: config.admin_listen,
            source,
        })?;
    if let Some(warning) = admin::listen_warning(config.admin_listen) {
        tracing::warn!("{warning}");
    }
    let mut triggers = daemon::Triggers::new();
    triggers.listen_signals()?;
    triggers.watch_config(&path, daemon::RELOAD_DEBOUNCE)?;
    let requester = triggers.sync_requester();
    let (status_tx, status_rx) = tokio::sync::watch::channel(fresh_status(&config));
    let state_db = config.agent.state_db.clone();
    let probe: admin::ReadyProbe = Arc::new(move || {
        Store::open(&state_db)
            .and_then(|store| store.schema_version())
            .map(|_| ())
            .map_err(|e| format!("state database: {e}"))
    });
    let trigger: admin::SyncTrigger = Arc::new(move || requester.request("POST /sync"));
    // The bound address, not the configured one: with port 0 this is how to find it.
    let admin_addr = listener.local_addr()?;
    let (stop_admin, admin_stopped) = tokio::sync::oneshot::channel::<()>();
    let admin_task = tokio::spawn(admin::serve(
        listener,
        admin::AdminState::new(status_rx, probe, trigger),
        async move {
            let _ = admin_stopped.await;
        },
    ));
    tracing::info!(admin = %admin_addr, sbc = %sbc_url(&config), "dialsync starting");
    let mut service = AgentService {
        agent,
        status: status_tx,
        lookup: Default::default(),
    };
    let stopped = daemon::run_loop(
        &mut service,
        config,
        &path,
        &mut triggers,
        &notifier,
        &daemon::LoopOptions::default(),
    )
    .await;
    let _ = stop_admin.send(());
    let _ = admin_task.await;
    tracing::info!(by = stopped.by, abandoned = stopped.abandoned, "stopped");
    Ok(0)
}
