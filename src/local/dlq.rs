//! `callbacks dlq list|replay`: inspect and re-queue dead-lettered callbacks. Works on the data
//! directory directly (also while the server runs: it picks re-queued callbacks up within a
//! second). Output never includes request headers (they hold the API key).

use std::io::Write;
use std::path::Path;

use super::store::{self, StoreError};
use crate::deliver::{listing, DeadLetterRecord};

#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    #[error("no dead letter matched")]
    NothingMatched,
}

/// Dead letters, oldest first.
pub fn entries(
    data_dir: &Path,
    client_id: Option<&str>,
) -> Result<Vec<DeadLetterRecord>, DlqError> {
    let conn = store::open_db(data_dir)?;
    Ok(store::list_dlq(&conn, client_id)?)
}

/// Prints dead letters: one tab-separated line per entry (id, client, target, messageId,
/// attempts, last outcome, dead-lettered at, reason) under a header, or a JSON array.
pub fn list(
    data_dir: &Path,
    client_id: Option<&str>,
    json: bool,
    out: &mut impl Write,
) -> Result<usize, DlqError> {
    let entries = entries(data_dir, client_id)?;
    listing::write(out, &entries, json)?;
    Ok(entries.len())
}

/// Re-queues dead letters (all, one client's, one entry). Returns how many.
pub fn replay(
    data_dir: &Path,
    client_id: Option<&str>,
    id: Option<i64>,
) -> Result<usize, DlqError> {
    let mut conn = store::open_db(data_dir)?;
    let n = store::replay_dlq(&mut conn, client_id, id)?;
    if n == 0 && id.is_some() {
        return Err(DlqError::NothingMatched);
    }
    Ok(n)
}
