//! The schema, as the ordered list of migrations that builds it.
//!
//! A database records in `PRAGMA user_version` how many of these it has run, so an upgrade of
//! dialsync runs only the new ones, and an older dialsync can tell that a database was written
//! by a newer one and refuse it instead of misreading it. Migrations are append-only: once
//! released, a migration's text never changes; a fix is a new migration.
//!
//! Every table is `STRICT`, so a value of the wrong type can never be stored by mistake; values
//! with structure (prefix patterns, tags) are stored as their canonical text, readable with the
//! `sqlite3` shell, and re-validated when read back.

/// Marks a SQLite file as a dialsync state database (`PRAGMA application_id`, "dial").
pub const APPLICATION_ID: i32 = 0x6469_616c;

/// Migration `n` (from 1) brings a database from `user_version` `n - 1` to `n`.
pub const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7];

/// The newest schema version this build reads and writes.
pub const SUPPORTED_VERSION: i64 = MIGRATIONS.len() as i64;

const V1: &str = "
-- OCDialPlan as last read from the SBC. The SBC keeps Index unique within a plan, so it is the
-- row id: a bulk insert in index order appends to the table's b-tree.
CREATE TABLE mirror_rule (
    rule_index INTEGER PRIMARY KEY CHECK (rule_index BETWEEN 0 AND 4294967295),
    name       TEXT    NOT NULL,
    prefix     TEXT    NOT NULL,
    tag        TEXT    NOT NULL,
    owned      INTEGER NOT NULL CHECK (owned IN (0, 1))
) STRICT;

-- The last good answer of each source, which stands in for the source when it fails (§6).
CREATE TABLE source_snapshot (
    id              INTEGER PRIMARY KEY,
    source          TEXT    NOT NULL UNIQUE,
    fetched_at_unix INTEGER NOT NULL,
    entry_count     INTEGER NOT NULL CHECK (entry_count >= 0)
) STRICT;

