//! The worker supervisor: a panicking worker is restarted and counted.

use super::*;
use crate::local::store::{Accept, NewCallback};
use std::sync::atomic::AtomicU32;
use std::time::Instant;

/// Panics left to inject into the worker of the client `panics` (test-only fault hook).
static PANICS: AtomicU32 = AtomicU32::new(0);
const PANICKING_CLIENT: &str = "panics";

pub(super) fn fault(key: &TargetKey) {
    if key.client_id == PANICKING_CLIENT
        && PANICS
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    {
        panic!("injected worker fault");
    }
}

#[tokio::test]
async fn a_panicking_worker_is_restarted_and_counted_and_others_keep_going() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let metrics = Arc::new(Metrics::default());
    let engine = Engine::new(
        store.clone(),
        metrics.clone(),
        Egress::default(),
        Duration::from_secs(1),
    );
    PANICS.store(2, Ordering::SeqCst);
    let callback = |client: &str| NewCallback {
        routing: crate::deliver::RoutingIds {
            client_id: client.into(),
            target_id: "gone".into(),
            event_id: format!("ev-{client}"),
            message_id: format!("msg-{client}"),
            traceparent: None,
            subscription_ids: vec![],
        },
        body: Arc::from(&b"{}"[..]),
    };
    store
        .accept(Accept {
            callbacks: vec![callback(PANICKING_CLIENT), callback("calm")],
            ..Accept::default()
        })
        .await
        .expect("accept");
    // Neither target is configured: once running, a worker dead-letters its callback.
    for client in [PANICKING_CLIENT, "calm"] {
        engine.poke(&TargetKey {
            client_id: client.into(),
            target_id: "gone".into(),
        });
    }
    let dead = |client: &'static str| store_dlq(dir.path(), client);
    let deadline = Instant::now() + Duration::from_secs(10);
    while dead(PANICKING_CLIENT).await == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        dead(PANICKING_CLIENT).await,
        1,
        "the restarted worker dead-letters its callback"
    );
    assert_eq!(
        dead("calm").await,
        1,
        "the other target's worker kept going"
    );
    assert_eq!(metrics.worker_restarts.load(Ordering::Relaxed), 2);
    assert!(metrics
        .render()
        .contains("callbacks_worker_restarts_total 2"));
    engine.shutdown().await;
}

async fn store_dlq(dir: &std::path::Path, client: &str) -> usize {
    let (dir, client) = (dir.to_path_buf(), client.to_string());
    tokio::task::spawn_blocking(move || {
        crate::local::dlq::entries(&dir, Some(&client)).map_or(0, |e| e.len())
    })
    .await
    .unwrap_or(0)
}
