//! Compilation: a resolved [`Mapping`] becomes the fewest dial-plan rules that route every
//! number exactly as the mapping says under the SBC's best match.
//!
//! Three encodings (DESIGN.md §4), because firmware and operators differ:
//! - `ranges` (default): one rule per maximal same-tag range, `+322612700[0-2]#`, split only
//!   where a bracket would pass `max_bracket_digits` or an open prefix would otherwise win part
//!   of the range.
//! - `prefixes`: digits then `x`s then `#`, no brackets. Per number length this is routing-table
//!   compression with longest-prefix match, and ORTC (Draves et al., "Constructing optimal IP
//!   routing tables", 1999), generalised from binary to 10-ary tries, gives the provably minimal
//!   count: among rule sets made of digit prefixes padded with `x` (no `x` between digits), none
//!   is smaller. Open prefixes act as fixed routes.
//! - `numbers`: one rule per number, for firmware that rejects brackets.
//!
//! Open prefixes always compile to one rule each: their digits, no `#`.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use crate::dialplan::pattern::{Pattern, PatternBuilder};
use crate::number::{Number, NumberRange, MAX_DIGITS, POW10};
use crate::resolve::{Mapping, TagId};

/// How a mapping is written as rules (`dialplan.encoding`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Encoding {
    #[default]
    Ranges,
    Prefixes,
    Numbers,
}

impl FromStr for Encoding {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ranges" => Ok(Encoding::Ranges),
            "prefixes" => Ok(Encoding::Prefixes),
            "numbers" => Ok(Encoding::Numbers),
            other => Err(format!(
                "unknown encoding {other:?} (expected ranges, prefixes or numbers)"
            )),
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Encoding::Ranges => "ranges",
            Encoding::Prefixes => "prefixes",
            Encoding::Numbers => "numbers",
        })
    }
}

/// A rule before it has a place in the dial plan: what it matches and where it routes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledRule {
    pub prefix: Pattern,
    pub tag: TagId,
    /// The first number the rule routes: the canonical order of compiled rules.
    pub first: Number,
}

/// Compiles `mapping` into rules in canonical order: by the first number each rule routes.
/// `max_bracket_digits` is at least 1 (config validation enforces it; 0 is read as 1).
pub fn compile(
    mapping: &Mapping,
    encoding: Encoding,
    max_bracket_digits: usize,
) -> Vec<CompiledRule> {
    let mut rules: Vec<CompiledRule> = mapping
        .prefixes()
        .iter()
        .map(|&(prefix, tag)| CompiledRule {
            prefix: Pattern::open_prefix(prefix),
            tag,
            first: prefix.digits(),
        })
        .collect();
    match encoding {
        Encoding::Ranges => {
            let limit = max_bracket_digits.clamp(1, MAX_DIGITS as usize);
            for &(range, tag) in mapping.ranges() {
                let mut emit = |prefix, first| rules.push(CompiledRule { prefix, tag, first });
                if mapping
                    .open_boundaries_within(range.lo(), range.hi())
                    .is_empty()
                {
                    range_patterns(range, limit, &mut emit);
                } else {
                    for piece in safe_pieces(mapping, range, tag) {
                        range_patterns(piece, limit, &mut emit);
                    }
                }
            }
        }
        Encoding::Numbers => {
            for &(range, tag) in mapping.ranges() {
                rules.extend(range.numbers().map(|number| CompiledRule {
                    prefix: Pattern::exact(number),
                    tag,
                    first: number,
                }));
            }
        }
        Encoding::Prefixes => {
            for len in 1..=MAX_DIGITS {
                Ortc::new(mapping, len).run(&mut rules);
            }
        }
    }
    // Stable, so rules routing from the same first number keep their emission order (an open
    // prefix before the ranges under it, a broader ORTC rule before the narrower ones).
    rules.sort_by_key(|rule| (rule.first, rule.prefix.is_anchored()));
    rules
}

/// How many leading digits `lo` and `hi` (same length) share.
fn common_digits(lo: Number, hi: Number) -> u32 {
    let len = lo.len();
    (0..len)
        .find(|&p| lo.digit(p) != hi.digit(p))
        .unwrap_or(len)
}

