//! A fetch's memory of the tags its items' values rendered.
//!
//! A million `phone_usage` items come from a few thousand tenants, and every item of a tenant
//! renders the same tag: rendering and checking it item by item was a seventh of a no-change
//! cycle's CPU. What a template renders depends only on the values of the fields it reads, and
//! what [`SlugClaims`] answers for those values never changes within a fetch (the first values
//! to make a tag own it for good), so the answer for the same values is the same answer,
//! refusals included, and is kept instead of being worked out again.

use std::collections::HashMap;

use super::tag::{SlugClaims, TagRule};
use crate::dialplan::rule::Tag;

/// How many distinct field values are remembered before the memory starts over: far more
/// tenants than a group has, and a bound when a template reads a field that differs on every
/// item (`{user}`), where remembering would only cost memory.
const REMEMBERED: usize = 8192;

/// One source's tag rule with the answers it already gave in this fetch. It must live no
/// longer than the [`SlugClaims`] it is given, which it relies on to answer as they did.
#[derive(Debug)]
pub struct RenderedTags {
    rule: TagRule,
    max_tag_len: usize,
    /// The template's field values, encoded by [`RenderedTags::encode`], -> the answer.
    answers: HashMap<Box<[u8]>, Result<Tag, String>>,
    remembered: usize,
    /// The encoding of the item at hand, kept to spare an allocation per item.
    values: Vec<u8>,
}

impl RenderedTags {
    pub fn new(rule: TagRule, max_tag_len: usize) -> RenderedTags {
        RenderedTags::remembering(rule, max_tag_len, REMEMBERED)
    }

    fn remembering(rule: TagRule, max_tag_len: usize, remembered: usize) -> RenderedTags {
        RenderedTags {
            rule,
            max_tag_len,
            answers: HashMap::new(),
            remembered,
            values: Vec::new(),
        }
    }

    /// What [`TagRule::tag_for`] answers for the same item, given the same `claims` every time.
    pub fn tag_for<'a>(
        &mut self,
        key: Option<&str>,
        field: impl Fn(&str) -> Option<&'a str>,
        claims: &mut SlugClaims,
    ) -> Result<Tag, String> {
        if let Some(tag) = self.rule.override_for(key) {
            return Ok(tag.clone());
        }
        self.encode(&field);
        if let Some(answer) = self.answers.get(self.values.as_slice()) {
            return answer.clone();
        }
        let answer = self.rule.template.render(field, self.max_tag_len, claims);
        if self.answers.len() >= self.remembered {
            self.answers.clear();
        }
        self.answers
            .insert(self.values.as_slice().into(), answer.clone());
        answer
    }

    /// The values of the template's fields, each length-prefixed so that no two lists of
    /// values encode alike, and absent told apart from empty (their refusals differ).
    fn encode<'a>(&mut self, field: &impl Fn(&str) -> Option<&'a str>) {
        self.values.clear();
        for name in self.rule.template.fields() {
            match field(name) {
                None => self.values.push(0),
                Some(value) => {
                    self.values.push(1);
                    self.values
                        .extend_from_slice(&(value.len() as u64).to_le_bytes());
                    self.values.extend_from_slice(value.as_bytes());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::source::tag::TagTemplate;

    const FIELDS: &[&str] = &["tenant", "group"];

    /// Values chosen to meet every path: slugs that collide, blanks, absent fields, a `;`,
    /// a tag too long, and a tenant with an override.
    const VALUES: &[Option<&str>] = &[
        None,
        Some(""),
        Some("  "),
        Some("acme"),
        Some(" acme"),
        Some("Café Noir"),
        Some("cafe-noir"),
        Some("CAFE NOIR"),
        Some("a;b"),
        Some("pinned"),
        Some("a-very-long-tenant-name-that-no-tag-can-hold-whole"),
    ];

    const TEMPLATES: &[&str] = &[
        "Trunk={tenant}",
        "Trunk={tenant:slug}",
        "{tenant:slug}.{group:slug}",
        "T={group};S={tenant:slug}",
        "Teams",
    ];

    fn rule(template: &str) -> TagRule {
        TagRule {
            template: TagTemplate::parse(template, FIELDS).unwrap(),
            overrides: BTreeMap::from([("pinned".to_string(), Tag::parse("Pinned", 64).unwrap())]),
        }
    }

    proptest! {
        /// Item after item, the remembered answers are the answers rendered afresh, with the
        /// memory starting over at every size down to one.
        #[test]
        fn remembered_answers_are_the_rendered_ones(
            template in 0..TEMPLATES.len(),
            remembered in 1usize..4,
            items in prop::collection::vec((0..VALUES.len(), 0..VALUES.len()), 1..40),
        ) {
            let rule = rule(TEMPLATES[template]);
            let mut rendered_claims = SlugClaims::default();
            let mut remembered_claims = SlugClaims::default();
            let mut memory = RenderedTags::remembering(rule.clone(), 24, remembered);
            for (tenant, group) in items {
                let (tenant, group) = (VALUES[tenant], VALUES[group]);
                let field = |name: &str| match name {
                    "tenant" => tenant,
                    "group" => group,
                    _ => None,
                };
                let expected = rule.tag_for(tenant, field, 24, &mut rendered_claims);
                let got = memory.tag_for(tenant, field, &mut remembered_claims);
                prop_assert_eq!(got, expected, "tenant {:?} group {:?}", tenant, group);
            }
        }
    }
}
