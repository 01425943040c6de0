//! What the source tests configure and read back: an HTTP client quick to give up, so that
//! fault tests stay fast, tag rules, and the entries a fetch covers.

use std::time::Duration;

use dialsync::dialplan::rule::Tag;
use dialsync::source::http::HttpConfig;
use dialsync::source::tag::{TagRule, TagTemplate};
use dialsync::source::{Fetched, LastAnswer, SourceEntries};

/// Short timeouts and retries.
pub fn fast_http() -> HttpConfig {
    HttpConfig {
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_millis(500),
        max_body: 64 * 1024 * 1024,
        retry_initial: Duration::from_millis(10),
        retry_max: Duration::from_millis(50),
        retry_budget: Duration::from_millis(800),
    }
}

/// The tag rule `template` (over the source's `fields`), with a fixed tag for some values.
pub fn tag_rule(template: &str, fields: &[&str], overrides: &[(&str, &str)]) -> TagRule {
    TagRule {
        template: TagTemplate::parse(template, fields).expect("template"),
        overrides: overrides
            .iter()
            .map(|(k, v)| (k.to_string(), Tag::parse(v, 64).expect("tag")))
            .collect(),
    }
}

/// Each entry as `<coverage> <tag>`, in order.
pub fn covered(out: &SourceEntries) -> Vec<String> {
    out.entries
        .iter()
        .map(|e| format!("{} {}", e.coverage, e.tag.as_str()))
        .collect()
}

/// What the agent gives a source before its first answer: the context its digest is keyed by.
pub fn first_answer(context: &[u8]) -> LastAnswer {
    LastAnswer {
        context: context.to_vec(),
        ..LastAnswer::default()
    }
}

/// The entries of a fetch that had to decode its answer.
pub fn decoded(fetched: Fetched) -> SourceEntries {
    match fetched {
        Fetched::Decoded(out) => out,
        Fetched::Unchanged(_) => panic!("the answer was taken as unchanged, not decoded"),
    }
}
