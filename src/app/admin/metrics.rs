//! The Prometheus text exposition of a [`Status`], for `/metrics`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::status::{SourceState, SourceStatus, Status};

/// The content type of the Prometheus text exposition format this module writes.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The Prometheus text exposition (format 0.0.4) of `status`.
///
/// Hand-written: the families are few and fixed, and the values already live in
/// [`Status`], so a metrics registry would only be a second copy of them to keep in step.
/// Labels only ever hold a build version, an operation kind or a configured source name:
/// never a number or an item, whose cardinality upstream data would decide.
pub fn render_metrics(status: &Status) -> String {
    let mut out = Exposition::default();

    out.family(GAUGE, "dialsync_build_info", "Build information; always 1.")
        .sample(&[("version", env!("CARGO_PKG_VERSION"))], Value::Int(1));

    out.family(
        GAUGE,
        "dialsync_last_success_timestamp_seconds",
        "When the last cycle that converged finished, in Unix seconds; 0 if none has.",
    )
    .sample(
        &[],
        Value::Float(status.last_success_unix_ms.map_or(0.0, ms_to_seconds)),
    );

    let last = status.last_cycle.as_ref();
    let mut family = out.family(
        GAUGE,
        "dialsync_last_cycle_duration_seconds",
        "How long the last finished cycle took; absent before the first.",
    );
    if let Some(cycle) = last {
        family.sample(&[], Value::Float(cycle.duration_ms as f64 / 1000.0));
    }
    let mut family = out.family(
        GAUGE,
        "dialsync_last_cycle_timestamp_seconds",
        "When the last finished cycle finished, in Unix seconds; absent before the first.",
    );
    if let Some(cycle) = last {
        family.sample(&[], Value::Float(ms_to_seconds(cycle.finished_unix_ms)));
    }
    let mut family = out.family(
        GAUGE,
        "dialsync_next_cycle_timestamp_seconds",
        "When the next cycle is due, in Unix seconds; absent when none is scheduled.",
    );
    if let Some(next) = status.next_cycle_unix_ms {
        family.sample(&[], Value::Float(ms_to_seconds(next)));
    }
    out.family(
        GAUGE,
        "dialsync_cycle_running",
        "1 while a cycle is in progress.",
    )
    .sample(&[], Value::Int(u64::from(status.cycle_running)));

    let totals = &status.totals;
    out.family(
        COUNTER,
        "dialsync_cycles_total",
        "Cycles finished since the process started, whatever their outcome.",
    )
    .sample(&[], Value::Int(totals.cycles));
    out.family(
        COUNTER,
        "dialsync_cycles_failed_total",
        "Cycles that failed since the process started.",
    )
    .sample(&[], Value::Int(totals.cycles_failed));
    let mut family = out.family(
        COUNTER,
        "dialsync_ops_applied_total",
        "Dial-plan rule operations written to the SBC since the process started, by kind.",
    );
    let ops = &totals.ops_applied;
    for (kind, count) in [
        ("add", ops.add),
        ("modify", ops.modify),
        ("delete", ops.delete),
    ] {
        family.sample(&[("kind", kind)], Value::Int(count));
    }

    for (name, help, value) in [
        (
            "dialsync_owned_rules",
            "Rules of the dial plan that dialsync owns, as of the last cycle.",
            status.rules.owned,
        ),
        (
            "dialsync_foreign_rules",
            "Rules of the dial plan that dialsync does not own, as of the last cycle.",
            status.rules.foreign,
        ),
        (
            "dialsync_desired_rules",
            "Rules the desired state compiled to in the last cycle.",
            status.rules.desired,
        ),
        (
            "dialsync_rejected_items",
            "Upstream items refused in the last cycle.",
            status.rejected_total,
        ),
        (
            "dialsync_conflicts",
            "Partial overlaps settled by source order in the last cycle.",
            status.conflicts_total,
        ),
        (
            "dialsync_foreign_collisions",
            "Desired rules not applied in the last cycle because a foreign rule has their prefix.",
            status.foreign_collisions_total,
        ),
        (
            "dialsync_unreadable_rules",
            "Rows of the dial plan dialsync could not read in the last cycle; never written.",
            status.unreadable_rows_total,
        ),
        (
            "dialsync_plan_blocked",
            "1 when the safety gate or the capacity limit blocked the last plan.",
            u64::from(status.blocked.is_some()),
        ),
    ] {
        out.family(GAUGE, name, help).sample(&[], Value::Int(value));
    }

    // The audit after the last cycle that read the SBC; no samples before one has.
    let audit = status.audit.as_ref();
    let mut family = out.family(
        GAUGE,
        "dialsync_audit_numbers",
        "Numbers the sources assign, by what the dial plan does with them after the last cycle.",
    );
    if let Some(a) = audit {
        for (result, count) in [
            ("routed", a.counts.routed),
            ("misrouted", a.counts.misrouted),
            ("shadowed", a.counts.shadowed),
            ("unrouted", a.counts.unrouted),
            ("unchecked", a.counts.unchecked),
        ] {
            family.sample(&[("result", result)], Value::Int(count));
        }
    }
    for (name, help, value) in [
        (
            "dialsync_audit_routed_by_foreign_numbers",
            "Of the routed numbers, those a foreign rule with the desired tag wins.",
            audit.map(|a| a.counts.routed_by_foreign),
        ),
        (
            "dialsync_audit_stray_rules",
            "Owned rules routing numbers no source assigns, after the last cycle.",
            audit.map(|a| a.counts.stray_rules),
        ),
        (
            "dialsync_audit_stray_numbers",
            "Numbers no source assigns that an owned rule routes, after the last cycle.",
            audit.map(|a| a.counts.stray_numbers),
        ),
    ] {
        let mut family = out.family(GAUGE, name, help);
        if let Some(value) = value {
            family.sample(&[], Value::Int(value));
        }
    }

    // Per-source families. The config keeps names unique, but a series must never repeat,
    // so a repeated name keeps its first entry.
    let mut seen = BTreeSet::new();
    let sources: Vec<&SourceStatus> = status
        .sources
        .iter()
        .filter(|source| seen.insert(source.name.as_str()))
        .collect();

    let mut family = out.family(
        GAUGE,
        "dialsync_source_up",
        "1 when the source's last fetch succeeded in full, else 0.",
    );
    for source in &sources {
        let up = u64::from(source.state == SourceState::Ok);
        family.sample(&[("source", &source.name)], Value::Int(up));
    }
    let mut family = out.family(
        GAUGE,
        "dialsync_source_last_success_timestamp_seconds",
        "When the source last answered in full, in Unix seconds; absent if never.",
    );
    for source in &sources {
        if let Some(at) = source.last_good_fetch_unix {
            family.sample(&[("source", &source.name)], Value::Float(at as f64));
        }
    }
    let mut family = out.family(
        GAUGE,
        "dialsync_source_entries",
        "Entries the source contributed to the last cycle.",
    );
    for source in &sources {
        family.sample(&[("source", &source.name)], Value::Int(source.entries));
    }
    let mut family = out.family(
        GAUGE,
        "dialsync_source_rejected_items",
        "Items of the source refused in the last cycle.",
    );
    for source in &sources {
        family.sample(&[("source", &source.name)], Value::Int(source.rejected));
    }

    // Every configured source gets a series, 0 until it fails, so `rate()` sees the first
    // error; a source no longer configured keeps its count until the process restarts.
    let mut errors: BTreeMap<&str, u64> = sources
        .iter()
        .map(|source| (source.name.as_str(), 0))
        .collect();
    for (name, count) in &totals.source_fetch_errors {
        errors.insert(name, *count);
    }
    let mut family = out.family(
        COUNTER,
        "dialsync_source_fetch_errors_total",
        "Failed fetches since the process started, by source.",
    );
    for (name, count) in errors {
        family.sample(&[("source", name)], Value::Int(count));
    }

    out.text
}