-- One entry of a snapshot, in the order the source gave it (resolution ranks items by it).
-- Numbers are stored as their digits read as an integer (E.164 has no leading zero, so the
-- digit count is implied). hi IS NULL: the entry is the open prefix lo. item_source is the
-- entry's provenance source when it differs from the snapshot's own source, else NULL.
CREATE TABLE snapshot_entry (
    snapshot_id INTEGER NOT NULL REFERENCES source_snapshot (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    lo          INTEGER NOT NULL,
    hi          INTEGER,
    tag         TEXT    NOT NULL,
    item        TEXT    NOT NULL,
    item_source TEXT,
    PRIMARY KEY (snapshot_id, seq)
) STRICT, WITHOUT ROWID;

-- The apply journal: a plan and its ops are written before the first write to the SBC, and
-- each op's progress is committed as it happens, so a crash anywhere leaves a true record.
-- outcome IS NULL: the plan is unfinished.
CREATE TABLE journal_plan (
    id       INTEGER PRIMARY KEY,
    checksum TEXT    NOT NULL,
    op_count INTEGER NOT NULL CHECK (op_count >= 0),
    outcome  TEXT    CHECK (outcome <> '')
) STRICT;

CREATE TABLE journal_op (
    plan_id       INTEGER NOT NULL REFERENCES journal_plan (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    rule_index    INTEGER NOT NULL CHECK (rule_index BETWEEN 0 AND 4294967295),
    before_prefix TEXT,
    before_tag    TEXT,
    after_prefix  TEXT,
    after_tag     TEXT,
    state         TEXT    NOT NULL DEFAULT 'pending'
                          CHECK (state IN ('pending', 'in_flight', 'done', 'failed')),
    attempts      INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error    TEXT,
    PRIMARY KEY (plan_id, seq),
    CHECK ((before_prefix IS NULL) = (before_tag IS NULL)),
    CHECK ((after_prefix IS NULL) = (after_tag IS NULL)),
    CHECK (before_prefix IS NOT NULL OR after_prefix IS NOT NULL)
) STRICT, WITHOUT ROWID;

-- One row per cycle, for /status, metrics, `check` and `history`.
CREATE TABLE cycle (
    id               INTEGER PRIMARY KEY,
    started_unix_ms  INTEGER NOT NULL,
    finished_unix_ms INTEGER NOT NULL,
    outcome          TEXT    NOT NULL CHECK (outcome <> ''),
    adds             INTEGER NOT NULL CHECK (adds >= 0),
    modifies         INTEGER NOT NULL CHECK (modifies >= 0),
    deletes          INTEGER NOT NULL CHECK (deletes >= 0),
    rejected         INTEGER NOT NULL CHECK (rejected >= 0),
    conflicts        INTEGER NOT NULL CHECK (conflicts >= 0),
    plan_checksum    TEXT,
    error            TEXT
) STRICT;

CREATE INDEX cycle_by_outcome ON cycle (outcome, id);

-- How long each phase of a cycle took, in the order the phases ran.
CREATE TABLE cycle_phase (
    cycle_id    INTEGER NOT NULL REFERENCES cycle (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    phase       TEXT    NOT NULL,
    duration_ms INTEGER NOT NULL CHECK (duration_ms >= 0),
    PRIMARY KEY (cycle_id, position)
) STRICT, WITHOUT ROWID;
";

/// Version 2: what `check`, `/status` and `history` need beyond counts. A fatal cycle
/// (credentials refused, dial plan missing) is CRITICAL for `check`; the items behind the
/// counts (rejected items, conflicts, foreign collisions, failed sources, block reasons,
/// quarantined ops) are kept per cycle so an operator can read why without the logs.
const V2: &str = "
ALTER TABLE cycle ADD COLUMN fatal INTEGER NOT NULL DEFAULT 0 CHECK (fatal IN (0, 1));
ALTER TABLE cycle ADD COLUMN owned_rules INTEGER NOT NULL DEFAULT 0 CHECK (owned_rules >= 0);
ALTER TABLE cycle ADD COLUMN source_failures INTEGER NOT NULL DEFAULT 0
    CHECK (source_failures >= 0);

CREATE TABLE cycle_issue (
    cycle_id INTEGER NOT NULL REFERENCES cycle (id) ON DELETE CASCADE,
    seq      INTEGER NOT NULL,
    kind     TEXT    NOT NULL CHECK (kind IN ('rejected', 'conflict', 'foreign', 'source',
                                               'blocked', 'quarantined')),
    source   TEXT,
    item     TEXT    NOT NULL,
    detail   TEXT    NOT NULL,
    PRIMARY KEY (cycle_id, seq)
) STRICT, WITHOUT ROWID;
";

/// Version 3: digests of the last snapshot of each source and of the mirror, so a cycle whose
/// answer or read equals the stored one rewrites nothing. At a million entries, rewriting an
/// unchanged snapshot cost more than the rest of a no-change cycle together.
const V3: &str = "
ALTER TABLE source_snapshot ADD COLUMN digest TEXT;

CREATE TABLE state_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT, WITHOUT ROWID;
";

/// Version 4: a cycle's issues may be rows of the dial plan dialsync cannot read (kind
/// `unreadable`), reported every cycle. SQLite cannot widen a CHECK constraint in place, so the
/// table is copied into one that allows the new kind.
const V4: &str = "
CREATE TABLE cycle_issue_v4 (
    cycle_id INTEGER NOT NULL REFERENCES cycle (id) ON DELETE CASCADE,
    seq      INTEGER NOT NULL,
    kind     TEXT    NOT NULL CHECK (kind IN ('rejected', 'conflict', 'foreign', 'source',
                                               'blocked', 'quarantined', 'unreadable')),
    source   TEXT,
    item     TEXT    NOT NULL,
    detail   TEXT    NOT NULL,
    PRIMARY KEY (cycle_id, seq)
) STRICT, WITHOUT ROWID;
INSERT INTO cycle_issue_v4 (cycle_id, seq, kind, source, item, detail)
    SELECT cycle_id, seq, kind, source, item, detail FROM cycle_issue;
DROP TABLE cycle_issue;
ALTER TABLE cycle_issue_v4 RENAME TO cycle_issue;
";

/// Version 5: what the audit after each cycle found (`dialsync audit`, DESIGN.md §7), so that
/// `check`, which reads only this database, can warn about misrouted and shadowed numbers.
/// NULL: the cycle did not audit (it stopped before reading the SBC).
const V5: &str = "
ALTER TABLE cycle ADD COLUMN audit_routed INTEGER CHECK (audit_routed >= 0);
ALTER TABLE cycle ADD COLUMN audit_misrouted INTEGER CHECK (audit_misrouted >= 0);
ALTER TABLE cycle ADD COLUMN audit_shadowed INTEGER CHECK (audit_shadowed >= 0);
ALTER TABLE cycle ADD COLUMN audit_unrouted INTEGER CHECK (audit_unrouted >= 0);
ALTER TABLE cycle ADD COLUMN audit_unchecked INTEGER CHECK (audit_unchecked >= 0);
ALTER TABLE cycle ADD COLUMN audit_stray_rules INTEGER CHECK (audit_stray_rules >= 0);
";

/// Version 6: a journal op's state is checked with `=` comparisons rather than `IN (...)`.
/// SQLite evaluates a CHECK's `IN` list of more than two values by building a temporary b-tree
/// of the list, for every row written. A 100k-op first sync journals each op three times
/// (pending, in flight, done), and the SQLite profile of that sync was half of its CPU; the
/// list alone doubled the cost of each write. Same states allowed, same rows kept.
const V6: &str = "
CREATE TABLE journal_op_v6 (
    plan_id       INTEGER NOT NULL REFERENCES journal_plan (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    rule_index    INTEGER NOT NULL CHECK (rule_index BETWEEN 0 AND 4294967295),
    before_prefix TEXT,
    before_tag    TEXT,
    after_prefix  TEXT,
    after_tag     TEXT,
    state         TEXT    NOT NULL DEFAULT 'pending'
                          CHECK (state = 'pending' OR state = 'in_flight' OR state = 'done'
                                 OR state = 'failed'),
    attempts      INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error    TEXT,
    PRIMARY KEY (plan_id, seq),
    CHECK ((before_prefix IS NULL) = (before_tag IS NULL)),
    CHECK ((after_prefix IS NULL) = (after_tag IS NULL)),
    CHECK (before_prefix IS NOT NULL OR after_prefix IS NOT NULL)
) STRICT, WITHOUT ROWID;
INSERT INTO journal_op_v6 (plan_id, seq, rule_index, before_prefix, before_tag, after_prefix,
                           after_tag, state, attempts, last_error)
    SELECT plan_id, seq, rule_index, before_prefix, before_tag, after_prefix, after_tag, state,
           attempts, last_error
    FROM journal_op;
DROP TABLE journal_op;
ALTER TABLE journal_op_v6 RENAME TO journal_op;
";

/// Version 7: what a snapshot was decoded from (the digest of the source's answers, byte for
/// byte, keyed by the program's version and config, and the trail of checkpoints a new read
/// can follow to the first difference) and the items that answer had refused, so
/// a cycle whose answer is the same bytes can take the snapshot as it stands, rejected items
/// included, without decoding it again. NULL: not known (saved by an older version), which
/// only means the next answer is decoded.
const V7: &str = "
ALTER TABLE source_snapshot ADD COLUMN answer_digest TEXT;
ALTER TABLE source_snapshot ADD COLUMN answer_trail BLOB;

CREATE TABLE snapshot_rejected (
    snapshot_id INTEGER NOT NULL REFERENCES source_snapshot (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    item        TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    PRIMARY KEY (snapshot_id, seq)
) STRICT, WITHOUT ROWID;
";
