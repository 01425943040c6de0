//! The AudioCodes device sink: reads `OCDialPlan` from an SBC's REST API and applies a [`Plan`]
//! to it (DESIGN.md §5.1, §6).
//!
//! It exists because the device is the one place a mistake unroutes calls, so everything about
//! talking to it safely lives here: journaling before the first write, batching ops into
//! incremental scripts (never the full ini file, which resets the device), telling a refused
//! rule from a refused batch, retrying only what cannot have landed, re-reading the device
//! whenever the outcome of a write is unknown, and settling a journal left by a crash by
//! looking at the device rather than replaying. The CLI dialect itself is in
//! [`cli_script`](super::cli_script), shared with the emulator.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::header::CONTENT_LENGTH;
use reqwest::{Client, RequestBuilder, StatusCode, Url};

use crate::dialplan::rule::{DialPlanRule, UnreadableRow};
use crate::error::{Classify, ErrorClass};
use crate::net::backoff::Backoff;
use crate::net::preview::truncate;
use crate::net::reason::error_chain;
use crate::net::retry::retry_after;
use crate::net::tls::is_tls_failure;
use crate::ownership::{self, OwnershipBreach};
use crate::plan::{Op, Plan};
use crate::sink::cli_script::{self, ScriptError};
use crate::sink::withheld::Withheld;
use crate::sink::ApplyControl;
use crate::store::{OpState, PlanId, Store, StoreError};

const STATUS_PATH: &str = "/api/v1/status";
const SCRIPT_PATH: &str = "/api/v1/files/cliScript";
const INCREMENTAL_PATH: &str = "/api/v1/files/cliScript/incremental";
const SAVE_PATH: &str = "/api/v1/actions/saveConfiguration";

/// The `[sbc]` settings of an AudioCodes device (DESIGN.md §9).
#[derive(Clone)]
pub struct SbcConfig {
    /// Base URL, e.g. `https://sbc1.example.net`.
    pub url: String,
    pub username: String,
    /// Read from `sbc.password_file`; never logged (redacted in `Debug`).
    pub password: String,
    /// The dial plan dialsync writes to (`OCDialPlan`).
    pub dial_plan: String,
    /// The Name marking the rules dialsync owns (`dialplan.rule_name`).
    pub rule_name: String,
    /// Whether a plan may take over a foreign rule whose prefix it wants
    /// (`dialplan.adopt_foreign`): the one write to a row not ours the sink lets through.
    pub adopt_foreign: bool,
    /// Rule operations per incremental script.
    pub batch_size: usize,
    /// Persist to flash after a successful apply.
    pub save_config: bool,
    /// Per HTTP request.
    pub timeout: Duration,
    /// An extra root certificate (PEM) for a device with a private CA.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate. Only when explicitly set, and it warns.
    pub insecure_skip_verify: bool,
    /// The most time spent retrying one request (one batch, one read, the save) before giving
    /// up with a transient error; the next cycle starts over.
    pub retry_budget: Duration,
    /// The first backoff delay; it doubles per attempt up to `backoff_max`, with jitter.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl SbcConfig {
    /// Settings with the defaults of DESIGN.md §9 for everything but the address and account.
    pub fn new(url: &str, username: &str, password: &str) -> SbcConfig {
        SbcConfig {
            url: url.to_string(),
            username: username.to_string(),
            password: password.to_string(),
            dial_plan: "OCDialPlan".into(),
            rule_name: "dialsync".into(),
            adopt_foreign: false,
            batch_size: 200,
            save_config: true,
            timeout: Duration::from_secs(30),
            ca_file: None,
            insecure_skip_verify: false,
            retry_budget: Duration::from_secs(60),
            backoff_initial: Duration::from_millis(250),
            backoff_max: Duration::from_secs(10),
        }
    }
}

impl fmt::Debug for SbcConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SbcConfig")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("dial_plan", &self.dial_plan)
            .field("rule_name", &self.rule_name)
            .field("adopt_foreign", &self.adopt_foreign)
            .field("batch_size", &self.batch_size)
            .field("save_config", &self.save_config)
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .field("retry_budget", &self.retry_budget)
            .finish()
    }
}

