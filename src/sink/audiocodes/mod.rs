//! The AudioCodes SBC as a [`Target`]: its device REST API (DESIGN.md §5.1). What is the
//! SBC's own lives here: Basic auth, reading the status and the full configuration, writing
//! incremental scripts (never the full ini file, which resets the device), telling what an
//! answer says (success, failure, 400, or no status at all), refusing to write during a
//! firmware upgrade, and saving to flash. The journaled apply itself is the shared
//! [`applier`](super::applier); the CLI dialect is [`cli_script`].

pub mod cli_script;

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::header::CONTENT_LENGTH;
use reqwest::{Client, RequestBuilder, StatusCode};

use super::dial_plan::DeviceDialPlan;
use super::error::SinkError;
use super::reply::{receive, Reply};
use super::target::{Answer, Attempt, Target};
use super::write_settings::WriteSettings;
use crate::dialplan::rule::{DialPlanRule, HeldText, UnreadableRow};
use crate::net::client::{build_client, warn_insecure, ClientSettings};
use crate::net::endpoint::check_url;
use crate::net::preview::truncate;
use crate::net::retry::retry;
use crate::net::secret::Secret;
use crate::net::verdict::{Access, Verdict};
use crate::plan::Op;

const STATUS_PATH: &str = "/api/v1/status";
const SCRIPT_PATH: &str = "/api/v1/files/cliScript";
const INCREMENTAL_PATH: &str = "/api/v1/files/cliScript/incremental";
const SAVE_PATH: &str = "/api/v1/actions/saveConfiguration";

/// The `[sbc]` settings of an AudioCodes device (DESIGN.md §9).
#[derive(Clone, Debug)]
pub struct SbcConfig {
    /// Base URL, e.g. `https://sbc1.example.net`.
    pub url: String,
    pub username: String,
    /// Read from `sbc.password_file`; never logged (redacted in `Debug`).
    pub password: Secret,
    /// The dial plan dialsync writes to (`OCDialPlan`).
    pub dial_plan: String,
    /// Persist to flash after a successful apply.
    pub save_config: bool,
    /// An extra root certificate (PEM) for a device with a private CA.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate. Only when explicitly set, and it warns.
    pub insecure_skip_verify: bool,
    /// Rule names, batches of one incremental script each, timeouts and retries.
    pub writes: WriteSettings,
}

