//! Where the planned dial-plan operations land: the SBC itself through its device REST API
//! ([`audiocodes`], the default), or AudioCodes Live Platform, which writes the SBC for us
//! ([`livecloud`]). Both journal a plan before writing, apply it in batches, quarantine a rule
//! the other side refuses, and settle a journal left by a crash by reading back, never by
//! replaying.
//!
//! The dialect of the device's CLI scripts is kept apart in [`cli_script`], so that the device
//! sink and the SBC emulator speak exactly the same one and a firmware difference is a one-file
//! change; `withheld` holds the ops both hold back after a refusal so that make-before-break
//! survives it. How both wait and retry is [`crate::net`]'s, shared with the sources.

pub mod audiocodes;
pub mod cli_script;
pub mod livecloud;
mod withheld;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::plan::Plan;
use crate::store::Store;
use audiocodes::{ApplyReport, DeviceDialPlan, SettleReport, SinkError};

/// What the caller of an apply controls and watches while it runs.
///
/// A stopping agent requests a stop: the sink lets the batch in flight finish (its outcome is
/// then known and journaled) and never starts another, so SIGTERM mid-apply leaves a dial
/// plan that is some prefix of the plan, never a half-sent script. The sink also records how
/// many ops are confirmed so far, which `sync` on a terminal shows as progress.
#[derive(Clone, Debug, Default)]
pub struct ApplyControl(Arc<ControlState>);

#[derive(Debug, Default)]
struct ControlState {
    stop: AtomicBool,
    done: AtomicUsize,
    total: AtomicUsize,
}

impl ApplyControl {
    /// Asks the apply to stop after the batch in flight.
    pub fn request(&self) {
        self.0.stop.store(true, Ordering::SeqCst);
    }

    pub fn requested(&self) -> bool {
        self.0.stop.load(Ordering::SeqCst)
    }

    /// Called by sinks: `done` of `total` ops are settled.
    pub fn record_progress(&self, done: usize, total: usize) {
        self.0.total.store(total, Ordering::Relaxed);
        self.0.done.store(done, Ordering::Relaxed);
    }

    /// `(done, total)` ops of the apply in progress; `(0, 0)` before one starts.
    pub fn progress(&self) -> (usize, usize) {
        (
            self.0.done.load(Ordering::Relaxed),
            self.0.total.load(Ordering::Relaxed),
        )
    }
}

/// The configured sink, whatever its kind: what the agent reads and writes each cycle.
#[derive(Debug)]
pub enum Sink {
    AudioCodes(Box<audiocodes::AudioCodesSink>),
    LiveCloud(Box<livecloud::LiveCloudSink>),
}

impl Sink {
    pub fn audiocodes(config: audiocodes::SbcConfig) -> Result<Sink, SinkError> {
        audiocodes::AudioCodesSink::new(config).map(|s| Sink::AudioCodes(Box::new(s)))
    }

    pub fn livecloud(config: livecloud::LiveCloudConfig) -> Result<Sink, SinkError> {
        livecloud::LiveCloudSink::new(config).map(|s| Sink::LiveCloud(Box::new(s)))
    }

    /// Where the sink writes, for logs and `status`.
    pub fn url(&self) -> &str {
        match self {
            Sink::AudioCodes(s) => &s.config().url,
            Sink::LiveCloud(s) => &s.config().url,
        }
    }

    /// Creates the dial plan on an SBC that lacks it (`dialplan.create`). Live Platform's
    /// dial plans are created in the platform, so there it is an error to ask.
    pub async fn create_dial_plan(&self) -> Result<(), SinkError> {
        match self {
            Sink::AudioCodes(s) => s.create_dial_plan().await.map(|_| ()),
            Sink::LiveCloud(s) => Err(SinkError::DialPlanMissing {
                name: s.config().dial_plan_id.clone(),
            }),
        }
    }

    /// The dial plan as it is now, owned and foreign rules alike.
    pub async fn read(&self) -> Result<DeviceDialPlan, SinkError> {
        match self {
            Sink::AudioCodes(s) => s.read().await,
            Sink::LiveCloud(s) => s.read().await,
        }
    }

    /// Applies `plan`, journaled in `store`, against the dial plan read as `device`, stopping
    /// between batches when `stop` is requested.
    pub async fn apply(
        &self,
        store: &mut Store,
        plan: &Plan,
        device: &DeviceDialPlan,
        stop: &ApplyControl,
    ) -> Result<ApplyReport, SinkError> {
        match self {
            Sink::AudioCodes(s) => s.apply_until(store, plan, device, stop).await,
            Sink::LiveCloud(s) => s.apply_until(store, plan, device, stop).await,
        }
    }

    /// Settles a journal a crash left unfinished, by reading back (never by replaying).
    pub async fn settle_unfinished(
        &self,
        store: &mut Store,
    ) -> Result<Option<SettleReport>, SinkError> {
        match self {
            Sink::AudioCodes(s) => s.settle_unfinished(store).await,
            Sink::LiveCloud(s) => s.settle_unfinished(store).await,
        }
    }
}
