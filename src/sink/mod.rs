//! Where the planned dial-plan operations land: the SBC itself through its device REST API
//! ([`audiocodes`], the default), or AudioCodes Live Platform, which writes the SBC for us
//! ([`livecloud`]).
//!
//! Both are a [`Target`]: the small part that differs (read, send a batch, tell whether a read
//! shows an op, refuse a state, finish). The part that keeps writes safe — the journal,
//! batches, retries, verification, quarantine, hold-backs after a refusal, settling after a
//! crash — is the one [`applier`] both use. The types the agent sees are shared: the dial plan
//! as read ([`DeviceDialPlan`]), the reports, and [`SinkError`].
//! How both wait and retry is [`crate::net`]'s, shared with the sources.

pub mod applier;
pub mod audiocodes;
mod control;
mod dial_plan;
mod error;
pub mod livecloud;
mod reply;
mod report;
mod target;
mod withheld;
mod write_settings;

pub use applier::Apply;
pub use control::ApplyControl;
pub use dial_plan::{dial_plan_digest, DeviceDialPlan};
pub use error::SinkError;
pub use report::{ApplyReport, SettleReport};
pub use target::{Answer, Attempt, Target};
pub use write_settings::WriteSettings;

use crate::plan::Plan;
use crate::store::Store;

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
                target: s.target_name(),
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
            Sink::AudioCodes(s) => applier::apply(s.as_ref(), store, plan, device, stop).await,
            Sink::LiveCloud(s) => applier::apply(s.as_ref(), store, plan, device, stop).await,
        }
    }

    /// Settles a journal a crash left unfinished, by reading back (never by replaying).
    pub async fn settle_unfinished(
        &self,
        store: &mut Store,
    ) -> Result<Option<SettleReport>, SinkError> {
        match self {
            Sink::AudioCodes(s) => applier::settle(s.as_ref(), store).await,
            Sink::LiveCloud(s) => applier::settle(s.as_ref(), store).await,
        }
    }
}
