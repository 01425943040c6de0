//! The plan's checksum: what an operator quotes to `apply --force --checksum`, so that exactly
//! the plan they read is applied, or nothing.

use sha2::{Digest, Sha256};

use super::{Op, Route};

/// SHA-256 over the ops in a canonical text form: one line per op, in order, fields separated by
/// tabs (which no prefix or tag may contain). Stable across runs and platforms.
pub fn checksum(ops: &[Op]) -> String {
    let mut hasher = Sha256::new();
    for op in ops {
        let field = |route: &Option<Route>| {
            route.as_ref().map_or((String::new(), String::new()), |r| {
                (r.prefix.to_string(), r.tag.to_string())
            })
        };
        let (before_prefix, before_tag) = field(&op.before);
        let (after_prefix, after_tag) = field(&op.after);
        hasher.update(
            format!(
                "{}\t{}\t{before_prefix}\t{before_tag}\t{after_prefix}\t{after_tag}\n",
                op.kind(),
                op.index
            )
            .as_bytes(),
        );
    }
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
