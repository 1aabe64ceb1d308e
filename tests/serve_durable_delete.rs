//! "Never re-send what was delivered because a delete could not commit" (issue 13): a
//! delivered callback whose delete fails every commit retry (a trigger injected into the
//! database plays the fault) stays deleted in memory and is retried until it commits;
//! `/readyz` fails meanwhile; once the fault clears the row is gone and a restart sends
//! nothing again; after a crash the delete recorded in `delivered.pending` is applied before
//! anything is sent. The database's -wal and -shm files and that record are 0600.

mod serve_support;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serve_support::{key_of, message_event, one_client, wait_for, Receiver, Server};

fn rows(db: &rusqlite::Connection) -> i64 {
    db.query_row("SELECT count(*) FROM callbacks", [], |r| r.get(0))
        .unwrap()
}

/// A server delivering to a receiver, with deletes from `callbacks` failing (a trigger), after
/// one callback was delivered and every commit retry of its delete failed.
async fn delivered_but_not_deleted() -> (
    Receiver,
    tempfile::TempDir,
    std::path::PathBuf,
    std::path::PathBuf,
    Server,
    rusqlite::Connection,
) {
    let (receiver, root, config, data) = one_client().await;
    let server = Server::start(&config, &data);
    let db = rusqlite::Connection::open(data.join("callbacks.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    db.execute_batch(
        "CREATE TRIGGER keep_callbacks BEFORE DELETE ON callbacks
         BEGIN SELECT RAISE(ABORT, 'injected: the delete cannot commit'); END;",
    )
    .unwrap();
    let (status, body) = server
        .post_event(&message_event("c1", "durable-1", "DELIVERED"))
        .await;
    assert_eq!(status, 202, "{body}");
    wait_for(Duration::from_secs(10), "the delivery", || {
        receiver.delivered_keys("cb").contains(&key_of("durable-1"))
    })
    .await;
    wait_for(Duration::from_secs(10), "every commit retry failed", || {
        server
            .stderr()
            .contains("store commit failed after every retry")
    })
    .await;
    assert_eq!(rows(&db), 1);
    (receiver, root, config, data, server, db)
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_callback_whose_delete_cannot_commit_is_never_sent_again() {
    let (receiver, _root, config, data, server, db) = delivered_but_not_deleted().await;
    // The row is still on disk, the delete is pending in memory: not ready, not re-sent.
    let (status, body) = server.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("waiting to commit"), "{body}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        receiver.on("cb").len(),
        1,
        "sent again while the delete failed"
    );

    // The fault clears: the pending delete commits, without a restart.
    db.execute_batch("DROP TRIGGER keep_callbacks;").unwrap();
    wait_for(Duration::from_secs(10), "the delete committed", || {
        rows(&db) == 0
    })
    .await;
    let (status, body) = server.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    for f in ["callbacks.db", "callbacks.db-wal", "callbacks.db-shm"] {
        assert_eq!(mode(&data.join(f)), 0o600, "{f}");
    }
    assert!(!data.join("delivered.pending").exists());
    assert_eq!(server.terminate(), Some(0));

    // A restart finds nothing to send.
    let server = Server::start(&config, &data);
    let (status, _) = server.get("/readyz").await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(receiver.on("cb").len(), 1, "re-sent after the restart");
    assert_eq!(server.terminate(), Some(0));
}

/// A crash (kill -9) while the delete is pending: the id recorded in `delivered.pending`
/// (0600) is deleted when the store opens again, before any worker loads the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_while_the_delete_is_pending_sends_nothing_again() {
    let (receiver, _root, config, data, server, db) = delivered_but_not_deleted().await;
    let journal = data.join("delivered.pending");
    wait_for(
        Duration::from_secs(5),
        "the pending delete recorded",
        || journal.exists(),
    )
    .await;
    assert_eq!(mode(&journal), 0o600);
    server.kill9();
    db.execute_batch("DROP TRIGGER keep_callbacks;").unwrap();
    let server = Server::start(&config, &data);
    let (status, body) = server.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(rows(&db), 0);
    assert!(!journal.exists());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(receiver.on("cb").len(), 1, "re-sent after the crash");
    assert_eq!(server.terminate(), Some(0));
}