/// Why talking to the device failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("authentication refused: check sbc.username and sbc.password_file")]
    Unauthorized,
    #[error("user {user:?} lacks the Administrator role (the device answered 403 to a write)")]
    Forbidden { user: String },
    #[error("the SBC has no dial plan named {name:?}; create it on the device first")]
    DialPlanMissing { name: String },
    #[error("TLS configuration: {reason}")]
    Tls { reason: String },
    #[error("bad sbc.url {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("sbc.batch_size must be at least 1")]
    BadBatchSize,
    #[error("the device's configuration script cannot be read as dial plans: {0}")]
    Script(#[from] ScriptError),
    #[error("{what}: the device's answer is malformed: {reason}")]
    BadResponse { what: String, reason: String },
    #[error("{what}: the device answered {status}: {body}")]
    Refused {
        what: String,
        status: u16,
        body: String,
    },
    #[error(
        "{what}: the device stayed busy (409) for {attempts} {} over {:.1} s{}",
        if *.attempts == 1 { "attempt" } else { "attempts" },
        .waited.as_secs_f64(),
        asked_for(.asked)
    )]
    Busy {
        what: String,
        attempts: u32,
        waited: Duration,
        /// The device's last `Retry-After` when giving up: a wait past the retry budget.
        asked: Option<Duration>,
    },
    #[error("{what}: server error {status}: {body}")]
    Server {
        what: String,
        status: u16,
        body: String,
    },
    #[error("{what}: {}", error_chain(.source))]
    Http {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the device refused the script: {description}: {output}")]
    ScriptFailed { description: String, output: String },
    #[error(
        "a firmware upgrade is in progress on the SBC (upgradeStatus {status:?}): not writing"
    )]
    Upgrading { status: String },
    #[error(transparent)]
    Ownership(#[from] OwnershipBreach),
    #[error("journal plan {plan} is unfinished: settle it (settle_unfinished) before applying")]
    Unsettled { plan: PlanId },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `OCDialPlan` as read from the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceDialPlan {
    pub plan_index: u32,
    /// Every row dialsync can read as a rule, owned or foreign, in index order.
    pub rules: Vec<DialPlanRule>,
    /// Rows dialsync cannot read, in index order: their indexes are taken all the same.
    pub unreadable: Vec<UnreadableRow>,
    /// The device's `upgradeStatus` while a firmware upgrade is under way:
    /// [`AudioCodesSink::apply`] refuses to write then.
    pub upgrading: Option<String>,
    /// The running configuration differs from flash.
    pub save_needed: bool,
}

impl DeviceDialPlan {
    /// Plan `plan_index` from its rows, each read as a rule or set aside as unreadable, sorted
    /// by index.
    pub fn of_rows(
        plan_index: u32,
        rows: impl IntoIterator<Item = Result<DialPlanRule, UnreadableRow>>,
    ) -> DeviceDialPlan {
        let mut rules = Vec::new();
        let mut unreadable = Vec::new();
        for row in rows {
            match row {
                Ok(rule) => rules.push(rule),
                Err(row) => unreadable.push(row),
            }
        }
        rules.sort_by_key(|r| r.index);
        unreadable.sort_by_key(|r| r.index);
        DeviceDialPlan {
            plan_index,
            rules,
            unreadable,
            upgrading: None,
            save_needed: false,
        }
    }

    /// Refuses `plan` unless every op writes a row dialsync owned in this read, or an index no
    /// row held ([`ownership::check`]). Called by each sink just before it sends anything.
    pub fn guard(
        &self,
        plan: &Plan,
        rule_name: &str,
        adopt_foreign: bool,
    ) -> Result<(), OwnershipBreach> {
        ownership::check(
            &plan.ops,
            &self.rules,
            &self.unreadable,
            rule_name,
            adopt_foreign,
        )
    }
}

/// What an apply did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Ops the device confirmed.
    pub applied: usize,
    /// Ops the device refused one by one, with its reason: skipped, the rest went on.
    pub quarantined: Vec<(Op, String)>,
    /// HTTP requests made (retries, verification reads and the save included).
    pub requests: usize,
    /// Incremental scripts planned (each at most `batch_size` ops).
    pub batches: usize,
    pub saved: bool,
    /// A stop was requested between batches: some ops were not sent.
    pub stopped: bool,
}

/// What settling an unfinished journal found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettleReport {
    pub plan: PlanId,
    /// Ops already confirmed before the crash.
    pub already_done: usize,
    /// Ops in flight or pending at the crash that the device shows applied: now done.
    pub confirmed: usize,
    /// Ops whose effect the device does not show: left to the next cycle's fresh plan.
    pub not_applied: usize,
    /// Ops refused before the crash.
    pub failed: usize,
}

/// What the device answered to an incremental script.
enum ScriptAnswer {
    /// `status: success`.
    Applied,
    /// `status: failure`, or a 400: nothing of the script applied; the device's reason.
    Refused(String),
    /// A 200 without `status`, as in the vendor's own example: only a read can tell what the
    /// device did. The device's output.
    Unstated(String),
}

/// One attempt's failure, by what it says about whether the request landed.
enum Attempt {
    /// The device certainly did not act (409 busy, connection never made): resend as is.
    NotApplied(SinkError, Option<Duration>),
    /// The request may or may not have acted (timeout, dropped connection, 5xx): look first.
    Unknown(SinkError),
    /// Retrying cannot help (401, 403, 400...).
    Final(SinkError),
}

