//! A dial-plan rule and its tag, with the limits the SBC enforces.
//!
//! The SBC refuses a rule whose name, prefix or tag breaks its limits, and it refuses the whole
//! incremental script that carries it. Checking the same limits here, before anything is sent,
//! turns one bad upstream item into one rejected item instead of a failed batch.

use std::fmt;

use super::pattern::{Pattern, PatternError};

/// Longest rule Name the SBC accepts.
pub const MAX_NAME_LEN: usize = 15;
/// Longest Prefix the SBC accepts.
pub const MAX_PREFIX_LEN: usize = 50;
/// Default `max_tag_len` (firmware 7.2 documents 16; later firmware accepts more).
pub const DEFAULT_MAX_TAG_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error("empty tag")]
    Empty,
    #[error("tag is {len} characters, more than max_tag_len {max}")]
    TooLong { len: usize, max: usize },
    #[error("tag part {part} has an empty name")]
    EmptyName { part: usize },
    #[error("tag part '{name}=' has an empty value")]
    EmptyValue { name: String },
    #[error("'{found}' in tag part {part} is not allowed (names: letters, digits, '_', '-')")]
    InvalidCharacter { found: char, part: usize },
    #[error("tag has two bare names ('{first}' and '{second}'); at most one is allowed")]
    SeveralBareNames { first: String, second: String },
    #[error("tag names '{name}' twice")]
    DuplicateName { name: String },
}

/// A routing tag in AudioCodes syntax: `name` or `name=value`, several joined by `;`, at most one
/// bare name. Values may contain dots (IP addresses, FQDNs).
///
/// Shared, not copied: a million entries carry a few thousand distinct tags, and every clone
/// (into a rule, a dedup set, a plan) is a reference count, not an allocation.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(std::sync::Arc<str>);

