//! A dial-plan rule and its tag, with the limits the SBC enforces.
//!
//! The SBC refuses a rule whose name, prefix or tag breaks its limits, and it refuses the whole
//! incremental script that carries it. Checking the same limits here, before anything is sent,
//! turns one bad upstream item into one rejected item instead of a failed batch.

use crate::error::{Classify, ErrorClass};
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

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
    #[error("'{found}' in tag part {part} is not allowed (names: letters, digits, '_', '-', '.')")]
    InvalidCharacter { found: char, part: usize },
    #[error("tag has two bare names ('{first}' and '{second}'); at most one is allowed")]
    SeveralBareNames { first: String, second: String },
    #[error("tag names '{name}' twice")]
    DuplicateName { name: String },
}

impl Classify for TagError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Item
    }
}

/// A rule's routing tag.
///
/// Tags dialsync writes are in AudioCodes syntax ([`Tag::parse`]): `name` or `name=value`,
/// several joined by `;`, at most one bare name; names and values may contain dots, because
/// in the field a tag is often a bare FQDN (`sbc01.teams.contoso.com`, or Live Platform's
/// `sandbox1.audiocodes.be`). A tag read from a rule dialsync does not own is whatever the
/// device holds ([`Tag::held`]): another system's rule is never judged by dialsync's syntax,
/// only carried and shown as it is.
///
/// Shared, not copied: a million entries carry a few thousand distinct tags, and every clone
/// (into a rule, a dedup set, a plan) is a reference count, not an allocation. A `String`
/// behind the `Arc` keeps the pointer to one word, not two: a million entries carry one.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(Arc<String>);

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
                .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
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
        Ok(Tag(Arc::new(text.to_string())))
    }

    /// A tag as a device or the state database holds it, unchecked: the tag of a row dialsync
    /// reads but did not necessarily write. It is compared and shown, never sent.
    pub fn held(text: &str) -> Tag {
        Tag(Arc::new(text.to_string()))
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

impl Classify for RuleError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Item
    }
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
    /// Not unique; rules named `dialplan.rule_name` are the ones dialsync owns. Shared: a
    /// dial plan holds a few distinct names across 100k rules, and a copy per rule was 3 MB.
    pub name: Arc<str>,
    pub prefix: Pattern,
    pub tag: Tag,
}

impl DialPlanRule {
    /// A row as a dial plan holds it (index, then name, prefix and tag as text), read the way
    /// dialsync reads every row, its own or another system's: the prefix is parsed (best match
    /// and lookup need it), while the name and tag are kept exactly as held. Nothing is
    /// judged by the limits of what dialsync writes: a foreign rule with a 15-character site
    /// code for a name, a tag of 80 characters or a 51-character prefix is still a rule the
    /// SBC routes with.
    ///
    /// A row whose prefix dialsync cannot parse is [`UnreadableRow`]: its index stays taken.
    pub fn read(index: u32, name: &str, prefix: &str, tag: &str) -> Result<Self, UnreadableRow> {
        DialPlanRule::read_sharing(index, name, prefix, tag, &mut HeldText::default())
    }

    /// [`read`](Self::read) for one row of a whole dial plan being read: its name and tag are
    /// shared with the rows read before it that hold the same text.
    pub fn read_sharing(
        index: u32,
        name: &str,
        prefix: &str,
        tag: &str,
        held: &mut HeldText,
    ) -> Result<Self, UnreadableRow> {
        match Pattern::parse(prefix) {
            Ok(pattern) => Ok(DialPlanRule {
                index,
                name: held.name(name),
                prefix: pattern,
                tag: held.tag(tag),
            }),
            Err(error) => Err(UnreadableRow::new(
                index,
                name,
                format!("prefix {prefix:?} cannot be read: {error}"),
            )),
        }
    }
}

/// The names and tags of one dial plan being read, one shared copy per distinct text: a
/// 100k-rule plan holds a few names and a few thousand distinct tags, and a copy per row was
/// 3 MB of names and 5 MB of tags in every read.
#[derive(Debug, Default)]
pub struct HeldText {
    names: HashSet<Arc<str>>,
    tags: HashSet<Tag>,
}

