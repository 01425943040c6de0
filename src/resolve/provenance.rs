//! Where an entry came from, so every report and `lookup` can point at the upstream item.
//!
//! A million `phone_usage` items once carried a million labels of text (58 MB of a no-change
//! cycle's heap) that said nothing their position, their number and their tenant do not: an
//! [`Item`] keeps those for such an item and renders the label, the same text to the byte,
//! wherever it is shown or stored. A label read back from the store is its text.

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::number::Number;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Provenance {
    /// The source's configured name, shared by all of its entries: a million entries once
    /// carried a million copies of it. A `String` behind the `Arc` keeps the pointer to one
    /// word, and a million entries to 8 MB less.
    pub source: Arc<String>,
    /// The item inside the source: `line 12`, `tenant=acme group=hq`, ...
    pub item: Item,
}

impl fmt::Display for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.source, self.item)
    }
}

/// The label of an item inside its source. Two labels are equal when their texts are.
#[derive(Clone, Debug)]
pub enum Item {
    /// Boxed, not a `String`: with the variant below it keeps an item to three words.
    Text(Box<str>),
    /// `phone_usage #7 number="+3225400010" tenant="acme"`, for an item whose number was
    /// written in its canonical form, the one form rendered back.
    PhoneUsage {
        position: u32,
        number: Number,
        /// Shared by the items of one tenant; a `String` behind the `Arc` so that the pointer
        /// is one word, not two.
        tenant: Arc<String>,
    },
}

impl Item {
    /// The label of `phone_usage` item number `position`, whose `phoneNumber` was `written`
    /// (`number` when it reads as one) and whose tenant is `tenant` (empty when it has none).
    pub fn phone_usage(
        position: usize,
        written: &str,
        number: Option<Number>,
        tenant: &Arc<String>,
    ) -> Item {
        // Only a number written as `+` and its digits renders back as written.
        let canonical = written
            .strip_prefix('+')
            .is_some_and(|digits| digits.bytes().all(|b| b.is_ascii_digit()));
        match (number, u32::try_from(position)) {
            (Some(number), Ok(position)) if canonical => Item::PhoneUsage {
                position,
                number,
                tenant: tenant.clone(),
            },
            _ => {
                let mut text = String::new();
                // Writing to a String cannot fail.
                let _ = write_phone_usage(&mut text, position, written, tenant);
                Item::Text(text.into_boxed_str())
            }
        }
    }

    /// The label's text, taken when it is held as text.
    pub fn into_text(self) -> String {
        match self {
            Item::Text(text) => text.into_string(),
            usage @ Item::PhoneUsage { .. } => usage.to_string(),
        }
    }

    /// The label's text, borrowed when it is held as text.
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Item::Text(text) => Cow::Borrowed(text),
            Item::PhoneUsage { .. } => Cow::Owned(self.to_string()),
        }
    }
}

/// The one wording of a `phone_usage` label; `number` is shown as its Debug form, which for
/// the text as written is that text quoted.
fn write_phone_usage(
    out: &mut impl fmt::Write,
    position: impl fmt::Display,
    number: impl fmt::Debug,
    tenant: &str,
) -> fmt::Result {
    write!(
        out,
        "phone_usage #{position} number={number:?} tenant={tenant:?}"
    )
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Text(text) => f.write_str(text),
            Item::PhoneUsage {
                position,
                number,
                tenant,
            } => {
                // `+` and digits need no escape: quoting them is their Debug form as text.
                write_phone_usage(f, position, format_args!("\"{number}\""), tenant)
            }
        }
    }
}

impl From<String> for Item {
    fn from(text: String) -> Item {
        Item::Text(text.into_boxed_str())
    }
}

impl From<&str> for Item {
    fn from(text: &str) -> Item {
        Item::Text(text.into())
    }
}

impl PartialEq for Item {
    fn eq(&self, other: &Item) -> bool {
        match (self, other) {
            (Item::Text(a), Item::Text(b)) => a == b,
            (
                Item::PhoneUsage {
                    position: p,
                    number: n,
                    tenant: t,
                },
                Item::PhoneUsage {
                    position: q,
                    number: m,
                    tenant: u,
                },
            ) => p == q && n == m && t == u,
            _ => self.text() == other.text(),
        }
    }
}

impl Eq for Item {}

impl PartialEq<&str> for Item {
    fn eq(&self, other: &&str) -> bool {
        self.text() == *other
    }
}

impl Hash for Item {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.text().hash(state);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The label as written before labels were compact: what every message and stored
    /// snapshot holds.
    fn written_label(position: usize, number: &str, tenant: &str) -> String {
        format!("phone_usage #{position} number={number:?} tenant={tenant:?}")
    }

    proptest! {
        #[test]
        fn a_phone_usage_label_renders_the_text_it_stands_for(
            position in prop_oneof![0usize..1000, Just(u32::MAX as usize), Just(u32::MAX as usize + 1)],
            written in prop_oneof![
                "\\+[1-9][0-9]{0,14}",
                "[+0-9 ()\\-]{0,18}",
                "\\PC{0,6}",
            ],
            tenant in prop_oneof!["[a-z0-9]{0,8}", "\\PC{0,8}", Just("a\"b\\c\n".to_string())],
        ) {
            let number = Number::parse(&written).ok();
            let tenant = Arc::new(tenant);
            let item = Item::phone_usage(position, &written, number, &tenant);
            let expected = written_label(position, &written, &tenant);
            prop_assert_eq!(item.to_string(), expected.clone());
            prop_assert_eq!(item.text(), expected.clone());
            let text = Item::from(expected);
            prop_assert_eq!(&item, &text);
            prop_assert_eq!(&text, &item);
            let hash = |item: &Item| {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                item.hash(&mut hasher);
                hasher.finish()
            };
            prop_assert_eq!(hash(&item), hash(&text));
        }
    }

    #[test]
    fn a_canonical_number_is_kept_compact_and_any_other_as_its_text() {
        let tenant = Arc::new("acme".to_string());
        let n = |text: &str| Number::parse(text).ok();
        assert!(matches!(
            Item::phone_usage(7, "+3225400010", n("+3225400010"), &tenant),
            Item::PhoneUsage { .. }
        ));
        for written in ["3225400010", "+32 2 540 00 10", "+32abc"] {
            let item = Item::phone_usage(7, written, n(written), &tenant);
            assert!(matches!(item, Item::Text(_)), "{written}");
        }
    }
}