fn ms_to_seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// A sample value: counts print as integers, so they never show a float's rounding.
enum Value {
    Int(u64),
    Float(f64),
}

const GAUGE: &str = "gauge";
const COUNTER: &str = "counter";

/// The exposition text being written.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    /// Starts a family with its HELP and TYPE lines. Its samples are written through the
    /// returned handle, which borrows the text: a sample can only follow its own family's
    /// header, and the next family cannot start before this one is done, as the format
    /// requires.
    fn family<'a>(&'a mut self, kind: &str, name: &'a str, help: &str) -> Family<'a> {
        // Writing to a String cannot fail.
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
        Family {
            text: &mut self.text,
            name,
        }
    }
}

/// The family being written; see [`Exposition::family`].
struct Family<'a> {
    text: &'a mut String,
    name: &'a str,
}

impl Family<'_> {
    fn sample(&mut self, labels: &[(&str, &str)], value: Value) {
        self.text.push_str(self.name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{label}=\"{}\"", escape_label(value));
            }
            self.text.push('}');
        }
        let _ = match value {
            Value::Int(v) => writeln!(self.text, " {v}"),
            Value::Float(v) if v.is_nan() => writeln!(self.text, " NaN"),
            Value::Float(v) if v.is_infinite() => {
                writeln!(self.text, " {}", if v > 0.0 { "+Inf" } else { "-Inf" })
            }
            // Rust prints finite floats in plain decimal, which the format accepts.
            Value::Float(v) => writeln!(self.text, " {v}"),
        };
    }
}

/// Escapes a label value: backslash, double quote and newline, as the format requires.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes HELP text: backslash and newline (a quote needs no escape there).
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("x\ny"), "x\\ny");
        assert_eq!(escape_help("a\\b\nc"), "a\\\\b\\nc");
    }
}
