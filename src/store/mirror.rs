//! The mirror of `OCDialPlan` as last read from the SBC.
//!
//! Each cycle reads the whole dial plan from the device and replaces the mirror with it, so
//! the mirror is never patched and can never drift from what was read: a rule someone edited
//! by hand on the SBC shows up here exactly as the device reported it.

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{corrupt, int, sql_err, text, Store, StoreError};
use crate::dialplan::pattern::Pattern;
use crate::dialplan::rule::{DialPlanRule, HeldText};

/// One rule of the mirrored dial plan and whether dialsync owns it (its Name was
/// `dialplan.rule_name` when it was read). Ownership is recorded rather than recomputed so the
/// mirror answers "what did we own" even after `rule_name` changes in the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorRule {
    pub rule: DialPlanRule,
    pub owned: bool,
}

impl Store {
    /// Replaces the whole mirror with `rules`, in one transaction: a reader sees the old
    /// mirror or the new one, never a mix. Two rules with the same index are refused (the SBC
    /// keeps Index unique, so such a read is broken) and the old mirror stays.
    ///
    /// A read equal to the stored mirror (same digest) rewrites nothing.
    pub fn replace_mirror(&mut self, rules: &[MirrorRule]) -> Result<(), StoreError> {
        self.replace_mirror_rows(rules.iter().map(|r| (&r.rule, r.owned)))
    }

    /// [`replace_mirror`](Self::replace_mirror) from each rule and whether it is owned, so a
    /// caller holding the rules as read need not copy them into [`MirrorRule`]s first (a
    /// second copy of every rule, 12 MB at 100k rules).
    pub fn replace_mirror_rows<'a>(
        &mut self,
        rows: impl IntoIterator<Item = (&'a DialPlanRule, bool)>,
    ) -> Result<(), StoreError> {
        let Store { conn, path, .. } = self;
        // By index, as the rows are stored: the same rules read in another order are the same.
        let mut rules: Vec<(&DialPlanRule, bool)> = rows.into_iter().collect();
        rules.sort_by_key(|(rule, _)| rule.index);
        let digest = mirror_digest(&rules);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err(path, "cannot begin replacing the mirror"))?;
        let stored: Option<String> = tx
            .query_row(
                "SELECT value FROM state_meta WHERE key = 'mirror_digest'",
                [],
                |row| row.get(0),
            )
            .optional()
            .map_err(sql_err(path, "cannot read the mirror digest"))?;
        if stored.as_deref() == Some(digest.as_str()) {
            return Ok(());
        }
        tx.execute(
            "INSERT INTO state_meta (key, value) VALUES ('mirror_digest', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [&digest],
        )
        .map_err(sql_err(path, "cannot store the mirror digest"))?;
        tx.execute("DELETE FROM mirror_rule", [])
            .map_err(sql_err(path, "cannot clear the mirror"))?;
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO mirror_rule (rule_index, name, prefix, tag, owned)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(sql_err(path, "cannot prepare the mirror insert"))?;
            for (rule, owned) in rules {
                insert
                    .execute(params![
                        rule.index,
                        rule.name,
                        rule.prefix.as_str(),
                        rule.tag.as_str(),
                        owned
                    ])
                    .map_err(|e| {
                        sql_err(
                            path,
                            format!("cannot store mirror rule index {}", rule.index),
                        )(e)
                    })?;
            }
        }
        tx.commit()
            .map_err(sql_err(path, "cannot commit the mirror"))
    }

    /// How many rules the mirror holds, and how many of them are owned: what a cycle that
    /// could not read the SBC reports as the last known counts.
    pub fn mirror_counts(&self) -> Result<(u64, u64), StoreError> {
        let path = &self.path;
        self.conn
            .query_row(
                "SELECT count(*), coalesce(sum(owned), 0) FROM mirror_rule",
                [],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)),
            )
            .map(|(all, owned)| (all.max(0) as u64, owned.max(0) as u64))
            .map_err(sql_err(path, "cannot count the mirror"))
    }

    /// The mirror, ordered by index. A row that no longer parses is an error naming its index.
    pub fn mirror(&self) -> Result<Vec<MirrorRule>, StoreError> {
        let path = &self.path;
        let mut select = self
            .conn
            .prepare_cached(
                "SELECT rule_index, name, prefix, tag, owned FROM mirror_rule ORDER BY rule_index",
            )
            .map_err(sql_err(path, "cannot prepare the mirror read"))?;
        let mut rows = select
            .query([])
            .map_err(sql_err(path, "cannot read the mirror"))?;
        let mut rules = Vec::new();
        // Names and tags repeat across thousands of rules: one copy of each distinct text.
        let mut held = HeldText::default();
        while let Some(row) = rows
            .next()
            .map_err(sql_err(path, "cannot read the mirror"))?
        {
            let index = row
                .get::<_, i64>(0)
                .map_err(sql_err(path, "cannot read a mirror rule index"))?;
            let rule = decode(row, index, &mut held)
                .map_err(|reason| corrupt(path, "mirror_rule", format!("index {index}"), reason))?;
            rules.push(rule);
        }
        Ok(rules)
    }
}

fn decode(row: &rusqlite::Row<'_>, index: i64, held: &mut HeldText) -> Result<MirrorRule, String> {
    let index = u32::try_from(index).map_err(|_| format!("index {index} is not a u32"))?;
    let name = held.name(text(row, 1)?);
    let prefix_text = text(row, 2)?;
    let prefix = Pattern::parse(prefix_text).map_err(|e| format!("prefix {prefix_text:?}: {e}"))?;
    let tag = held.tag(text(row, 3)?);
    let owned = match int(row, 4)? {
        0 => false,
        1 => true,
        other => return Err(format!("owned is {other}, not 0 or 1")),
    };
    Ok(MirrorRule {
        rule: DialPlanRule {
            index,
            name,
            prefix,
            tag,
        },
        owned,
    })
}

/// A digest of the mirror's rows as stored, `rules` sorted by index.
fn mirror_digest(rules: &[(&DialPlanRule, bool)]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    for (rule, owned) in rules {
        field(&rule.index.to_le_bytes());
        field(rule.name.as_bytes());
        field(rule.prefix.as_str().as_bytes());
        field(rule.tag.as_str().as_bytes());
        field(&[u8::from(*owned)]);
    }
    format!("{:x}", hasher.finalize())
}
