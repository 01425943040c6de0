//! A cheap fingerprint of what the state database says the dial plan and the sources are, so
//! that a reader holding something built from them (the daemon's lookup index) knows when to
//! rebuild it without reading a hundred thousand rows to find out nothing changed.

use super::{sql_err, Store, StoreError};

impl Store {
    /// The digests the mirror and every snapshot already carry, joined: equal fingerprints
    /// mean the same mirror and the same snapshots. A new snapshot time with the same entries
    /// keeps the fingerprint, as it changes nothing a lookup answers.
    pub fn routing_fingerprint(&self) -> Result<String, StoreError> {
        let path = &self.path;
        let mirror: String = self
            .conn
            .query_row(
                "SELECT coalesce((SELECT value FROM state_meta WHERE key = 'mirror_digest'), '')",
                [],
                |row| row.get(0),
            )
            .map_err(sql_err(path, "cannot read the mirror digest"))?;
        let mut select = self
            .conn
            .prepare_cached(
                "SELECT source, coalesce(digest, id) FROM source_snapshot ORDER BY source",
            )
            .map_err(sql_err(path, "cannot prepare the snapshot digests read"))?;
        let mut rows = select
            .query([])
            .map_err(sql_err(path, "cannot read the snapshot digests"))?;
        let mut fingerprint = format!("mirror={mirror}");
        while let Some(row) = rows
            .next()
            .map_err(sql_err(path, "cannot read the snapshot digests"))?
        {
            let source: String = row
                .get(0)
                .map_err(sql_err(path, "cannot read a snapshot's source"))?;
            // A snapshot saved before digests existed has none; its row id changes whenever
            // it is replaced, which is all a fingerprint needs.
            let digest: String = row
                .get::<_, rusqlite::types::Value>(1)
                .map(|value| match value {
                    rusqlite::types::Value::Text(text) => text,
                    rusqlite::types::Value::Integer(id) => format!("row{id}"),
                    _ => String::new(),
                })
                .map_err(sql_err(path, "cannot read a snapshot's digest"))?;
            fingerprint.push_str(&format!(";{source}={digest}"));
        }
        Ok(fingerprint)
    }
}
