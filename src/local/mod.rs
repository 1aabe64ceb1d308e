//! The embedded pipeline (`callbacks serve`): HTTP ingest ([`server`]), a durable SQLite queue
//! ([`store`]), per-target delivery workers ([`worker`]) on the [`crate::deliver`] engine,
//! Prometheus [`metrics`], configuration [`reload`] and the dead-letter tools ([`dlq`]); and
//! [`receive`], a client endpoint that verifies callbacks (`callbacks receive`).
//!
//! Durability: an ingest request runs the core and commits the resulting callbacks, audit rows
//! and rejects in one transaction before it is answered `202`, so a crash after the answer
//! loses nothing. A callback leaves the queue only after a 2xx (or to the dead-letter queue).

pub mod admin;
pub mod attempts;
pub mod auth;
pub mod datadir;
pub mod demo;
pub mod dlq;
pub mod limits;
pub mod listen;
pub mod metrics;
pub mod process;
pub mod receive;
pub mod reload;
pub mod server;
pub mod store;
pub mod tls;
pub mod worker;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::config::{ConfigErrors, ConfigProblem, ConfigSet, DeliverySettings};
use crate::deliver::Egress;
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
    /// Allow endpoints on loopback, private and other non-public addresses.
    pub allow_private_egress: bool,
    /// Host names answered without DNS (`--resolve NAME=IP`); the egress guard still applies.
    pub resolve: Vec<(String, std::net::IpAddr)>,
    pub core: CoreOptions,
    /// How often the configuration directory is checked for changes.
    pub reload_interval: Duration,
    /// How long requests in flight may take to finish at shutdown.
    pub shutdown_grace: Duration,
    /// How long the audit rows of accepted events are kept.
    pub event_retention: Duration,
    /// How long dead letters are kept.
    pub dlq_retention: Duration,
    /// The admin listener (`/metrics`, `/healthz`, `/readyz`).
    pub admin_listen: SocketAddr,
    /// Bearer tokens and the expected `Host` of ingest requests.
    pub auth: auth::IngestAuth,
    /// TLS (and client certificates) on the ingest listener.
    pub tls: Option<tls::TlsFiles>,
    /// Listen on a non-loopback address without a token or client certificates.
    pub insecure_listen: bool,
    pub limits: limits::Limits,
}

impl ServeOptions {
    /// Defaults for everything but the directories.
    pub fn new(config_dir: PathBuf, data_dir: PathBuf) -> Self {
        ServeOptions {
            config_dir,
            data_dir,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            allow_http: false,
            allow_private_egress: false,
            resolve: Vec::new(),
            core: CoreOptions::default(),
            reload_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(10),
            event_retention: Duration::from_secs(24 * 3600),
            dlq_retention: Duration::from_secs(7 * 24 * 3600),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            auth: auth::IngestAuth::default(),
            tls: None,
            insecure_listen: false,
            limits: limits::Limits::default(),
        }
    }

    /// What delivery may connect to.
    fn egress(&self) -> Egress {
        let mut pins = std::collections::BTreeMap::<String, Vec<std::net::IpAddr>>::new();
        for (host, ip) in &self.resolve {
            pins.entry(host.to_ascii_lowercase()).or_default().push(*ip);
        }
        Egress {
            allow_http: self.allow_http,
            allow_private: self.allow_private_egress,
            pins: Arc::new(pins),
        }
    }

    /// Refuses a listen address other machines can reach when nothing authenticates callers.
    fn check_perimeter(&self) -> Result<(), ServeError> {
        let client_certs = self.tls.as_ref().is_some_and(|t| t.client_ca.is_some());
        if self.listen.ip().is_loopback() || self.auth.has_tokens() || client_certs {
            return Ok(());
        }
        if self.insecure_listen {
            tracing::warn!(listen = %self.listen, "--insecure-listen: anyone who reaches this address can make the server send signed callbacks");
            return Ok(());
        }
        Err(ServeError::Unauthenticated(self.listen))
    }
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
    #[error("refusing to listen on {0} without authentication: give --ingest-token-file or --client-ca (or --insecure-listen to accept anyone who can reach it)")]
    Unauthenticated(SocketAddr),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("the admin listener {0} must not be the ingest listener")]
    AdminOnIngestPort(SocketAddr),
}

/// The runtimes (HTTP clients and settings) of every configured target. A target whose
/// client cannot be built (unreadable mTLS files) is a configuration problem.
fn runtimes(
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

/// Settings of the background task.
struct Housekeeping {
    egress: Egress,
    interval: Duration,
    event_retention: Duration,
    dlq_retention: Duration,
}

/// Runs `f` on a blocking thread, off the async runtime (file reads, client building).
async fn off_runtime<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!(error = %e, "configuration reload failed; keeping the current configuration");
            None
        }
    }
}

