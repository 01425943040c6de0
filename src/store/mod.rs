//! The agent's memory: one SQLite file holding what must survive a restart.
//!
//! - the **mirror** of `OCDialPlan` as last read from the SBC, so drift is visible between
//!   cycles and `lookup` works without asking the device;
//! - the **last good snapshot** of each source, which stands in for a source that fails, so a
//!   failing source never causes deletes (DESIGN.md §6);
//! - the **apply journal**: a plan and its ops are committed before the first write to the SBC
//!   and every op's progress is committed as it happens, so a crash at any point leaves an
//!   exact record for the next start to resolve against the SBC;
//! - the **cycle history**, which `/status`, `/readyz`, `check` and `history` read.
//!
//! Only this module speaks SQL. The file runs in WAL mode (readers such as `dialsync check`
//! never block the agent) with `synchronous=FULL` (a committed journal mark survives a power
//! cut, not just a process crash). Everything read back is re-validated into the domain types:
//! a damaged row is an error that names it, never a panic and never a row silently dropped.
//! The store never reads the clock; callers pass times in.

mod fingerprint;
mod history;
mod journal;
mod lock;
mod mirror;
mod schema;
mod snapshot;
mod steady_state;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Classify, ErrorClass};
use rusqlite::{Connection, TransactionBehavior};

pub use history::{
    outcome, AuditRecord, CycleId, CycleIssue, CycleRecord, IssueKind, PhaseTiming,
    MAX_ISSUES_PER_CYCLE,
};
pub use journal::{JournalOp, JournalPlan, OpState, PlanId};
pub use lock::{LockHolder, StateLock};
pub use mirror::MirrorRule;
pub use schema::SUPPORTED_VERSION;
pub use snapshot::{Snapshot, SnapshotAnswer, SnapshotSummary};
pub use steady_state::SteadyState;

/// How long a statement waits for another process's lock (a `check` reading, a second agent
/// migrating) before failing as busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Stored tags are re-checked for syntax only. `dialplan.max_tag_len` is policy that may be
/// lowered between runs, and that must not make yesterday's snapshot or the SBC's own rules
/// unreadable; the resolver and compiler apply the configured limit.
const STORED_TAG_MAX_LEN: usize = 4096;

/// Keeps the WAL file from staying as large as the biggest transaction ever (a 1M-row mirror
/// replace writes ~100 MB of WAL) once it has been checkpointed.
const WAL_SIZE_LIMIT_BYTES: i64 = 64 * 1024 * 1024;

/// Page cache per connection. A 1M-row mirror replace rewrites tens of thousands of pages;
/// measured on ext4, 2 MiB (SQLite's default) takes ~0.54 s, 16 MiB ~0.48 s, 64 MiB ~0.44 s.
/// The cache fills up in any cycle that rewrites a snapshot or the mirror, and §8 now budgets
/// 60 MB of peak RSS for a whole cycle at 100k rules, where 16 MiB was 13 MB of it (heaptrack,
/// e2e ranges shape). At 4 MiB a 1 % churn cycle still peaked at 60.6-61.1 MB; at the default
/// 2 MiB it peaks at 59.1-59.2 MB, with no change to its CPU time that the bench can tell.
const CACHE_SIZE_KIB: i64 = 2 * 1024;

