//! The embedded pipeline (`callbacks serve`): HTTP ingest ([`server`]), a durable SQLite queue
//! ([`store`]), per-target delivery workers ([`worker`]) on the [`crate::deliver`] engine,
//! Prometheus [`metrics`], configuration [`reload`] and the dead-letter tools ([`dlq`]); and
//! [`receive`], a client endpoint that verifies callbacks (`callbacks receive`).
//!
//! Durability: an ingest request runs the core and commits the resulting callbacks, audit rows
//! and rejects in one transaction before it is answered `202`, so a crash after the answer
//! loses nothing. A callback leaves the queue only after a 2xx (or to the dead-letter queue).

pub mod demo;
pub mod dlq;
pub mod metrics;
pub mod receive;
pub mod reload;
pub mod server;
pub mod store;
pub mod worker;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::config::{ConfigErrors, ConfigProblem, ConfigSet, DeliverySettings};
use crate::pipeline::CoreOptions;

use metrics::Metrics;
use reload::ConfigWatcher;
use store::Store;
use worker::{Engine, TargetKey, TargetRuntime};

/// Options of `callbacks serve`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub config_dir: PathBuf,
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub allow_http: bool,
    pub core: CoreOptions,
    /// How often the configuration directory is checked for changes.
    pub reload_interval: Duration,
    /// How long requests in flight may take to finish at shutdown.
    pub shutdown_grace: Duration,
    /// How long the audit rows of accepted events are kept.
    pub event_retention: Duration,
    /// How long dead letters are kept.
    pub dlq_retention: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("invalid configuration in {dir}:\n{errors}")]
    Config { dir: String, errors: ConfigErrors },
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Server(std::io::Error),
}

/// The runtimes (HTTP clients and settings) of every configured target. A target whose
/// client cannot be built (unreadable mTLS files) is a configuration problem.
fn runtimes(
    configs: &ConfigSet,
    allow_http: bool,
) -> (HashMap<TargetKey, Arc<TargetRuntime>>, Vec<ConfigProblem>) {
    let mut out = HashMap::new();
    let mut problems = Vec::new();
    for client in configs.clients() {
        for (i, t) in client.targets.iter().enumerate() {
            let endpoint = Some(crate::deliver::Endpoint::of(client, t));
            match TargetRuntime::new(DeliverySettings::of(t), endpoint, allow_http) {
                Ok(rt) => {
                    out.insert(
                        TargetKey {
                            client_id: client.client_id.clone(),
                            target_id: t.target_id.to_string(),
                        },
                        rt,
                    );
                }
                Err(e) => problems.push(ConfigProblem {
                    source_name: client.client_id.clone(),
                    pointer: format!("/targets/{i}/delivery"),
                    reason: e.to_string(),
                }),
            }
        }
    }
    (out, problems)
}

/// `client/target` of every configured target, sorted, comma-separated (for the start-up line).
fn target_names(configs: &ConfigSet) -> String {
    let mut names: Vec<String> = configs
        .clients()
        .flat_map(|c| {
            c.targets
                .iter()
                .map(move |t| format!("{}/{}", c.client_id, *t.target_id))
        })
        .collect();
    names.sort();
    names.join(",")
}

/// The per-file check of the server: endpoint scheme and a buildable HTTP client.
fn check(allow_http: bool) -> Arc<reload::Check> {
    let scheme = reload::endpoint_check(allow_http);
    Arc::new(move |name: &str, client: &crate::config::ClientSettings| {
        let mut problems = scheme(name, client);
        for (i, t) in client.targets.iter().enumerate() {
            let settings = DeliverySettings::of(t);
            if settings.mtls.is_some() {
                if let Err(e) = TargetRuntime::new(settings, None, allow_http) {
                    problems.push(ConfigProblem {
                        source_name: name.to_string(),
                        pointer: format!("/targets/{i}/delivery/mtls"),
                        reason: e.to_string(),
                    });
                }
            }
        }
        problems
    })
}

/// Binds a TCP listener; the address it got (port 0 picks a free port).
pub async fn bind(addr: SocketAddr) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    Ok((listener, bound))
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = term => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
    }
}

