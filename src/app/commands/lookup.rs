//! `lookup` printed: the query is `app::lookup`'s; the words, the CSV, the JSON and the exit
//! code are here.
//!
//! Numbers come from the command line or from a file (`--file PATH`, `-` for stdin) read as a
//! stream: the state is loaded once, then each line costs two index lookups and one row, so a
//! million numbers take seconds. A bad line of a file is said on stderr (and as a `bad-line`
//! row in CSV and JSON) and the stream goes on; the exit code is then 1.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use super::error::CommandError;
use super::state_db::open_existing;
use crate::app::lookup::{
    lookup, parse_numbers, BadLine, LookupAnswer, LookupRow, LookupState, NumberLines,
};
use crate::config::Config;
use crate::number::Number;

/// How `lookup` prints its answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupFormat {
    /// A paragraph per number, for people.
    Text,
    /// One row per number, with a header.
    Csv,
    /// For command-line numbers, one array of answers; for a file, JSON Lines (one row object
    /// a line), which a million numbers can stream.
    Json,
}

/// Where `lookup` takes its numbers from.
#[derive(Clone, Copy, Debug)]
pub enum LookupInput<'a> {
    Numbers(&'a [String]),
    /// A file of numbers, one a line; `-` is stdin.
    File(&'a Path),
}

/// `lookup`, from the state database alone. Exit code 0, or 1 when a line of a file was not a
/// number; a bad command-line number is an error, as nothing was looked up.
pub fn lookup_numbers(
    config: &Config,
    input: LookupInput<'_>,
    format: LookupFormat,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, CommandError> {
    let store = open_existing(&config.agent.state_db)?;
    match input {
        LookupInput::Numbers(numbers) => match format {
            LookupFormat::Text => {
                for answer in &lookup(config, &store, numbers)? {
                    print_answer(out, answer)?;
                }
                Ok(0)
            }
            LookupFormat::Json => {
                let answers = lookup(config, &store, numbers)?;
                let text = serde_json::to_string_pretty(&answers).map_err(io::Error::other)?;
                writeln!(out, "{text}")?;
                Ok(0)
            }
            LookupFormat::Csv => {
                let numbers = parse_numbers(numbers)?;
                let state = LookupState::load(config, &store)?;
                let mut rows = csv::Writer::from_writer(out);
                for number in numbers {
                    rows.serialize(state.row(None, number)).map_err(csv_error)?;
                }
                rows.flush()?;
                Ok(0)
            }
        },
        LookupInput::File(path) => {
            let reader = open_input(path)?;
            let state = LookupState::load(config, &store)?;
            stream(&state, path, reader, format, out, err)
        }
    }
}

/// Where the rows of a file go, each format buffered once: stdout is line-buffered, and a
/// million lines want one write per block, not per line.
enum Rows<'o> {
    Text(BufWriter<&'o mut dyn Write>),
    // Boxed: the csv writer's state is several times the size of the other variants.
    Csv(Box<csv::Writer<&'o mut dyn Write>>),
    JsonLines(BufWriter<&'o mut dyn Write>),
}

impl<'o> Rows<'o> {
    fn new(format: LookupFormat, out: &'o mut dyn Write) -> Rows<'o> {
        const BUFFER: usize = 1 << 16;
        match format {
            LookupFormat::Text => Rows::Text(BufWriter::with_capacity(BUFFER, out)),
            LookupFormat::Csv => Rows::Csv(Box::new(
                csv::WriterBuilder::new()
                    .buffer_capacity(BUFFER)
                    .from_writer(out),
            )),
            LookupFormat::Json => Rows::JsonLines(BufWriter::with_capacity(BUFFER, out)),
        }
    }

    fn number(&mut self, state: &LookupState, line: u64, number: Number) -> io::Result<()> {
        match self {
            Rows::Text(out) => print_answer(out, &state.answer(number)),
            Rows::Csv(rows) => rows
                .serialize(state.row(Some(line), number))
                .map_err(csv_error),
            Rows::JsonLines(out) => {
                serde_json::to_writer(&mut *out, &state.row(Some(line), number))?;
                out.write_all(b"\n")
            }
        }
    }

    /// A bad line is a row in CSV and JSON; for people, stderr has said it.
    fn bad_line(&mut self, bad: &BadLine) -> io::Result<()> {
        let row = LookupRow::bad_line(Some(bad.line), &bad.text, bad.reason.clone());
        match self {
            Rows::Text(_) => Ok(()),
            Rows::Csv(rows) => rows.serialize(row).map_err(csv_error),
            Rows::JsonLines(out) => {
                serde_json::to_writer(&mut *out, &row)?;
                out.write_all(b"\n")
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Rows::Text(out) | Rows::JsonLines(out) => out.flush(),
            Rows::Csv(rows) => rows.flush(),
        }
    }
}

/// Answers every line of `reader`, writing as it goes.
fn stream(
    state: &LookupState,
    path: &Path,
    reader: Box<dyn BufRead + '_>,
    format: LookupFormat,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, CommandError> {
    let mut rows = Rows::new(format, out);
    let mut bad_lines = 0u64;
    for line in NumberLines::new(reader) {
        let line = line.map_err(|source| CommandError::Input {
            path: path.display().to_string(),
            source,
        })?;
        match line {
            Ok((line, number)) => rows.number(state, line, number)?,
            Err(bad) => {
                bad_lines += 1;
                writeln!(err, "{bad}")?;
                rows.bad_line(&bad)?;
            }
        }
    }
    rows.flush()?;
    Ok(if bad_lines > 0 { 1 } else { 0 })
}

/// The file of numbers, or stdin for `-`.
fn open_input(path: &Path) -> Result<Box<dyn BufRead>, CommandError> {
    if path == Path::new("-") {
        return Ok(Box::new(io::stdin().lock()));
    }
    let file = File::open(path).map_err(|source| CommandError::Input {
        path: path.display().to_string(),
        source,
    })?;
    Ok(Box::new(BufReader::with_capacity(1 << 16, file)))
}

fn csv_error(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

/// One number's paragraph.
fn print_answer(out: &mut dyn Write, answer: &LookupAnswer) -> io::Result<()> {
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
    Ok(())
}
