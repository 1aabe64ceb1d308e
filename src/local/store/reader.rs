//! The queue reads of the store, on a small pool of read-only connections that WAL lets run
//! beside the writer: a target's next callbacks (worker refills), queue and DLQ depths (metrics),
//! the targets with queued callbacks (start-up) and the size of the rejects table (retention).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use rusqlite::{params, Connection};

use super::{parse_history, QueuedCallback, Store, StoreError, TargetKey};

/// Read connections, taken in turn.
pub(super) struct Readers {
    conns: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl Readers {
    pub(super) fn new(conns: Vec<Mutex<Connection>>) -> Self {
        Readers {
            conns,
            next: AtomicUsize::new(0),
        }
    }
}

impl Store {
    /// Bytes held by the rejects table (bodies and reasons).
    pub async fn rejects_bytes(&self) -> Result<u64, StoreError> {
        self.read(|c| {
            let n: i64 = c.query_row(
                "SELECT COALESCE(SUM(length(body) + length(reason)), 0) FROM rejects",
                [],
                |r| r.get(0),
            )?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
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
                "SELECT id, event_id, message_id, body, created_at_ms, due_at_ms, attempts, history
                 FROM callbacks WHERE client_id = ?1 AND target_id = ?2 AND id > ?3 ORDER BY id LIMIT ?4",
            )?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = stmt.query_map(params![client_id, target_id, after_id, limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, String>(7)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, event_id, message_id, body, created, due, attempts, history) = row?;
                out.push(QueuedCallback {
                    id,
                    client_id: client_id.clone(),
                    target_id: target_id.clone(),
                    event_id,
                    message_id,
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

/// Every target with queued callbacks (to start their workers).
pub fn queued_targets(conn: &Connection) -> Result<Vec<TargetKey>, StoreError> {
    let mut stmt = conn.prepare("SELECT DISTINCT client_id, target_id FROM callbacks")?;
    let rows = stmt.query_map([], |r| {
        Ok(TargetKey {
            client_id: r.get(0)?,
            target_id: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

impl Store {
    /// Every target with queued callbacks.
    pub async fn queued_targets(&self) -> Result<Vec<TargetKey>, StoreError> {
        self.read(queued_targets).await
    }
}