/// Runs the server until SIGTERM/SIGINT. `on_listening` is called with the bound address
/// (the binary prints it; `--listen 127.0.0.1:0` picks a free port).
pub async fn serve(
    opts: ServeOptions,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let (mut watcher, configs) = ConfigWatcher::start(&opts.config_dir, check(opts.allow_http))
        .map_err(|errors| ServeError::Config {
            dir: opts.config_dir.display().to_string(),
            errors,
        })?;
    let _lock = store::lock_data_dir(&opts.data_dir)?;
    let store = Store::open(&opts.data_dir)?;
    let metrics = Arc::new(Metrics::default());
    let engine = Engine::new(
        store.clone(),
        metrics.clone(),
        opts.allow_http,
        opts.shutdown_grace,
    );
    let (rts, problems) = runtimes(&configs, opts.allow_http);
    if !problems.is_empty() {
        return Err(ServeError::Config {
            dir: opts.config_dir.display().to_string(),
            errors: ConfigErrors(problems),
        });
    }
    engine.configure(rts);
    let clients = configs.len();
    let targets = target_names(&configs);

    // Queue depth as found on disk, and a worker for every target with queued callbacks.
    let mut queued_recovered = 0;
    for (client_id, target_id, n) in store.depths().await? {
        queued_recovered += n;
        metrics
            .target(&client_id, &target_id)
            .queue_depth
            .store(n, Ordering::Relaxed);
    }
    let queued = store.queued_targets().await?;
    if !queued.is_empty() {
        tracing::info!(
            targets = queued.len(),
            "resuming delivery of queued callbacks"
        );
    }
    let mut known: Vec<TargetKey> = queued
        .into_iter()
        .map(|(client_id, target_id)| TargetKey {
            client_id,
            target_id,
        })
        .collect();
    engine.poke_all(known.iter().cloned());
    let dlq_depths = store.dlq_depths().await?;
    let dead_letters: i64 = dlq_depths.iter().map(|(_, n)| *n).sum();
    metrics.set_dlq_depths(dlq_depths);

    let configs = Arc::new(RwLock::new(Arc::new(configs)));
    let state = Arc::new(server::AppState {
        configs: configs.clone(),
        core: opts.core.clone(),
        store: store.clone(),
        engine: engine.clone(),
        metrics: metrics.clone(),
    });
    let (listener, addr) = bind(opts.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: opts.listen,
            source,
        })?;
    tracing::info!(clients, targets = %targets, listen = %addr, data_dir = %opts.data_dir.display(),
        queued_recovered, dead_letters, "serve started");
    on_listening(addr);

    // Background: configuration reload, periodic pokes (re-queued dead letters), gauges.
    let housekeeping = {
        let engine = engine.clone();
        let metrics = metrics.clone();
        let store = store.clone();
        let allow_http = opts.allow_http;
        let interval = opts.reload_interval;
        let retention = opts.event_retention;
        let dlq_retention = opts.dlq_retention;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_gauges = tokio::time::Instant::now();
            let mut last_prune = tokio::time::Instant::now();
            loop {
                tick.tick().await;
                match watcher.poll() {
                    Ok(Some(r)) => {
                        metrics
                            .config_reload_errors
                            .fetch_add(r.problems.len() as u64, Ordering::Relaxed);
                        let (rts, problems) = runtimes(&r.configs, allow_http);
                        for p in &problems {
                            tracing::error!(problem = %p, "cannot build delivery client");
                        }
                        engine.configure(rts);
                        tracing::info!(clients = r.configs.len(), "configuration reloaded");
                        *configs.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(r.configs);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        metrics.config_reload_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(error = %e, "cannot read the configuration directory; keeping the current configuration");
                    }
                }
                // Pick up callbacks re-queued by `callbacks dlq replay` (and any target with rows).
                if let Ok(q) = store.queued_targets().await {
                    known = q
                        .into_iter()
                        .map(|(client_id, target_id)| TargetKey {
                            client_id,
                            target_id,
                        })
                        .collect();
                }
                engine.poke_all(known.iter().cloned());
                if last_gauges.elapsed() >= Duration::from_secs(10) {
                    last_gauges = tokio::time::Instant::now();
                    if let Ok(d) = store.dlq_depths().await {
                        metrics.set_dlq_depths(d);
                    }
                    if let Ok(depths) = store.depths().await {
                        for (c, t, n) in depths {
                            metrics
                                .target(&c, &t)
                                .queue_depth
                                .store(n, Ordering::Relaxed);
                        }
                    }
                }
                if last_prune.elapsed() >= Duration::from_secs(600) {
                    last_prune = tokio::time::Instant::now();
                    let cutoff = |d: Duration| {
                        store::now_ms()
                            .saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                    };
                    store.prune_events(cutoff(retention)).await;
                    store.prune_dlq(cutoff(dlq_retention)).await;
                }
            }
        })
    };

    let app = server::router(state);
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await;
    // No new events now; let deliveries in flight finish (or return them to the queue).
    housekeeping.abort();
    engine.shutdown().await;
    tracing::info!("stopped");
    result.map_err(ServeError::Server)
}
