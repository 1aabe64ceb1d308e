//! The dead-letter table: listing and replay (`callbacks dlq`), on a connection of its own.

use rusqlite::{params, Connection};

use super::{now_ms, parse_history, rfc3339_ms, StoreError};
use crate::deliver::record::{last_outcome, DeadLetterRecord, RoutingIds};

/// Dead letters, oldest first, optionally of one client.
pub fn list_dlq(
    conn: &Connection,
    client_id: Option<&str>,
) -> Result<Vec<DeadLetterRecord>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, client_id, target_id, event_id, message_id, dead_at_ms, attempts, history,
                reason, body, traceparent, subscription_ids
         FROM dlq WHERE (?1 IS NULL OR client_id = ?1) ORDER BY id",
    )?;
    let rows = stmt.query_map([client_id], |r| {
        let history = parse_history(&r.get::<_, String>(7)?);
        let body: Vec<u8> = r.get(9)?;
        Ok(DeadLetterRecord {
            id: r.get::<_, i64>(0)?.to_string(),
            routing: RoutingIds {
                client_id: r.get(1)?,
                target_id: r.get(2)?,
                event_id: r.get(3)?,
                message_id: r.get(4)?,
                traceparent: r.get(10)?,
                subscription_ids: serde_json::from_str(&r.get::<_, String>(11)?)
                    .unwrap_or_default(),
            },
            dead_at: rfc3339_ms(r.get(5)?),
            attempts: u32::try_from(r.get::<_, i64>(6)?).unwrap_or(0),
            first_attempt_at: history.first().map(|a| a.at.clone()),
            last_outcome: last_outcome(&history),
            history,
            reason: r.get(8)?,
            payload: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
            source_queue_url: None,
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
