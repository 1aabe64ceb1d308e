//! The options of `callbacks serve`, the errors it stops with, and the checks made of the
//! options before anything starts (perimeter, open-file limit).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::config::ConfigErrors;
use crate::deliver::Egress;
use crate::pipeline::CoreOptions;

use super::{auth, limits, store, tls};

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
    pub(super) fn egress(&self) -> Egress {
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
    pub(super) fn check_perimeter(&self) -> Result<(), ServeError> {
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
    #[error("loading the configuration stopped: {0}")]
    ConfigLoad(#[from] tokio::task::JoinError),
}

/// Raises the open-file limit to its hard maximum and keeps `max_connections` below it.
pub(super) fn fit_connections(limits: &mut limits::Limits) {
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
