//! `kill -9` while thousands of callbacks are queued or in flight; a restart on the same data
//! directory delivers every accepted event (duplicates allowed, loss not).

mod serve_support;

use std::collections::HashSet;
use std::time::Duration;

use serve_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_accepted_event() {
    const CLIENTS: usize = 6;
    const EVENTS: usize = 3000;
    let recv = Receiver::start().await;
    let (_root, config, data) = dirs();
    for c in 0..CLIENTS {
        let id = format!("client-{c}");
        let mut t = TargetSpec::new("t1", recv.url(&format!("c{c}")));
        t.rate = 100;
        write_config(&config, &id, &client_config(&id, &[t]));
    }
    let server = Server::start(&config, &data);
    let mut accepted = HashSet::new();
    for chunk in 0..EVENTS / 100 {
        let evs: Vec<_> = (0..100)
            .map(|i| {
                let n = chunk * 100 + i;
                message_event(
                    &format!("client-{}", n % CLIENTS),
                    &format!("crash-{n}"),
                    "DELIVERED",
                )
            })
            .collect();
        let (status, report) = server.post_batch(&evs).await;
        assert_eq!(status, 202, "{report}");
        for n in chunk * 100..chunk * 100 + 100 {
            accepted.insert((format!("c{}", n % CLIENTS), key_of(&format!("crash-{n}"))));
        }
    }
    // Kill mid-delivery: some delivered, most still queued or in flight.
    wait_for(Duration::from_secs(20), "some deliveries", || {
        recv.records().len() >= 300
    })
    .await;
    server.kill9();
    let before = recv.records().len();
    assert!(
        before < EVENTS,
        "everything was delivered before the kill ({before})"
    );

    let server = Server::start(&config, &data);
    wait_for(
        Duration::from_secs(40),
        "every accepted event's callback",
        || {
            let got: HashSet<(String, String)> = recv
                .records()
                .iter()
                .filter(|r| r.status == 200)
                .map(|r| (r.path.clone(), r.idempotency_key()))
                .collect();
            accepted.iter().all(|k| got.contains(k))
        },
    )
    .await;
    assert_eq!(server.terminate(), Some(0));
}