impl Tag {
    pub fn parse(text: &str, max_len: usize) -> Result<Tag, TagError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(TagError::Empty);
        }
        let len = text.chars().count();
        if len > max_len {
            return Err(TagError::TooLong { len, max: max_len });
        }
        let mut bare: Option<&str> = None;
        let mut names: Vec<&str> = Vec::new();
        for (index, part) in text.split(';').enumerate() {
            let part_number = index + 1;
            let (name, value) = match part.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (part, None),
            };
            if name.is_empty() {
                return Err(TagError::EmptyName { part: part_number });
            }
            if let Some(found) = name
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
            {
                return Err(TagError::InvalidCharacter {
                    found,
                    part: part_number,
                });
            }
            match value {
                Some("") => {
                    return Err(TagError::EmptyValue {
                        name: name.to_string(),
                    })
                }
                Some(value) => {
                    if let Some(found) = value.chars().find(|c| !is_value_char(*c)) {
                        return Err(TagError::InvalidCharacter {
                            found,
                            part: part_number,
                        });
                    }
                }
                None => {
                    if let Some(first) = bare {
                        return Err(TagError::SeveralBareNames {
                            first: first.to_string(),
                            second: name.to_string(),
                        });
                    }
                    bare = Some(name);
                }
            }
            if names.contains(&name) {
                return Err(TagError::DuplicateName {
                    name: name.to_string(),
                });
            }
            names.push(name);
        }
        Ok(Tag(std::sync::Arc::from(text)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Value characters: printable ASCII except what would break the tag or the CLI quoting.
fn is_value_char(c: char) -> bool {
    c.is_ascii_graphic() && !matches!(c, ';' | '=' | '"' | '\\')
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for Tag {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("rule name {name:?} is longer than {MAX_NAME_LEN} characters")]
    NameTooLong { name: String },
    #[error("rule name is empty")]
    EmptyName,
    #[error("rule name {name:?} contains a control character or '\"'")]
    InvalidName { name: String },
    #[error("prefix {prefix} is {len} characters, more than {MAX_PREFIX_LEN}")]
    PrefixTooLong { prefix: String, len: usize },
    #[error("prefix {prefix:?}: {source}")]
    Prefix {
        prefix: String,
        #[source]
        source: PatternError,
    },
    #[error(transparent)]
    Tag(#[from] TagError),
}

/// Checks a rule Name against the SBC's limits. The Name is how dialsync marks rules it owns.
pub fn validate_name(name: &str) -> Result<(), RuleError> {
    if name.is_empty() {
        return Err(RuleError::EmptyName);
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(RuleError::NameTooLong {
            name: name.to_string(),
        });
    }
    if name.chars().any(|c| c.is_control() || c == '"') {
        return Err(RuleError::InvalidName {
            name: name.to_string(),
        });
    }
    Ok(())
}

/// Parses and length-checks a Prefix as the SBC would.
pub fn parse_prefix(text: &str) -> Result<Pattern, RuleError> {
    let pattern = Pattern::parse(text).map_err(|source| RuleError::Prefix {
        prefix: text.to_string(),
        source,
    })?;
    check_prefix_len(&pattern)?;
    Ok(pattern)
}

/// The SBC's Prefix column holds at most 50 characters of pattern text.
pub fn check_prefix_len(pattern: &Pattern) -> Result<(), RuleError> {
    let len = pattern.text_len();
    if len > MAX_PREFIX_LEN {
        return Err(RuleError::PrefixTooLong {
            prefix: pattern.to_string(),
            len,
        });
    }
    Ok(())
}

/// One row of an SBC dial plan.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DialPlanRule {
    /// Position in the dial plan, unique within it.
    pub index: u32,
    /// Not unique; rules named `dialplan.rule_name` are the ones dialsync owns.
    pub name: String,
    pub prefix: Pattern,
    pub tag: Tag,
}

impl DialPlanRule {
    /// A rule, refused when its name or prefix breaks the SBC's limits.
    pub fn new(index: u32, name: &str, prefix: Pattern, tag: Tag) -> Result<Self, RuleError> {
        validate_name(name)?;
        check_prefix_len(&prefix)?;
        Ok(DialPlanRule {
            index,
            name: name.to_string(),
            prefix,
            tag,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_in_audiocodes_syntax() {
        for ok in [
            "Trunk=7f2c0c61-1b44-4c3e-9e58-bd0c0d0f7b1a",
            "Teams",
            "Teams;Trunk=a;Site=10.0.0.1",
            "Trunk=netaxis-dev",
            "Host=sbc.example.net",
        ] {
            assert_eq!(Tag::parse(ok, 64).unwrap().as_str(), ok);
        }
        assert_eq!(Tag::parse("", 64), Err(TagError::Empty));
        assert_eq!(
            Tag::parse("Trunk=abcdefghijklmnop", 16),
            Err(TagError::TooLong { len: 22, max: 16 })
        );
        assert_eq!(Tag::parse("=x", 64), Err(TagError::EmptyName { part: 1 }));
        assert_eq!(
            Tag::parse("Trunk=", 64),
            Err(TagError::EmptyValue {
                name: "Trunk".into()
            })
        );
        assert_eq!(
            Tag::parse("A;B", 64),
            Err(TagError::SeveralBareNames {
                first: "A".into(),
                second: "B".into()
            })
        );
        assert_eq!(
            Tag::parse("T=1;T=2", 64),
            Err(TagError::DuplicateName { name: "T".into() })
        );
        assert_eq!(
            Tag::parse("Tr unk=1", 64),
            Err(TagError::InvalidCharacter {
                found: ' ',
                part: 1
            })
        );
        assert_eq!(
            Tag::parse("T=a\"b", 64),
            Err(TagError::InvalidCharacter {
                found: '"',
                part: 1
            })
        );
        assert!(Tag::parse(";T=1", 64).is_err());
    }

    #[test]
    fn rules_respect_sbc_limits() {
        let tag = Tag::parse("T=1", 64).unwrap();
        let prefix = parse_prefix("+322612700[0-2]#").unwrap();
        assert!(DialPlanRule::new(12, "dialsync", prefix.clone(), tag.clone()).is_ok());
        assert_eq!(
            DialPlanRule::new(1, "a-name-too-long!", prefix.clone(), tag.clone()),
            Err(RuleError::NameTooLong {
                name: "a-name-too-long!".into()
            })
        );
        assert_eq!(
            DialPlanRule::new(1, "", prefix, tag),
            Err(RuleError::EmptyName)
        );
        let long = format!("+{}", "1".repeat(50));
        assert!(matches!(
            parse_prefix(&long),
            Err(RuleError::PrefixTooLong { len: 51, .. })
        ));
        assert!(parse_prefix(&long[..50]).is_ok());
        let err = parse_prefix("+32[1-").unwrap_err().to_string();
        assert!(
            err.contains("+32[1-") && err.contains("never closed"),
            "{err}"
        );
    }
}
