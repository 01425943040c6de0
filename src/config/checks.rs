//! The file being validated, and the checks of single values. Each check turns a `Spanned`
//! value into a setting or into an error naming its key and line, so that every table's
//! validation reads as a list of keys and their rules, and all say "at line N" the same way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::raw::{Field, RawSize};
use super::{ConfigError, SecretFile};
use crate::dialplan::rule::Tag;
use crate::source::tag::{TagRule, TagTemplate};

/// Where a tag rule is written, for its errors: the source it belongs to (by name, which a
/// reader of a template error looks for), its key (`sources[2]`, `sources[2].groups[0]`) and
/// the offset of its table.
#[derive(Clone, Copy)]
pub(super) struct RuleAt<'a> {
    pub(super) source: &'a str,
    pub(super) key: &'a str,
    pub(super) table: usize,
}

/// The file being validated: turns byte offsets into lines and relative paths into absolute.
pub(super) struct ConfigFile<'a> {
    pub(super) path: PathBuf,
    pub(super) dir: PathBuf,
    pub(super) text: &'a str,
}

impl ConfigFile<'_> {
    pub(super) fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    pub(super) fn invalid(
        &self,
        offset: usize,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.clone(),
            line: self.line(offset),
            key: key.to_string(),
            message: message.into(),
        }
    }

    pub(super) fn at<T>(
        &self,
        value: &Spanned<T>,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        self.invalid(value.span().start, key, message)
    }

    pub(super) fn relative(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.dir.join(path)
        }
    }

    /// A required key of a table that starts at `table`.
    pub(super) fn required<'v, T>(
        &self,
        value: &'v Field<T>,
        table: usize,
        key: &str,
        hint: &str,
    ) -> Result<&'v Spanned<T>, ConfigError> {
        value
            .as_ref()
            .ok_or_else(|| self.invalid(table, key, format!("is required{hint}")))
    }

    /// A required, non-blank string.
    pub(super) fn text(
        &self,
        value: &Field<String>,
        table: usize,
        key: &str,
    ) -> Result<String, ConfigError> {
        let value = self.required(value, table, key, "")?;
        if value.get_ref().trim().is_empty() {
            return Err(self.at(value, key, "must not be empty"));
        }
        Ok(value.get_ref().clone())
    }

    pub(super) fn url(
        &self,
        value: &Field<String>,
        table: usize,
        key: &str,
    ) -> Result<String, ConfigError> {
        let url = self.text(value, table, key)?;
        let spanned = self.required(value, table, key, "")?;
        // `https://user:password@host`: the URL is shown in logs, `status`, `/status` and
        // errors, so a password in it would be shown everywhere. Secrets come from files; the
        // URL is not repeated here, since it carries one.
        if crate::net::endpoint::carries_credentials(&url) {
            return Err(self.at(
                spanned,
                key,
                "carries credentials (user:password@host): remove them from the URL and \
                 put the password in its own file (password_file, client_secret_file)",
            ));
        }
        match url.split_once("://") {
            Some(("http" | "https", rest)) if !rest.is_empty() => Ok(url),
            _ => Err(self.at(spanned, key, format!("{url:?} is not an http(s) URL"))),
        }
    }

    pub(super) fn duration(
        &self,
        value: &Field<String>,
        key: &str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        let Some(value) = value else {
            return Ok(default);
        };
        let parsed = humantime::parse_duration(value.get_ref().trim()).map_err(|e| {
            self.at(
                value,
                key,
                format!(
                    "{:?} is not a duration such as \"60s\" or \"5m\": {e}",
                    value.get_ref()
                ),
            )
        })?;
        if parsed.is_zero() {
            return Err(self.at(value, key, "must be longer than zero"));
        }
        Ok(parsed)
    }

    /// A size in bytes: a plain integer, or a number with a unit (`B`, `KB`/`KiB`, `MB`/`MiB`,
    /// `GB`/`GiB`: powers of 1000 and of 1024). At least 1 KiB, so that not even an error
    /// page is refused; at most 64 GiB, past which a typo is likelier than an answer.
    pub(super) fn size(
        &self,
        value: &Field<RawSize>,
        key: &str,
        default: usize,
    ) -> Result<usize, ConfigError> {
        const MIN: u64 = 1024;
        const MAX: u64 = 64 << 30;
        let Some(value) = value else {
            return Ok(default);
        };
        let bytes = match value.get_ref() {
            RawSize::Bytes(n) => u64::try_from(*n).ok(),
            RawSize::Text(text) => parse_size(text),
            RawSize::Other(_) => None,
        };
        let shown = match value.get_ref() {
            RawSize::Bytes(n) => n.to_string(),
            RawSize::Text(text) => format!("{text:?}"),
            RawSize::Other(other) => other.to_string(),
        };
        let Some(bytes) = bytes else {
            return Err(self.at(
                value,
                key,
                format!("{shown} is not a size such as \"512MiB\", \"64MB\" or 1048576 (bytes)"),
            ));
        };
        if !(MIN..=MAX).contains(&bytes) {
            return Err(self.at(value, key, format!("{shown} is outside 1KiB..=64GiB")));
        }
        usize::try_from(bytes)
            .map_err(|_| self.at(value, key, format!("{shown} is too large here")))
    }

    pub(super) fn count(
        &self,
        value: &Field<u64>,
        key: &str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        let Some(value) = value else {
            return Ok(default);
        };
        let n = *value.get_ref();
        if !range.contains(&n) {
            return Err(self.at(
                value,
                key,
                format!("{n} is outside {}..={}", range.start(), range.end()),
            ));
        }
        Ok(n)
    }

    pub(super) fn fraction(
        &self,
        value: &Field<f64>,
        key: &str,
        default: f64,
    ) -> Result<f64, ConfigError> {
        let Some(value) = value else {
            return Ok(default);
        };
        let f = *value.get_ref();
        if !(0.0..=1.0).contains(&f) {
            return Err(self.at(value, key, format!("{f} is not a fraction between 0 and 1")));
        }
        Ok(f)
    }

    pub(super) fn secret_file(
        &self,
        value: &Field<String>,
        table: usize,
        key: &str,
    ) -> Result<SecretFile, ConfigError> {
        let path = self.text(value, table, key)?;
        let spanned = self.required(value, table, key, "")?;
        Ok(SecretFile {
            path: self.relative(&path),
            key: key.to_string(),
            line: self.line(spanned.span().start),
        })
    }

    /// Refuses keys present in a table but not used by its kind.
    pub(super) fn unused(
        &self,
        kind: &str,
        what: &str,
        keys: &[(&str, Option<usize>)],
    ) -> Result<(), ConfigError> {
        self.not_keys_of(&format!("kind {kind:?}"), what, keys)
    }

    /// Refuses keys present in a table but not used by what it says it is (`of`: `kind
    /// "file"`, `feed "oc_numbers"`).
    pub(super) fn not_keys_of(
        &self,
        of: &str,
        what: &str,
        keys: &[(&str, Option<usize>)],
    ) -> Result<(), ConfigError> {
        match keys.iter().find_map(|(key, at)| at.map(|at| (key, at))) {
            Some((key, at)) => Err(self.invalid(
                at,
                &format!("{what}.{key}"),
                format!("is not a key of {of}"),
            )),
            None => Ok(()),
        }
    }

    pub(super) fn tag_rule(
        &self,
        template: &Field<String>,
        overrides: &Field<BTreeMap<String, Spanned<String>>>,
        at: RuleAt<'_>,
        fields: &[&str],
        max_tag_len: usize,
    ) -> Result<TagRule, ConfigError> {
        let RuleAt { source, key, table } = at;
        let text = self.required(
            template,
            table,
            &format!("{key}.tag"),
            &format!(
                " (a template over {}, e.g. \"Trunk={{{}}}\")",
                fields.join(", "),
                fields[0]
            ),
        )?;
        let template = TagTemplate::parse(text.get_ref(), fields).map_err(|e| {
            self.at(
                text,
                &format!("{key}.tag"),
                format!("source {source:?}: {e}"),
            )
        })?;
        let mut rule = TagRule {
            template,
            overrides: BTreeMap::new(),
        };
        if let Some(map) = overrides {
            for (item, tag) in map.get_ref() {
                let tag = Tag::parse(tag.get_ref(), max_tag_len).map_err(|e| {
                    self.at(
                        tag,
                        &format!("{key}.tags.{item:?}"),
                        format!("{:?}: {e}", tag.get_ref()),
                    )
                })?;
                rule.overrides.insert(item.clone(), tag);
            }
        }
        Ok(rule)
    }
}

/// Where a key is written, when it is: for refusing keys that do not belong.
pub(super) fn offset<T>(field: &Field<T>) -> Option<usize> {
    field.as_ref().map(|v| v.span().start)
}

/// `"512MiB"`, `"64 MB"`, `"1048576"`: the bytes, or `None` for anything else (a fraction, a
/// negative, an unknown unit, an overflow).
fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1_000,
        "mb" | "m" => 1_000_000,
        "gb" | "g" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(scale)
}
