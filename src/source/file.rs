//! The static file source (DESIGN.md §5.5): numbers no upstream knows about (emergency, test
//! numbers), kept by the operator as CSV with the header `start,end,tag`.
//!
//! `end` may be empty for a single number; a trailing `*` on `start` makes an open prefix.
//! Every refused line is reported with its line number and the rest of the file still counts.

use std::io::Read;

use super::{ItemLimits, Rejected, SourceEntries};
use crate::dialplan::rule::Tag;
use crate::error::{Classify, ErrorClass};
use crate::number::{NumberRange, OpenPrefix};
use crate::resolve::{Coverage, Entry, Provenance};

/// The file as a whole could not be used: nothing from it can be trusted.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: the first line must be the header start,end,tag (found {found:?})")]
    Header { path: String, found: String },
    #[error("{path}: {size} bytes, larger than max_body ({max} bytes)")]
    TooLarge { path: String, size: u64, max: usize },
}

impl Classify for FileError {
    fn class(&self) -> ErrorClass {
        match self {
            // The file may be mid-rewrite or on a slow mount: the next cycle tries again, and
            // meanwhile the source's last good snapshot stands in.
            FileError::Read { .. } => ErrorClass::Transient,
            FileError::Header { .. } | FileError::TooLarge { .. } => ErrorClass::Fatal,
        }
    }
}

/// Parses a static CSV. `source` names the source in provenance; `path` names the file in errors.
///
/// Lines are read one by one so that every message carries the physical line number an
/// operator sees in an editor (blank lines and `#` comments included in the count). A line is
/// split with the csv crate when it quotes a field; a quoted field cannot span lines.
pub fn parse_csv(
    mut input: impl Read,
    source: &str,
    path: &str,
    limits: ItemLimits,
) -> Result<SourceEntries, FileError> {
    let mut text = String::new();
    input
        .read_to_string(&mut text)
        .map_err(|source| FileError::Read {
            path: path.to_string(),
            source,
        })?;
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, line)| (i as u64 + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'));
    let header = match lines.next() {
        Some((_, line)) => split_fields(line).unwrap_or_default(),
        None => Vec::new(),
    };
    if header != ["start", "end", "tag"] {
        return Err(FileError::Header {
            path: path.to_string(),
            found: header.join(","),
        });
    }
    let shared = std::sync::Arc::new(source.to_string());
    let mut out = SourceEntries::default();
    for (line, text) in lines {
        let parsed = split_fields(text).and_then(|fields| parse_fields(&fields, limits));
        match parsed {
            Ok((coverage, tag)) => out.entries.push(Entry {
                coverage,
                tag,
                provenance: Provenance {
                    source: shared.clone(),
                    item: format!("line {line}").into(),
                },
            }),
            Err(reason) => out.rejected.push(Rejected {
                item: format!("line {line}"),
                reason,
            }),
        }
    }
    Ok(out)
}

/// The trimmed fields of one line.
fn split_fields(line: &str) -> Result<Vec<String>, String> {
    if !line.contains('"') {
        return Ok(line.split(',').map(|f| f.trim().to_string()).collect());
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(line.as_bytes());
    match reader.records().next() {
        Some(Ok(record)) => Ok(record.iter().map(str::to_string).collect()),
        Some(Err(e)) => Err(format!("not valid CSV: {e}")),
        None => Ok(Vec::new()),
    }
}

fn parse_fields(fields: &[String], limits: ItemLimits) -> Result<(Coverage, Tag), String> {
    let [start, end, tag] = fields else {
        return Err(format!(
            "expected 3 fields start,end,tag, found {}",
            fields.len()
        ));
    };
    let (start, end) = (start.as_str(), end.as_str());
    let tag = Tag::parse(tag, limits.max_tag_len).map_err(|e| format!("tag {tag:?}: {e}"))?;
    let coverage = match start.strip_suffix('*') {
        Some(_) if !end.is_empty() => {
            return Err(format!(
                "open prefix {start:?} takes no end (found {end:?})"
            ))
        }
        Some(digits) => Coverage::Prefix(
            OpenPrefix::parse(digits).map_err(|e| format!("prefix {start:?}: {e}"))?,
        ),
        None => Coverage::Range(
            NumberRange::parse(start, Some(end), limits.max_range_size).map_err(|e| {
                if end.is_empty() {
                    format!("number {start:?}: {e}")
                } else {
                    format!("range {start:?}..{end:?}: {e}")
                }
            })?,
        ),
    };
    Ok((coverage, tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SourceEntries, FileError> {
        parse_csv(
            text.as_bytes(),
            "static",
            "static.csv",
            ItemLimits::default(),
        )
    }

    #[test]
    fn accepts_ranges_singles_and_prefixes() {
        let parsed = parse(
            "start,end,tag\n\
             +3226127000,+3226127099,Trunk=a\n\
             +32 2 612 71 00,,Trunk=b\n\
             # emergency numbers\n\
             \n\
             +3201*,,Trunk=c\n",
        )
        .unwrap();
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
        let covered: Vec<String> = parsed
            .entries
            .iter()
            .map(|e| e.coverage.to_string())
            .collect();
        assert_eq!(
            covered,
            ["+3226127000..+3226127099", "+3226127100", "+3201*"]
        );
        assert_eq!(parsed.entries[2].provenance.item, "line 6");
    }

    #[test]
    fn refuses_lines_one_by_one_with_their_number() {
        let parsed = parse(
            "start,end,tag\n\
             +32a,,T=1\n\
             +3210,+3201,T=1\n\
             +3210,+32100,T=1\n\
             +1234567890123456,,T=1\n\
             +3210,,\n\
             +32*,+33,T=1\n\
             +3210,,T=1,extra\n\
             +3299,,T=ok\n\
             \"+3298\",,\"T=quoted\"\n\
             \"+3297,,T=1\n",
        )
        .unwrap();
        let lines: Vec<&str> = parsed.rejected.iter().map(|r| r.item.as_str()).collect();
        assert_eq!(
            lines,
            ["line 2", "line 3", "line 4", "line 5", "line 6", "line 7", "line 8", "line 11"]
        );
        assert!(parsed.rejected[0].reason.contains("'a' at position 3"));
        assert!(parsed.rejected[1].reason.contains("after its end"));
        assert!(parsed.rejected[2].reason.contains("different digit counts"));
        assert!(parsed.rejected[3].reason.contains("more than the 15"));
        assert!(parsed.rejected[4].reason.contains("empty tag"));
        assert!(parsed.rejected[5].reason.contains("takes no end"));
        assert!(parsed.rejected[6].reason.contains("found 4"));
        assert_eq!(parsed.entries.len(), 2);
        assert_eq!(parsed.entries[1].tag.as_str(), "T=quoted");
    }

    #[test]
    fn a_wrong_header_refuses_the_file() {
        let err = parse("number,tag\n+3210,T=1\n").unwrap_err();
        assert!(err.to_string().contains("start,end,tag"), "{err}");
    }
}
