//! `lookup NUMBER...` printed: the query is `app::lookup`'s, the words and the JSON are here.

use std::io::{self, Write};

use super::error::CommandError;
use super::state_db::open_existing;
use crate::app::lookup::lookup;
use crate::config::Config;

/// `lookup NUMBER...`, from the state database alone.
pub fn lookup_numbers(
    config: &Config,
    numbers: &[String],
    json: bool,
    out: &mut dyn Write,
) -> Result<u8, CommandError> {
    let store = open_existing(&config.agent.state_db)?;
    let answers = lookup(config, &store, numbers)?;
    if json {
        let text =
            serde_json::to_string_pretty(&answers).map_err(|e| io::Error::other(e.to_string()))?;
        writeln!(out, "{text}")?;
        return Ok(0);
    }
    for answer in &answers {
        writeln!(out, "{}", answer.number)?;
        match &answer.sbc_rule {
            Some(rule) => writeln!(
                out,
                "  SBC routes it by rule {} {} -> {} ({})",
                rule.index,
                rule.prefix,
                rule.tag,
                if rule.owned {
                    "dialsync's rule".to_string()
                } else {
                    format!(
                        "foreign rule named {:?}, never changed by dialsync",
                        rule.name
                    )
                }
            )?,
            None => writeln!(out, "  SBC: no rule of the dial plan matches it")?,
        }
        match &answer.desired {
            Some(entry) => writeln!(
                out,
                "  desired: {} from source {}, {} ({})",
                entry.tag, entry.source, entry.item, entry.coverage
            )?,
            None => writeln!(out, "  desired: no source assigns it")?,
        }
        for conflict in &answer.conflicts {
            writeln!(out, "  conflict: {conflict}")?;
        }
        match &answer.sbc_rule {
            _ if answer.in_sync => {}
            Some(rule) if !rule.owned && answer.desired.is_some() => writeln!(
                out,
                "  NOT IN SYNC: rule {} is not dialsync's and wins at best match; dialsync \
                 leaves it alone, so only its owner can change this",
                rule.index
            )?,
            _ => writeln!(
                out,
                "  NOT IN SYNC: the next sync changes this (see `dialsync plan`)"
            )?,
        }
    }
    Ok(0)
}
