//! What an AudioCodes device accepts in a row of its Dial Plan Rule table, as the vendor's
//! manuals state it: the emulators' own reading, written from those pages and deliberately
//! not dialsync's (`dialplan/`), so that a test in which the sink writes and an emulator
//! accepts proves the two readings agree rather than that one piece of code agrees with itself.
//!
//! From the Dial Plan Rule table's parameter descriptions (Mediant User's Manuals, "Dial Plan
//! Rule Table Parameter Descriptions"):
//! - Name: "a string of up to 15 characters";
//! - Prefix: "up to 50 characters": digits; `x` (0-9), `z` (1-9), `n` (2-9) and other letters;
//!   `*` alone for any number; `\` making the next character literal; `#` at the end for the
//!   end of the number; `.` any letter or digit; `[...]` a set of single numbers and ranges of
//!   one width as a prefix, `([...])` or `(n-m)` as a suffix. Every rule in the field also
//!   starts with the E.164 `+`, which the device therefore takes as a literal;
//! - Tag: a name or `name=value`, several joined by `;`, only one without a value, values may
//!   hold dots (in the field, names do too: Live Platform writes bare FQDN tags such as
//!   `sandbox1.audiocodes.be`). The manual of firmware 7.2 says "up to 16 characters"; later
//!   firmware and Live Platform write longer ones, so the emulated firmware takes
//!   [`MAX_TAG_LEN`].
//!
//! The SBC emulator checks a row when a script writes it, never the rows a test puts in its
//! state directly: a device may hold rows written by an older or newer firmware, or rows this
//! reading of the manuals gets wrong. The Live Platform emulator checks the rules a PATCH adds
//! and those of its data file.

/// The longest Name the device accepts.
pub const MAX_NAME_LEN: usize = 15;
/// The longest Prefix the device accepts.
pub const MAX_PREFIX_LEN: usize = 50;
/// The longest Tag the emulated firmware accepts.
pub const MAX_TAG_LEN: usize = 64;

/// Why the device refuses a rule's value, as its answer would word it.
pub fn check(name: &str, prefix: &str, tag: &str) -> Result<(), String> {
    check_name(name)?;
    check_prefix(prefix).map_err(|why| format!("invalid prefix {prefix:?}: {why}"))?;
    check_tag(tag).map_err(|why| format!("invalid tag {tag:?}: {why}"))
}

fn check_name(name: &str) -> Result<(), String> {
    let len = name.chars().count();
    if len > MAX_NAME_LEN {
        return Err(format!(
            "invalid name {name:?}: {len} characters, at most {MAX_NAME_LEN}"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(format!("invalid name {name:?}: control character"));
    }
    Ok(())
}

fn check_prefix(prefix: &str) -> Result<(), String> {
    let len = prefix.chars().count();
    if len == 0 {
        return Err("a rule needs a prefix".into());
    }
    if len > MAX_PREFIX_LEN {
        return Err(format!("{len} characters, at most {MAX_PREFIX_LEN}"));
    }
    if prefix == "*" {
        return Ok(());
    }
    let chars: Vec<char> = prefix.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                if i + 1 == chars.len() {
                    return Err("'\\' escapes nothing".into());
                }
                i += 2;
                continue;
            }
            '#' if i + 1 == chars.len() => {}
            '#' => return Err("'#' may only end the prefix".into()),
            '*' => return Err("'*' must stand alone".into()),
            '[' => i = set_end(&chars, i)?,
            '(' => {
                let close = chars[i..]
                    .iter()
                    .position(|&c| c == ')')
                    .map(|offset| i + offset)
                    .ok_or("'(' is never closed")?;
                let inner: Vec<char> = chars[i + 1..close].to_vec();
                match inner.first() {
                    Some('[') if set_end(&inner, 0)? + 1 == inner.len() => {}
                    Some('[') => return Err("a suffix holds one '[...]' and nothing else".into()),
                    _ => {
                        let mut bracketed = vec!['['];
                        bracketed.extend(&inner);
                        bracketed.push(']');
                        set_end(&bracketed, 0)?;
                    }
                }
                i = close;
            }
            c if c.is_ascii_alphanumeric() || matches!(c, '+' | '.') => {}
            c => return Err(format!("{c:?} is not allowed")),
        }
        i += 1;
    }
    Ok(())
}

