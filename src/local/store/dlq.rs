//! The dead-letter table: listing and replay (`callbacks dlq`), on a connection of its own.

use rusqlite::{params, Connection};

use super::{now_ms, parse_history, rfc3339, DlqEntry, StoreError};

/// Dead letters, oldest first, optionally of one client.
pub fn list_dlq(conn: &Connection, client_id: Option<&str>) -> Result<Vec<DlqEntry>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, client_id, target_id, event_id, message_id, created_at_ms, dead_at_ms, attempts, history,
                reason, body, traceparent, subscription_ids
         FROM dlq WHERE (?1 IS NULL OR client_id = ?1) ORDER BY id",
    )?;
    let rows = stmt.query_map([client_id], |r| {
        Ok(DlqEntry {
            id: r.get(0)?,
            client_id: r.get(1)?,
            target_id: r.get(2)?,
            event_id: r.get(3)?,
            message_id: r.get(4)?,
            created_at: rfc3339(r.get(5)?),
            dead_at: rfc3339(r.get(6)?),
            attempts: u32::try_from(r.get::<_, i64>(7)?).unwrap_or(0),
            history: parse_history(&r.get::<_, String>(8)?),
            reason: r.get(9)?,
            body: String::from_utf8_lossy(&r.get::<_, Vec<u8>>(10)?).into_owned(),
            traceparent: r.get(11)?,
            subscription_ids: serde_json::from_str(&r.get::<_, String>(12)?).unwrap_or_default(),
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Moves dead letters (all, one client's, or one entry) back to the queue as new callbacks:
/// due now, attempt count and retry budget restarted. They are signed when sent, with the
/// key in force then. Returns how many were re-queued.
pub fn replay_dlq(
    conn: &mut Connection,
    client_id: Option<&str>,
    id: Option<i64>,
) -> Result<usize, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let now = now_ms();
    let n = tx.execute(
        "INSERT INTO callbacks(client_id, target_id, event_id, message_id, traceparent, subscription_ids,
                               body, created_at_ms, due_at_ms)
         SELECT client_id, target_id, event_id, message_id, traceparent, subscription_ids, body, ?3, ?3 FROM dlq
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
