//! Checking the top-level tables and the whole file: `[agent]`, `[admin]`, `[dialplan]`,
//! `[safety]`, then `[sbc]` and each `[[sources]]`, whose kinds check their own keys.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::checks::ConfigFile;
use super::raw::{RawConfig, RawDialPlan};
use super::{AgentSettings, Config, ConfigError, DialPlanSettings};
use crate::compile::Encoding;
use crate::dialplan::rule::{validate_name, MAX_NAME_LEN};
use crate::plan::{Policy, Safety};
use crate::source::ItemLimits;

impl ConfigFile<'_> {
    /// Checks the whole file, table by table in the order §9 lists them, stopping at the
    /// first refusal.
    pub(super) fn validate(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let agent = raw.agent.as_ref().ok_or_else(|| {
            self.invalid(
                0,
                "agent",
                "the [agent] table is required (agent.policy has no default)",
            )
        })?;
        let agent_at = agent.span().start;
        let agent = agent.get_ref();
        let policy = self.required(
            &agent.policy,
            agent_at,
            "agent.policy",
            ": sync | upsert-only | create-only (no default: choose what dialsync may delete)",
        )?;
        let policy: Policy = policy
            .get_ref()
            .parse()
            .map_err(|e: String| self.at(policy, "agent.policy", e))?;
        let agent = AgentSettings {
            policy,
            interval: self.duration(&agent.interval, "agent.interval", Duration::from_secs(60))?,
            state_db: match &agent.state_db {
                Some(path) if path.get_ref().trim().is_empty() => {
                    return Err(self.at(path, "agent.state_db", "must not be empty"))
                }
                Some(path) => self.relative(path.get_ref()),
                None => PathBuf::from("/var/lib/dialsync/state.db"),
            },
            dry_run: agent.dry_run.unwrap_or(false),
        };

        let admin_listen = match &raw.admin.listen {
            Some(listen) => listen.get_ref().parse().map_err(|e| {
                self.at(
                    listen,
                    "admin.listen",
                    format!(
                        "{:?} is not an address such as 127.0.0.1:9797: {e}",
                        listen.get_ref()
                    ),
                )
            })?,
            None => SocketAddr::from(([127, 0, 0, 1], 9797)),
        };

        let dialplan = self.dialplan(&raw.dialplan)?;
        let safety = Safety {
            max_delete_fraction: self.fraction(
                &raw.safety.max_delete_fraction,
                "safety.max_delete_fraction",
                0.3,
            )?,
            max_update_fraction: self.fraction(
                &raw.safety.max_update_fraction,
                "safety.max_update_fraction",
                0.3,
            )?,
            min_existing: raw.safety.min_existing.unwrap_or(10) as usize,
        };

        let sbc = raw
            .sbc
            .as_ref()
            .ok_or_else(|| self.invalid(self.text.len(), "sbc", "the [sbc] table is required"))?;
        let sbc = self.sbc(sbc.get_ref(), sbc.span().start)?;

        if raw.sources.is_empty() {
            return Err(self.invalid(
                self.text.len(),
                "sources",
                "at least one [[sources]] is required: without one every owned rule would \
                 be planned for deletion",
            ));
        }
        let mut names = HashSet::new();
        let mut sources = Vec::with_capacity(raw.sources.len());
        for (i, source) in raw.sources.iter().enumerate() {
            let at = source.span().start;
            let settings = self.source(source.get_ref(), at, i, &dialplan)?;
            if !names.insert(settings.name.clone()) {
                return Err(self.invalid(
                    source
                        .get_ref()
                        .name
                        .as_ref()
                        .map_or(at, |n| n.span().start),
                    &format!("sources[{i}].name"),
                    format!(
                        "{:?} names two sources; names must be unique",
                        settings.name
                    ),
                ));
            }
            sources.push(settings);
        }
        Ok(Config {
            path: self.path.clone(),
            digest: text_digest(&self.path, self.text),
            agent,
            admin_listen,
            dialplan,
            safety,
            sbc,
            sources,
        })
    }

    fn dialplan(&self, raw: &RawDialPlan) -> Result<DialPlanSettings, ConfigError> {
        let name = match &raw.name {
            Some(name) if name.get_ref().trim().is_empty() => {
                return Err(self.at(name, "dialplan.name", "must not be empty"))
            }
            Some(name) => name.get_ref().clone(),
            None => "OCDialPlan".to_string(),
        };
        let rule_name = match &raw.rule_name {
            Some(rule_name) => {
                validate_name(rule_name.get_ref()).map_err(|e| {
                    self.at(
                        rule_name,
                        "dialplan.rule_name",
                        format!("{e} (at most {MAX_NAME_LEN} characters)"),
                    )
                })?;
                rule_name.get_ref().clone()
            }
            None => "dialsync".to_string(),
        };
        let encoding = match &raw.encoding {
            Some(encoding) => encoding
                .get_ref()
                .parse()
                .map_err(|e: String| self.at(encoding, "dialplan.encoding", e))?,
            None => Encoding::Ranges,
        };
        Ok(DialPlanSettings {
            name,
            rule_name,
            encoding,
            max_rules: self.count(&raw.max_rules, "dialplan.max_rules", 50_000, 1..=10_000_000)?
                as usize,
            max_bracket_digits: self.count(
                &raw.max_bracket_digits,
                "dialplan.max_bracket_digits",
                9,
                1..=15,
            )? as usize,
            limits: ItemLimits {
                max_tag_len: self.count(&raw.max_tag_len, "dialplan.max_tag_len", 64, 1..=1024)?
                    as usize,
                max_range_size: self.count(
                    &raw.max_range_size,
                    "dialplan.max_range_size",
                    1_000_000,
                    1..=u64::MAX,
                )?,
            },
            adopt_foreign: raw.adopt_foreign.unwrap_or(false),
            create: raw.create.unwrap_or(false),
        })
    }
}

/// The digest of the file's path and text: what decides a cycle's outcome besides what the
/// sources and the SBC answer (relative paths are read from the file's directory).
fn text_digest(path: &std::path::Path, text: &str) -> String {
    let mut read = crate::net::answer_digest::AnswerHasher::default();
    read.answer(&path.to_string_lossy(), 0, text.as_bytes());
    read.finish(b"").as_str().to_string()
}