/// Why the store could not do what was asked. Every variant names the database file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create directory {dir} for the state database: {source}")]
    CreateDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// SQLite refused. The message says what the operator can do about the common causes: a
    /// damaged file, a lock held by another process (whose holders `context` then names, when
    /// they can be found), a full disk.
    #[error("{}", sqlite_message(path, context, source))]
    Sqlite {
        path: PathBuf,
        context: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "state database {path} has schema version {found}, newer than version {supported} that \
         this dialsync supports: it was written by a newer dialsync; upgrade dialsync, or point \
         agent.state_db at another file"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error(
        "{path} is a SQLite database of another application (application_id {application_id:#x}, \
         user_version {user_version}), not a dialsync state database"
    )]
    ForeignDatabase {
        path: PathBuf,
        application_id: i32,
        user_version: i64,
    },
    #[error("state database {path}: SQLite refused WAL mode (journal_mode is {mode}); the file system may not support it")]
    NoWal { path: PathBuf, mode: String },
    #[error("state database {path}: {table} {row}: {reason}")]
    CorruptRow {
        path: PathBuf,
        table: &'static str,
        row: String,
        reason: String,
    },
    #[error("state database {path}: {what} {value} does not fit a SQLite integer")]
    OutOfRange {
        path: PathBuf,
        what: &'static str,
        value: u64,
    },
    #[error("state database {path}: op {seq} of the plan has neither a before nor an after rule")]
    EmptyOp { path: PathBuf, seq: usize },
    #[error("state database {path}: journal has no plan {plan}")]
    UnknownPlan { path: PathBuf, plan: PlanId },
    #[error("state database {path}: journal plan {plan} is already finished")]
    PlanFinished { path: PathBuf, plan: PlanId },
    #[error("state database {path}: journal plan {plan} has no op {seq}")]
    UnknownOp {
        path: PathBuf,
        plan: PlanId,
        seq: u32,
    },
    #[error(
        "state database {database} is in use by another dialsync ({holder}; lock {lock}): \
         stop it first, two agents on one database would apply the same plan twice"
    )]
    Locked {
        database: PathBuf,
        lock: PathBuf,
        holder: String,
    },
    #[error("cannot lock the state database with {lock}: {source}")]
    Lock {
        lock: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Classify for StoreError {
    fn class(&self) -> ErrorClass {
        use rusqlite::ErrorCode;
        match self {
            StoreError::Sqlite { source, .. } => match source.sqlite_error_code() {
                // Another process holds the lock, the disk hiccupped or filled up: the state
                // may be fine again by the next cycle.
                Some(
                    ErrorCode::DatabaseBusy
                    | ErrorCode::DatabaseLocked
                    | ErrorCode::SystemIoFailure
                    | ErrorCode::DiskFull
                    | ErrorCode::OutOfMemory
                    | ErrorCode::OperationInterrupted
                    | ErrorCode::FileLockingProtocolFailed
                    | ErrorCode::SchemaChanged,
                ) => ErrorClass::Transient,
                // Not a database, damaged, read-only, permission refused, a constraint broken by
                // the caller's data: retrying the same thing cannot help.
                _ => ErrorClass::Fatal,
            },
            // One row of the file or one value of the caller's is bad; the rest is usable.
            StoreError::CorruptRow { .. }
            | StoreError::OutOfRange { .. }
            | StoreError::EmptyOp { .. } => ErrorClass::Item,
            // A directory that cannot be created (permissions, a file in the way, a read-only
            // mount), a foreign or newer database, a journal used out of order: an operator or
            // a developer must act first.
            StoreError::CreateDir { .. }
            | StoreError::NewerSchema { .. }
            | StoreError::ForeignDatabase { .. }
            | StoreError::NoWal { .. }
            | StoreError::UnknownPlan { .. }
            | StoreError::PlanFinished { .. }
            | StoreError::UnknownOp { .. }
            | StoreError::Locked { .. }
            | StoreError::Lock { .. } => ErrorClass::Fatal,
        }
    }
}

/// The state database. Writes take `&mut self`: each is one transaction, committed (and
/// fsynced) before the method returns.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// The file's device and inode as opened (`None` in memory): see [`Store::replaced`].
    identity: Option<(u64, u64)>,
}

