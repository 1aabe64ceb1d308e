//! The durable store of `callbacks serve`: one SQLite database in WAL mode in the data
//! directory. Tables: `events` (one row per accepted event), `callbacks` (the per-client,
//! per-target queue: due time, attempt count and history), `dlq` (per-client dead letters with
//! their attempt history) and `rejects` (invalid events and why).
//!
//! All writes go through one writer thread that commits whatever has queued up in one
//! transaction (group commit, `synchronous=FULL`): an `accept` returns only after its rows are
//! on disk. Reads (queue refills) use a small pool of read connections, which WAL lets run
//! beside the writer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rusqlite::{params, Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

/// The database file inside the data directory.
pub const DB_FILE: &str = "callbacks.db";
/// The lock file that keeps a second server off the same data directory.
pub const LOCK_FILE: &str = "serve.lock";
/// Attempt records kept per callback (the count of attempts is always exact).
pub const MAX_HISTORY: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("data directory {0} is in use by another `callbacks serve`")]
    Locked(String),
    #[error("the store is shut down")]
    Closed,
    #[error("commit failed: {0}")]
    Commit(String),
    #[error("corrupt row {id} in {table}: {reason}")]
    Corrupt {
        table: &'static str,
        id: i64,
        reason: String,
    },
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    to_ms(SystemTime::now())
}

pub fn to_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// RFC 3339 (UTC, milliseconds) of epoch milliseconds.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    )
}

/// One attempt in a callback's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptRecord {
    /// When the attempt started (RFC 3339).
    pub at: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// A callback to queue.
#[derive(Clone)]
pub struct NewCallback {
    pub client_id: String,
    pub target_id: String,
    pub event_id: String,
    pub message_id: String,
    pub url: String,
    /// Includes the API key header: stored so the exact signed request can be sent.
    pub headers: Vec<(String, String)>,
    pub body: Arc<[u8]>,
}

/// An accepted event (for the audit table).
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_id: String,
    pub source: String,
    pub client_id: String,
    pub message_id: String,
    pub callbacks: u32,
    /// `queued`, `no-match` or `no-client-config`.
    pub outcome: &'static str,
}

/// A rejected event.
#[derive(Debug, Clone)]
pub struct NewReject {
    pub event_id: Option<String>,
    pub reason: String,
    pub body: Vec<u8>,
}

/// Everything one ingest request stores, committed together.
#[derive(Default)]
pub struct Accept {
    pub events: Vec<NewEvent>,
    pub callbacks: Vec<NewCallback>,
    pub rejects: Vec<NewReject>,
}

/// A queued callback, as loaded by a target worker.
#[derive(Clone)]
pub struct QueuedCallback {
    pub id: i64,
    pub client_id: String,
    pub target_id: String,
    pub event_id: String,
    pub message_id: String,
    pub url: String,
    pub headers: Arc<Vec<(String, String)>>,
    pub body: Bytes,
    pub created_at_ms: i64,
    pub due_at_ms: i64,
    pub attempts: u32,
    pub history: Vec<AttemptRecord>,
}

impl std::fmt::Debug for QueuedCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuedCallback")
            .field("id", &self.id)
            .field("client_id", &self.client_id)
            .field("target_id", &self.target_id)
            .field("event_id", &self.event_id)
            .field("message_id", &self.message_id)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// A dead-lettered callback (without its headers: they hold the API key).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DlqEntry {
    pub id: i64,
    pub client_id: String,
    pub target_id: String,
    pub event_id: String,
    pub message_id: String,
    pub url: String,
    pub created_at: String,
    pub dead_at: String,
    pub attempts: u32,
    pub reason: String,
    pub history: Vec<AttemptRecord>,
    /// The request body, as sent.
    pub body: String,
}

impl DlqEntry {
    /// The last attempt's outcome, for one-line listings.
    pub fn last_outcome(&self) -> String {
        match self.history.last() {
            Some(AttemptRecord {
                status: Some(s), ..
            }) => format!("HTTP {s}"),
            Some(AttemptRecord { error: Some(e), .. }) => e.clone(),
            _ => "-".to_string(),
        }
    }
}

enum Cmd {
    Accept(Accept, oneshot::Sender<Result<(), String>>),
    Delivered(i64),
    Reschedule {
        id: i64,
        due_at_ms: i64,
        attempts: u32,
        history: String,
    },
    DeadLetter {
        id: i64,
        attempts: u32,
        history: String,
        reason: String,
    },
    PruneEvents {
        before_ms: i64,
    },
    Flush(oneshot::Sender<()>),
}

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    writer: mpsc::Sender<Cmd>,
    readers: Arc<Readers>,
}

