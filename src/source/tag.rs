//! Tags from templates: how a source turns an upstream item into the routing tag of its rules
//! (DESIGN.md §3, §9: `tag = "Trunk={tenant}"` plus an optional `[sources.tags]` override map).
//!
//! Upstreams know tenants, groups and users, not SBC tags; the operator says once, per source,
//! how the one becomes the other. A template is checked when the config is loaded (an unknown
//! field or filter, or a stray brace, is a config error naming the source); a value that makes
//! an invalid tag (a tenant name with a `;`) rejects that one item with the reason, never the
//! source.
//!
//! Real tenant names carry spaces and accents ("Atelier Horta"), which no tag may, and nobody
//! keeps an override per tenant for two thousand tenants. A field written `{tenant:slug}` is
//! made tag-safe instead ([`slug`]). Folding loses information, so two different names may
//! fold alike ("Café Noir", "Cafe-Noir"); merging two customers onto one trunk silently would
//! misroute calls, so the items of the later name are rejected, naming both ([`SlugClaims`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::dialplan::rule::Tag;
use crate::error::{Classify, ErrorClass};

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
    #[error(
        "tag template {template:?}: unknown filter :{filter} on {{{field}}}; the one filter \
         is :slug, as in {{{field}:slug}}"
    )]
    UnknownFilter {
        template: String,
        field: String,
        filter: String,
    },
}

impl Classify for TemplateError {
    fn class(&self) -> ErrorClass {
        // A template is configuration: it stays wrong until someone edits it.
        ErrorClass::Fatal
    }
}

/// What a template does to a field's value before it goes into the tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Filter {
    /// The value as it is (refused if it holds `;` or `=`).
    Verbatim,
    /// [`slug`] of the value.
    Slug,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Field { name: String, filter: Filter },
}

/// A parsed template such as `Trunk={tenant}` or `{tenant:slug}.oc.example.net`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagTemplate {
    text: String,
    parts: Vec<Part>,
    /// Some field goes through [`slug`], so two values may render alike.
    slugged: bool,
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
                    let mut inner = String::new();
                    let mut closed = false;
                    for (_, c) in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        inner.push(c);
                    }
                    if !closed {
                        return Err(TemplateError::Unclosed {
                            template: text.to_string(),
                            position,
                        });
                    }
                    let (field, filter) = match inner.split_once(':') {
                        Some((field, filter)) => (field.to_string(), Some(filter)),
                        None => (inner.clone(), None),
                    };
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
                    let filter = match filter {
                        None => Filter::Verbatim,
                        Some("slug") => Filter::Slug,
                        Some(other) => {
                            return Err(TemplateError::UnknownFilter {
                                template: text.to_string(),
                                field,
                                filter: other.to_string(),
                            })
                        }
                    };
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Field {
                        name: field,
                        filter,
                    });
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
        let slugged = parts.iter().any(|p| {
            matches!(
                p,
                Part::Field {
                    filter: Filter::Slug,
                    ..
                }
            )
        });
        Ok(TagTemplate {
            text: text.to_string(),
            parts,
            slugged,
        })
    }

    /// The names of the fields the template reads, in its order (a field read twice is named
    /// twice): with the template, their values are all a rendering depends on.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            Part::Field { name, .. } => Some(name.as_str()),
            Part::Text(_) => None,
        })
    }

    /// The tag for one item, whose fields `field` looks up. The reason on failure names what
    /// is missing or what the tag syntax refused, for the rejected-item report. `claims` holds
    /// the tags this fetch has already made through a slug, and whose values they came from.
    pub fn render<'a>(
        &self,
        field: impl Fn(&str) -> Option<&'a str>,
        max_tag_len: usize,
        claims: &mut SlugClaims,
    ) -> Result<Tag, String> {
        let mut out = String::new();
        // The values this tag is made of, kept only when a slug could make two of them alike.
        let mut values: Vec<(&str, &str)> = Vec::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field { name, filter } => {
                    let value = match field(name).map(str::trim) {
                        Some(value) if !value.is_empty() => value,
                        _ => return Err(format!("no {name} for tag template {:?}", self.text)),
                    };
                    match filter {
                        // A `;` or `=` in a value would change the tag's structure, not just
                        // its text (tenant "a;b" would add a bare name `b`): refuse the item.
                        Filter::Verbatim if value.contains([';', '=']) => {
                            return Err(format!(
                                "{name} {value:?} contains ';' or '=', which would change the \
                                 shape of tag template {:?}; map it in [sources.tags] or \
                                 write {{{name}:slug}}",
                                self.text
                            ))
                        }
                        Filter::Verbatim => out.push_str(value),
                        Filter::Slug => {
                            let slugged = slug(value);
                            if slugged.is_empty() {
                                return Err(format!(
                                    "{name} {value:?} has no letter or digit that {{{name}:slug}} \
                                     can keep; map it in [sources.tags]"
                                ));
                            }
                            out.push_str(&slugged);
                        }
                    }
                    if self.slugged {
                        values.push((name, value));
                    }
                }
            }
        }
        let tag = Tag::parse(&out, max_tag_len).map_err(|e| format!("tag {out:?}: {e}"))?;
        if self.slugged {
            claims.claim(&tag, &values)?;
        }
        Ok(tag)
    }
}

