//! `POST /clients/{clientId}/dlq/replay` (admin listener): re-queues a client's dead letters,
//! by DLQ id (`{"ids": [...]}`, at most [`MAX_IDS`]) or all of them (`{"all": true}`), with
//! the semantics of `callbacks dlq replay --data-dir` (one store function): due now, attempts
//! and retry budget restarted, signed when sent with the key in force then; the server picks
//! them up within a reload interval.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State as Extract};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{error, AttemptsState};
use crate::local::store;

/// DLQ ids one request may name.
pub const MAX_IDS: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayRequest {
    ids: Option<Vec<i64>>,
    all: Option<bool>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReplayAnswer {
    client_id: String,
    requeued: usize,
    not_found: Vec<i64>,
}

/// `None` for all of the client's dead letters, else the ids; or why the body is refused.
fn which(body: &[u8]) -> Result<Option<Vec<i64>>, String> {
    let req: ReplayRequest =
        serde_json::from_slice(body).map_err(|e| format!("body: not a replay request: {e}"))?;
    match (req.ids, req.all) {
        (Some(_), Some(_)) => Err("body: give either \"ids\" or \"all\", not both".into()),
        (None, Some(true)) => Ok(None),
        (None, _) => Err("body: give \"ids\": [...] or \"all\": true".into()),
        (Some(ids), None) if ids.is_empty() || ids.len() > MAX_IDS => {
            Err(format!("ids: must hold from 1 to {MAX_IDS} DLQ ids"))
        }
        (Some(ids), None) => Ok(Some(ids)),
    }
}

/// Re-queues on a connection of its own: how many, and the ids that matched nothing.
fn requeue(
    dir: &std::path::Path,
    client_id: &str,
    ids: Option<Vec<i64>>,
) -> Result<(usize, Vec<i64>), store::StoreError> {
    let mut conn = store::open_db(dir)?;
    let Some(ids) = ids else {
        return Ok((
            store::replay_dlq(&mut conn, Some(client_id), None)?,
            Vec::new(),
        ));
    };
    let mut requeued = 0;
    let mut not_found = Vec::new();
    for id in ids {
        match store::replay_dlq(&mut conn, Some(client_id), Some(id))? {
            0 => not_found.push(id),
            n => requeued += n,
        }
    }
    Ok((requeued, not_found))
}

pub async fn replay(
    Extract(state): Extract<Arc<AttemptsState>>,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    let ids = match which(&body) {
        Ok(ids) => ids,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason),
    };
    let dir = state.data_dir.clone();
    let id = client_id.clone();
    let done = tokio::task::spawn_blocking(move || requeue(&dir, &id, ids)).await;
    match done {
        Ok(Ok((0, _))) => error(
            StatusCode::NOT_FOUND,
            format!("no dead letter of client {client_id:?} matched"),
        ),
        Ok(Ok((requeued, not_found))) => {
            tracing::info!(client_id = %client_id, requeued, not_found = not_found.len(), "dead letters re-queued");
            Json(ReplayAnswer {
                client_id,
                requeued,
                not_found,
            })
            .into_response()
        }
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_names_ids_or_all() {
        assert_eq!(which(br#"{"all":true}"#), Ok(None));
        assert_eq!(which(br#"{"ids":[3,4]}"#), Ok(Some(vec![3, 4])));
        for bad in [
            &br#"{}"#[..],
            br#"{"all":false}"#,
            br#"{"ids":[]}"#,
            br#"{"ids":[1],"all":true}"#,
            br#"{"id":1}"#,
            br#"[1]"#,
            b"not json",
        ] {
            assert!(which(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let many = format!("{{\"ids\":{:?}}}", (0..=MAX_IDS as i64).collect::<Vec<_>>());
        assert!(which(many.as_bytes()).unwrap_err().contains("1000"));
    }
}
