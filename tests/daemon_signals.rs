//! Real signals, sent by this test process to itself, reach the daemon as triggers and stop a
//! running loop.
//!
//! A binary of its own with a single test: a signal reaches every handler in the process, so it
//! must not share one with tests that would see it, and the handlers replace the default
//! action (which would kill the test process) only once they are installed.

mod common;

use std::path::Path;
use std::time::Duration;

use common::triggers::next_trigger;
use dialsync::app::daemon::{
    run_loop, CycleContext, CycleSummary, LoopOptions, Notifier, ReloadCause, Service, Stopped,
    Trigger, Triggers,
};
use rustix::process::{getpid, kill_process, Signal};
use tokio::time::timeout;

const PATIENCE: Duration = Duration::from_secs(10);

struct Idle;

impl Service for Idle {
    type Config = ();
    type Error = String;

    fn load_config(&self, _: &Path) -> Result<(), String> {
        Ok(())
    }

    fn interval(&self, _: &()) -> Duration {
        Duration::from_secs(3600)
    }

    async fn cycle(&mut self, _: &(), _: &CycleContext) -> CycleSummary {
        CycleSummary::ok("idle")
    }
}

#[tokio::test]
async fn signals_become_triggers_and_sigterm_stops_the_loop() {
    let mut triggers = Triggers::new();
    triggers.listen_signals().expect("install handlers");
    let me = getpid();

    kill_process(me, Signal::USR1).expect("kill -USR1");
    assert_eq!(
        next_trigger(&mut triggers).await,
        Trigger::SyncNow("SIGUSR1")
    );
    kill_process(me, Signal::HUP).expect("kill -HUP");
    assert_eq!(
        next_trigger(&mut triggers).await,
        Trigger::Reload(ReloadCause::Signal)
    );
    kill_process(me, Signal::INT).expect("kill -INT");
    assert_eq!(next_trigger(&mut triggers).await, Trigger::Stop("SIGINT"));

    let (mut idle, notifier, options) = (Idle, Notifier::disabled(), LoopOptions::default());
    let stopped = timeout(PATIENCE, async {
        let looping = run_loop(
            &mut idle,
            (),
            Path::new("unused.toml"),
            &mut triggers,
            &notifier,
            &options,
        );
        let kill = async {
            // Past the first cycle, so the stop finds the loop idle.
            tokio::time::sleep(Duration::from_millis(100)).await;
            kill_process(me, Signal::TERM).expect("kill -TERM");
        };
        tokio::join!(looping, kill).0
    })
    .await
    .expect("SIGTERM stopped the loop in time");
    assert_eq!(
        stopped,
        Stopped {
            by: "SIGTERM",
            abandoned: false
        }
    );
}