impl Store {
    /// Opens (creating if missing, with its directory) the state database at `path` and brings
    /// its schema up to date.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                dir: dir.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(sql_err(path, "cannot open"))?;
        let mut store = Store::init(conn, path.to_path_buf(), true)?;
        store.identity = file_identity(path);
        Ok(store)
    }

    /// Whether the file at [`Store::path`] is no longer the one this store has open: it was
    /// deleted (an operator "resetting" the state, a cleanup job) or replaced by another file.
    /// A long-running agent would otherwise keep writing to an unlinked inode that no reader
    /// (`check`, `status`) can see, and lose it all at its next restart.
    pub fn replaced(&self) -> bool {
        match self.identity {
            None => false,
            Some(opened) => file_identity(&self.path) != Some(opened),
        }
    }

    /// A private database in memory, for tests and dry runs that must leave no file behind.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(sql_err(&path, "cannot open"))?;
        Store::init(conn, path, false)
    }

    /// The database file, as given to [`Store::open`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database (always [`SUPPORTED_VERSION`] once open).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        user_version(&self.conn, &self.path)
    }

    fn init(conn: Connection, path: PathBuf, file: bool) -> Result<Store, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(sql_err(&path, "cannot set busy timeout"))?;
        // Identify the file before anything writes to it: switching to WAL rewrites the header
        // of whatever file this is.
        check_identity(&conn, &path)?;
        if file {
            let mode: String = conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
                .map_err(sql_err(&path, "cannot switch to WAL mode"))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::NoWal { path, mode });
            }
            conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT_BYTES)
                .map_err(sql_err(&path, "cannot set journal_size_limit"))?;
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql_err(&path, "cannot set synchronous=FULL"))?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(sql_err(&path, "cannot enable foreign keys"))?;
        conn.pragma_update(None, "cache_size", -CACHE_SIZE_KIB)
            .map_err(sql_err(&path, "cannot set cache_size"))?;
        let mut store = Store {
            conn,
            path,
            identity: None,
        };
        store.migrate()?;
        Ok(store)
    }

    /// Runs the migrations this database has not seen, all in one transaction: a crash
    /// mid-upgrade leaves the old schema, never half of the new one.
    fn migrate(&mut self) -> Result<(), StoreError> {
        let Store { conn, path, .. } = self;
        if user_version(conn, path)? == SUPPORTED_VERSION {
            // The common case writes nothing, so a read-only `check` can open a current file.
            return Ok(());
        }
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err(path, "cannot begin migration"))?;
        // Read again under the write lock: another process may have migrated meanwhile.
        let found = user_version(&tx, path)?;
        if found > SUPPORTED_VERSION {
            return Err(newer_schema(path, found));
        }
        let from = usize::try_from(found).unwrap_or(0);
        for (done, sql) in schema::MIGRATIONS.iter().enumerate().skip(from) {
            let version = done + 1;
            tx.execute_batch(sql)
                .map_err(|e| sql_err(path, format!("migration to version {version} failed"))(e))?;
        }
        tx.pragma_update(None, "application_id", schema::APPLICATION_ID)
            .map_err(sql_err(path, "cannot set application_id"))?;
        tx.pragma_update(None, "user_version", SUPPORTED_VERSION)
            .map_err(sql_err(path, "cannot set user_version"))?;
        tx.commit()
            .map_err(sql_err(path, "cannot commit migration"))
    }
}

/// The device and inode of the file at `path`, if there is one.
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Refuses files that are SQLite databases of some other program: migrating them would add
/// dialsync's tables to someone else's data.
fn check_identity(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let application_id: i32 = conn
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(sql_err(path, "cannot read the database header"))?;
    let found = user_version(conn, path)?;
    if application_id == schema::APPLICATION_ID {
        return if found > SUPPORTED_VERSION {
            Err(newer_schema(path, found))
        } else {
            Ok(())
        };
    }
    let objects: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
        .map_err(sql_err(path, "cannot read the schema"))?;
    if application_id == 0 && found == 0 && objects == 0 {
        return Ok(()); // a new, empty file: ours to set up
    }
    Err(StoreError::ForeignDatabase {
        path: path.to_path_buf(),
        application_id,
        user_version: found,
    })
}

fn user_version(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(sql_err(path, "cannot read the schema version"))
}

fn newer_schema(path: &Path, found: i64) -> StoreError {
    StoreError::NewerSchema {
        path: path.to_path_buf(),
        found,
        supported: SUPPORTED_VERSION,
    }
}

/// Wraps a SQLite error with the file and what the store was doing (and, when another process
/// holds the database, who may).
fn sql_err(path: &Path, context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> StoreError {
    let path = path.to_path_buf();
    let context = context.into();
    move |source| {
        let context = match sqlite_fault(&source) {
            SqliteFault::Busy => match other_openers(&path) {
                Some(holders) => format!("{context}; processes with it open: {holders}"),
                None => format!("{context}; the holder could not be found"),
            },
            _ => context,
        };
        StoreError::Sqlite {
            path,
            context,
            source,
        }
    }
}

/// The SQLite failures an operator can act on, each with its own advice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SqliteFault {
    /// Not a database, or a damaged one: it will not heal by itself.
    Corrupt,
    /// Another connection held a lock for longer than [`BUSY_TIMEOUT`].
    Busy,
    /// The file system holding the database (or its -wal/-shm files) is full.
    Full,
    /// Read-only file system, or no write permission.
    ReadOnly,
    Other,
}

