//! The one invariant no write of dialsync may break (DESIGN.md §4): it writes only to rows it
//! owned in the last read of the dial plan, or to indexes no row held. Every other row belongs
//! to someone else (Live Platform's Operator Connect rules, a PBX's, hand-made ones) or cannot
//! be read at all, and is never written, whatever it looks like.
//!
//! The planner keeps the invariant by construction; this module checks it once more on the
//! finished plan, just before anything is sent, because the cost of a mistake is another
//! system's customer route overwritten while the output says success. A plan that breaks it
//! is a bug: it is refused whole, never "fixed up".
//!
//! Pure: a plan and the read it was made from in, a verdict out.

use std::collections::HashMap;

use super::{Op, Route};
use crate::dialplan::rule::{DialPlanRule, UnreadableRow};

/// A plan op that would write a row dialsync does not own.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "refusing the whole plan: its op on index {index} ({op}) would write a row dialsync does \
     not own ({row}); this is a bug in dialsync, please report it; nothing was sent"
)]
pub struct OwnershipBreach {
    pub index: u32,
    /// The row as last read.
    pub row: String,
    /// The op, as a person reads it.
    pub op: String,
}

/// Whether every op of `ops` targets an index that held one of dialsync's rules (Name
/// `rule_name`) in the read `rules` + `unreadable`, or one that no row held, where only an add
/// may go. With `adopt_foreign`, an op may also take over a readable foreign rule whose prefix
/// it keeps exactly (DESIGN.md §4): that and nothing else is what adopting means.
///
/// Through Live Platform, whose rules have no index, the indexes are positions in the same
/// read, so the check says the same thing there: no remove names a rule that is not ours.
pub fn check(
    ops: &[Op],
    rules: &[DialPlanRule],
    unreadable: &[UnreadableRow],
    rule_name: &str,
    adopt_foreign: bool,
) -> Result<(), OwnershipBreach> {
    if ops.is_empty() {
        // Nothing written, nothing to prove; indexing a 100k-rule plan for that was wasted.
        return Ok(());
    }
    enum Row<'a> {
        Rule(&'a DialPlanRule),
        Unreadable(&'a UnreadableRow),
    }
    let mut rows: HashMap<u32, Row> = HashMap::with_capacity(rules.len() + unreadable.len());
    rows.extend(rules.iter().map(|r| (r.index, Row::Rule(r))));
    // An index both read as a rule and unreadable is unreadable: the stricter reading wins.
    rows.extend(unreadable.iter().map(|u| (u.index, Row::Unreadable(u))));
    for op in ops {
        let breach = |row: String| OwnershipBreach {
            index: op.index,
            row,
            op: describe(op),
        };
        match rows.get(&op.index) {
            None if op.before.is_none() => {}
            None => {
                return Err(breach(
                    "no row: the op replaces a rule that is not there".into(),
                ))
            }
            Some(Row::Unreadable(row)) => return Err(breach(format!("unreadable {row}"))),
            Some(Row::Rule(rule)) if &*rule.name == rule_name => {}
            Some(Row::Rule(rule)) => {
                let adopts = adopt_foreign
                    && op.before.as_ref() == Some(&route_of(rule))
                    && op.after.as_ref().is_some_and(|to| to.prefix == rule.prefix);
                if !adopts {
                    return Err(breach(format!(
                        "name {:?}, prefix {}, tag {}",
                        rule.name, rule.prefix, rule.tag
                    )));
                }
            }
        }
    }
    Ok(())
}

fn route_of(rule: &DialPlanRule) -> Route {
    Route {
        prefix: rule.prefix.clone(),
        tag: rule.tag.clone(),
    }
}

fn describe(op: &Op) -> String {
    let route = |r: &Option<Route>| r.as_ref().map_or("-".to_string(), ToString::to_string);
    format!(
        "{} {} to {}",
        op.kind(),
        route(&op.before),
        route(&op.after)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialplan::pattern::Pattern;
    use crate::dialplan::rule::Tag;

    fn route(prefix: &str, tag: &str) -> Route {
        Route {
            prefix: Pattern::parse(prefix).unwrap(),
            tag: Tag::parse(tag, 64).unwrap(),
        }
    }

    fn rule(index: u32, name: &str, prefix: &str, tag: &str) -> DialPlanRule {
        DialPlanRule::read(index, name, prefix, tag).unwrap()
    }

    fn op(index: u32, before: Option<Route>, after: Option<Route>) -> Op {
        Op {
            index,
            before,
            after,
        }
    }

    #[test]
    fn only_owned_and_free_indexes_are_written() {
        let rules = [
            rule(0, "LivePlatform", "+97239753000", "sandbox1.audiocodes.be"),
            rule(1, "dialsync", "+3226#", "T=a"),
        ];
        let unreadable = [UnreadableRow::new(2, "odd", "prefix \"53([2-4])\"")];
        let ours = route("+3226#", "T=a");
        let fine = [
            op(1, Some(ours.clone()), Some(route("+3227#", "T=b"))),
            op(1, Some(ours.clone()), None),
            op(3, None, Some(route("+3228#", "T=c"))),
        ];
        assert_eq!(check(&fine, &rules, &unreadable, "dialsync", false), Ok(()));

        let live = route("+97239753000", "sandbox1.audiocodes.be");
        for (bad, adopt) in [
            // Live Platform's rule, edited, deleted or written over by an add.
            (
                op(0, Some(live.clone()), Some(route("+3229#", "T=d"))),
                false,
            ),
            (op(0, Some(live.clone()), None), false),
            (op(0, None, Some(route("+3229#", "T=d"))), false),
            // The unreadable row, even with adoption allowed.
            (op(2, None, Some(route("+3229#", "T=d"))), true),
            (op(2, Some(ours.clone()), None), true),
            // Adoption keeps the prefix; anything else is not adoption.
            (
                op(0, Some(live.clone()), Some(route("+3229#", "T=d"))),
                true,
            ),
            (op(0, Some(live.clone()), None), true),
            // A modify or delete of a row that is not there.
            (op(9, Some(ours.clone()), None), false),
        ] {
            let err = check(
                std::slice::from_ref(&bad),
                &rules,
                &unreadable,
                "dialsync",
                adopt,
            )
            .expect_err(&describe(&bad));
            assert_eq!(err.index, bad.index);
            assert!(err.to_string().contains("nothing was sent"), "{err}");
        }
        let breach = check(
            &[op(0, None, Some(route("+3229#", "T=d")))],
            &rules,
            &unreadable,
            "dialsync",
            false,
        )
        .unwrap_err();
        assert!(
            breach.row.contains("LivePlatform") && breach.row.contains("sandbox1.audiocodes.be"),
            "{breach}"
        );

        let adopted = op(0, Some(live), Some(route("+97239753000", "T=ours")));
        assert_eq!(
            check(
                std::slice::from_ref(&adopted),
                &rules,
                &unreadable,
                "dialsync",
                true
            ),
            Ok(())
        );
        assert!(check(&[adopted], &rules, &unreadable, "dialsync", false).is_err());
    }
}
