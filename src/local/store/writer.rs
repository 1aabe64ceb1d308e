//! The store's single writer thread: it commits whatever has queued up in one transaction
//! (group commit, `synchronous=FULL`). A failed commit is retried (with a pause) and counted;
//! when it keeps failing, the ingest requests in the group are answered with the error (they
//! were not accepted: the sender gets a 503) and the delivery outcomes are kept for the next
//! group, so nothing a worker reported is dropped; the ids of delivered callbacks among them
//! are also recorded in `delivered.pending` ([`super::journal`]) until they commit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{params, Connection};
use tokio::sync::{mpsc, oneshot};

use super::{now_ms, Accept};

pub(super) enum Cmd {
    /// Answered with the ids of the queued callbacks, in the order of `Accept::callbacks`.
    Accept(Accept, oneshot::Sender<Result<Vec<i64>, String>>),
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
    PruneDlq {
        before_ms: i64,
    },
    PruneRejects {
        before_ms: i64,
    },
    Flush(oneshot::Sender<()>),
}

/// Counters of the writer (exported as metrics).
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Commits that failed and were tried again.
    pub commit_retries: AtomicU64,
    /// Groups given up after every retry failed (their ingest requests got an error).
    pub commit_failures: AtomicU64,
    /// Writes kept in memory after their group was given up (delivered callbacks' deletes,
    /// reschedules, dead letters, prunes), retried with every next group until they commit;
    /// while any is pending `/readyz` fails. A delivered callback is never sent again
    /// because its delete did not commit, as long as the process runs.
    pub pending_writes: AtomicU64,
}

impl WriterStats {
    /// Prometheus text: `callbacks_store_commit_retries_total`,
    /// `callbacks_store_commit_failures_total`, `callbacks_store_pending_writes`.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let rows = [
            (
                "callbacks_store_commit_retries_total",
                "counter",
                "Store commits that failed and were tried again.",
                &self.commit_retries,
            ),
            (
                "callbacks_store_commit_failures_total",
                "counter",
                "Store commit groups given up after every retry.",
                &self.commit_failures,
            ),
            (
                "callbacks_store_pending_writes",
                "gauge",
                "Delivery outcomes kept in memory until their commit goes through.",
                &self.pending_writes,
            ),
        ];
        for (name, kind, help, v) in rows {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
    }
}

/// Commands per transaction, at most.
const MAX_GROUP: usize = 4096;
/// Pauses before the retries of a failed commit.
const RETRY_PAUSES: [Duration; 4] = [
    Duration::from_millis(20),
    Duration::from_millis(100),
    Duration::from_millis(500),
    Duration::from_millis(1000),
];

pub(super) fn writer_loop(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Cmd>,
    stats: Arc<WriterStats>,
    dir: &std::path::Path,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    let mut journaled = false;
    loop {
        // A group that failed still holds its delivery outcomes: they go first.
        if group.is_empty() {
            match rx.blocking_recv() {
                Some(first) => group.push(first),
                None => break,
            }
        }
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(c) => group.push(c),
                Err(_) => break,
            }
        }
        let result = commit_with_retries(&mut conn, &group, &stats);
        settle(&mut group, result);
        stats
            .pending_writes
            .store(group.len() as u64, Ordering::Relaxed);
        let deletes: Vec<i64> = group
            .iter()
            .filter_map(|c| match c {
                Cmd::Delivered(id) => Some(*id),
                _ => None,
            })
            .collect();
        super::journal::follow(dir, &deletes, &mut journaled);
    }
    tracing::debug!("store writer stopped");
}

/// Answers the ingest requests and flushes of a committed (or given up) group; when it
/// failed, its delivery outcomes stay in `group` for the next one.
fn settle(group: &mut Vec<Cmd>, result: Result<Vec<Vec<i64>>, String>) {
    let mut kept = Vec::new();
    let err = result.as_ref().err();
    let mut ids = result.as_ref().ok().map(|v| v.iter());
    for cmd in group.drain(..) {
        match cmd {
            Cmd::Accept(_, reply) => {
                let _ = reply.send(match (err, ids.as_mut().and_then(Iterator::next)) {
                    (Some(e), _) => Err(e.clone()),
                    (None, ids) => Ok(ids.cloned().unwrap_or_default()),
                });
            }
            Cmd::Flush(reply) => {
                let _ = reply.send(());
            }
            other if err.is_some() => kept.push(other),
            _ => {}
        }
    }
    group.extend(kept);
}

