//! The daemon loop's triggers (signals, requests, config reloads) as its tests wait for them.

use std::time::Duration;

use dialsync::app::daemon::{Trigger, Triggers};
use tokio::time::timeout;

/// How long a trigger may take to arrive on a slow, shared machine.
const PATIENCE: Duration = Duration::from_secs(10);

/// The next trigger, failing the test if none comes in time.
pub async fn next_trigger(triggers: &mut Triggers) -> Trigger {
    timeout(PATIENCE, triggers.recv())
        .await
        .expect("a trigger in time")
}

/// Fails the test if a trigger comes within `quiet`.
pub async fn no_trigger_for(triggers: &mut Triggers, quiet: Duration) {
    if let Ok(got) = timeout(quiet, triggers.recv()).await {
        panic!("unexpected trigger {got:?}");
    }
}