/// A batch that did not land, and whether any of its ops might have.
struct BatchError {
    error: SinkError,
    /// Some op may have reached the device: only re-reading it can tell.
    uncertain: bool,
    /// When certain: the ops of the batch not confirmed (the rest were found applied while
    /// verifying an earlier attempt and are marked done).
    unconfirmed: Vec<usize>,
}

/// How a batch ended.
enum BatchOutcome {
    /// Every op is confirmed and marked done.
    Applied,
    /// The device refused the script (200 with `status: failure`); the listed ops are still
    /// unconfirmed (the others were found applied while verifying and are marked done).
    Refused {
        reason: String,
        unconfirmed: Vec<usize>,
    },
}

/// Every warning of this sink goes through here, so the agent's logging can take it over.
fn warn(message: &str) {
    eprintln!("dialsync: WARN {message}");
}

/// The sink for one AudioCodes device.
pub struct AudioCodesSink {
    config: SbcConfig,
    base: String,
    client: Client,
    requests: AtomicUsize,
}

impl fmt::Debug for AudioCodesSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AudioCodesSink")
            .field("config", &self.config)
            .finish()
    }
}

impl AudioCodesSink {
    /// A fresh retry budget for one request (a batch, a read, the save).
    fn backoff(&self) -> Backoff {
        Backoff::new(
            self.config.backoff_initial,
            self.config.backoff_max,
            self.config.retry_budget,
        )
    }