impl HeldText {
    /// A rule's name, shared with every earlier name of the same text.
    pub fn name(&mut self, text: &str) -> Arc<str> {
        if let Some(name) = self.names.get(text) {
            return name.clone();
        }
        let name: Arc<str> = Arc::from(text);
        self.names.insert(name.clone());
        name
    }

    /// [`Tag::held`], shared with every earlier tag of the same text.
    pub fn tag(&mut self, text: &str) -> Tag {
        if let Some(tag) = self.tags.get(text) {
            return tag.clone();
        }
        let tag = Tag::held(text);
        self.tags.insert(tag.clone());
        tag
    }
}

impl std::borrow::Borrow<str> for Tag {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// A row of the dial plan dialsync cannot read as a rule: a prefix in a notation it does not
/// parse, a value whose quoting it cannot undo. It may be anyone's and route anything, so
/// dialsync never writes its index and never takes it for free (DESIGN.md §4); it is reported
/// once per cycle so that someone looks at it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct UnreadableRow {
    pub index: u32,
    /// Why it cannot be read, with the row's name when that much was readable.
    pub reason: String,
}

impl UnreadableRow {
    pub fn new(index: u32, name: &str, why: impl fmt::Display) -> UnreadableRow {
        let reason = if name.is_empty() {
            why.to_string()
        } else {
            format!("name {name:?}: {why}")
        };
        UnreadableRow { index, reason }
    }
}

impl fmt::Display for UnreadableRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "row {}: {}", self.index, self.reason)
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
    fn names_and_prefixes_dialsync_writes_respect_sbc_limits() {
        assert_eq!(validate_name("dialsync"), Ok(()));
        assert_eq!(
            validate_name("a-name-too-long!"),
            Err(RuleError::NameTooLong {
                name: "a-name-too-long!".into()
            })
        );
        assert_eq!(validate_name(""), Err(RuleError::EmptyName));
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

    #[test]
    fn fqdn_tags_are_tags_dialsync_may_write() {
        for ok in [
            "sandbox1.audiocodes.be",
            "sbc01.teams.contoso.com",
            "EMEA.Customers.AudioCodes.com",
            "atelier-horta.oc.example.net;Site=bxl",
        ] {
            assert_eq!(Tag::parse(ok, 64).unwrap().as_str(), ok);
        }
    }

    /// Rows as real dial plans hold them, Live Platform's and hand-made ones: read whatever
    /// their name and tag, never judged by what dialsync would write.
    #[test]
    fn foreign_rows_are_read_as_the_device_holds_them() {
        let long_tag = format!("Trunk={}", "x".repeat(70));
        for (name, prefix, tag) in [
            ("LivePlatform", "+97239753000", "sandbox1.audiocodes.be"),
            (
                "GSBFZUBGHWOFI",
                "+2711123[1000-1999]",
                "sbc01.teams.contoso.com",
            ),
            ("Site \"A\"", "+3222#", "Trunk=pbx"),
            ("a name far too long for us", "+3223", long_tag.as_str()),
            ("", "+3224", ""),
            ("pbx", "+3225", "Tag with spaces;;="),
        ] {
            let rule = DialPlanRule::read(7, name, prefix, tag).unwrap();
            assert_eq!((rule.index, &*rule.name), (7, name));
            assert_eq!(rule.tag.as_str(), tag);
            assert_eq!(rule.prefix, Pattern::parse(prefix).unwrap());
        }
        let open = DialPlanRule::read(0, "LivePlatform", "+97239753000", "x").unwrap();
        assert!(
            !open.prefix.is_anchored(),
            "no '#': an open prefix, as the SBC reads it"
        );
        for prefix in ["", "+32[1-", "53([2-4])", "+32#1"] {
            let row = DialPlanRule::read(9, "odd", prefix, "T=1").unwrap_err();
            assert_eq!(row.index, 9);
            assert!(
                row.reason.contains("odd") && row.reason.contains("prefix"),
                "{row}"
            );
        }
    }
}