impl fmt::Display for TagTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The tags one fetch of one source made through `{field:slug}`, each with the field values
/// it was first made from. A later item whose different values render the same tag (two
/// tenants "Café Noir" and "Cafe-Noir" both becoming `Trunk=cafe-noir`) is refused, naming
/// both, instead of being routed to the other customer's trunk. The first values seen keep the
/// tag, so the report is stable while the upstream's order is.
#[derive(Debug, Default)]
pub struct SlugClaims {
    owners: HashMap<Tag, Owner>,
}

/// The values (field name, value) that first made a tag, in the template's order.
type Owner = Box<[(Box<str>, Box<str>)]>;

impl SlugClaims {
    /// Records that `values` (field name, value) made `tag`, or says which other values did.
    fn claim(&mut self, tag: &Tag, values: &[(&str, &str)]) -> Result<(), String> {
        match self.owners.get(tag) {
            Some(owner) => {
                let same = owner.len() == values.len()
                    && owner
                        .iter()
                        .zip(values)
                        .all(|((f, v), (g, w))| **f == **g && **v == **w);
                if same {
                    return Ok(());
                }
                let shown = |values: &mut dyn Iterator<Item = (&str, &str)>| {
                    values
                        .map(|(field, value)| format!("{field} {value:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let theirs = shown(&mut owner.iter().map(|(f, v)| (&**f, &**v)));
                let ours = shown(&mut values.iter().copied());
                Err(format!(
                    "{ours} makes tag {:?}, which {theirs} already has: the slugs of two \
                     different names collide, and merging them would route one customer's \
                     calls to the other; give one of them its own tag in [sources.tags]",
                    tag.as_str()
                ))
            }
            None => {
                let owner = values
                    .iter()
                    .map(|(f, v)| (Box::from(*f), Box::from(*v)))
                    .collect();
                self.owners.insert(tag.clone(), owner);
                Ok(())
            }
        }
    }
}

/// `value` made fit for a tag: lowercased, accents folded to ASCII ("é" to "e", "ß" to "ss",
/// "Ł" to "l"), and every run of characters a tag cannot hold (spaces, punctuation, letters
/// outside the fold table) turned into one `-`, with none at either end. A `-` already in the
/// value joins the run around it, so "Café - Noir" is `cafe-noir`, not `cafe---noir`.
///
/// What a tag can hold is taken as what it can hold in every position, today: letters, digits,
/// `_` and `-`. A dot is also a separator, so that `{tenant:slug}.oc.example.net` keeps the
/// domain's structure whatever the tenant's name holds. An empty result means nothing was
/// left (a name in a script the table does not fold); the item is then refused.
pub fn slug(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut gap = false;
    for c in value.chars() {
        // Combining accents (a name sent decomposed, "e" then U+0301): the letter stays.
        if ('\u{0300}'..='\u{036F}').contains(&c) {
            continue;
        }
        let kept = if c.is_ascii_alphanumeric() || c == '_' {
            Some(Folded::Char(c.to_ascii_lowercase()))
        } else {
            fold(c).filter(|f| !f.is_empty()).map(Folded::Text)
        };
        match kept {
            Some(kept) => {
                if gap && !out.is_empty() {
                    out.push('-');
                }
                gap = false;
                match kept {
                    Folded::Char(c) => out.push(c),
                    Folded::Text(text) => out.push_str(text),
                }
            }
            None => gap = true,
        }
    }
    out
}

enum Folded {
    Char(char),
    Text(&'static str),
}

/// The ASCII letters of a Latin-1 or Latin Extended-A letter, lowercased; `None` outside those
/// blocks, `Some("")` for their few signs that are not letters (× ÷).
///
/// Written out here rather than taken from a transliteration crate: tenant names are Latin
/// script in the markets this serves, these 192 code points cover Western, Central and
/// Northern European names, and a whole-Unicode table would be far more than a tag needs.
/// Anything else becomes a separator, and a name left empty by that is refused by name.
fn fold(c: char) -> Option<&'static str> {
    let code = c as u32;
    match code {
        0xC0..=0xFF => LATIN_1.get((code - 0xC0) as usize).copied(),
        0x100..=0x17F => LATIN_EXTENDED_A.get((code - 0x100) as usize).copied(),
        _ => None,
    }
}

/// U+00C0..=U+00FF, in order.
#[rustfmt::skip]
const LATIN_1: [&str; 64] = [
    "a", "a", "a", "a", "a", "a", "ae", "c", // À Á Â Ã Ä Å Æ Ç
    "e", "e", "e", "e", "i", "i", "i", "i",  // È É Ê Ë Ì Í Î Ï
    "d", "n", "o", "o", "o", "o", "o", "",   // Ð Ñ Ò Ó Ô Õ Ö ×
    "o", "u", "u", "u", "u", "y", "th", "ss", // Ø Ù Ú Û Ü Ý Þ ß
    "a", "a", "a", "a", "a", "a", "ae", "c", // à á â ã ä å æ ç
    "e", "e", "e", "e", "i", "i", "i", "i",  // è é ê ë ì í î ï
    "d", "n", "o", "o", "o", "o", "o", "",   // ð ñ ò ó ô õ ö ÷
    "o", "u", "u", "u", "u", "y", "th", "y", // ø ù ú û ü ý þ ÿ
];

/// U+0100..=U+017F, in order.
#[rustfmt::skip]
const LATIN_EXTENDED_A: [&str; 128] = [
    "a", "a", "a", "a", "a", "a", "c", "c",     // Ā ā Ă ă Ą ą Ć ć
    "c", "c", "c", "c", "c", "c", "d", "d",     // Ĉ ĉ Ċ ċ Č č Ď ď
    "d", "d", "e", "e", "e", "e", "e", "e",     // Đ đ Ē ē Ĕ ĕ Ė ė
    "e", "e", "e", "e", "g", "g", "g", "g",     // Ę ę Ě ě Ĝ ĝ Ğ ğ
    "g", "g", "g", "g", "h", "h", "h", "h",     // Ġ ġ Ģ ģ Ĥ ĥ Ħ ħ
    "i", "i", "i", "i", "i", "i", "i", "i",     // Ĩ ĩ Ī ī Ĭ ĭ Į į
    "i", "i", "ij", "ij", "j", "j", "k", "k",   // İ ı Ĳ ĳ Ĵ ĵ Ķ ķ
    "k", "l", "l", "l", "l", "l", "l", "l",     // ĸ Ĺ ĺ Ļ ļ Ľ ľ Ŀ
    "l", "l", "l", "n", "n", "n", "n", "n",     // ŀ Ł ł Ń ń Ņ ņ Ň
    "n", "n", "ng", "ng", "o", "o", "o", "o",   // ň ŉ Ŋ ŋ Ō ō Ŏ ŏ
    "o", "o", "oe", "oe", "r", "r", "r", "r",   // Ő ő Œ œ Ŕ ŕ Ŗ ŗ
    "r", "r", "s", "s", "s", "s", "s", "s",     // Ř ř Ś ś Ŝ ŝ Ş ş
    "s", "s", "t", "t", "t", "t", "t", "t",     // Š š Ţ ţ Ť ť Ŧ ŧ
    "u", "u", "u", "u", "u", "u", "u", "u",     // Ũ ũ Ū ū Ŭ ŭ Ů ů
    "u", "u", "u", "u", "w", "w", "y", "y",     // Ű ű Ų ų Ŵ ŵ Ŷ ŷ
    "y", "z", "z", "z", "z", "z", "z", "s",     // Ÿ Ź ź Ż ż Ž ž ſ
];

/// A source's whole tag rule: explicit tags by key (tenant name, group...) first, else the
/// template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagRule {
    pub template: TagTemplate,
    pub overrides: BTreeMap<String, Tag>,
}

impl TagRule {
    /// The tag for an item whose override key is `key` and whose fields `field` looks up;
    /// `claims` is the fetch's record of tags made through a slug (see [`SlugClaims`]).
    pub fn tag_for<'a>(
        &self,
        key: Option<&str>,
        field: impl Fn(&str) -> Option<&'a str>,
        max_tag_len: usize,
        claims: &mut SlugClaims,
    ) -> Result<Tag, String> {
        if let Some(tag) = self.override_for(key) {
            return Ok(tag.clone());
        }
        self.template.render(field, max_tag_len, claims)
    }

    /// The explicit tag of an item whose override key is `key`, which wins over the template.
    pub fn override_for(&self, key: Option<&str>) -> Option<&Tag> {
        key.and_then(|k| self.overrides.get(k))
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
            .render(
                fields(&[("tenant", "acme"), ("group", "hq")]),
                64,
                &mut SlugClaims::default(),
            )
            .unwrap();
        assert_eq!(tag.as_str(), "Trunk=acme;Site=hq");
        assert_eq!(
            TagTemplate::parse("Teams", FUSION)
                .unwrap()
                .render(|_| None, 64, &mut SlugClaims::default())
                .unwrap()
                .as_str(),
            "Teams"
        );
    }

    #[test]
    fn bad_values_reject_the_item_with_a_reason() {
        let template = TagTemplate::parse("Trunk={tenant}", FUSION).unwrap();
        let missing = template
            .render(fields(&[("group", "hq")]), 64, &mut SlugClaims::default())
            .unwrap_err();
        assert!(missing.contains("no tenant"), "{missing}");
        let blank = template
            .render(fields(&[("tenant", "  ")]), 64, &mut SlugClaims::default())
            .unwrap_err();
        assert!(blank.contains("no tenant"), "{blank}");
        let injected = template
            .render(fields(&[("tenant", "a;b")]), 64, &mut SlugClaims::default())
            .unwrap_err();
        assert!(
            injected.contains("tenant \"a;b\" contains ';'"),
            "{injected}"
        );
        let spaced = template
            .render(fields(&[("tenant", "a b")]), 64, &mut SlugClaims::default())
            .unwrap_err();
        assert!(spaced.contains("\"Trunk=a b\""), "{spaced}");
        let long = template
            .render(
                fields(&[("tenant", &"x".repeat(60))]),
                64,
                &mut SlugClaims::default(),
            )
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
            rule.tag_for(
                Some("Netaxis DEV"),
                fields(&dev),
                64,
                &mut SlugClaims::default()
            )
            .unwrap()
            .as_str(),
            "Trunk=netaxis-dev"
        );
        // Without the override the space makes an invalid tag: the map is how operators fix it.
        assert!(rule
            .tag_for(None, fields(&dev), 64, &mut SlugClaims::default())
            .is_err());
        let acme = [("tenant", "acme")];
        assert_eq!(
            rule.tag_for(Some("acme"), fields(&acme), 64, &mut SlugClaims::default())
                .unwrap()
                .as_str(),
            "Trunk=acme"
        );
    }