    /// A sink for `config`'s device. Verifies TLS certificates unless `insecure_skip_verify`
    /// is set (which warns, as does plain HTTP to a host other than loopback).
    pub fn new(config: SbcConfig) -> Result<Self, SinkError> {
        if config.batch_size == 0 {
            return Err(SinkError::BadBatchSize);
        }
        let bad_url = |reason: &str| SinkError::BadUrl {
            url: config.url.clone(),
            reason: reason.to_string(),
        };
        let url = Url::parse(&config.url).map_err(|e| bad_url(&e.to_string()))?;
        match url.scheme() {
            "https" => {}
            "http" => {
                let host = url.host_str().unwrap_or("");
                let loopback = host.eq_ignore_ascii_case("localhost")
                    || host
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback());
                if !loopback {
                    warn(&format!(
                        "sbc.url {} is plain http to a host that is not loopback: \
                         credentials and the dial plan travel unencrypted",
                        config.url
                    ));
                }
            }
            other => return Err(bad_url(&format!("unsupported scheme {other:?}"))),
        }
        let mut builder = Client::builder().timeout(config.timeout);
        if let Some(ca_file) = &config.ca_file {
            let pem = std::fs::read(ca_file).map_err(|e| SinkError::Tls {
                reason: format!("cannot read sbc.ca_file {}: {e}", ca_file.display()),
            })?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| SinkError::Tls {
                reason: format!(
                    "sbc.ca_file {} is not a PEM certificate: {e}",
                    ca_file.display()
                ),
            })?;
            builder = builder.add_root_certificate(cert);
        }
        if config.insecure_skip_verify {
            warn_insecure(&config.url);
            builder = builder.danger_accept_invalid_certs(true);
        }
        let client = builder.build().map_err(|e| SinkError::Tls {
            reason: format!("cannot build the HTTP client: {e}"),
        })?;
        let base = config.url.trim_end_matches('/').to_string();
        Ok(AudioCodesSink {
            config,
            base,
            client,
            requests: AtomicUsize::new(0),
        })
    }

    pub fn config(&self) -> &SbcConfig {
        &self.config
    }

    /// Repeats the insecure-TLS warning (DESIGN.md §5.1 wants one every cycle). The sink warns
    /// when built; `run` repeats it before each cycle from the config (`commands.rs`), so the
    /// agent need not call this too.
    pub fn warn_if_insecure(&self) {
        if self.config.insecure_skip_verify {
            warn_insecure(&self.config.url);
        }
    }

    /// Reads the device's status and `OCDialPlan` with all its rules.
    pub async fn read(&self) -> Result<DeviceDialPlan, SinkError> {
        let status = self
            .get_text(STATUS_PATH, "reading the device status")
            .await?;
        let status: serde_json::Value =
            serde_json::from_str(&status).map_err(|e| SinkError::BadResponse {
                what: "reading the device status".into(),
                reason: e.to_string(),
            })?;
        let (upgrading, save_needed) = device_state(&status);

        let script = self
            .get_text(SCRIPT_PATH, "reading the configuration script")
            .await?;
        let plans = cli_script::parse_dial_plans(&script)?;
        let Some((plan_index, texts)) = plans.rules_of(&self.config.dial_plan) else {
            return Err(SinkError::DialPlanMissing {
                name: self.config.dial_plan.clone(),
            });
        };
        let rows = texts.into_iter().map(|text| match text.unreadable {
            Some(why) => Err(UnreadableRow::new(text.index, &text.name, why)),
            None => DialPlanRule::read(text.index, &text.name, &text.prefix, &text.tag),
        });
        Ok(DeviceDialPlan {
            upgrading,
            save_needed,
            ..DeviceDialPlan::of_rows(plan_index, rows)
        })
    }

    /// Creates the dial plan `dial_plan` at the lowest free plan index (`dialplan.create`),
    /// and returns that index. Sending the same script twice only renames the plan to the name
    /// it already has, so an answer lost in transit is simply retried.
    pub async fn create_dial_plan(&self) -> Result<u32, SinkError> {
        const WHAT: &str = "creating the dial plan";
        let script = self
            .get_text(SCRIPT_PATH, "reading the configuration script")
            .await?;
        let plans = cli_script::parse_dial_plans(&script)?;
        if let Some(existing) = plans.plans.iter().find(|p| p.name == self.config.dial_plan) {
            return Ok(existing.index);
        }
        let index = (0..)
            .find(|i| plans.plans.iter().all(|p| p.index != *i))
            .unwrap_or(0);
        let mut backoff = self.backoff();
        loop {
            let script = cli_script::render_create_plan(index, &self.config.dial_plan);
            match self.put_script(script).await {
                // An answer without a status is settled by the read the agent makes right
                // after: a plan that is still missing is reported as missing.
                Ok(ScriptAnswer::Applied | ScriptAnswer::Unstated(_)) => return Ok(index),
                Ok(ScriptAnswer::Refused(reason)) => {
                    return Err(SinkError::BadResponse {
                        what: WHAT.into(),
                        reason,
                    })
                }
                Err(Attempt::NotApplied(e, retry_after)) => match backoff.next(retry_after) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return Err(e),
                },
                Err(Attempt::Unknown(e)) => match backoff.next(None) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return Err(e),
                },
                Err(Attempt::Final(e)) => return Err(e),
            }
        }
    }

    /// Applies `plan` to the device read as `device`.
    ///
    /// The plan is journaled before the first write; ops go in order, `batch_size` per
    /// incremental script, each marked in flight before its request and done after. A script
    /// the device refuses is retried op by op, so that one bad rule is quarantined (marked
    /// failed with the device's reason) and the others land. When a write's outcome is unknown
    /// (dropped connection, timeout, 5xx) the device is re-read and only the ops it does not
    /// show are sent again: a delete replayed after it landed would be refused.
    ///
    /// On an error after which some ops may have landed, the journal is left unfinished:
    /// [`AudioCodesSink::settle_unfinished`] resolves it (and apply refuses until it has).
    pub async fn apply(
        &self,
        store: &mut Store,
        plan: &Plan,
        device: &DeviceDialPlan,
    ) -> Result<ApplyReport, SinkError> {
        self.apply_until(store, plan, device, &ApplyControl::default())
            .await
    }

    /// [`Self::apply`], stopping between batches once `stop` is requested: the batch in
    /// flight completes, the journal is finished as `stopped`, and the ops not sent are left
    /// for the next cycle's fresh plan.
    pub async fn apply_until(
        &self,
        store: &mut Store,
        plan: &Plan,
        device: &DeviceDialPlan,
        stop: &ApplyControl,
    ) -> Result<ApplyReport, SinkError> {
        if let Some(status) = &device.upgrading {
            return Err(SinkError::Upgrading {
                status: status.clone(),
            });
        }
        device.guard(plan, &self.config.rule_name, self.config.adopt_foreign)?;
        if let Some(unfinished) = store.unfinished_journal()? {
            return Err(SinkError::Unsettled {
                plan: unfinished.id,
            });
        }
        let first_request = self.requests.load(Ordering::Relaxed);
        let mut report = ApplyReport::default();
        if plan.ops.is_empty() {
            if self.config.save_config && device.save_needed {
                self.save().await?;
                report.saved = true;
            }
            report.requests = self.requests.load(Ordering::Relaxed) - first_request;
            return Ok(report);
        }
        let id = store.journal_begin(&plan.checksum, &plan.ops)?;
        let batch_size = self.config.batch_size;
        let mut withheld = Withheld::new("the SBC");
        for (number, chunk) in plan.ops.chunks(batch_size).enumerate() {
            stop.record_progress(report.applied + report.quarantined.len(), plan.ops.len());
            if stop.requested() {
                report.stopped = true;
                break;
            }
            report.batches += 1;
            let first = number * batch_size;
            let mut seqs: Vec<usize> = Vec::with_capacity(chunk.len());
            for seq in first..first + chunk.len() {
                match withheld.blocking(&plan.ops[seq]) {
                    Some(reason) => self.quarantine(store, id, plan, seq, reason, &mut report)?,
                    None => seqs.push(seq),
                }
            }
            if seqs.is_empty() {
                continue;
            }
            match self.send_batch(store, id, plan, device, &seqs).await {
                Ok(BatchOutcome::Applied) => report.applied += seqs.len(),
                Ok(BatchOutcome::Refused {
                    reason,
                    unconfirmed,
                }) => {
                    report.applied += seqs.len() - unconfirmed.len();
                    if unconfirmed.len() == 1 {
                        withheld.refused(&plan.ops[unconfirmed[0]]);
                        self.quarantine(store, id, plan, unconfirmed[0], reason, &mut report)?;
                        continue;
                    }
                    // One rule spoilt the script (the device applies a script all or
                    // nothing): find it by sending the ops one by one, in plan order.
                    for (position, &seq) in unconfirmed.iter().enumerate() {
                        if let Some(reason) = withheld.blocking(&plan.ops[seq]) {
                            self.quarantine(store, id, plan, seq, reason, &mut report)?;
                            continue;
                        }
                        match self.send_batch(store, id, plan, device, &[seq]).await {
                            Ok(BatchOutcome::Applied) => report.applied += 1,
                            Ok(BatchOutcome::Refused { reason, .. }) => {
                                withheld.refused(&plan.ops[seq]);
                                self.quarantine(store, id, plan, seq, reason, &mut report)?
                            }
                            Err(e) => {
                                let later = &unconfirmed[position + 1..];
                                return Err(self.abandon(store, id, e, later));
                            }
                        }
                    }
                }
                Err(e) => return Err(self.abandon(store, id, e, &[])),
            }
        }
        stop.record_progress(report.applied + report.quarantined.len(), plan.ops.len());
        let outcome = if report.stopped {
            "stopped"
        } else if report.quarantined.is_empty() {
            "applied"
        } else {
            "partial"
        };
        // The journal covers the dial-plan ops, all settled now. A save that fails after this
        // leaves `saveNeeded` set on the device, and the next cycle saves even with no ops.
        store.journal_finish(id, outcome)?;
        if self.config.save_config {
            self.save().await?;
            report.saved = true;
        }
        report.requests = self.requests.load(Ordering::Relaxed) - first_request;
        Ok(report)
    }

    /// Settles a journal that a crash (or an error with an unknown outcome) left unfinished.
    ///
    /// Ops in flight at the crash may or may not have reached the device, and pending ones
    /// certainly did not, but replaying either blindly is wrong: a replayed delete of a rule
    /// already gone is refused, a replayed add may land on an index someone has since reused,
    /// and the desired state itself may have moved on. So the device is re-read, and each op
    /// not yet confirmed is marked done when the device shows its effect at its index (the
    /// after-route under dialsync's name for an add or modify; the index absent for a delete)
    /// and left as it was otherwise. The journal is then finished as `settled`. Nothing is
    /// written to the device: the next cycle plans afresh from what the device now holds, so
    /// whatever the crashed plan did not do is planned again, exactly once.
    pub async fn settle_unfinished(
        &self,
        store: &mut Store,
    ) -> Result<Option<SettleReport>, SinkError> {
        let Some(journal) = store.unfinished_journal()? else {
            return Ok(None);
        };
        let device = self.read().await?;
        let by_index = index_rules(&device.rules);
        let mut report = SettleReport {
            plan: journal.id,
            already_done: 0,
            confirmed: 0,
            not_applied: 0,
            failed: 0,
        };
        for entry in &journal.ops {
            match entry.state {
                OpState::Done => report.already_done += 1,
                OpState::Failed => report.failed += 1,
                OpState::Pending | OpState::InFlight => {
                    if effect_shown(&entry.op, &by_index, &self.config.rule_name) {
                        store.journal_mark_done(journal.id, entry.seq)?;
                        report.confirmed += 1;
                    } else {
                        report.not_applied += 1;
                    }
                }
            }
        }
        store.journal_finish(journal.id, "settled")?;
        Ok(Some(report))
    }

    /// Records a refused op and carries on.
    fn quarantine(
        &self,
        store: &mut Store,
        id: PlanId,
        plan: &Plan,
        seq: usize,
        reason: String,
        report: &mut ApplyReport,
    ) -> Result<(), SinkError> {
        store.journal_mark_failed(id, seq as u32, &reason)?;
        report.quarantined.push((plan.ops[seq].clone(), reason));
        Ok(())
    }

    /// Ends an apply on an error. When the ops certainly did not land they are marked failed
    /// and the journal finished; when they may have, the journal stays unfinished for
    /// [`AudioCodesSink::settle_unfinished`] to resolve against the device.
    fn abandon(
        &self,
        store: &mut Store,
        id: PlanId,
        failure: BatchError,
        not_sent: &[usize],
    ) -> SinkError {
        if failure.uncertain {
            return failure.error;
        }
        let reason = failure.error.to_string();
        let recorded = failure
            .unconfirmed
            .iter()
            .chain(not_sent)
            .try_for_each(|&seq| store.journal_mark_failed(id, seq as u32, &reason))
            .and_then(|()| store.journal_finish(id, "failed"));
        // The device error is what the caller needs; a journal that cannot record it stays
        // unfinished and is settled against the device on the next start, which is safe.
        let _ = recorded;
        failure.error
    }

    /// Sends ops `seqs` of `plan` as one script until the device confirms or refuses it,
    /// retrying what cannot have landed and verifying what might have.
    async fn send_batch(
        &self,
        store: &mut Store,
        id: PlanId,
        plan: &Plan,
        device: &DeviceDialPlan,
        seqs: &[usize],
    ) -> Result<BatchOutcome, BatchError> {
        // Failures that leave the outcome open; the journal then waits to be settled.
        let fail = |error: SinkError| BatchError {
            error,
            uncertain: true,
            unconfirmed: Vec::new(),
        };
        let mut remaining: Vec<usize> = seqs.to_vec();
        let mut backoff = self.backoff();
        let mut busy = 0u32;
        // Set when a request may have acted without telling us: the device must be read
        // before anything is sent again.
        let mut verify = false;
        loop {
            if verify {
                remaining = self
                    .not_shown(store, id, plan, remaining, &mut backoff)
                    .await
                    .map_err(fail)?;
                verify = false;
                if remaining.is_empty() {
                    return Ok(BatchOutcome::Applied);
                }
            }
            let seqs: Vec<u32> = remaining.iter().map(|&seq| seq as u32).collect();
            store
                .journal_mark_batch_in_flight(id, &seqs)
                .map_err(|e| fail(e.into()))?;
            let ops: Vec<Op> = remaining.iter().map(|&seq| plan.ops[seq].clone()).collect();
            let script =
                cli_script::render_incremental(device.plan_index, &self.config.rule_name, &ops);
            match self.put_script(script).await {
                Ok(ScriptAnswer::Applied) => {
                    store
                        .journal_mark_batch_done(id, &seqs)
                        .map_err(|e| fail(e.into()))?;
                    return Ok(BatchOutcome::Applied);
                }
                Ok(ScriptAnswer::Refused(reason)) => {
                    return Ok(BatchOutcome::Refused {
                        reason,
                        unconfirmed: remaining,
                    })
                }
                // The vendor's own example answer says only that the script "was loaded":
                // one read tells what it did. Whatever the device does not show was refused;
                // nothing is sent again blindly.
                Ok(ScriptAnswer::Unstated(output)) => {
                    let unconfirmed = self
                        .not_shown(store, id, plan, remaining, &mut backoff)
                        .await
                        .map_err(fail)?;
                    if unconfirmed.is_empty() {
                        return Ok(BatchOutcome::Applied);
                    }
                    return Ok(BatchOutcome::Refused {
                        reason: format!(
                            "the device answered without a status and does not show the \
                             change; its output: {}",
                            truncate(&output)
                        ),
                        unconfirmed,
                    });
                }
                Err(Attempt::NotApplied(e, retry_after)) => {
                    if matches!(e, SinkError::Busy { .. }) {
                        busy += 1;
                    }
                    match backoff.next(retry_after) {
                        Some(wait) => tokio::time::sleep(wait).await,
                        None => {
                            return Err(BatchError {
                                error: given_up(e, busy, &backoff, retry_after),
                                uncertain: false,
                                unconfirmed: remaining,
                            });
                        }
                    }
                }
                Err(Attempt::Unknown(e)) => {
                    verify = true;
                    match backoff.next(None) {
                        Some(wait) => tokio::time::sleep(wait).await,
                        None => return Err(fail(e)),
                    }
                }
                // Any earlier unknown outcome was resolved by the read before this send, so
                // what is left certainly did not land.
                Err(Attempt::Final(e)) => {
                    return Err(BatchError {
                        error: e,
                        uncertain: false,
                        unconfirmed: remaining,
                    })
                }
            }
        }
    }

    /// Reads the device (retrying transient failures within `backoff`), marks done the ops of
    /// `seqs` whose effect it shows, and returns the others.
    async fn not_shown(
        &self,
        store: &mut Store,
        id: PlanId,
        plan: &Plan,
        seqs: Vec<usize>,
        backoff: &mut Backoff,
    ) -> Result<Vec<usize>, SinkError> {
        let now = loop {
            match self.read().await {
                Ok(now) => break now,
                Err(e) if e.class() == ErrorClass::Transient => match backoff.next(None) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return Err(e),
                },
                Err(e) => return Err(e),
            }
        };
        let by_index = index_rules(&now.rules);
        let mut still = Vec::with_capacity(seqs.len());
        for seq in seqs {
            if effect_shown(&plan.ops[seq], &by_index, &self.config.rule_name) {
                store.journal_mark_done(id, seq as u32)?;
            } else {
                still.push(seq);
            }
        }
        Ok(still)
    }

    /// One PUT of an incremental script, and what the device said of it.
    async fn put_script(&self, script: String) -> Result<ScriptAnswer, Attempt> {
        const WHAT: &str = "applying an incremental script";
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::text(script).file_name("incremental.txt"),
        );
        let request = self
            .client
            .put(format!("{}{INCREMENTAL_PATH}", self.base))
            .multipart(form);
        let body = match self.attempt(request, WHAT, true).await {
            Ok(body) => body,
            // "400 Bad request – provided CLI script is incorrect": a bad line or a bad value,
            // refused like a 200 saying `failure`.
            Err(Attempt::Final(SinkError::Refused {
                status: 400, body, ..
            })) => return Ok(ScriptAnswer::Refused(refusal(&body))),
            Err(other) => return Err(other),
        };
        let answer: serde_json::Value = serde_json::from_str(&body).map_err(|e| {
            // A 200 we cannot read may well have applied: treat as unknown, re-read.
            Attempt::Unknown(SinkError::BadResponse {
                what: WHAT.into(),
                reason: e.to_string(),
            })
        })?;
        let field = |name: &str| text_field(&answer, name);
        match answer.get("status") {
            None | Some(serde_json::Value::Null) => Ok(ScriptAnswer::Unstated(field("output"))),
            Some(status) => match status.as_str() {
                Some("success") => Ok(ScriptAnswer::Applied),
                Some("failure") => Ok(ScriptAnswer::Refused(
                    SinkError::ScriptFailed {
                        description: field("description"),
                        output: field("output"),
                    }
                    .to_string(),
                )),
                _ => Err(Attempt::Unknown(SinkError::BadResponse {
                    what: WHAT.into(),
                    reason: format!("status {status} (expected success or failure)"),
                })),
            },
        }
    }

    /// Persists the configuration to flash, retrying while busy.
    async fn save(&self) -> Result<(), SinkError> {
        let mut backoff = self.backoff();
        let mut busy = 0u32;
        loop {
            let request = self
                .client
                .post(format!("{}{SAVE_PATH}", self.base))
                // The device refuses a save with a body, or without the header.
                .header(CONTENT_LENGTH, "0")
                .body(Vec::<u8>::new());
            match self
                .attempt(request, "saving the configuration", true)
                .await
            {
                Ok(_) => return Ok(()),
                // Saving twice is harmless, so any transient failure is simply retried.
                Err(Attempt::NotApplied(e, retry_after)) => {
                    busy += u32::from(matches!(e, SinkError::Busy { .. }));
                    match backoff.next(retry_after) {
                        Some(wait) => tokio::time::sleep(wait).await,
                        None => return Err(given_up(e, busy, &backoff, retry_after)),
                    }
                }
                Err(Attempt::Unknown(e)) => match backoff.next(None) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return Err(e),
                },
                Err(Attempt::Final(e)) => return Err(e),
            }
        }
    }

    /// A GET, retried on transient failures within the budget.
    async fn get_text(&self, path: &str, what: &str) -> Result<String, SinkError> {
        let mut backoff = self.backoff();
        let mut busy = 0u32;
        loop {
            let request = self.client.get(format!("{}{path}", self.base));
            match self.attempt(request, what, false).await {
                Ok(body) => return Ok(body),
                Err(Attempt::NotApplied(e, retry_after)) => {
                    busy += u32::from(matches!(e, SinkError::Busy { .. }));
                    match backoff.next(retry_after) {
                        Some(wait) => tokio::time::sleep(wait).await,
                        None => return Err(given_up(e, busy, &backoff, retry_after)),
                    }
                }
                Err(Attempt::Unknown(e)) => match backoff.next(None) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return Err(e),
                },
                Err(Attempt::Final(e)) => return Err(e),
            }
        }
    }

    /// One request with the credentials, its answer sorted by what it means.
    async fn attempt(
        &self,
        request: RequestBuilder,
        what: &str,
        write: bool,
    ) -> Result<String, Attempt> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let response = request
            .basic_auth(&self.config.username, Some(&self.config.password))
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(source) if is_tls_failure(&source) => {
                // An untrusted certificate, or no TLS on the other end: settings to fix, not
                // a moment to wait out.
                return Err(Attempt::Final(SinkError::Tls {
                    reason: format!("{what}: {}", error_chain(&source)),
                }));
            }
            Err(source) => {
                let connect = source.is_connect();
                let error = SinkError::Http {
                    what: what.to_string(),
                    source,
                };
                // A connection never made carried nothing; anything else may have.
                return Err(if connect {
                    Attempt::NotApplied(error, None)
                } else {
                    Attempt::Unknown(error)
                });
            }
        };
        let status = response.status();
        let retry_after = retry_after(&response);
        let body = match response.text().await {
            Ok(body) => body,
            Err(source) => {
                return Err(Attempt::Unknown(SinkError::Http {
                    what: what.to_string(),
                    source,
                }))
            }
        };
        match status {
            s if s.is_success() => Ok(body),
            StatusCode::UNAUTHORIZED => Err(Attempt::Final(SinkError::Unauthorized)),
            StatusCode::FORBIDDEN => Err(Attempt::Final(SinkError::Forbidden {
                user: self.config.username.clone(),
            })),
            StatusCode::CONFLICT => Err(Attempt::NotApplied(
                SinkError::Busy {
                    what: what.to_string(),
                    attempts: 1,
                    waited: Duration::ZERO,
                    asked: None,
                },
                retry_after,
            )),
            s if s.is_server_error() => {
                let error = SinkError::Server {
                    what: what.to_string(),
                    status: s.as_u16(),
                    body: truncate(&body),
                };
                // A 503 on a read acted on nothing; a 5xx on a write may have half-acted.
                Err(if write {
                    Attempt::Unknown(error)
                } else {
                    Attempt::NotApplied(error, retry_after)
                })
            }
            s => Err(Attempt::Final(SinkError::Refused {
                what: what.to_string(),
                status: s.as_u16(),
                body: truncate(&body),
            })),
        }
    }
}

