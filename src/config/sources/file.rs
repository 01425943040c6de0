//! A `file` source: a CSV beside the config. The file carries its own tags, so the source
//! takes no tag rule, and no secret.

use std::path::Path;

use super::{Building, SourceKind, SourceTable};
use crate::config::checks::{offset, ConfigFile};
use crate::config::raw::RawSource;
use crate::config::ConfigError;
use crate::source::Source;

/// The keys only a `file` source takes, refused in a table of another kind.
pub(super) fn keys(raw: &RawSource) -> Vec<(&'static str, Option<usize>)> {
    vec![("path", offset(&raw.path))]
}

/// Checks the keys of a `file` table.
pub(super) fn settings(
    file: &ConfigFile<'_>,
    raw: &RawSource,
    table: SourceTable<'_>,
) -> Result<SourceKind, ConfigError> {
    // The CSV carries its own tags.
    file.unused(
        "file",
        table.key,
        &[("tag", offset(&raw.tag)), ("tags", offset(&raw.tags))],
    )?;
    let path = file.text(&raw.path, table.at, &table.key("path"))?;
    Ok(SourceKind::File {
        path: file.relative(&path),
    })
}

/// Builds the source: it reads the file at each fetch, so nothing can fail here.
pub(super) fn build(building: &Building<'_>, path: &Path) -> Source {
    Source::file(building.name, path, building.limits, building.max_body)
}