/// Applies a configuration poll. The directory is read and the delivery clients (with their
/// PEM files) are built on a blocking thread, off the async runtime.
async fn apply_reload(
    watcher: &Arc<std::sync::Mutex<ConfigWatcher>>,
    state: &server::AppState,
    egress: &Egress,
) {
    let metrics = &state.metrics;
    let w = watcher.clone();
    let polled = off_runtime(move || w.lock().unwrap_or_else(|p| p.into_inner()).poll()).await;
    match polled {
        Some(Ok(Some(r))) => {
            metrics
                .config_reload_errors
                .fetch_add(r.problems.len() as u64, Ordering::Relaxed);
            state
                .perimeter
                .config_clients_removed
                .fetch_add(r.removed as u64, Ordering::Relaxed);
            let (configs, egress) = (r.configs, egress.clone());
            let Some((configs, rts, problems)) = off_runtime(move || {
                let (rts, problems) = runtimes(&configs, &egress);
                (configs, rts, problems)
            })
            .await
            else {
                return;
            };
            for p in &problems {
                tracing::error!(problem = %p, "cannot build delivery client");
            }
            state.engine.configure(rts);
            tracing::info!(clients = configs.len(), "configuration reloaded");
            *state.configs.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(configs);
        }
        Some(Ok(None)) | None => {}
        Some(Err(e)) => {
            metrics.config_reload_errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "cannot read the configuration directory; keeping the current configuration");
        }
    }
}

fn cutoff(retention: Duration) -> i64 {
    store::now_ms().saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX))
}

/// Background: configuration reload, periodic pokes (re-queued dead letters), gauges, pruning.
async fn housekeeping(
    watcher: ConfigWatcher,
    state: Arc<server::AppState>,
    mut known: Vec<TargetKey>,
    h: Housekeeping,
) {
    let watcher = Arc::new(std::sync::Mutex::new(watcher));
    let (store, engine, metrics) = (&state.store, &state.engine, &state.metrics);
    let mut tick = tokio::time::interval(h.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_gauges = tokio::time::Instant::now();
    let mut last_prune: Option<tokio::time::Instant> = None;
    loop {
        tick.tick().await;
        apply_reload(&watcher, &state, &h.egress).await;
        // Pick up callbacks re-queued by `callbacks dlq replay` (and any target with rows).
        if let Ok(q) = store.queued_targets().await {
            known = q;
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
        if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            last_prune = Some(tokio::time::Instant::now());
            store.prune_events(cutoff(h.event_retention)).await;
            store.prune_dlq(cutoff(h.dlq_retention)).await;
            store
                .prune_rejects(cutoff(state.limits.reject_retention))
                .await;
            store.flush().await;
            if let Ok(n) = store.rejects_bytes().await {
                state.rejects_bytes.store(n, Ordering::Relaxed);
            }
        }
    }
}

/// How often old audit rows and rejects are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Raises the open-file limit to its hard maximum and keeps `max_connections` below it.
fn fit_connections(limits: &mut limits::Limits) {
    // SAFETY: getrlimit/setrlimit on a struct we own.
    let mut rl: libc::rlimit = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return;
    }
    if rl.rlim_cur < rl.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: rl.rlim_max,
            rlim_max: rl.rlim_max,
        };
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            rl = raised;
        }
    }
    // Descriptors for the database, the admin listener, outgoing connections and headroom.
    let room = usize::try_from(rl.rlim_cur)
        .unwrap_or(usize::MAX)
        .saturating_sub(1024)
        / 2;
    if limits.max_connections > room {
        tracing::warn!(
            requested = limits.max_connections,
            max = room,
            "--max-connections lowered to fit the open-file limit"
        );
        limits.max_connections = room.max(16);
    }
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
    let (watcher, configs) = ConfigWatcher::start(&opts.config_dir, check(egress.clone()))
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
        egress.clone(),
        opts.shutdown_grace,
    );
    let (rts, problems) = runtimes(&configs, &egress);
    if !problems.is_empty() {
        return Err(ServeError::Config {
            dir: opts.config_dir.display().to_string(),
            errors: ConfigErrors(problems),
        });
    }
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
    let listeners = [
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
    .map(|l| tokio::spawn(listen::run(l, stop.clone(), opts.shutdown_grace)));
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
