//! `delivered.pending` in the data directory: the ids of delivered callbacks whose delete has
//! not committed yet. The writer keeps those deletes in memory and retries them with every
//! commit; it also records their ids here (synced, mode 0600) while they wait, and removes
//! the file once they commit. [`apply`] runs the recorded deletes when the store opens,
//! before any worker loads the queue — so a delivered callback is not sent again after a
//! restart or a crash either, as long as this small file could be written.

use std::io::Write;
use std::path::Path;

use rusqlite::Connection;

use super::StoreError;

/// The file's name inside the data directory.
pub const FILE: &str = "delivered.pending";

/// Replaces the file with `ids`, one a line, synced (the directory too).
pub fn record(dir: &Path, ids: &[i64]) -> std::io::Result<()> {
    let tmp = dir.join(format!("{FILE}.tmp"));
    let mut f = crate::local::datadir::create_private_file(&tmp)?;
    f.set_len(0)?;
    let text: String = ids.iter().map(|id| format!("{id}\n")).collect();
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(FILE))?;
    std::fs::File::open(dir)?.sync_all()
}

/// Removes the file (all recorded deletes have committed).
pub fn clear(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(dir.join(FILE)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Keeps the file in step with the deletes pending after a group: recorded while there are
/// some, removed once there are none. `recorded` tracks whether the file exists.
pub fn follow(dir: &Path, pending: &[i64], recorded: &mut bool) {
    if !pending.is_empty() {
        match record(dir, pending) {
            Ok(()) => *recorded = true,
            Err(e) => {
                tracing::error!(error = %e, pending = pending.len(), "cannot record the pending deletes of delivered callbacks; a restart now would send them again")
            }
        }
    } else if *recorded {
        match clear(dir) {
            Ok(()) => *recorded = false,
            Err(e) => tracing::warn!(error = %e, "cannot remove {FILE}"),
        }
    }
}

/// Runs the deletes recorded by a previous run (if any) and removes the file. Fails, so that
/// nothing is re-sent, when they cannot commit.
pub fn apply(conn: &mut Connection, dir: &Path) -> Result<usize, StoreError> {
    let path = dir.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(source) => {
            return Err(StoreError::DataDir {
                path: path.display().to_string(),
                source,
            })
        }
    };
    let ids: Vec<i64> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    let tx = conn.transaction()?;
    let mut n = 0;
    for id in &ids {
        n += tx
            .prepare_cached("DELETE FROM callbacks WHERE id = ?1")?
            .execute([id])?;
    }
    tx.commit()?;
    clear(dir).map_err(|source| StoreError::DataDir {
        path: path.display().to_string(),
        source,
    })?;
    tracing::info!(
        recorded = ids.len(),
        deleted = n,
        "applied the deletes of delivered callbacks recorded before the restart"
    );
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_deletes_are_applied_once_and_the_file_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("db")).unwrap();
        conn.execute_batch(
            "CREATE TABLE callbacks(id INTEGER PRIMARY KEY); INSERT INTO callbacks VALUES (1), (2), (3);",
        )
        .unwrap();
        assert_eq!(apply(&mut conn, dir.path()).unwrap(), 0, "no file, nothing");
        let mut recorded = false;
        follow(dir.path(), &[1, 3], &mut recorded);
        assert!(recorded);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(apply(&mut conn, dir.path()).unwrap(), 2);
        assert!(!dir.path().join(FILE).exists());
        let left: i64 = conn
            .query_row("SELECT id FROM callbacks", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 2);
        // Once nothing is pending the file goes.
        follow(dir.path(), &[2], &mut recorded);
        follow(dir.path(), &[], &mut recorded);
        assert!(!recorded && !dir.path().join(FILE).exists());
    }
}
