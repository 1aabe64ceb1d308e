//! The attempts API's reads of the queue database: a callback by id (queued, or dead-lettered
//! under its queue id), a client's queued or dead-lettered callbacks, and their counts.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use crate::local::store::{rfc3339_ms, AttemptRecord, StoreError};

/// Where a callback is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Waiting for its next attempt (or being sent now).
    Queued,
    /// In its client's dead-letter queue.
    DeadLettered,
}

/// One callback and its attempts. Never holds the request headers (the API key).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackView {
    /// The id it was queued under (`dlq` rows keep it as `callback_id`).
    pub id: i64,
    pub state: State,
    pub client_id: String,
    pub target_id: String,
    pub event_id: String,
    pub message_id: String,
    pub created_at: String,
    pub attempts: u32,
    /// Queued: when the next attempt is due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    /// Dead-lettered: the entry's id for `dlq replay`, when and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dlq_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_lettered_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The attempts, oldest first (the last 100).
    pub history: Vec<AttemptRecord>,
}

const QUEUED: &str = "SELECT id, client_id, target_id, event_id, message_id, created_at_ms, attempts, history, due_at_ms FROM callbacks";
const DEAD: &str = "SELECT callback_id, client_id, target_id, event_id, message_id, created_at_ms, attempts, history, id, dead_at_ms, reason FROM dlq";

fn view(r: &Row<'_>, state: State) -> rusqlite::Result<CallbackView> {
    let history: String = r.get(7)?;
    let dead = state == State::DeadLettered;
    Ok(CallbackView {
        id: r.get(0)?,
        state,
        client_id: r.get(1)?,
        target_id: r.get(2)?,
        event_id: r.get(3)?,
        message_id: r.get(4)?,
        created_at: rfc3339_ms(r.get(5)?),
        attempts: u32::try_from(r.get::<_, i64>(6)?).unwrap_or(0),
        history: serde_json::from_str(&history).unwrap_or_default(),
        next_attempt_at: if dead {
            None
        } else {
            Some(rfc3339_ms(r.get(8)?))
        },
        dlq_id: if dead { Some(r.get(8)?) } else { None },
        dead_lettered_at: if dead {
            Some(rfc3339_ms(r.get(9)?))
        } else {
            None
        },
        reason: if dead { Some(r.get(10)?) } else { None },
    })
}

/// The callback queued under `id`, queued or dead-lettered (the newest dead letter of it).
pub fn callback(conn: &Connection, id: i64) -> Result<Option<CallbackView>, StoreError> {
    let queued = conn
        .query_row(&format!("{QUEUED} WHERE id = ?1"), [id], |r| {
            view(r, State::Queued)
        })
        .optional()?;
    if queued.is_some() {
        return Ok(queued);
    }
    Ok(conn
        .query_row(
            &format!("{DEAD} WHERE callback_id = ?1 ORDER BY id DESC LIMIT 1"),
            [id],
            |r| view(r, State::DeadLettered),
        )
        .optional()?)
}

/// A client's callbacks in one state, oldest first, at most `limit`.
pub fn list(
    conn: &Connection,
    client_id: &str,
    state: State,
    limit: u32,
) -> Result<Vec<CallbackView>, StoreError> {
    let sql = match state {
        State::Queued => format!("{QUEUED} WHERE client_id = ?1 ORDER BY id LIMIT ?2"),
        State::DeadLettered => format!("{DEAD} WHERE client_id = ?1 ORDER BY id LIMIT ?2"),
    };
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params![client_id, limit], |r| view(r, state))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Queued callbacks per target of a client, and its dead letters.
pub fn counts(conn: &Connection, client_id: &str) -> Result<(Vec<(String, i64)>, i64), StoreError> {
    let mut stmt = conn.prepare(
        "SELECT target_id, count(*) FROM callbacks WHERE client_id = ?1 GROUP BY target_id ORDER BY target_id",
    )?;
    let queued = stmt
        .query_map([client_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    let dead = conn.query_row(
        "SELECT count(*) FROM dlq WHERE client_id = ?1",
        [client_id],
        |r| r.get(0),
    )?;
    Ok((queued, dead))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::store::{open_db, Store};

    const HISTORY: &str = r#"[{"at":"2026-01-01T00:00:00.000Z","status":503,"durationMs":4}]"#;

    #[tokio::test]
    async fn a_callback_is_found_queued_then_dead_lettered_and_listed_per_client() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let conn = open_db(dir.path()).unwrap();
        conn.execute(
            "INSERT INTO callbacks(id, client_id, target_id, event_id, message_id, body, created_at_ms, due_at_ms, attempts, history)
             VALUES (7, 'c1', 't1', 'e1', 'm1', x'7b7d', 1000, 5000, 1, ?1)",
            [HISTORY],
        )
        .unwrap();
        let q = callback(&conn, 7).unwrap().expect("queued");
        assert_eq!(
            (q.state, q.attempts, q.history[0].status),
            (State::Queued, 1, Some(503))
        );
        assert_eq!(
            q.next_attempt_at.as_deref(),
            Some("1970-01-01T00:00:05.000Z")
        );
        assert!(q.dlq_id.is_none() && q.reason.is_none());
        assert_eq!(
            counts(&conn, "c1").unwrap(),
            (vec![("t1".to_string(), 1)], 0)
        );

        // Dead-lettered: the dlq row keeps the queue id as callback_id.
        conn.execute("DELETE FROM callbacks WHERE id = 7", [])
            .unwrap();
        conn.execute(
            "INSERT INTO dlq(id, callback_id, client_id, target_id, event_id, message_id, body, created_at_ms, dead_at_ms, attempts, history, reason)
             VALUES (3, 7, 'c1', 't1', 'e1', 'm1', x'7b7d', 1000, 9000, 2, ?1, 'permanent failure: HTTP 400')",
            [HISTORY],
        )
        .unwrap();
        let d = callback(&conn, 7).unwrap().expect("dead-lettered");
        assert_eq!(
            (d.state, d.dlq_id, d.attempts),
            (State::DeadLettered, Some(3), 2)
        );
        assert_eq!(d.reason.as_deref(), Some("permanent failure: HTTP 400"));
        assert!(d.next_attempt_at.is_none());
        assert!(callback(&conn, 8).unwrap().is_none());
        assert_eq!(list(&conn, "c1", State::DeadLettered, 10).unwrap().len(), 1);
        assert!(list(&conn, "c2", State::DeadLettered, 10)
            .unwrap()
            .is_empty());
        assert!(list(&conn, "c1", State::Queued, 10).unwrap().is_empty());
        assert_eq!(counts(&conn, "c1").unwrap(), (vec![], 1));
    }
}