struct Readers {
    conns: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

/// Holds the data directory's lock for as long as it lives.
pub struct DataDirLock {
    _file: std::fs::File,
}

/// Creates (mode 0700) and locks the data directory.
pub fn lock_data_dir(dir: &Path) -> Result<DataDirLock, StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    use std::os::unix::io::AsRawFd;
    let err = |source| StoreError::DataDir {
        path: dir.display().to_string(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(err)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))
        .map_err(err)?;
    // SAFETY: flock on a file descriptor we own; no memory is shared.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(StoreError::Locked(dir.display().to_string()));
    }
    Ok(DataDirLock { _file: file })
}

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
    url TEXT NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    created_at_ms INTEGER NOT NULL,
    due_at_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    history TEXT NOT NULL DEFAULT '[]');
CREATE INDEX IF NOT EXISTS callbacks_by_target ON callbacks(client_id, target_id, id);
CREATE TABLE IF NOT EXISTS dlq(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    callback_id INTEGER NOT NULL,
    client_id TEXT NOT NULL,
    target_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    url TEXT NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    created_at_ms INTEGER NOT NULL,
    dead_at_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    history TEXT NOT NULL,
    reason TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS dlq_by_client ON dlq(client_id, id);
CREATE TABLE IF NOT EXISTS rejects(
    id INTEGER PRIMARY KEY,
    received_at_ms INTEGER NOT NULL,
    event_id TEXT,
    reason TEXT NOT NULL,
    body BLOB NOT NULL);
";

fn open_conn(path: &Path) -> Result<Connection, StoreError> {
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

/// Opens (creating if needed) the database of a data directory, for the CLI (`dlq`).
pub fn open_db(data_dir: &Path) -> Result<Connection, StoreError> {
    let path = data_dir.join(DB_FILE);
    if !path.exists() {
        return Err(StoreError::DataDir {
            path: path.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no callbacks database here"),
        });
    }
    let conn = open_conn(&path)?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

fn headers_json(h: &[(String, String)]) -> String {
    serde_json::to_string(h).unwrap_or_else(|_| "[]".to_string())
}

/// Serialises an attempt history.
pub fn history_json(h: &[AttemptRecord]) -> String {
    serde_json::to_string(h).unwrap_or_else(|_| "[]".to_string())
}

fn parse_history(s: &str) -> Vec<AttemptRecord> {
    serde_json::from_str(s).unwrap_or_default()
}

impl Store {
    /// Opens the store of a data directory (the caller holds its lock) and starts the writer.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let path: PathBuf = data_dir.join(DB_FILE);
        let conn = open_conn(&path)?;
        conn.execute_batch(SCHEMA)?;
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        }
        let mut conns = Vec::new();
        for _ in 0..2 {
            let r = open_conn(&path)?;
            r.pragma_update(None, "query_only", "ON")?;
            conns.push(Mutex::new(r));
        }
        let (tx, rx) = mpsc::channel(16 * 1024);
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|source| StoreError::DataDir {
                path: path.display().to_string(),
                source,
            })?;
        Ok(Store {
            writer: tx,
            readers: Arc::new(Readers {
                conns,
                next: AtomicUsize::new(0),
            }),
        })
    }

    /// Stores events, callbacks and rejects in one committed transaction.
    pub async fn accept(&self, batch: Accept) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(Cmd::Accept(batch, tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Commit(e)),
            Err(_) => Err(StoreError::Closed),
        }
    }

    /// Removes a delivered callback (committed with the next group).
    pub async fn delivered(&self, id: i64) {
        let _ = self.writer.send(Cmd::Delivered(id)).await;
    }

    /// Records a failed attempt and the next due time.
    pub async fn reschedule(
        &self,
        id: i64,
        due_at_ms: i64,
        attempts: u32,
        history: &[AttemptRecord],
    ) {
        let _ = self
            .writer
            .send(Cmd::Reschedule {
                id,
                due_at_ms,
                attempts,
                history: history_json(history),
            })
            .await;
    }

    /// Moves a callback to its client's dead-letter queue.
    pub async fn dead_letter(
        &self,
        id: i64,
        attempts: u32,
        history: &[AttemptRecord],
        reason: String,
    ) {
        let _ = self
            .writer
            .send(Cmd::DeadLetter {
                id,
                attempts,
                history: history_json(history),
                reason,
            })
            .await;
    }

    /// Deletes audit rows of events received before `before_ms`.
    pub async fn prune_events(&self, before_ms: i64) {
        let _ = self.writer.send(Cmd::PruneEvents { before_ms }).await;
    }

    /// Waits until everything sent before is committed.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.writer.send(Cmd::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let n = readers.conns.len();
            let start = readers.next.fetch_add(1, Ordering::Relaxed);
            // Take a free connection if there is one, else wait for ours.
            for i in 0..n {
                if let Ok(conn) = readers.conns[(start + i) % n].try_lock() {
                    return f(&conn);
                }
            }
            let conn = readers.conns[start % n]
                .lock()
                .map_err(|_| StoreError::Closed)?;
            f(&conn)
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }

    /// The next queued callbacks of one target with ids above `after_id`, in id order.
    pub async fn load(
        &self,
        client_id: &str,
        target_id: &str,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<QueuedCallback>, StoreError> {
        let (client_id, target_id) = (client_id.to_string(), target_id.to_string());
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, event_id, message_id, url, headers, body, created_at_ms, due_at_ms, attempts, history
                 FROM callbacks WHERE client_id = ?1 AND target_id = ?2 AND id > ?3 ORDER BY id LIMIT ?4",
            )?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = stmt.query_map(params![client_id, target_id, after_id, limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Vec<u8>>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, i64>(8)?,
                    r.get::<_, String>(9)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, event_id, message_id, url, headers, body, created, due, attempts, history) = row?;
                let headers: Vec<(String, String)> = serde_json::from_str(&headers).map_err(|e| StoreError::Corrupt {
                    table: "callbacks",
                    id,
                    reason: format!("headers: {e}"),
                })?;
                out.push(QueuedCallback {
                    id,
                    client_id: client_id.clone(),
                    target_id: target_id.clone(),
                    event_id,
                    message_id,
                    url,
                    headers: Arc::new(headers),
                    body: Bytes::from(body),
                    created_at_ms: created,
                    due_at_ms: due,
                    attempts: u32::try_from(attempts).unwrap_or(0),
                    history: parse_history(&history),
                });
            }
            Ok(out)
        })
        .await
    }

    /// Queued callbacks per (client, target).
    pub async fn depths(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT client_id, target_id, count(*) FROM callbacks GROUP BY client_id, target_id",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Dead letters per client.
    pub async fn dlq_depths(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT client_id, count(*) FROM dlq GROUP BY client_id")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}

fn writer_loop(mut conn: Connection, mut rx: mpsc::Receiver<Cmd>) {
    const MAX_GROUP: usize = 4096;
    let mut group = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = rx.blocking_recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(c) => group.push(c),
                Err(_) => break,
            }
        }
        let result = apply(&mut conn, &group);
        if let Err(e) = &result {
            tracing::error!(error = %e, commands = group.len(), "store commit failed");
        }
        let err = result.err().map(|e| e.to_string());
        for cmd in group.drain(..) {
            match cmd {
                Cmd::Accept(_, reply) => {
                    let _ = reply.send(match &err {
                        None => Ok(()),
                        Some(e) => Err(e.clone()),
                    });
                }
                Cmd::Flush(reply) => {
                    let _ = reply.send(());
                }
                _ => {}
            }
        }
    }
    tracing::debug!("store writer stopped");
}

