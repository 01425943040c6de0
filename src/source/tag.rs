//! Tags from templates: how a source turns an upstream item into the routing tag of its rules
//! (DESIGN.md §3, §9: `tag = "Trunk={tenant}"` plus an optional `[sources.tags]` override map).
//!
//! Upstreams know tenants, groups and users, not SBC tags; the operator says once, per source,
//! how the one becomes the other. A template is checked when the config is loaded (an unknown
//! field or a stray brace is a config error naming the source); a value that makes an invalid
//! tag (a tenant name with a `;`) rejects that one item with the reason, never the source.

use std::collections::BTreeMap;
use std::fmt;

use crate::dialplan::rule::Tag;

/// Why a template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("tag template {template:?}: '{{' at position {position} is never closed")]
    Unclosed { template: String, position: usize },
    #[error("tag template {template:?}: '}}' at position {position} closes nothing")]
    Unopened { template: String, position: usize },
    #[error("tag template {template:?}: empty field name at position {position}")]
    EmptyField { template: String, position: usize },
    #[error("tag template {template:?}: unknown field {{{field}}}; this source offers {known}")]
    UnknownField {
        template: String,
        field: String,
        known: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(String),
}

/// A parsed template such as `Trunk={tenant}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagTemplate {
    text: String,
    parts: Vec<Part>,
}

impl TagTemplate {
    /// Parses `text`, accepting only the fields in `known` (what this kind of source offers).
    pub fn parse(text: &str, known: &[&str]) -> Result<TagTemplate, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((position, c)) = chars.next() {
            match c {
                '{' => {
                    let mut field = String::new();
                    let mut closed = false;
                    for (_, c) in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        field.push(c);
                    }
                    if !closed {
                        return Err(TemplateError::Unclosed {
                            template: text.to_string(),
                            position,
                        });
                    }
                    if field.trim().is_empty() {
                        return Err(TemplateError::EmptyField {
                            template: text.to_string(),
                            position,
                        });
                    }
                    if !known.contains(&field.as_str()) {
                        return Err(TemplateError::UnknownField {
                            template: text.to_string(),
                            field,
                            known: known
                                .iter()
                                .map(|f| format!("{{{f}}}"))
                                .collect::<Vec<_>>()
                                .join(", "),
                        });
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Field(field));
                }
                '}' => {
                    return Err(TemplateError::Unopened {
                        template: text.to_string(),
                        position,
                    })
                }
                other => literal.push(other),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(TagTemplate {
            text: text.to_string(),
            parts,
        })
    }

    /// The tag for one item, whose fields `field` looks up. The reason on failure names what
    /// is missing or what the tag syntax refused, for the rejected-item report.
    pub fn render<'a>(
        &self,
        field: impl Fn(&str) -> Option<&'a str>,
        max_tag_len: usize,
    ) -> Result<Tag, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field(name) => match field(name).map(str::trim) {
                    // A `;` or `=` in a value would change the tag's structure, not just its
                    // text (tenant "a;b" would add a bare name `b`): refuse the item instead.
                    Some(value) if value.contains([';', '=']) => {
                        return Err(format!(
                            "{name} {value:?} contains ';' or '=', which would change the shape \
                             of tag template {:?}; map it in [sources.tags]",
                            self.text
                        ))
                    }
                    Some(value) if !value.is_empty() => out.push_str(value),
                    _ => return Err(format!("no {name} for tag template {:?}", self.text)),
                },
            }
        }
        Tag::parse(&out, max_tag_len).map_err(|e| format!("tag {out:?}: {e}"))
    }
}

impl fmt::Display for TagTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A source's whole tag rule: explicit tags by key (tenant name, group...) first, else the
/// template.
#[derive(Clone, Debug)]
pub struct TagRule {
    pub template: TagTemplate,
    pub overrides: BTreeMap<String, Tag>,
}