    #[test]
    fn slugs_lowercase_fold_accents_and_join_runs_with_one_dash() {
        for (value, want) in [
            ("Atelier Horta", "atelier-horta"),
            ("Brouwerij De Koninck", "brouwerij-de-koninck"),
            ("Gentse Feesten vzw", "gentse-feesten-vzw"),
            ("Café Noir", "cafe-noir"),
            ("Cafe-Noir", "cafe-noir"),
            ("  Café - Noir!  ", "cafe-noir"),
            ("Œuvre d'Art, Gent", "oeuvre-d-art-gent"),
            ("Straße Über Ærø", "strasse-uber-aero"),
            ("Łódź Żabka Šťastný", "lodz-zabka-stastny"),
            ("Þórshöfn Ðúfa", "thorshofn-dufa"),
            // Decomposed accents (a letter, then a combining mark) fold the same way.
            ("Cafe\u{301} Noir", "cafe-noir"),
            ("ACME_BE", "acme_be"),
            ("acme.example", "acme-example"),
            ("3×4 ÷ 2", "3-4-2"),
            ("Brasserie «Ça Va» 2000", "brasserie-ca-va-2000"),
            ("Москва Office", "office"),
            ("***", ""),
            ("Москва", ""),
        ] {
            assert_eq!(slug(value), want, "slug of {value:?}");
        }
    }

