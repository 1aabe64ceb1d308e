//! Every resource an ingest request can consume, bounded. Each limit has a flag of
//! `callbacks serve` (README "Running serve safely" lists them).

use std::time::Duration;

/// The bounds of the ingest and admin listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Open ingest connections; beyond it a new connection is closed at once (`--max-connections`).
    pub max_connections: usize,
    /// Time a connection may take to send a complete request head, and to stay idle between
    /// requests (`--header-timeout-ms`; slowloris and idle connections are closed after it).
    pub header_timeout: Duration,
    /// Time a request body may take to arrive (`--body-timeout-ms`; then `408`).
    pub body_timeout: Duration,
    /// Ingest requests processed at once (`--max-concurrent-ingest`); others wait up to
    /// `body_timeout` for their turn, then get `503` with `Retry-After`.
    pub max_concurrent_ingest: usize,
    /// The largest body of a single event (`application/cloudevents+json`; `413` beyond).
    pub max_event_body: usize,
    /// The largest body of a batch (`application/cloudevents-batch+json` or a JSON array;
    /// `--max-batch-bytes`; `413` beyond).
    pub max_batch_body: usize,
    /// The most events in one batch (`--max-batch-events`; `413` beyond).
    pub max_batch_events: usize,
    /// Rejected events described in one answer; the rest are counted (`rejectedCount`).
    pub max_answer_rejects: usize,
    /// Queued callbacks listed (with their ids) in one answer; the rest are counted
    /// (`callbacks`).
    pub max_answer_callbacks: usize,
    /// Bytes of a rejected event kept in the rejects table (`--reject-max-bytes`).
    pub reject_max_bytes: usize,
    /// Total bytes of rejected events kept (`--reject-max-total-mb`); beyond it rejects are
    /// counted (`callbacks_rejects_not_stored_total`) and logged, not stored.
    pub reject_max_total: u64,
    /// How long rejected events are kept (`--reject-retention-hours`).
    pub reject_retention: Duration,
    /// Free space the data directory's file system keeps (`--min-free-disk-mb`): below it
    /// ingest answers `503` with `Retry-After` and `/readyz` fails, so deletes and checkpoints
    /// always have room.
    pub min_free_disk: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024 * 8,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_concurrent_ingest: 4,
            max_event_body: crate::event::MAX_EVENT_BYTES,
            max_batch_body: 16 * 1024 * 1024,
            max_batch_events: 10_000,
            max_answer_rejects: 100,
            max_answer_callbacks: 1000,
            reject_max_bytes: 16 * 1024,
            reject_max_total: 256 * 1024 * 1024,
            reject_retention: Duration::from_secs(7 * 24 * 3600),
            min_free_disk: 256 * 1024 * 1024,
        }
    }
}

/// Connections the admin listener keeps open at once.
pub const ADMIN_MAX_CONNECTIONS: usize = 64;
/// The largest request head accepted (hyper's read buffer; larger heads get `431`/close).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// `Retry-After` (seconds) of a `503` answered for lack of room or capacity.
pub const RETRY_AFTER_SECS: u64 = 5;

/// What the perimeter refused or shed, for `/metrics`.
#[derive(Debug, Default)]
pub struct PerimeterMetrics {
    pub unauthorized: std::sync::atomic::AtomicU64,
    pub connections_refused: std::sync::Arc<std::sync::atomic::AtomicU64>,
    pub busy: std::sync::atomic::AtomicU64,
    pub disk_low: std::sync::atomic::AtomicU64,
    pub too_large: std::sync::atomic::AtomicU64,
    pub rejects_not_stored: std::sync::atomic::AtomicU64,
    pub config_clients_removed: std::sync::atomic::AtomicU64,
}

impl PerimeterMetrics {
    /// Appends the Prometheus text of these counters.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        use std::sync::atomic::Ordering::Relaxed;
        let rows: [(&str, &str, u64); 7] = [
            (
                "callbacks_ingest_unauthorized_total",
                "Ingest requests refused for a missing or wrong token or Host.",
                self.unauthorized.load(Relaxed),
            ),
            (
                "callbacks_connections_refused_total",
                "Ingest connections closed at once: the connection limit was reached.",
                self.connections_refused.load(Relaxed),
            ),
            (
                "callbacks_ingest_busy_total",
                "Ingest requests answered 503: no processing slot within the body timeout.",
                self.busy.load(Relaxed),
            ),
            (
                "callbacks_ingest_disk_low_total",
                "Ingest requests answered 503: free disk space below the floor.",
                self.disk_low.load(Relaxed),
            ),
            (
                "callbacks_ingest_too_large_total",
                "Ingest requests answered 413.",
                self.too_large.load(Relaxed),
            ),
            (
                "callbacks_rejects_not_stored_total",
                "Rejected events counted and logged but not stored (reject storage full).",
                self.rejects_not_stored.load(Relaxed),
            ),
            (
                "callbacks_config_clients_removed_total",
                "Clients removed because their configuration file was deleted.",
                self.config_clients_removed.load(Relaxed),
            ),
        ];
        for (name, help, v) in rows {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        }
    }
}