/// Splits a range so that no open prefix can win a number of it with another tag.
///
/// A range rule beats an open prefix exactly when the range's shared leading digits are at
/// least as many as the prefix's. A range straddling a prefix boundary (a resolved conflict,
/// or a range merged across one) may fall short; it is cut at the open layer's boundaries,
/// and each part lies inside or outside every prefix.
fn safe_pieces(mapping: &Mapping, range: NumberRange, tag: TagId) -> Vec<NumberRange> {
    let boundaries = mapping.open_boundaries_within(range.lo(), range.hi());
    let mut cuts: Vec<NumberRange> = Vec::with_capacity(boundaries.len() + 1);
    let mut lo = range.lo();
    for &boundary in boundaries {
        let (Some(start), Some(end)) = (Number::from_key(boundary), Number::from_key(boundary - 1))
        else {
            continue;
        };
        cuts.extend(NumberRange::between(lo, end));
        lo = start;
    }
    cuts.extend(NumberRange::between(lo, range.hi()));
    let shared = common_digits(range.lo(), range.hi());
    let harmless = cuts
        .iter()
        .all(|cut| match mapping.longest_prefix(cut.lo()) {
            Some((prefix, prefix_tag)) => prefix_tag == tag || prefix.len() <= shared,
            None => true,
        });
    if harmless {
        vec![range]
    } else {
        cuts
    }
}

/// Emits the `ranges`-encoding patterns of one range: shared digits, one bracket over the
/// differing digits, `x` over a fully covered tail, `#`; split only where the bracket would be
/// wider than `limit` digits.
fn range_patterns(range: NumberRange, limit: usize, emit: &mut impl FnMut(Pattern, Number)) {
    let (lo, hi) = (range.lo(), range.hi());
    let len = lo.len();
    let shared = common_digits(lo, hi);
    let tail = (len - shared) as usize;
    let aligned = (0..=tail)
        .rev()
        .find(|&t| lo.value() % POW10[t] == 0 && hi.value() % POW10[t] == POW10[t] - 1)
        .unwrap_or(0);
    let bracket = tail - aligned;
    if bracket <= limit {
        let mut builder = PatternBuilder::digits(lo, shared);
        if bracket > 0 {
            let (scale, modulo) = (POW10[aligned], POW10[bracket]);
            let value = |n: Number| (n.value() / scale) % modulo;
            builder = builder.range(bracket, value(lo), value(hi));
        }
        if let Some(pattern) = builder.any_digits(aligned).anchored() {
            emit(pattern, lo);
        }
        return;
    }
    // Too wide: the middle in whole blocks of the widest bracket, the ends recursively.
    let unit = POW10[tail - limit];
    let (lo_v, hi_v) = (lo.value(), hi.value());
    let first_block = lo_v.div_ceil(unit) * unit;
    let end_block = (hi_v + 1) / unit * unit;
    let part = |a: u64, b: u64| {
        let from = Number::from_u64(a).ok()?;
        NumberRange::between(from, Number::from_u64(b).ok()?)
    };
    let parts = [
        (lo_v < first_block).then(|| part(lo_v, first_block - 1)),
        (first_block < end_block).then(|| part(first_block, end_block - 1)),
        (end_block <= hi_v && end_block >= first_block).then(|| part(end_block, hi_v)),
    ];
    for piece in parts.into_iter().flatten().flatten() {
        range_patterns(piece, limit, emit);
    }
}

/// A label in ORTC's sets: a tag, or "no route" (which no rule can produce).
const UNROUTED: TagId = TagId::MAX;

/// ORTC over the numbers of one length, on a sparse digit trie: only nodes whose numbers do
/// not all route alike are expanded, so the work follows the mapping's size, not 10^length.
struct Ortc<'a> {
    mapping: &'a Mapping,
    len: u32,
    /// The mapping's ranges of this length.
    ranges: &'a [(NumberRange, TagId)],
    /// Open prefixes by digits (as number key), for resetting inheritance.
    open: HashMap<u64, TagId>,
}

/// A node of the trie: `depth` leading digits equal to `value`.
struct Node {
    depth: u32,
    value: u64,
    /// ORTC's candidate set for the subtree (None: the subtree holds no number at all).
    labels: Option<Vec<TagId>>,
    children: Vec<Node>,
    /// Tag of the open prefix ending at this node: best match restarts from it here.
    open: Option<TagId>,
}