fn apply(conn: &mut Connection, group: &[Cmd]) -> Result<(), rusqlite::Error> {
    let tx = conn.transaction()?;
    let now = now_ms();
    for cmd in group {
        match cmd {
            Cmd::Accept(batch, _) => {
                let mut ev = tx.prepare_cached(
                    "INSERT INTO events(event_id, source, client_id, message_id, received_at_ms, callbacks, outcome)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?;
                for e in &batch.events {
                    ev.execute(params![
                        e.event_id,
                        e.source,
                        e.client_id,
                        e.message_id,
                        now,
                        e.callbacks,
                        e.outcome
                    ])?;
                }
                let mut cb = tx.prepare_cached(
                    "INSERT INTO callbacks(client_id, target_id, event_id, message_id, url, headers, body, created_at_ms, due_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
                )?;
                for c in &batch.callbacks {
                    cb.execute(params![
                        c.client_id,
                        c.target_id,
                        c.event_id,
                        c.message_id,
                        c.url,
                        headers_json(&c.headers),
                        &c.body[..],
                        now
                    ])?;
                }
                let mut rj = tx.prepare_cached(
                    "INSERT INTO rejects(received_at_ms, event_id, reason, body) VALUES (?1, ?2, ?3, ?4)",
                )?;
                for r in &batch.rejects {
                    rj.execute(params![now, r.event_id, r.reason, r.body])?;
                }
            }
            Cmd::Delivered(id) => {
                tx.prepare_cached("DELETE FROM callbacks WHERE id = ?1")?
                    .execute([id])?;
            }
            Cmd::Reschedule {
                id,
                due_at_ms,
                attempts,
                history,
            } => {
                tx.prepare_cached("UPDATE callbacks SET due_at_ms = ?2, attempts = ?3, history = ?4 WHERE id = ?1")?
                    .execute(params![id, due_at_ms, attempts, history])?;
            }
            Cmd::DeadLetter {
                id,
                attempts,
                history,
                reason,
            } => {
                tx.prepare_cached(
                    "INSERT INTO dlq(callback_id, client_id, target_id, event_id, message_id, url, headers, body,
                                     created_at_ms, dead_at_ms, attempts, history, reason)
                     SELECT id, client_id, target_id, event_id, message_id, url, headers, body, created_at_ms, ?2, ?3, ?4, ?5
                     FROM callbacks WHERE id = ?1",
                )?
                .execute(params![id, now, attempts, history, reason])?;
                tx.prepare_cached("DELETE FROM callbacks WHERE id = ?1")?
                    .execute([id])?;
            }
            Cmd::PruneEvents { before_ms } => {
                tx.prepare_cached("DELETE FROM events WHERE received_at_ms < ?1")?
                    .execute([before_ms])?;
            }
            Cmd::Flush(_) => {}
        }
    }
    tx.commit()
}

