//! `config check`: the file, its templates and its secret files, with no network.

use std::io::Write;
use std::path::Path;

use super::error::CommandError;
use super::sbc::{insecure_warning, sbc_url};
use crate::config::{Config, SbcSettings};

pub fn config_check(path: &Path, out: &mut dyn Write) -> Result<u8, CommandError> {
    let config = Config::load(path)?;
    config.sources()?;
    config.sink()?;
    writeln!(
        out,
        "{}: OK: policy {}, {} source(s) ({}), sink {} at {}, state in {}",
        path.display(),
        config.agent.policy.as_str(),
        config.sources.len(),
        config
            .sources
            .iter()
            .map(|s| format!("{} ({})", s.name, s.kind.name()))
            .collect::<Vec<_>>()
            .join(", "),
        match config.sbc {
            SbcSettings::AudioCodes { .. } => "audiocodes",
            SbcSettings::LiveCloud { .. } => "livecloud",
        },
        sbc_url(&config),
        config.agent.state_db.display()
    )?;
    if let Some(warning) = insecure_warning(&config) {
        writeln!(out, "WARNING: {warning}")?;
    }
    Ok(0)
}
