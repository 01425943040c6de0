//! What the state database recorded, for a person: `status` (the last cycle, the sources'
//! snapshots and the mirror) and `history` (one line per cycle).

use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

use super::error::CommandError;
use super::sbc::sbc_url;
use super::state_db::open_existing;
use crate::app::clock::now_unix_ms;
use crate::config::Config;

/// `status`: the last cycle, the sources' snapshots and the mirror, from the state database.
pub fn status(config: &Config, out: &mut dyn Write) -> Result<u8, CommandError> {
    let store = open_existing(&config.agent.state_db)?;
    let mirror = store.mirror()?;
    let owned = mirror.iter().filter(|r| r.owned).count();
    writeln!(out, "config:   {}", config.path.display())?;
    writeln!(
        out,
        "policy:   {}{}",
        config.agent.policy.as_str(),
        if config.agent.dry_run {
            " (dry run)"
        } else {
            ""
        }
    )?;
    writeln!(
        out,
        "dial plan {} on {}: {} rules, {owned} owned by {:?}, {} foreign (as last read)",
        config.dialplan.name,
        sbc_url(config),
        mirror.len(),
        config.dialplan.rule_name,
        mirror.len() - owned
    )?;
    let snapshots = store.snapshot_sources()?;
    for source in &config.sources {
        match snapshots.iter().find(|s| s.source == source.name) {
            Some(s) => writeln!(
                out,
                "source {}: last good answer {} ago, {} entries",
                source.name,
                ago(s.fetched_at_unix * 1000),
                s.entry_count
            )?,
            None => writeln!(out, "source {}: no good answer yet", source.name)?,
        }
    }
    match store.last_cycle()? {
        None => writeln!(out, "last cycle: none recorded")?,
        Some(last) => {
            writeln!(
                out,
                "last cycle: {} {} ago, {} ms: {} added, {} modified, {} deleted; {} rejected, \
                 {} conflicts{}",
                last.outcome,
                ago(last.finished_unix_ms),
                last.finished_unix_ms - last.started_unix_ms,
                last.adds,
                last.modifies,
                last.deletes,
                last.rejected,
                last.conflicts,
                last.plan_checksum
                    .as_deref()
                    .map(|c| format!("; plan checksum {c}"))
                    .unwrap_or_default()
            )?;
            if let Some(error) = &last.error {
                writeln!(out, "  error: {error}")?;
            }
            for issue in last.issues.iter().take(20) {
                writeln!(
                    out,
                    "  {}: {}{}: {}",
                    issue.kind.as_str(),
                    issue
                        .source
                        .as_deref()
                        .map(|s| format!("{s}: "))
                        .unwrap_or_default(),
                    issue.item,
                    issue.detail
                )?;
            }
            if last.issues.len() > 20 {
                writeln!(out, "  ... and {} more", last.issues.len() - 20)?;
            }
        }
    }
    match store.last_success()? {
        Some(success) => writeln!(out, "last success: {} ago", ago(success.finished_unix_ms))?,
        None => writeln!(out, "last success: never")?,
    }
    Ok(0)
}

/// `history [--limit N]`: one line per cycle, newest first.
pub fn history(config: &Config, limit: usize, out: &mut dyn Write) -> Result<u8, CommandError> {
    let store = open_existing(&config.agent.state_db)?;
    writeln!(
        out,
        "{:<20} {:<10} {:>8} {:>6} {:>6} {:>6} {:>8} {:>9}  error",
        "finished", "outcome", "ms", "adds", "mods", "dels", "rejected", "conflicts"
    )?;
    for cycle in store.history(limit)? {
        writeln!(
            out,
            "{:<20} {:<10} {:>8} {:>6} {:>6} {:>6} {:>8} {:>9}  {}",
            utc(cycle.finished_unix_ms),
            cycle.outcome,
            cycle.finished_unix_ms - cycle.started_unix_ms,
            cycle.adds,
            cycle.modifies,
            cycle.deletes,
            cycle.rejected,
            cycle.conflicts,
            cycle.error.as_deref().unwrap_or("")
        )?;
    }
    Ok(0)
}

fn ago(unix_ms: i64) -> String {
    let secs = (now_unix_ms() - unix_ms).max(0) / 1000;
    match secs {
        0..=119 => format!("{secs}s"),
        120..=7199 => format!("{}m", secs / 60),
        7200..=172_799 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// RFC 3339 in UTC, to the second.
fn utc(unix_ms: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(unix_ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}