/// Dead letters, oldest first, optionally of one client.
pub fn list_dlq(conn: &Connection, client_id: Option<&str>) -> Result<Vec<DlqEntry>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, client_id, target_id, event_id, message_id, url, created_at_ms, dead_at_ms, attempts, history, reason, body
         FROM dlq WHERE (?1 IS NULL OR client_id = ?1) ORDER BY id",
    )?;
    let rows = stmt.query_map([client_id], |r| {
        Ok(DlqEntry {
            id: r.get(0)?,
            client_id: r.get(1)?,
            target_id: r.get(2)?,
            event_id: r.get(3)?,
            message_id: r.get(4)?,
            url: r.get(5)?,
            created_at: rfc3339(r.get(6)?),
            dead_at: rfc3339(r.get(7)?),
            attempts: u32::try_from(r.get::<_, i64>(8)?).unwrap_or(0),
            history: parse_history(&r.get::<_, String>(9)?),
            reason: r.get(10)?,
            body: String::from_utf8_lossy(&r.get::<_, Vec<u8>>(11)?).into_owned(),
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Moves dead letters (all, one client's, or one entry) back to the queue as new callbacks:
/// due now, attempt count and retry budget restarted. Returns how many were re-queued.
pub fn replay_dlq(
    conn: &mut Connection,
    client_id: Option<&str>,
    id: Option<i64>,
) -> Result<usize, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let now = now_ms();
    let n = tx.execute(
        "INSERT INTO callbacks(client_id, target_id, event_id, message_id, url, headers, body, created_at_ms, due_at_ms)
         SELECT client_id, target_id, event_id, message_id, url, headers, body, ?3, ?3 FROM dlq
         WHERE (?1 IS NULL OR client_id = ?1) AND (?2 IS NULL OR id = ?2) ORDER BY id",
        params![client_id, id, now],
    )?;
    let m = tx.execute(
        "DELETE FROM dlq WHERE (?1 IS NULL OR client_id = ?1) AND (?2 IS NULL OR id = ?2)",
        params![client_id, id],
    )?;
    if n != m {
        return Err(StoreError::Corrupt {
            table: "dlq",
            id: id.unwrap_or(0),
            reason: format!("copied {n}, deleted {m}"),
        });
    }
    tx.commit()?;
    Ok(n)
}

/// The ids of every (client, target) with queued callbacks (to start their workers).
pub fn queued_targets(conn: &Connection) -> Result<Vec<(String, String, String)>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT client_id, target_id, max(url) FROM callbacks GROUP BY client_id, target_id",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Counts of rows per table, for tests and diagnostics.
pub fn counts(conn: &Connection) -> Result<HashMap<&'static str, i64>, StoreError> {
    let mut out = HashMap::new();
    for table in ["events", "callbacks", "dlq", "rejects"] {
        let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
        out.insert(table, n);
    }
    Ok(out)
}

impl Store {
    /// The ids of every (client, target) with queued callbacks.
    pub async fn queued_targets(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        self.read(queued_targets).await
    }
}