    #[test]
    fn the_fold_table_gives_lowercase_ascii_letters_for_every_letter() {
        for code in 0xC0u32..=0x17F {
            let c = char::from_u32(code).expect("a char");
            let folded = fold(c).expect("in the table");
            let sign = matches!(c, '×' | '÷');
            assert_eq!(folded.is_empty(), sign, "{c} (U+{code:04X}) -> {folded:?}");
            assert!(
                folded.bytes().all(|b| b.is_ascii_lowercase()),
                "{c} (U+{code:04X}) -> {folded:?}"
            );
            // The capital and the small letter of a pair fold alike (where Unicode pairs them
            // within the table).
            for lower in c.to_lowercase() {
                if let Some(small) = fold(lower) {
                    assert_eq!(folded, small, "{c} and {lower}");
                }
            }
        }
        assert_eq!(fold('A'), None, "ASCII is not the table's business");
        assert_eq!(fold('Ā'), Some("a"));
        assert_eq!(fold('ſ'), Some("s"));
    }

    #[test]
    fn a_slug_field_makes_a_tag_from_any_name() {
        let template = TagTemplate::parse("Trunk={tenant:slug}", FUSION).unwrap();
        let mut claims = SlugClaims::default();
        let tag = template
            .render(fields(&[("tenant", "Atelier Horta")]), 64, &mut claims)
            .unwrap();
        assert_eq!(tag.as_str(), "Trunk=atelier-horta");
        // `;` and `=` are separators to a slug, not structure.
        let tag = template
            .render(fields(&[("tenant", "a;b=c")]), 64, &mut claims)
            .unwrap();
        assert_eq!(tag.as_str(), "Trunk=a-b-c");
        let empty = template
            .render(fields(&[("tenant", "Москва")]), 64, &mut claims)
            .unwrap_err();
        assert!(
            empty.contains("tenant \"Москва\" has no letter or digit"),
            "{empty}"
        );
        let fqdn = TagTemplate::parse("{tenant:slug}-oc", FUSION).unwrap();
        assert_eq!(
            fqdn.render(
                fields(&[("tenant", "Brouwerij De Koninck")]),
                64,
                &mut claims
            )
            .unwrap()
            .as_str(),
            "brouwerij-de-koninck-oc"
        );
    }