impl<'a> Ortc<'a> {
    fn new(mapping: &'a Mapping, len: u32) -> Ortc<'a> {
        let ranges = mapping.ranges();
        let from = ranges.partition_point(|(r, _)| r.len() < len);
        let to = ranges.partition_point(|(r, _)| r.len() <= len);
        let open = mapping
            .prefixes()
            .iter()
            .filter(|(p, _)| p.len() <= len)
            .map(|&(p, tag)| (p.digits().key(), tag))
            .collect();
        Ortc {
            mapping,
            len,
            ranges: &ranges[from..to],
            open,
        }
    }

    fn run(&self, rules: &mut Vec<CompiledRule>) {
        if self.ranges.is_empty() {
            return; // Prefixes alone already route this length exactly.
        }
        let root = self.build(0, 0);
        self.choose(&root, UNROUTED, rules);
    }

    /// The numbers under a node, as values.
    fn span(&self, depth: u32, value: u64) -> (u64, u64) {
        let scale = POW10[(self.len - depth) as usize];
        let lo = (value * scale).max(POW10[self.len as usize - 1]);
        (lo, value * scale + scale - 1)
    }

    /// The single label of every number in `[lo, hi]`, if they all share one.
    fn uniform(&self, lo: u64, hi: u64) -> Option<TagId> {
        let lo_n = Number::from_u64(lo).ok()?;
        let hi_n = Number::from_u64(hi).ok()?;
        if !self.mapping.open_boundaries_within(lo_n, hi_n).is_empty() {
            return None;
        }
        let i = self.ranges.partition_point(|(r, _)| r.hi() < lo_n);
        match self.ranges.get(i) {
            Some((r, tag)) if r.lo() <= lo_n && hi_n <= r.hi() => Some(*tag),
            Some((r, _)) if r.lo() <= hi_n => None,
            _ => Some(
                self.mapping
                    .longest_prefix(lo_n)
                    .map_or(UNROUTED, |(_, tag)| tag),
            ),
        }
    }

    /// Pass 1, bottom up: each node's candidate labels, those in the most children's sets.
    /// (ORTC's "intersection if not empty, else union" is this rule for two children; on a
    /// 10-ary trie it is what keeps the count minimal.) A subtree holding an unrouted number can
    /// carry no rule (nothing can unroute below it), so its set is forced to "unrouted".
    fn build(&self, depth: u32, value: u64) -> Node {
        let open = (depth > 0)
            .then(|| Number::from_u64(value).ok())
            .flatten()
            .and_then(|n| self.open.get(&n.key()).copied());
        let (lo, hi) = self.span(depth, value);
        if let Some(label) = self.uniform(lo, hi) {
            return Node {
                depth,
                value,
                labels: Some(vec![label]),
                children: Vec::new(),
                open,
            };
        }
        let first_digit = if depth == 0 { 1 } else { 0 };
        let children: Vec<Node> = (first_digit..10)
            .map(|d| self.build(depth + 1, value * 10 + d))
            .collect();
        let sets: Vec<&Vec<TagId>> = children.iter().filter_map(Node::seen_from_parent).collect();
        let labels = if sets.is_empty() {
            None
        } else if sets.iter().any(|set| set.contains(&UNROUTED)) {
            Some(vec![UNROUTED])
        } else {
            Some(most_shared(&sets))
        };
        Node {
            depth,
            value,
            labels,
            children,
            open,
        }
    }

    /// Pass 2, top down: keep the inherited label where the set allows it, else emit a rule.
    fn choose(&self, node: &Node, inherited: TagId, rules: &mut Vec<CompiledRule>) {
        let Some(labels) = &node.labels else {
            return;
        };
        let inherited = node.open.unwrap_or(inherited);
        let chosen = if labels.contains(&inherited) {
            inherited
        } else {
            let Some(&label) = labels.iter().find(|&&l| l != UNROUTED) else {
                return; // Forced "unrouted" under a routed parent cannot occur; see `build`.
            };
            let (lo, _) = self.span(node.depth, node.value);
            if let (Ok(first), Some(prefix)) = (Number::from_u64(lo), self.node_pattern(node)) {
                rules.push(CompiledRule {
                    prefix,
                    tag: label,
                    first,
                });
            }
            label
        };
        for child in &node.children {
            self.choose(child, chosen, rules);
        }
    }

    /// `+`, the node's digits, `x` for the rest of the length, `#`.
    fn node_pattern(&self, node: &Node) -> Option<Pattern> {
        let builder = match Number::from_u64(node.value) {
            Ok(digits) if node.depth > 0 => PatternBuilder::digits(digits, node.depth),
            _ => PatternBuilder::digits(self.ranges.first()?.0.lo(), 0),
        };
        builder
            .any_digits((self.len - node.depth) as usize)
            .anchored()
    }
}

/// The labels that appear in the most of `sets`, sorted.
fn most_shared(sets: &[&Vec<TagId>]) -> Vec<TagId> {
    let mut counts: Vec<(TagId, usize)> = Vec::new();
    for &label in sets.iter().flat_map(|set| set.iter()) {
        match counts.iter_mut().find(|(l, _)| *l == label) {
            Some((_, count)) => *count += 1,
            None => counts.push((label, 1)),
        }
    }
    let best = counts.iter().map(|&(_, count)| count).max().unwrap_or(0);
    let mut labels: Vec<TagId> = counts
        .into_iter()
        .filter(|&(_, count)| count == best)
        .map(|(label, _)| label)
        .collect();
    labels.sort_unstable();
    labels
}

impl Node {
    /// What the parent sees of this subtree: nothing to satisfy below an open prefix, whose
    /// rule restarts best match for its numbers whatever the parent routes.
    fn seen_from_parent(&self) -> Option<&Vec<TagId>> {
        if self.open.is_some() {
            None
        } else {
            self.labels.as_ref()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialplan::pattern::best_match;
    use crate::dialplan::rule::{check_prefix_len, Tag};
    use crate::number::OpenPrefix;
    use crate::resolve::{resolve, Coverage, Entry, Provenance};
    use proptest::prelude::*;

    fn tags(count: usize) -> Vec<Tag> {
        (0..count)
            .map(|i| Tag::parse(&format!("T={i}"), 64).unwrap())
            .collect()
    }

    fn range(lo: u64, hi: u64) -> NumberRange {
        NumberRange::between(Number::from_u64(lo).unwrap(), Number::from_u64(hi).unwrap()).unwrap()
    }

    fn prefix(digits: u64) -> OpenPrefix {
        OpenPrefix::of(Number::from_u64(digits).unwrap())
    }

    fn texts(rules: &[CompiledRule]) -> Vec<String> {
        rules.iter().map(|r| r.prefix.to_string()).collect()
    }

    /// The tag the SBC would pick for `number` among `rules`.
    fn routed(rules: &[CompiledRule], number: Number) -> Option<TagId> {
        best_match(
            rules
                .iter()
                .enumerate()
                .map(|(i, r)| (i as u32, &r.prefix, &r.tag)),
            &number.to_string(),
        )
        .map(|(_, tag)| *tag)
    }

    #[test]
    fn ranges_encoding_examples() {
        let mapping = Mapping::new(
            tags(2),
            vec![],
            vec![
                (range(3226127000, 3226127002), 0),
                (range(3226128000, 3226128999), 1),
                (range(3226129005, 3226129005), 1),
                (range(3226130050, 3226130149), 0),
            ],
        )
        .unwrap();
        let rules = compile(&mapping, Encoding::Ranges, 9);
        assert_eq!(
            texts(&rules),
            [
                "+322612700[0-2]#",
                "+3226128xxx#",
                "+3226129005#",
                "+3226130[05-14]x#"
            ]
        );
        let numbers = compile(&mapping, Encoding::Numbers, 9);
        assert_eq!(numbers.len(), 3 + 1000 + 1 + 100);
        assert_eq!(numbers[0].prefix.to_string(), "+3226127000#");
    }

    #[test]
    fn wide_ranges_split_only_at_the_bracket_limit() {
        let mapping = Mapping::new(tags(1), vec![], vec![(range(100015, 100524), 0)]).unwrap();
        let rules = compile(&mapping, Encoding::Ranges, 2);
        assert_eq!(
            texts(&rules),
            ["+10001[5-9]#", "+100[02-51]x#", "+10052[0-4]#"]
        );
        assert_eq!(compile(&mapping, Encoding::Ranges, 3).len(), 1);
    }

    #[test]
    fn open_prefixes_print_as_digits_and_ranges_beat_them() {
        let mapping = Mapping::new(
            tags(2),
            vec![(prefix(3201), 0)],
            vec![(range(3201000, 3201099), 1)],
        )
        .unwrap();
        let rules = compile(&mapping, Encoding::Ranges, 9);
        assert_eq!(texts(&rules), ["+3201", "+32010xx#"]);
        assert_eq!(routed(&rules, Number::from_u64(3201050).unwrap()), Some(1));
        assert_eq!(routed(&rules, Number::from_u64(32010500).unwrap()), Some(0));
    }

    #[test]
    fn a_range_straddling_a_prefix_is_cut_at_its_edge() {
        // +3200500..+3201500 won a conflict against +3201: as one bracket rule the prefix's
        // digit would beat the bracket for +3201xxx.
        let mapping = Mapping::new(
            tags(2),
            vec![(prefix(3201), 1)],
            vec![(range(3200500, 3201500), 0)],
        )
        .unwrap();
        let rules = compile(&mapping, Encoding::Ranges, 9);
        assert_eq!(texts(&rules), ["+3201", "+3200[5-9]xx#", "+3201[000-500]#"]);
    }

    #[test]
    fn prefixes_encoding_uses_longest_match() {
        // 100..198 one way, 199 another: two rules, not nineteen.
        let mapping = Mapping::new(
            tags(2),
            vec![],
            vec![(range(100, 198), 0), (range(199, 199), 1)],
        )
        .unwrap();
        assert_eq!(
            texts(&compile(&mapping, Encoding::Prefixes, 9)),
            ["+1xx#", "+199#"]
        );
    }

    /// Random mappings under +32 (all lengths up to 6), built through `resolve` so that nested,
    /// conflicting and prefix-covered entries all occur.
    fn mapping_strategy(with_prefixes: bool) -> impl Strategy<Value = Mapping> {
        let range_entry =
            (3u32..=6, 0u64..10_000, 0u64..200, 0u32..3).prop_map(|(len, at, size, tag)| {
                let block = POW10[len as usize - 2];
                let lo = 32 * block + at % block;
                let hi = (lo + size).min(33 * block - 1);
                (Coverage::Range(range(lo, hi)), tag)
            });
        let prefix_entry = (
            prop_oneof![Just(3u64), Just(32), 320u64..330, 3200u64..3300],
            0u32..3,
        )
            .prop_map(|(digits, tag)| (Coverage::Prefix(prefix(digits)), tag));
        let prefixes = if with_prefixes { 0..4usize } else { 0..1 };
        (
            prop::collection::vec(range_entry, 1..12),
            prop::collection::vec(prefix_entry, prefixes),
        )
            .prop_map(move |(ranges, prefixes)| {
                let all_tags = tags(3);
                let entries: Vec<Entry> = prefixes
                    .into_iter()
                    .take(if with_prefixes { 4 } else { 0 })
                    .chain(ranges)
                    .map(|(coverage, tag)| Entry {
                        coverage,
                        tag: all_tags[tag as usize].clone(),
                        provenance: Provenance {
                            source: std::sync::Arc::new("s".into()),
                            item: String::new().into(),
                        },
                    })
                    .collect();
                resolve(&entries).mapping
            })
    }

    /// Every number of 1 to 6 digits under +32, a few outside it, and some 7-digit ones that
    /// only prefixes reach.
    fn probe_numbers() -> impl Iterator<Item = Number> {
        let under_32 = (2..=6).flat_map(|len| {
            let block = POW10[len - 2];
            32 * block..33 * block
        });
        let others = (1..400)
            .chain(3_200_000..3_200_300)
            .chain([33, 3300, 31999]);
        under_32
            .chain(others)
            .filter_map(|v| Number::from_u64(v).ok())
    }

    fn assert_routes_as_mapping(
        mapping: &Mapping,
        rules: &[CompiledRule],
    ) -> Result<(), TestCaseError> {
        for number in probe_numbers() {
            prop_assert_eq!(
                routed(rules, number),
                mapping.tag_of(number),
                "{} in {:?}",
                number,
                texts(rules)
            );
        }
        for rule in rules {
            let reparsed = Pattern::parse(&rule.prefix.to_string());
            prop_assert_eq!(reparsed, Ok(rule.prefix.clone()));
            prop_assert!(check_prefix_len(&rule.prefix).is_ok());
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn every_encoding_routes_exactly_as_the_mapping(mapping in mapping_strategy(true)) {
            for encoding in [Encoding::Ranges, Encoding::Prefixes, Encoding::Numbers] {
                let rules = compile(&mapping, encoding, 9);
                assert_routes_as_mapping(&mapping, &rules)?;
            }
        }

        #[test]
        fn ranges_encoding_is_one_rule_per_maximal_range(mapping in mapping_strategy(false)) {
            let rules = compile(&mapping, Encoding::Ranges, 9);
            prop_assert_eq!(rules.len(), mapping.ranges().len());
        }

        #[test]
        fn bracket_limit_is_respected(mapping in mapping_strategy(true), limit in 1usize..4) {
            let rules = compile(&mapping, Encoding::Ranges, limit);
            for rule in &rules {
                for element in rule.prefix.elements() {
                    if let crate::dialplan::pattern::Element::Set(set) = element {
                        prop_assert!(set.width() <= limit, "{}", rule.prefix);
                    }
                }
            }
            assert_routes_as_mapping(&mapping, &rules)?;
        }

        #[test]
        fn prefixes_encoding_is_minimal(
            labels in prop::collection::vec(0u8..4, 90),
            shorter in prop::collection::vec(0u8..4, 9),
            open in prop::collection::vec((1u64..100, 0u32..3), 0..3),
        ) {
            // Every 1- and 2-digit number gets a label (3 = unrouted); then minimal rule count
            // from ORTC must equal the exhaustive optimum over all digit+x rule sets.
            let mut ranges = Vec::new();
            for (i, &l) in shorter.iter().enumerate() {
                if l < 3 { ranges.push((range(i as u64 + 1, i as u64 + 1), u32::from(l))); }
            }
            for (i, &l) in labels.iter().enumerate() {
                if l < 3 { ranges.push((range(i as u64 + 10, i as u64 + 10), u32::from(l))); }
            }
            let open: Vec<(OpenPrefix, TagId)> = open.into_iter().map(|(d, t)| (prefix(d), t)).collect();
            let mapping = Mapping::new(tags(3), open, ranges).unwrap();
            let rules = compile(&mapping, Encoding::Prefixes, 9);
            let closed = rules.iter().filter(|r| r.prefix.is_anchored()).count();
            let optimum = optimum_len(&mapping, 1) + optimum_len(&mapping, 2);
            prop_assert_eq!(closed, optimum, "{:?}", texts(&rules));
            for number in (1..100).filter_map(|v| Number::from_u64(v).ok()) {
                prop_assert_eq!(routed(&rules, number), mapping.tag_of(number));
            }
        }
    }

    /// The exhaustive optimum for one length: over every assignment of at most one label to each
    /// node of the full digit trie (which is every rule set of `digits x.. #` rules), the fewest
    /// rules whose longest match gives each number its tag. Dynamic programming over
    /// (node, inherited label) makes the exhaustive search affordable.
    fn optimum_len(mapping: &Mapping, len: u32) -> usize {
        fn cost(
            mapping: &Mapping,
            len: u32,
            depth: u32,
            value: u64,
            inherited: Option<TagId>,
        ) -> usize {
            const INFEASIBLE: usize = 1 << 40;
            if depth == 1 && value == 0 {
                return 0; // no number starts with 0
            }
            let inherited = if depth == 0 {
                inherited
            } else {
                let digits = Number::from_u64(value).unwrap().key();
                mapping
                    .prefixes()
                    .iter()
                    .find(|(p, _)| p.digits().key() == digits)
                    .map_or(inherited, |&(_, t)| Some(t))
            };
            let choices = std::iter::once((0, inherited))
                .chain((0..mapping.tags().len() as TagId).map(|t| (1, Some(t))));
            choices
                .map(|(emitted, label)| {
                    if depth == len {
                        let wanted = mapping.tag_of(Number::from_u64(value).unwrap());
                        if wanted == label {
                            emitted
                        } else {
                            INFEASIBLE
                        }
                    } else {
                        emitted
                            + (0..10)
                                .map(|d| cost(mapping, len, depth + 1, value * 10 + d, label))
                                .sum::<usize>()
                    }
                })
                .min()
                .unwrap_or(INFEASIBLE)
        }
        cost(mapping, len, 0, 0, None)
    }
}