impl TagRule {
    /// The tag for an item whose override key is `key` and whose fields `field` looks up.
    pub fn tag_for<'a>(
        &self,
        key: Option<&str>,
        field: impl Fn(&str) -> Option<&'a str>,
        max_tag_len: usize,
    ) -> Result<Tag, String> {
        if let Some(tag) = key.and_then(|k| self.overrides.get(k)) {
            return Ok(tag.clone());
        }
        self.template.render(field, max_tag_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FUSION: &[&str] = &["tenant", "group", "reseller", "distributor", "user"];

    fn fields<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }

    #[test]
    fn renders_fields_into_a_valid_tag() {
        let template = TagTemplate::parse("Trunk={tenant};Site={group}", FUSION).unwrap();
        let tag = template
            .render(fields(&[("tenant", "acme"), ("group", "hq")]), 64)
            .unwrap();
        assert_eq!(tag.as_str(), "Trunk=acme;Site=hq");
        assert_eq!(
            TagTemplate::parse("Teams", FUSION)
                .unwrap()
                .render(|_| None, 64)
                .unwrap()
                .as_str(),
            "Teams"
        );
    }

    #[test]
    fn bad_values_reject_the_item_with_a_reason() {
        let template = TagTemplate::parse("Trunk={tenant}", FUSION).unwrap();
        let missing = template.render(fields(&[("group", "hq")]), 64).unwrap_err();
        assert!(missing.contains("no tenant"), "{missing}");
        let blank = template
            .render(fields(&[("tenant", "  ")]), 64)
            .unwrap_err();
        assert!(blank.contains("no tenant"), "{blank}");
        let injected = template
            .render(fields(&[("tenant", "a;b")]), 64)
            .unwrap_err();
        assert!(
            injected.contains("tenant \"a;b\" contains ';'"),
            "{injected}"
        );
        let spaced = template
            .render(fields(&[("tenant", "a b")]), 64)
            .unwrap_err();
        assert!(spaced.contains("\"Trunk=a b\""), "{spaced}");
        let long = template
            .render(fields(&[("tenant", &"x".repeat(60))]), 64)
            .unwrap_err();
        assert!(long.contains("max_tag_len 64"), "{long}");
    }

    #[test]
    fn templates_are_checked_when_loaded() {
        assert!(matches!(
            TagTemplate::parse("Trunk={tenant", FUSION),
            Err(TemplateError::Unclosed { position: 6, .. })
        ));
        assert!(matches!(
            TagTemplate::parse("Trunk=tenant}", FUSION),
            Err(TemplateError::Unopened { position: 12, .. })
        ));
        assert!(matches!(
            TagTemplate::parse("Trunk={}", FUSION),
            Err(TemplateError::EmptyField { .. })
        ));
        let unknown = TagTemplate::parse("Trunk={tenant_id}", FUSION)
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("unknown field {tenant_id}"), "{unknown}");
        assert!(unknown.contains("{tenant}, {group}"), "{unknown}");
    }

    #[test]
    fn overrides_win_over_the_template() {
        let rule = TagRule {
            template: TagTemplate::parse("Trunk={tenant}", FUSION).unwrap(),
            overrides: BTreeMap::from([(
                "Netaxis DEV".to_string(),
                Tag::parse("Trunk=netaxis-dev", 64).unwrap(),
            )]),
        };
        let dev = [("tenant", "Netaxis DEV")];
        assert_eq!(
            rule.tag_for(Some("Netaxis DEV"), fields(&dev), 64)
                .unwrap()
                .as_str(),
            "Trunk=netaxis-dev"
        );
        // Without the override the space makes an invalid tag: the map is how operators fix it.
        assert!(rule.tag_for(None, fields(&dev), 64).is_err());
        let acme = [("tenant", "acme")];
        assert_eq!(
            rule.tag_for(Some("acme"), fields(&acme), 64)
                .unwrap()
                .as_str(),
            "Trunk=acme"
        );
    }
}