    #[test]
    fn names_whose_slugs_collide_are_refused_naming_both() {
        let template = TagTemplate::parse("Trunk={tenant:slug}", FUSION).unwrap();
        let mut claims = SlugClaims::default();
        let mut render =
            |tenant: &str| template.render(fields(&[("tenant", tenant)]), 64, &mut claims);
        assert_eq!(render("Café Noir").unwrap().as_str(), "Trunk=cafe-noir");
        assert_eq!(
            render("Atelier Horta").unwrap().as_str(),
            "Trunk=atelier-horta"
        );
        // The first name keeps its tag, item after item.
        assert_eq!(render("Café Noir").unwrap().as_str(), "Trunk=cafe-noir");
        assert_eq!(render(" Café Noir ").unwrap().as_str(), "Trunk=cafe-noir");
        for later in ["Cafe-Noir", "CAFÉ NOIR"] {
            let refused = render(later).unwrap_err();
            assert!(
                refused.contains(&format!("tenant {later:?} makes tag \"Trunk=cafe-noir\""))
                    && refused.contains("which tenant \"Café Noir\" already has"),
                "{refused}"
            );
        }
        // Two fields: the pair of values owns the tag.
        let pair = TagTemplate::parse("{tenant:slug}-{group:slug}", FUSION).unwrap();
        let mut claims = SlugClaims::default();
        let a = pair.render(
            fields(&[("tenant", "a-b"), ("group", "c")]),
            64,
            &mut claims,
        );
        assert_eq!(a.unwrap().as_str(), "a-b-c");
        let b = pair
            .render(
                fields(&[("tenant", "a"), ("group", "b c")]),
                64,
                &mut claims,
            )
            .unwrap_err();
        assert!(
            b.contains(
                "tenant \"a\", group \"b c\" makes tag \"a-b-c\", which tenant \"a-b\", \
                        group \"c\" already has"
            ),
            "{b}"
        );
        // Without a slug nothing is recorded: a verbatim value cannot fold into another.
        let plain = TagTemplate::parse("Trunk={tenant}", FUSION).unwrap();
        let mut claims = SlugClaims::default();
        for tenant in ["acme", "acme", "globex"] {
            plain
                .render(fields(&[("tenant", tenant)]), 64, &mut claims)
                .unwrap();
        }
        assert!(claims.owners.is_empty());
    }

    #[test]
    fn an_unknown_filter_is_a_template_error() {
        let error = TagTemplate::parse("Trunk={tenant:upper}", FUSION).unwrap_err();
        assert!(
            matches!(&error, TemplateError::UnknownFilter { field, filter, .. }
                if field == "tenant" && filter == "upper"),
            "{error:?}"
        );
        assert!(error
            .to_string()
            .contains("unknown filter :upper on {tenant}"));
        assert!(matches!(
            TagTemplate::parse("Trunk={tenant:}", FUSION),
            Err(TemplateError::UnknownFilter { .. })
        ));
        assert!(matches!(
            TagTemplate::parse("Trunk={customer:slug}", FUSION),
            Err(TemplateError::UnknownField { .. })
        ));
        assert!(matches!(
            TagTemplate::parse("Trunk={:slug}", FUSION),
            Err(TemplateError::EmptyField { .. })
        ));
    }
}
