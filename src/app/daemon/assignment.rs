//! The one rule shared by the two `KEY=value` texts the daemon writes, systemd's notify
//! messages and the reload record: a value never holds a line break, which would start a new
//! assignment (and let an error message forge one).

/// `text` with every line break turned into a space.
pub(super) fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}
