//! The wiring of `callbacks serve`: the configuration loaded (off the async runtime), the
//! store opened, the workers resumed, the listeners bound and run until a signal.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use crate::config::{ConfigErrors, ConfigProblem, ConfigSet, DeliverySettings};
use crate::deliver::Egress;

use super::housekeeping::{housekeeping, Housekeeping};
use super::metrics::Metrics;
use super::options::fit_connections;
use super::reload::{self, ConfigWatcher};
use super::store::{self, Store};
use super::worker::{Engine, TargetKey, TargetRuntime};
use super::{admin, limits, listen, server, tls, ServeError, ServeOptions};

/// The runtimes (HTTP clients and settings) of every configured target. A target whose
/// client cannot be built (unreadable mTLS files) is a configuration problem.
pub(super) fn runtimes(
    configs: &ConfigSet,
    egress: &Egress,
) -> (HashMap<TargetKey, Arc<TargetRuntime>>, Vec<ConfigProblem>) {
    let mut out = HashMap::new();
    let mut problems = Vec::new();
    for client in configs.clients() {
        for (i, t) in client.targets.iter().enumerate() {
            let endpoint = Some(crate::deliver::Endpoint::of(client, t));
            match TargetRuntime::new(DeliverySettings::of(t), endpoint, egress) {
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
fn check(egress: Egress) -> Arc<reload::Check> {
    let scheme = reload::endpoint_check(crate::config::rules::EndpointPolicy {
        allow_http: egress.allow_http,
        allow_private: egress.allow_private,
    });
    Arc::new(move |name: &str, client: &crate::config::ClientSettings| {
        let mut problems = scheme(name, client);
        for (i, t) in client.targets.iter().enumerate() {
            let settings = DeliverySettings::of(t);
            if settings.mtls.is_some() {
                if let Err(e) = TargetRuntime::new(settings, None, &egress) {
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

/// Queue depths as found on disk, and a worker for every target with queued callbacks: the
/// targets, the callbacks queued and the dead letters found.
async fn resume(
    store: &Store,
    metrics: &Metrics,
    engine: &Arc<Engine>,
) -> Result<(Vec<TargetKey>, i64, i64), ServeError> {
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
    let known = queued;
    engine.poke_all(known.iter().cloned());
    let dlq_depths = store.dlq_depths().await?;
    let dead_letters: i64 = dlq_depths.iter().map(|(_, n)| *n).sum();
    metrics.set_dlq_depths(dlq_depths);
    Ok((known, queued_recovered, dead_letters))
}

/// The configuration at start-up, read and checked (files, PEM files, delivery clients) on a
/// blocking thread, off the async runtime, as every reload is.
async fn initial_config(
    dir: PathBuf,
    egress: Egress,
) -> Result<
    (
        ConfigWatcher,
        ConfigSet,
        HashMap<TargetKey, Arc<TargetRuntime>>,
    ),
    ServeError,
> {
    tokio::task::spawn_blocking(move || {
        let invalid = |errors| ServeError::Config {
            dir: dir.display().to_string(),
            errors,
        };
        let (watcher, configs) =
            ConfigWatcher::start(&dir, check(egress.clone())).map_err(invalid)?;
        let (rts, problems) = runtimes(&configs, &egress);
        if !problems.is_empty() {
            return Err(invalid(ConfigErrors(problems)));
        }
        Ok((watcher, configs, rts))
    })
    .await?
}

async fn bind_or_fail(
    addr: SocketAddr,
) -> Result<(tokio::net::TcpListener, SocketAddr), ServeError> {
    bind(addr)
        .await
        .map_err(|source| ServeError::Listen { addr, source })
}

/// The bound addresses of a running server.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub ingest: SocketAddr,
    pub admin: SocketAddr,
    pub tls: bool,
}

/// The ingest and admin listeners, each on its own task until `stop`.
fn start_listeners(
    opts: &ServeOptions,
    state: &Arc<server::AppState>,
    [ingest, admin]: [tokio::net::TcpListener; 2],
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: &tokio_util::sync::CancellationToken,
) -> [tokio::task::JoinHandle<()>; 2] {
    [
        listen::Listener {
            name: "ingest",
            listener: ingest,
            app: server::router(state.clone()),
            tls,
            max_connections: opts.limits.max_connections,
            header_timeout: opts.limits.header_timeout,
            refused: state.perimeter.connections_refused.clone(),
        },
        listen::Listener {
            name: "admin",
            listener: admin,
            app: admin::router(state.clone()),
            tls: None,
            max_connections: limits::ADMIN_MAX_CONNECTIONS,
            header_timeout: opts.limits.header_timeout,
            refused: Arc::default(),
        },
    ]
    .map(|l| tokio::spawn(listen::run(l, stop.clone(), opts.shutdown_grace)))
}

/// Runs the server until SIGTERM/SIGINT. `on_listening` is called with the bound addresses
/// (the binary prints them; port 0 picks a free port).
pub async fn serve(
    mut opts: ServeOptions,
    on_listening: impl FnOnce(Bound),
) -> Result<(), ServeError> {
    opts.check_perimeter()?;
    if opts.admin_listen == opts.listen && opts.listen.port() != 0 {
        return Err(ServeError::AdminOnIngestPort(opts.admin_listen));
    }
    fit_connections(&mut opts.limits);
    let tls = opts.tls.as_ref().map(tls::acceptor).transpose()?;
    let egress = opts.egress();
    let (watcher, configs, rts) = initial_config(opts.config_dir.clone(), egress.clone()).await?;
    let _lock = store::lock_data_dir(&opts.data_dir)?;
    let store = Store::open(&opts.data_dir)?;
    let metrics = Arc::new(Metrics::default());
    let engine = Engine::new(
        store.clone(),
        metrics.clone(),
        egress.clone(),
        opts.shutdown_grace,
    );
    engine.configure(rts);
    let clients = configs.len();
    let targets = target_names(&configs);
    let (known, queued_recovered, dead_letters) = resume(&store, &metrics, &engine).await?;

    let state = Arc::new(server::AppState {
        configs: Arc::new(RwLock::new(Arc::new(configs))),
        core: opts.core.clone(),
        store: store.clone(),
        engine: engine.clone(),
        metrics: metrics.clone(),
        auth: opts.auth.clone(),
        limits: opts.limits.clone(),
        data_dir: opts.data_dir.clone(),
        perimeter: limits::PerimeterMetrics::default(),
        ingest_slots: tokio::sync::Semaphore::new(opts.limits.max_concurrent_ingest.max(1)),
        storage_ok: std::sync::atomic::AtomicBool::new(true),
        rejects_bytes: std::sync::atomic::AtomicU64::new(store.rejects_bytes().await?),
    });
    let (ingest, ingest_addr) = bind_or_fail(opts.listen).await?;
    let (admin, admin_addr) = bind_or_fail(opts.admin_listen).await?;
    tracing::info!(clients, targets = %targets, listen = %ingest_addr, admin = %admin_addr, tls = tls.is_some(),
        tokens = opts.auth.has_tokens(), data_dir = %opts.data_dir.display(), queued_recovered, dead_letters, "serve started");
    on_listening(Bound {
        ingest: ingest_addr,
        admin: admin_addr,
        tls: tls.is_some(),
    });

    let housekeeping = tokio::spawn(housekeeping(
        watcher,
        state.clone(),
        known,
        Housekeeping {
            egress,
            interval: opts.reload_interval,
            event_retention: opts.event_retention,
            dlq_retention: opts.dlq_retention,
        },
    ));
    let stop = tokio_util::sync::CancellationToken::new();
    let listeners = start_listeners(&opts, &state, [ingest, admin], tls, &stop);
    shutdown_signal().await;
    stop.cancel();
    for l in listeners {
        let _ = l.await;
    }
    // No new events now; let deliveries in flight finish (or return them to the queue).
    housekeeping.abort();
    engine.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}
