//! The configured SBC as the commands and the service name it: its URL, and the warning owed
//! while its certificate is not verified (DESIGN.md §5.1).

use crate::config::{Config, SbcSettings};

/// The URL of the configured sink, whichever kind it is.
pub(crate) fn sbc_url(config: &Config) -> &str {
    match &config.sbc {
        SbcSettings::AudioCodes { url, .. } | SbcSettings::LiveCloud { url, .. } => url,
    }
}

/// The warning owed while `sbc.insecure_skip_verify` is set.
pub(crate) fn insecure_warning(config: &Config) -> Option<String> {
    match &config.sbc {
        SbcSettings::AudioCodes {
            url,
            insecure_skip_verify: true,
            ..
        } => Some(format!(
            "sbc.insecure_skip_verify is set: the TLS certificate of {url} is not verified"
        )),
        _ => None,
    }
}