fn sqlite_fault(error: &rusqlite::Error) -> SqliteFault {
    use rusqlite::ErrorCode;
    /// SQLITE_IOERR_SHMSIZE: the -shm file could not be grown (on tmpfs: no space).
    const SQLITE_IOERR_SHMSIZE: std::ffi::c_int = 10 | (19 << 8);
    let rusqlite::Error::SqliteFailure(failure, _) = error else {
        return SqliteFault::Other;
    };
    match failure.code {
        ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => SqliteFault::Corrupt,
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => SqliteFault::Busy,
        ErrorCode::DiskFull => SqliteFault::Full,
        ErrorCode::SystemIoFailure if failure.extended_code == SQLITE_IOERR_SHMSIZE => {
            SqliteFault::Full
        }
        ErrorCode::ReadOnly | ErrorCode::PermissionDenied => SqliteFault::ReadOnly,
        _ => SqliteFault::Other,
    }
}

/// The text of [`StoreError::Sqlite`]: the file, what failed, and what to do about it.
fn sqlite_message(path: &Path, context: &str, source: &rusqlite::Error) -> String {
    let path = path.display();
    match sqlite_fault(source) {
        SqliteFault::Corrupt => format!(
            "state database {path} is corrupt ({context}: {source}): stop dialsync, move the \
             file aside (`mv {path} {path}.corrupt`, and its -wal and -shm files if any) and \
             dialsync rebuilds its state from the SBC and the sources on the next sync"
        ),
        SqliteFault::Busy => format!(
            "state database {path} is locked by another process ({source} after waiting {}s: \
             {context}): end the process that holds it (a `sqlite3` shell or a backup left in \
             a transaction); dialsync writes nothing to the SBC that it cannot journal, and \
             retries on its next cycle",
            BUSY_TIMEOUT.as_secs()
        ),
        SqliteFault::Full => format!(
            "state database {path}: no space left on the device ({context}: {source}): free \
             space on the file system holding it; dialsync retries on the next cycle"
        ),
        SqliteFault::ReadOnly => format!(
            "state database {path} is not writable ({context}: {source}): check the file's \
             and its directory's owner and mode, and that the file system is mounted \
             read-write"
        ),
        SqliteFault::Other => format!("state database {path}: {context}: {source}"),
    }
}

/// The other processes that have `database` (or its -wal or -shm file) open, as
/// `pid N (name)`, from `/proc`: who may hold the lock. Best effort: `None` when none can be
/// seen (no `/proc`, another user's processes, another host on a network file system).
fn other_openers(database: &Path) -> Option<String> {
    let database = std::fs::canonicalize(database).ok()?;
    let mut names = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let mut name = database.as_os_str().to_owned();
        name.push(suffix);
        names.push(PathBuf::from(name));
    }
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let pid = entry.file_name();
        let Some(pid) = pid
            .to_str()
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let opened = fds
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .any(|target| names.contains(&target));
        if opened {
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            found.push(format!("pid {pid} ({})", comm.trim()));
            if found.len() == 5 {
                break;
            }
        }
    }
    (!found.is_empty()).then(|| found.join(", "))
}

fn corrupt(
    path: &Path,
    table: &'static str,
    row: impl fmt::Display,
    reason: impl fmt::Display,
) -> StoreError {
    StoreError::CorruptRow {
        path: path.to_path_buf(),
        table,
        row: row.to_string(),
        reason: reason.to_string(),
    }
}

/// SQLite integers are signed 64-bit; counts and sizes are `u64` in the domain.
fn to_sql_int(path: &Path, what: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange {
        path: path.to_path_buf(),
        what,
        value,
    })
}

/// A column as text, or why it is not (for re-validation messages).
fn text<'r>(row: &'r rusqlite::Row<'_>, column: usize) -> Result<&'r str, String> {
    row.get_ref(column)
        .and_then(|value| value.as_str().map_err(rusqlite::Error::from))
        .map_err(|e| format!("column {column}: {e}"))
}

/// A nullable text column.
fn opt_text<'r>(row: &'r rusqlite::Row<'_>, column: usize) -> Result<Option<&'r str>, String> {
    row.get_ref(column)
        .and_then(|value| value.as_str_or_null().map_err(rusqlite::Error::from))
        .map_err(|e| format!("column {column}: {e}"))
}

/// An integer column.
fn int(row: &rusqlite::Row<'_>, column: usize) -> Result<i64, String> {
    row.get::<_, i64>(column)
        .map_err(|e| format!("column {column}: {e}"))
}

/// A non-negative integer column, as the domain's unsigned type.
fn uint(row: &rusqlite::Row<'_>, column: usize, what: &str) -> Result<u64, String> {
    let value = int(row, column)?;
    u64::try_from(value).map_err(|_| format!("{what} {value} is negative"))
}