impl SbcConfig {
    /// Settings with the defaults of DESIGN.md §9 for everything but the address and account.
    pub fn new(url: &str, username: &str, password: impl Into<Secret>) -> SbcConfig {
        SbcConfig {
            url: url.to_string(),
            username: username.to_string(),
            password: password.into(),
            dial_plan: "OCDialPlan".into(),
            save_config: true,
            ca_file: None,
            insecure_skip_verify: false,
            writes: WriteSettings::defaults(
                200,
                Duration::from_secs(60),
                (Duration::from_millis(250), Duration::from_secs(10)),
            ),
        }
    }
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
    /// A sink for `config`'s device. Verifies TLS certificates unless `insecure_skip_verify`
    /// is set (which warns, as does plain HTTP to a host other than loopback).
    pub fn new(config: SbcConfig) -> Result<Self, SinkError> {
        if config.writes.batch_size == 0 {
            return Err(SinkError::BadBatchSize);
        }
        check_url("sbc.url", &config.url).map_err(|e| SinkError::BadUrl {
            url: config.url.clone(),
            reason: e.to_string(),
        })?;
        let settings = ClientSettings {
            ca_file: config.ca_file.clone(),
            insecure_skip_verify: config.insecure_skip_verify,
            ..ClientSettings::new(config.writes.timeout)
        };
        let client = build_client("sbc", &settings).map_err(SinkError::client("sbc.ca_file"))?;
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
    /// when built; `run` repeats it before each cycle (`app/service/agent_service.rs`), so the
    /// agent need not call this too.
    pub fn warn_if_insecure(&self) {
        if self.config.insecure_skip_verify {
            warn_insecure("sbc");
        }
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
        let mut backoff = self.config.writes.backoff();
        let answer = retry(&mut backoff, || async {
            let script = cli_script::render_create_plan(index, &self.config.dial_plan);
            self.put_script(script).await.map_err(Attempt::retried)
        })
        .await?;
        match answer {
            // An answer without a status is settled by the read the agent makes right after:
            // a plan that is still missing is reported as missing.
            Answer::Applied | Answer::Unstated(_) => Ok(index),
            Answer::Refused(reason) => Err(SinkError::BadResponse {
                what: WHAT.into(),
                reason,
            }),
        }
    }

    /// One PUT of an incremental script, and what the device said of it.
    async fn put_script(&self, script: String) -> Result<Answer, Attempt> {
        const WHAT: &str = "applying an incremental script";
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::text(script).file_name("incremental.txt"),
        );
        let request = self
            .client
            .put(format!("{}{INCREMENTAL_PATH}", self.base))
            .multipart(form);
        let body = match self.attempt(request, WHAT, Access::Write).await {
            Ok(body) => body,
            // "400 Bad request – provided CLI script is incorrect": a bad line or a bad value,
            // refused like a 200 saying `failure`.
            Err(Attempt::Final(SinkError::Refused {
                status: 400, body, ..
            })) => return Ok(Answer::Refused(refusal(&body))),
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
            None | Some(serde_json::Value::Null) => Ok(Answer::Unstated(field("output"))),
            Some(status) => match status.as_str() {
                Some("success") => Ok(Answer::Applied),
                Some("failure") => Ok(Answer::Refused(
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
}

impl Target for AudioCodesSink {
    fn target_name(&self) -> &'static str {
        "the SBC"
    }

    fn writes(&self) -> &WriteSettings {
        &self.config.writes
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    /// Reads the device's status and `OCDialPlan` with all its rules.
    async fn read(&self) -> Result<DeviceDialPlan, SinkError> {
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
        // The script (11 MB at 100k rules) is done with once parsed: free it before the rules
        // are built, so the two are never held together.
        drop(script);
        let Some((plan_index, texts)) = plans.into_rules_of(&self.config.dial_plan) else {
            return Err(SinkError::DialPlanMissing {
                target: self.target_name(),
                name: self.config.dial_plan.clone(),
            });
        };
        let mut held = HeldText::default();
        let rows = texts.into_iter().map(|text| match text.unreadable {
            Some(why) => Err(UnreadableRow::new(text.index, &text.name, why)),
            None => DialPlanRule::read_sharing(
                text.index,
                &text.name,
                &text.prefix,
                &text.tag,
                &mut held,
            ),
        });
        Ok(DeviceDialPlan {
            upgrading,
            save_needed,
            ..DeviceDialPlan::of_rows(plan_index, rows)
        })
    }

    fn writable(&self, read: &DeviceDialPlan) -> Result<(), SinkError> {
        match &read.upgrading {
            Some(status) => Err(SinkError::Upgrading {
                status: status.clone(),
            }),
            None => Ok(()),
        }
    }

    /// One incremental script: each add or modify rewrites the rule's name, prefix and tag,
    /// each delete removes it.
    async fn send(&self, ops: &[&Op], read: &DeviceDialPlan) -> Result<Answer, Attempt> {
        let script =
            cli_script::render_incremental(read.plan_index, &self.config.writes.rule_name, ops);
        self.put_script(script).await
    }

    /// The op's after-route under dialsync's name at its index (add, modify), or nothing at
    /// its index (delete).
    fn shows(&self, op: &Op, now: &DeviceDialPlan, _planned_from: Option<&DeviceDialPlan>) -> bool {
        let by_index = now.rules.iter().find(|rule| rule.index == op.index);
        match (&op.after, by_index) {
            (Some(route), Some(rule)) => {
                *rule.name == *self.config.writes.rule_name
                    && rule.prefix == route.prefix
                    && rule.tag == route.tag
            }
            (Some(_), None) => false,
            (None, present) => present.is_none(),
        }
    }

    /// Saves to flash (`sbc.save_config`) after a plan with ops, or when the SBC says its
    /// running configuration is unsaved.
    async fn finish(&self, read: &DeviceDialPlan, wrote: bool) -> Result<bool, SinkError> {
        if !self.config.save_config || !(wrote || read.save_needed) {
            return Ok(false);
        }
        self.save().await?;
        Ok(true)
    }
}

impl AudioCodesSink {
    /// Persists the configuration to flash, retrying while busy.
    async fn save(&self) -> Result<(), SinkError> {
        let mut backoff = self.config.writes.backoff();
        retry(&mut backoff, || async {
            let request = self
                .client
                .post(format!("{}{SAVE_PATH}", self.base))
                // The device refuses a save with a body, or without the header.
                .header(CONTENT_LENGTH, "0")
                .body(Vec::<u8>::new());
            // Saving twice is harmless, so the save is sent again like a read.
            self.attempt(request, "saving the configuration", Access::Read)
                .await
                .map_err(Attempt::retried)
        })
        .await?;
        Ok(())
    }

    /// A GET, retried on transient failures within the budget.
    async fn get_text(&self, path: &str, what: &str) -> Result<String, SinkError> {
        let url = format!("{}{path}", self.base);
        let mut backoff = self.config.writes.backoff();
        let body = retry(&mut backoff, || async {
            let request = self.client.get(&url);
            self.attempt(request, what, Access::Read)
                .await
                .map_err(Attempt::retried)
        })
        .await?;
        Ok(body)
    }

    /// One request with the credentials, its reply sorted by what it means.
    async fn attempt(
        &self,
        request: RequestBuilder,
        what: &str,
        access: Access,
    ) -> Result<String, Attempt> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let sent = request
            .basic_auth(&self.config.username, Some(self.config.password.expose()))
            .send()
            .await;
        let answered = match receive(sent, access, what).await? {
            Reply::Done(body) => return Ok(body),
            Reply::Answered(answered) => answered,
        };
        Err(match (answered.status, answered.verdict) {
            (StatusCode::UNAUTHORIZED, _) => Attempt::Final(SinkError::Unauthorized),
            (StatusCode::FORBIDDEN, _) => Attempt::Final(SinkError::Forbidden {
                user: self.config.username.clone(),
            }),
            // The device's own "busy" (HA synchronisation): worded so that giving up says how
            // long it was waited out.
            (StatusCode::CONFLICT, Verdict::NotApplied { retry_after }) => Attempt::NotApplied(
                SinkError::Busy {
                    what: what.to_string(),
                    attempts: 1,
                    waited: Duration::ZERO,
                    asked: None,
                },
                retry_after,
            ),
            _ => answered.attempt(what, truncate),
        })
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