/// The error to give up with once a request's retry budget is spent. A busy device's error
/// says how often and how long it was tried, and what it last asked for: "1 attempt" alone
/// reads as if the agent never waited, when the device asked for longer than the budget.
fn given_up(
    error: SinkError,
    busy: u32,
    backoff: &Backoff,
    retry_after: Option<Duration>,
) -> SinkError {
    match error {
        SinkError::Busy { what, .. } => SinkError::Busy {
            what,
            attempts: busy.max(1),
            waited: backoff.elapsed(),
            asked: retry_after,
        },
        other => other,
    }
}

/// The end of a busy device's message when it asked to be retried later than the budget allows.
fn asked_for(asked: &Option<Duration>) -> String {
    match asked {
        Some(wait) => format!(
            " and asked to be retried in {} s, past the retry budget; the next cycle tries again",
            wait.as_secs()
        ),
        None => String::new(),
    }
}

/// What the status answer says about writing: the `upgradeStatus` while an upgrade is under
/// way, and whether the running configuration still needs saving.
///
/// The vendor documents both as strings: `saveNeeded` "true"/"false" (some firmware sends a
/// JSON boolean, taken too), `upgradeStatus` "None", "In Progress" and three "Hitless-..."
/// states. Only "None", an empty value or no field at all mean no upgrade: any other value,
/// known or not, keeps dialsync from writing.
fn device_state(status: &serde_json::Value) -> (Option<String>, bool) {
    use serde_json::Value;
    let upgrading = match status.get("upgradeStatus") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() || s.trim().eq_ignore_ascii_case("none") => {
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    let save_needed = match status.get("saveNeeded") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.trim().eq_ignore_ascii_case("true"),
        _ => false,
    };
    (upgrading, save_needed)
}