/// Commits `group`, retrying a failure after each of [`RETRY_PAUSES`]: the queued callback
/// ids of each `Accept` in it, or the last error if every try failed.
fn commit_with_retries(
    conn: &mut Connection,
    group: &[Cmd],
    stats: &WriterStats,
) -> Result<Vec<Vec<i64>>, String> {
    let mut result = apply(conn, group);
    for pause in RETRY_PAUSES {
        let Err(e) = &result else { break };
        stats.commit_retries.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error = %e, commands = group.len(), retry_in_ms = pause.as_millis() as u64, "store commit failed; retrying");
        std::thread::sleep(pause);
        result = apply(conn, group);
    }
    result.map_err(|e| {
        stats.commit_failures.fetch_add(1, Ordering::Relaxed);
        tracing::error!(error = %e, commands = group.len(), "store commit failed after every retry");
        e.to_string()
    })
}

fn insert_accept(
    tx: &rusqlite::Transaction<'_>,
    batch: &Accept,
    now: i64,
) -> Result<Vec<i64>, rusqlite::Error> {
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
        "INSERT INTO callbacks(client_id, target_id, event_id, message_id, traceparent, subscription_ids,
                               body, created_at_ms, due_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
    )?;
    let mut ids = Vec::with_capacity(batch.callbacks.len());
    for c in &batch.callbacks {
        ids.push(cb.insert(params![
            c.routing.client_id,
            c.routing.target_id,
            c.routing.event_id,
            c.routing.message_id,
            c.routing.traceparent,
            serde_json::to_string(&c.routing.subscription_ids).unwrap_or_else(|_| "[]".to_string()),
            &c.body[..],
            now
        ])?);
    }
    let mut rj = tx.prepare_cached(
        "INSERT INTO rejects(received_at_ms, event_id, reason, body) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for r in &batch.rejects {
        rj.execute(params![now, r.event_id, r.reason, r.body])?;
    }
    Ok(ids)
}

/// One transaction over `group`; the callback ids of each `Accept`, in order.
fn apply(conn: &mut Connection, group: &[Cmd]) -> Result<Vec<Vec<i64>>, rusqlite::Error> {
    let tx = conn.transaction()?;
    let now = now_ms();
    let mut accepted = Vec::new();
    for cmd in group {
        match cmd {
            Cmd::Accept(batch, _) => accepted.push(insert_accept(&tx, batch, now)?),
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
                tx.prepare_cached(
                    "UPDATE callbacks SET due_at_ms = ?2, attempts = ?3, history = ?4 WHERE id = ?1",
                )?
                .execute(params![id, due_at_ms, attempts, history])?;
            }
            Cmd::DeadLetter {
                id,
                attempts,
                history,
                reason,
            } => {
                tx.prepare_cached(
                    "INSERT INTO dlq(callback_id, client_id, target_id, event_id, message_id, traceparent,
                                     subscription_ids, body, created_at_ms, dead_at_ms, attempts, history, reason)
                     SELECT id, client_id, target_id, event_id, message_id, traceparent, subscription_ids, body,
                            created_at_ms, ?2, ?3, ?4, ?5
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
            Cmd::PruneDlq { before_ms } => {
                tx.prepare_cached("DELETE FROM dlq WHERE dead_at_ms < ?1")?
                    .execute([before_ms])?;
            }
            Cmd::PruneRejects { before_ms } => {
                tx.prepare_cached("DELETE FROM rejects WHERE received_at_ms < ?1")?
                    .execute([before_ms])?;
            }
            Cmd::Flush(_) => {}
        }
    }
    tx.commit()?;
    Ok(accepted)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::super::{Accept, NewEvent, Store};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_commit_is_retried_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let side = rusqlite::Connection::open(dir.path().join(super::super::DB_FILE)).unwrap();
        side.execute_batch(
            "CREATE TRIGGER fail_events BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'injected'); END;",
        )
        .unwrap();
        let batch = Accept {
            events: vec![NewEvent {
                event_id: "ev-1".into(),
                source: "/s".into(),
                client_id: "c".into(),
                message_id: "m".into(),
                callbacks: 0,
                outcome: "no-match",
            }],
            ..Accept::default()
        };
        let accept = tokio::spawn({
            let store = store.clone();
            async move { store.accept(batch).await }
        });
        let t0 = std::time::Instant::now();
        while store.stats().commit_retries.load(Ordering::Relaxed) == 0 {
            assert!(t0.elapsed() < Duration::from_secs(10), "no retry seen");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        side.execute_batch("DROP TRIGGER fail_events;").unwrap();
        accept.await.unwrap().expect("committed on a retry");
        let n: i64 = side
            .query_row(
                "SELECT count(*) FROM events WHERE event_id = 'ev-1'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(store.stats().commit_failures.load(Ordering::Relaxed), 0);
    }
}