/// Checks the `[...]` opening at `open`; returns the position of its `]`.
fn set_end(chars: &[char], open: usize) -> Result<usize, String> {
    let close = chars[open..]
        .iter()
        .position(|&c| c == ']')
        .map(|offset| open + offset)
        .ok_or("'[' is never closed")?;
    let inner: String = chars[open + 1..close].iter().collect();
    let mut width = None;
    for item in inner.split(',') {
        let (lo, hi) = item.split_once('-').unwrap_or((item, item));
        for bound in [lo, hi] {
            if bound.is_empty() || !bound.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("[{inner}]: {item:?} is not a number or a range"));
            }
            if *width.get_or_insert(bound.len()) != bound.len() {
                return Err(format!(
                    "[{inner}]: the numbers and ranges must have the same amount of digits"
                ));
            }
        }
        if lo > hi {
            return Err(format!("[{inner}]: {item:?} runs backwards"));
        }
    }
    Ok(close)
}

fn check_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() {
        return Ok(());
    }
    let len = tag.chars().count();
    if len > MAX_TAG_LEN {
        return Err(format!("{len} characters, at most {MAX_TAG_LEN}"));
    }
    if tag
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '"')
    {
        return Err("blanks, control characters and '\"' are not allowed".into());
    }
    let mut bare = 0;
    for part in tag.split(';') {
        match part.split_once('=') {
            Some((name, value)) if name.is_empty() || value.is_empty() => {
                return Err(format!("{part:?} needs a name and a value"))
            }
            Some(_) => {}
            None if part.is_empty() => return Err("an empty tag between ';'".into()),
            None => bare += 1,
        }
    }
    if bare > 1 {
        return Err("only one tag name can be configured without a value".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendors_examples_and_what_the_field_writes() {
        for (name, prefix, tag) in [
            (
                "dialsync",
                "+322612700[0-2]#",
                "Trunk=7f2c0c61-1b44-4c3e-9e58-bd0c0d0f7b1a",
            ),
            ("LivePlatform", "+97239753000", "sandbox1.audiocodes.be"),
            (
                "GSBFZUBGHWOFI",
                "+2711123[1000-1999]",
                "sbc01.teams.contoso.com",
            ),
            (
                "",
                "[123-130,455,766,780-790]",
                "Belgium;Country1=England;Country2=India",
            ),
            ("suffix", "53([2-4])", "A"),
            ("suffix", "531(4)", "B"),
            ("any", "*", ""),
            ("escaped", "\\*1x\\x.", "Country=India"),
            ("letters", "abcXYZ", "Site=10.0.0.1"),
        ] {
            assert_eq!(check(name, prefix, tag), Ok(()), "{name} {prefix} {tag}");
        }
    }

    #[test]
    fn what_the_device_refuses() {
        for (name, prefix, tag) in [
            ("a-name-too-long!", "+32", ""),
            ("n", "", ""),
            ("n", &"1".repeat(51), ""),
            ("n", "+32*", ""),
            ("n", "+3#2", ""),
            ("n", "+32[1-", ""),
            ("n", "+32[1,22]", ""),
            ("n", "+32[9-1]", ""),
            ("n", "+32 1", ""),
            ("n", "+32\\", ""),
            ("n", "+32", "Belgium;England"),
            ("n", "+32", "T="),
            ("n", "+32", "two words"),
            ("n", "+32", &"t".repeat(65)),
        ] {
            assert!(check(name, prefix, tag).is_err(), "{name} {prefix} {tag}");
        }
    }
}
