//! "Never re-send what was delivered because a delete could not commit" (issue 13): a
//! delivered callback whose delete fails every commit retry (a trigger injected into the
//! database plays the fault) stays deleted in memory and is retried until it commits;
//! `/readyz` fails meanwhile; once the fault clears the row is gone and a restart sends
//! nothing again. The database's -wal and -shm files stay 0600 throughout.

mod serve_support;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serve_support::{key_of, message_event, one_client, wait_for, Server};

fn rows(db: &rusqlite::Connection) -> i64 {
    db.query_row("SELECT count(*) FROM callbacks", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_callback_whose_delete_cannot_commit_is_never_sent_again() {
    let (receiver, _root, config, data) = one_client().await;
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
    // The row is still on disk, the delete is pending in memory: not ready, not re-sent.
    assert_eq!(rows(&db), 1);
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
        let mode = std::fs::metadata(data.join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    assert_eq!(server.terminate(), Some(0));

    // A restart finds nothing to send.
    let server = Server::start(&config, &data);
    let (status, _) = server.get("/readyz").await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(receiver.on("cb").len(), 1, "re-sent after the restart");
    assert_eq!(server.terminate(), Some(0));
}