fn warn_insecure(url: &str) {
    warn(&format!(
        "sbc.insecure_skip_verify is set: the certificate of {url} is not verified"
    ));
}

/// A string field of a JSON answer, empty when absent or not a string.
fn text_field(answer: &serde_json::Value, name: &str) -> String {
    answer
        .get(name)
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string()
}

/// The device's reason for a 400: its description and output when the body is the JSON of
/// its other answers, else the body itself.
fn refusal(body: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(answer) if answer.is_object() => SinkError::ScriptFailed {
            description: text_field(&answer, "description"),
            output: text_field(&answer, "output"),
        }
        .to_string(),
        _ => format!("the device refused the script (400): {}", truncate(body)),
    }
}

fn index_rules(rules: &[DialPlanRule]) -> HashMap<u32, &DialPlanRule> {
    rules.iter().map(|rule| (rule.index, rule)).collect()
}

/// Whether the device shows `op` applied: its after-route under dialsync's name at its index
/// (add, modify), or nothing at its index (delete).
fn effect_shown(op: &Op, by_index: &HashMap<u32, &DialPlanRule>, rule_name: &str) -> bool {
    match (&op.after, by_index.get(&op.index)) {
        (Some(route), Some(rule)) => {
            rule.name == rule_name && rule.prefix == route.prefix && rule.tag == route.tag
        }
        (Some(_), None) => false,
        (None, present) => present.is_none(),
    }
}
