//! `dialsync compile`: the operator's preview of what a number list becomes on the SBC.
//!
//! It runs the real pipeline — parse, resolve, compile — on a static CSV, with no SBC and no
//! state, so an engineer can see the exact rules (and the refused lines and conflicts) before
//! anything is configured. The rules go to `out` as CSV; everything for the human goes to `err`.

use std::io::{Read, Write};

use crate::compile::{compile, Encoding};
use crate::error::{Classify, ErrorClass};
use crate::resolve::resolve;
use crate::source::file::{parse_csv, FileError};
use crate::source::ItemLimits;

#[derive(Clone, Copy, Debug)]
pub struct PreviewOptions {
    pub encoding: Encoding,
    pub max_bracket_digits: usize,
    pub limits: ItemLimits,
}

/// What the preview found, for the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreviewReport {
    pub entries: usize,
    pub rules: usize,
    pub rejected: usize,
    pub conflicts: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("cannot write the rules: {0}")]
    Write(#[from] std::io::Error),
    #[error("cannot write the rules: {0}")]
    Csv(#[from] csv::Error),
}

impl Classify for PreviewError {
    fn class(&self) -> ErrorClass {
        match self {
            PreviewError::File(e) => e.class(),
            PreviewError::Write(_) | PreviewError::Csv(_) => ErrorClass::Fatal,
        }
    }
}

/// Reads the CSV from `input` (named `name` in messages), writes `prefix,tag` rows to `out` in
/// canonical order, and refused lines, conflicts and a summary to `err`.
pub fn compile_csv(
    input: impl Read,
    name: &str,
    out: impl Write,
    mut err: impl Write,
    options: PreviewOptions,
) -> Result<PreviewReport, PreviewError> {
    let parsed = parse_csv(input, name, name, options.limits)?;
    for rejected in &parsed.rejected {
        writeln!(err, "{name}: rejected {rejected}")?;
    }
    let resolution = resolve(&parsed.entries);
    for conflict in &resolution.conflicts {
        writeln!(
            err,
            "{name}: conflict: {}",
            conflict.describe(&parsed.entries)
        )?;
    }
    let mapping = &resolution.mapping;
    let rules = compile(mapping, options.encoding, options.max_bracket_digits);
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(["prefix", "tag"])?;
    for rule in &rules {
        writer.write_record([rule.prefix.to_string(), mapping.tag(rule.tag).to_string()])?;
    }
    writer.flush()?;
    let report = PreviewReport {
        entries: parsed.entries.len(),
        rules: rules.len(),
        rejected: parsed.rejected.len(),
        conflicts: resolution.conflicts.len(),
    };
    writeln!(
        err,
        "{name}: {} entries -> {} rules ({} encoding); {} rejected, {} conflicts",
        report.entries, report.rules, options.encoding, report.rejected, report.conflicts
    )?;
    Ok(report)
}
