//! The emulators started as the tests start them: on a free loopback port, on the caller's
//! runtime or on one of the test's own, failing the test if they cannot start; and what every test asks of them at the end,
//! that they saw no request they did not expect.

use dialsync::sim::apio::{ApioSim, ApioSimConfig};
use dialsync::sim::fusion::{FusionSim, FusionSimConfig};
use dialsync::sim::livecloud::{LiveCloudSim, LiveRule, LiveSimConfig};
use dialsync::sim::sbc::{SbcSim, SbcState, SimUser};

use super::loopback::ANY_PORT;

/// A runtime of the test's own with `worker_threads` threads, for emulators to serve from while
/// the test blocks (on a child process, say).
pub fn own_runtime(worker_threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads)
        .enable_all()
        .build()
        .expect("runtime")
}

pub async fn start_sbc(device: SbcState, users: Vec<SimUser>) -> SbcSim {
    SbcSim::start(ANY_PORT, device, users)
        .await
        .expect("sbc starts")
}

pub async fn start_fusion(config: FusionSimConfig) -> FusionSim {
    FusionSim::start(ANY_PORT, config)
        .await
        .expect("fusion starts")
}

pub async fn start_apio(config: ApioSimConfig) -> ApioSim {
    ApioSim::start(ANY_PORT, config).await.expect("apio starts")
}

pub async fn start_live(config: LiveSimConfig, rules: Vec<LiveRule>) -> LiveCloudSim {
    LiveCloudSim::start(ANY_PORT, config, rules)
        .await
        .expect("live starts")
}

/// An emulator's record of the requests it did not expect.
pub trait Recorded {
    fn unexpected(&self) -> Vec<String>;
}

macro_rules! recorded {
    ($($sim:ty),*) => {$(
        impl Recorded for $sim {
            fn unexpected(&self) -> Vec<String> {
                self.state().unexpected.clone()
            }
        }
    )*};
}

recorded!(SbcSim, FusionSim, ApioSim, LiveCloudSim);

/// `sim` saw only requests it expected.
pub fn assert_clean(sim: &impl Recorded) {
    let unexpected = sim.unexpected();
    assert!(unexpected.is_empty(), "unexpected requests: {unexpected:?}");
}
