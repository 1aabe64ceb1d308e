//! The durable store of `callbacks serve`: one SQLite database in WAL mode in the data
//! directory. Tables: `events` (one row per accepted event), `callbacks` (the per-client,
//! per-target queue: due time, attempt count and history), `dlq` (per-client dead letters with
//! their attempt history) and `rejects` (invalid events and why). A queued callback holds its
//! body and routing ids, never a URL, header or API key: the worker builds and signs the
//! request when it sends it ([`crate::deliver::Endpoint`]). The tables and their migrations
//! are in [`schema`]; the writer thread in [`writer`]; the queue reads in [`reader`]; the
//! dead-letter queries in [`dlq`]; the queue port of the workers in [`queue`].
//!
//! All writes go through one writer thread that commits whatever has queued up in one
//! transaction (group commit, `synchronous=FULL`): an `accept` returns only after its rows are
//! on disk. Reads (queue refills) use a small pool of read connections, which WAL lets run
//! beside the writer.

mod dlq;
mod journal;
mod queue;
mod reader;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

pub use crate::deliver::{rfc3339_ms, AttemptRecord, RoutingIds, TargetKey, MAX_HISTORY};
pub use dlq::{list_dlq, replay_dlq};
pub use queue::{Queued, Settled};
use reader::Readers;
pub use schema::{open_db, SCHEMA_VERSION};
use writer::Cmd;
pub use writer::WriterStats;

/// The database file inside the data directory.
pub const DB_FILE: &str = "callbacks.db";
/// The lock file that keeps a second server off the same data directory.
pub const LOCK_FILE: &str = "serve.lock";

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
    #[error("the data directory was written by a newer release (store schema version {found}; this one supports up to {supported})")]
    NewerSchema { found: i64, supported: i64 },
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

/// `t` in milliseconds since the epoch, as the store's `INTEGER` columns hold it
/// ([`crate::deliver::EpochMs`], 0 before the epoch, saturating far after it).
pub fn to_ms(t: SystemTime) -> i64 {
    i64::try_from(crate::deliver::EpochMs::of(t).0).unwrap_or(i64::MAX)
}

/// A callback to queue: the exact body and the routing ids (no URL, no headers, no key).
#[derive(Debug, Clone)]
pub struct NewCallback {
    pub routing: RoutingIds,
    pub body: Arc<[u8]>,
}

impl From<crate::pipeline::Callback> for NewCallback {
    /// Keeps what the queue needs of the core's signed request; its headers (the API key) and
    /// signature are dropped: the request is signed again when it is sent.
    fn from(c: crate::pipeline::Callback) -> Self {
        NewCallback {
            routing: RoutingIds {
                client_id: c.client_id,
                target_id: c.target_id,
                event_id: c.event_id,
                message_id: c.message_id,
                traceparent: c.traceparent,
                subscription_ids: c.subscription_ids,
            },
            body: c.body,
        }
    }
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

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    writer: mpsc::Sender<Cmd>,
    readers: Arc<Readers>,
    stats: Arc<WriterStats>,
}

/// Holds the data directory's lock for as long as it lives.
pub struct DataDirLock {
    _file: std::fs::File,
}

/// Creates and locks the data directory, forcing it (and every file in it) private.
pub fn lock_data_dir(dir: &Path) -> Result<DataDirLock, StoreError> {
    use std::os::unix::io::AsRawFd;
    let err = |source| StoreError::DataDir {
        path: dir.display().to_string(),
        source,
    };
    super::datadir::make_private(dir).map_err(err)?;
    let file = super::datadir::create_private_file(&dir.join(LOCK_FILE)).map_err(err)?;
    // SAFETY: flock on a file descriptor we own; no memory is shared.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(StoreError::Locked(dir.display().to_string()));
    }
    Ok(DataDirLock { _file: file })
}

/// Serialises an attempt history.
pub fn history_json(h: &[AttemptRecord]) -> String {
    serde_json::to_string(h).unwrap_or_else(|_| "[]".to_string())
}

pub(crate) fn parse_history(s: &str) -> Vec<AttemptRecord> {
    serde_json::from_str(s).unwrap_or_default()
}

impl Store {
    /// Opens the store of a data directory (the caller holds its lock) and starts the writer.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let path: PathBuf = data_dir.join(DB_FILE);
        // Private before SQLite opens it: the -wal and -shm files take the database's mode.
        super::datadir::create_private_file(&path).map_err(|source| StoreError::DataDir {
            path: path.display().to_string(),
            source,
        })?;
        let mut conn = schema::open_conn(&path)?;
        schema::migrate(&mut conn)?;
        journal::apply(&mut conn, data_dir)?;
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        }
        let mut conns = Vec::new();
        for _ in 0..2 {
            let r = schema::open_conn(&path)?;
            r.pragma_update(None, "query_only", "ON")?;
            conns.push(Mutex::new(r));
        }
        let (tx, rx) = mpsc::channel(16 * 1024);
        let stats = Arc::new(WriterStats::default());
        let writer_stats = stats.clone();
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn({
                let dir = data_dir.to_path_buf();
                move || writer::writer_loop(conn, rx, writer_stats, &dir)
            })
            .map_err(|source| StoreError::DataDir {
                path: path.display().to_string(),
                source,
            })?;
        Ok(Store {
            writer: tx,
            readers: Arc::new(Readers::new(conns)),
            stats,
        })
    }

    /// The writer's counters (commit retries and failures).
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Stores events, callbacks and rejects in one committed transaction; the ids the
    /// callbacks were queued under, in order.
    pub async fn accept(&self, batch: Accept) -> Result<Vec<i64>, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(Cmd::Accept(batch, tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        match rx.await {
            Ok(Ok(ids)) => Ok(ids),
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

    /// Deletes dead letters dead-lettered before `before_ms`.
    pub async fn prune_dlq(&self, before_ms: i64) {
        let _ = self.writer.send(Cmd::PruneDlq { before_ms }).await;
    }

    /// Deletes rejected events received before `before_ms`.
    pub async fn prune_rejects(&self, before_ms: i64) {
        let _ = self.writer.send(Cmd::PruneRejects { before_ms }).await;
    }

    /// Waits until everything sent before is committed.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.writer.send(Cmd::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}
