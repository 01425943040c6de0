//! Holding back the ops a refused op leaves unsafe to send, shared by both sinks.
//!
//! Both sinks quarantine an op the other side refuses and go on with the plan. But the plan
//! is ordered make-before-break (DESIGN.md §6): each op may rely on the ones before it, so
//! once one is refused the later ops touching its numbers are no longer safe to send (a
//! refused rule was to take over numbers that a later delete gives up). [`Withheld`] tracks
//! which numbers refused ops touch and tells the sink which later ops to hold back.

use crate::dialplan::pattern::Span;
use crate::plan::{Op, Route};

/// The ops an apply holds back because the other side refused an op they depend on.
///
/// The plan is ordered so that every prefix of it keeps each number routed (make-before-break,
/// DESIGN.md §6). A refused op breaks that for the ops after it: one may give up numbers only
/// the refused op was to cover, or bring in a broader rule the refused one was to be more
/// specific than. (Sending them anyway unrouted the numbers a refused rule was to take over
/// from a rule deleted later in the plan.) So every later op touching numbers that a refused
/// or held-back op touches (before or after) is held back as well, and quarantined for the
/// next cycle's fresh plan: each such number stays as the plan left it just before the first
/// refused op touching it, which is routed.
#[derive(Debug)]
pub(crate) struct Withheld {
    /// Who refuses ops, for the reason of a held-back one ("the SBC", "Live Platform").
    refuser: &'static str,
    /// Key intervals touched by refused or held-back ops, with the index of the refused op
    /// they go back to.
    spans: Vec<(u64, u64, u32)>,
    /// A refused or held-back op has a rule whose numbers are not one interval (an adopted
    /// foreign rule): every later op is held back.
    everything: Option<u32>,
}

impl Withheld {
    /// Nothing held back yet; `refuser` names the side that refuses ops in the reasons.
    pub(crate) fn new(refuser: &'static str) -> Withheld {
        Withheld {
            refuser,
            spans: Vec::new(),
            everything: None,
        }
    }

    /// Records an op the other side refused.
    pub(crate) fn refused(&mut self, op: &Op) {
        self.touch(op, op.index);
    }

    fn touch(&mut self, op: &Op, cause: u32) {
        for route in op.before.iter().chain(&op.after) {
            match route_spans(route) {
                Some(spans) => self
                    .spans
                    .extend(spans.into_iter().map(|(lo, hi)| (lo, hi, cause))),
                None => self.everything = self.everything.or(Some(cause)),
            }
        }
    }

    /// Why `op` must not be sent, if it must not; it is then recorded as held back.
    pub(crate) fn blocking(&mut self, op: &Op) -> Option<String> {
        if self.spans.is_empty() && self.everything.is_none() {
            return None;
        }
        let mut cause = self.everything;
        for route in op.before.iter().chain(&op.after) {
            if cause.is_some() {
                break;
            }
            cause = match route_spans(route) {
                Some(spans) => self.spans.iter().find_map(|&(lo, hi, index)| {
                    spans
                        .iter()
                        .any(|&(l, h)| l <= hi && lo <= h)
                        .then_some(index)
                }),
                None => self.spans.first().map(|&(_, _, index)| index),
            };
        }
        let cause = cause?;
        self.touch(op, cause);
        Some(format!(
            "held back: it touches numbers of rule {cause}, which {} refused, and sending \
             it alone could leave them unrouted; the next cycle plans it again",
            self.refuser
        ))
    }
}

/// The key intervals `route`'s prefix covers, `None` when it is not of dialsync's shapes.
fn route_spans(route: &Route) -> Option<Vec<(u64, u64)>> {
    match route.prefix.span()? {
        Span::Range(range) => Some(vec![(range.lo().key(), range.hi().key())]),
        Span::Prefix(open) => Some(
            open.ranges()
                .map(|range| (range.lo().key(), range.hi().key()))
                .collect(),
        ),
    }
}
