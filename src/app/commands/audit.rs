//! `audit [--csv]` printed: the audit is `app::audit`'s, the words, the CSV and the exit code
//! are here.

use std::io::{self, Write};

use super::error::CommandError;
use super::state_db::open_existing;
use crate::app::audit::{audit_state, describe_finding, StateAudit};
use crate::audit::AuditCounts;
use crate::config::Config;

/// How many findings the summary shows; `--csv` prints them all.
const EXAMPLES: usize = 10;

/// `audit`, from the state database alone. Exit 0 when every assigned number routes to its
/// tag and no owned rule is stray, 1 when anything is found.
pub fn audit(config: &Config, csv: bool, out: &mut dyn Write) -> Result<u8, CommandError> {
    let store = open_existing(&config.agent.state_db)?;
    let state = audit_state(config, &store)?;
    if csv {
        write_csv(&state, out)?;
    } else {
        write_summary(config, &state, out)?;
    }
    Ok(if state.audit.counts.is_clean() { 0 } else { 1 })
}

fn write_csv(state: &StateAudit, out: &mut dyn Write) -> Result<(), CommandError> {
    let mut writer = csv::Writer::from_writer(out);
    for finding in &state.audit.findings {
        writer.serialize(state.row(finding)).map_err(csv_error)?;
    }
    if state.audit.findings.is_empty() {
        // The header alone, so a clean audit is still a CSV a script can read.
        writer
            .write_record([
                "verdict",
                "first",
                "last",
                "count",
                "rule_index",
                "rule_name",
                "prefix",
                "winning_tag",
                "desired_tag",
                "source",
                "item",
            ])
            .map_err(csv_error)?;
    }
    writer.flush()?;
    Ok(())
}

fn csv_error(error: csv::Error) -> CommandError {
    match error.into_kind() {
        csv::ErrorKind::Io(e) => CommandError::Output(e),
        other => CommandError::Output(io::Error::other(format!("{other:?}"))),
    }
}

fn write_summary(
    config: &Config,
    state: &StateAudit,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let audit = &state.audit;
    let c: &AuditCounts = &audit.counts;
    let owned = state.mirror.iter().filter(|m| m.owned).count();
    writeln!(
        out,
        "dial plan {} as last read ({} rules, {owned} owned, {} foreign) against the last good \
         answers of {} sources: {} numbers assigned",
        config.dialplan.name,
        state.mirror.len(),
        state.mirror.len() - owned,
        config.sources.len(),
        c.assigned()
    )?;
    let by_foreign = if c.routed_by_foreign > 0 {
        format!(
            " ({} of them by a foreign rule with the desired tag)",
            c.routed_by_foreign
        )
    } else {
        String::new()
    };
    writeln!(out, "  routed     {:>12}{by_foreign}", c.routed)?;
    writeln!(
        out,
        "  misrouted  {:>12}  (a rule dialsync owns wins with another tag)",
        c.misrouted
    )?;
    writeln!(
        out,
        "  shadowed   {:>12}  (a foreign rule wins with another tag; only its owner can change it)",
        c.shadowed
    )?;
    writeln!(out, "  unrouted   {:>12}  (no rule matches)", c.unrouted)?;
    if c.unchecked > 0 {
        writeln!(
            out,
            "  unchecked  {:>12}  (a rule too broad to index might win; `dialsync lookup` them)",
            c.unchecked
        )?;
    }
    writeln!(
        out,
        "stray: {} owned rules route {} numbers no source assigns",
        c.stray_rules, c.stray_numbers
    )?;
    for stray in audit.strays.iter().take(EXAMPLES) {
        let prefix = state
            .rule(stray.rule)
            .map(|m| m.rule.prefix.to_string())
            .unwrap_or_default();
        writeln!(
            out,
            "  rule {} {prefix}: {} numbers, first {}",
            stray.rule, stray.numbers, stray.first
        )?;
    }
    if audit.findings_total == 0 {
        writeln!(out, "clean: every assigned number routes to its tag")?;
        return Ok(());
    }
    writeln!(out, "first findings:")?;
    for finding in audit.findings.iter().take(EXAMPLES) {
        let winner = finding
            .rule
            .and_then(|index| state.rule(index))
            .map(|m| (&*m.rule.name, &m.rule.prefix, &m.rule.tag, m.owned));
        let desired = finding.desired.map(|t| state.mapping().tag(t));
        let mut line = describe_finding(finding, winner, desired);
        let row = state.row(finding);
        if !row.source.is_empty() {
            line.push_str(&format!(" by {} ({})", row.source, row.item));
        }
        writeln!(out, "  {line}")?;
    }
    writeln!(
        out,
        "{} findings in all; `dialsync audit --csv` lists every one",
        audit.findings_total
    )?;
    Ok(())
}
