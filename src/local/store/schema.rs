//! The store's tables, its schema version (`PRAGMA user_version`) and the migrations that bring
//! a data directory written by an older release up to date.
//!
//! - version 0 (no version set): queued callbacks and dead letters held the signed request's
//!   URL and headers, the API key among them;
//! - version 1: they hold the body and routing ids only (client, target, event, message,
//!   traceparent, subscription ids); the request is built and signed when it is sent.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::StoreError;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events(
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    source TEXT NOT NULL,
    client_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    received_at_ms INTEGER NOT NULL,
    callbacks INTEGER NOT NULL,
    outcome TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_received ON events(received_at_ms);
CREATE TABLE IF NOT EXISTS callbacks(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id TEXT NOT NULL,
    target_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    body BLOB NOT NULL,
    created_at_ms INTEGER NOT NULL,
    due_at_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    history TEXT NOT NULL DEFAULT '[]',
    traceparent TEXT,
    subscription_ids TEXT NOT NULL DEFAULT '[]');
CREATE INDEX IF NOT EXISTS callbacks_by_target ON callbacks(client_id, target_id, id);
CREATE TABLE IF NOT EXISTS dlq(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    callback_id INTEGER NOT NULL,
    client_id TEXT NOT NULL,
    target_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    body BLOB NOT NULL,
    created_at_ms INTEGER NOT NULL,
    dead_at_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    history TEXT NOT NULL,
    reason TEXT NOT NULL,
    traceparent TEXT,
    subscription_ids TEXT NOT NULL DEFAULT '[]');
CREATE INDEX IF NOT EXISTS dlq_by_client ON dlq(client_id, id);
CREATE TABLE IF NOT EXISTS rejects(
    id INTEGER PRIMARY KEY,
    received_at_ms INTEGER NOT NULL,
    event_id TEXT,
    reason TEXT NOT NULL,
    body BLOB NOT NULL);
";

/// Version 0 → 1: the stored requests lose their URL and headers (API key included) and gain
/// the routing ids; then the whole file is rewritten so no freed page keeps an old key.
const V0_TO_V1: &str = "
ALTER TABLE callbacks ADD COLUMN traceparent TEXT;
ALTER TABLE callbacks ADD COLUMN subscription_ids TEXT NOT NULL DEFAULT '[]';
ALTER TABLE callbacks DROP COLUMN headers;
ALTER TABLE callbacks DROP COLUMN url;
ALTER TABLE dlq ADD COLUMN traceparent TEXT;
ALTER TABLE dlq ADD COLUMN subscription_ids TEXT NOT NULL DEFAULT '[]';
ALTER TABLE dlq DROP COLUMN headers;
ALTER TABLE dlq DROP COLUMN url;
";

pub(super) fn open_conn(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

fn has_table(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

/// Brings the database to [`SCHEMA_VERSION`] (creating it when empty). Returns the version
/// found. A database written by a newer release is refused, not modified.
pub(super) fn migrate(conn: &mut Connection) -> Result<i64, StoreError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == 0 && has_table(conn, "callbacks")? {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)?;
        tx.execute_batch(V0_TO_V1)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
        conn.execute_batch("VACUUM")?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        tracing::info!(
            from = found,
            to = SCHEMA_VERSION,
            "data directory upgraded; stored requests no longer hold API keys"
        );
    }
    conn.execute_batch(SCHEMA)?;
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    Ok(found)
}

/// Opens the database of a data directory for the CLI (`dlq`), migrating it if needed.
pub fn open_db(data_dir: &Path) -> Result<Connection, StoreError> {
    let path = data_dir.join(super::DB_FILE);
    if !path.exists() {
        return Err(StoreError::DataDir {
            path: path.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no callbacks database here"),
        });
    }
    let mut conn = open_conn(&path)?;
    migrate(&mut conn)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_database_gets_the_current_version_and_a_newer_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open_conn(&dir.path().join("x.db")).unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), 0);
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        assert_eq!(migrate(&mut conn).unwrap(), SCHEMA_VERSION);
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(StoreError::NewerSchema { found, .. }) if found == SCHEMA_VERSION + 1
        ));
    }
}
