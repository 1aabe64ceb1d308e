//! `callbacks serve` and `callbacks dlq`: argument parsing and exit codes around
//! `callbacks::local`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};

use callbacks::local::auth::IngestAuth;
use callbacks::local::limits::Limits;
use callbacks::local::tls::TlsFiles;
use callbacks::local::{self, dlq, ServeOptions};
use callbacks::pipeline::CoreOptions;

#[derive(Args)]
pub struct ServeArgs {
    /// Directory of client configurations (one `*.json` per client); reloaded on change.
    /// With --demo, `examples/config` unless given.
    #[arg(long, required_unless_present = "demo")]
    config: Option<PathBuf>,
    /// Directory for the queue database (created, mode 0700). With --demo, a fresh temporary
    /// directory (removed at exit) unless given.
    #[arg(long, required_unless_present = "demo")]
    data_dir: Option<PathBuf>,
    /// The quick start: play every local target's endpoint in this process (`callbacks
    /// receive`), post the events of --demo-events, print what the endpoints verified, keep
    /// running. Implies --allow-http and text logs.
    #[arg(long)]
    pub demo: bool,
    /// With --demo: the directory of CloudEvents (`*.json`) posted at start.
    #[arg(long, default_value = "examples/events", requires = "demo")]
    demo_events: PathBuf,
    /// Address to listen on (port 0 picks a free port; the address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Allow `http://` endpoints (local development and tests only).
    #[arg(long)]
    allow_http: bool,
    /// Allow endpoints on loopback, private, link-local and other non-public addresses
    /// (local development and tests only).
    #[arg(long)]
    allow_private_egress: bool,
    /// Answer this host name with this address instead of DNS, as `curl --resolve`
    /// (repeatable; `NAME=IP`). The egress guard still checks the address.
    #[arg(long, value_name = "NAME=IP", value_parser = parse_pin)]
    resolve: Vec<(String, std::net::IpAddr)>,
    /// Base URL of `links.message`.
    #[arg(long, env = "MESSAGE_LINK_BASE_URL", default_value = callbacks::transform::DEFAULT_LINK_BASE)]
    link_base: String,
    /// How often the configuration directory is checked for changes, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    reload_interval_ms: u64,
    /// At shutdown, how long requests in flight may take to finish, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    shutdown_grace_ms: u64,
    /// How long the audit rows of accepted events are kept, in hours.
    #[arg(long, default_value_t = 24)]
    event_retention_hours: u64,
    /// How long dead letters are kept, in hours (default one week).
    #[arg(long, default_value_t = 168)]
    dlq_retention_hours: u64,
    #[command(flatten)]
    perimeter: PerimeterArgs,
}

/// Who may post events, and every bound a request meets (README "Running serve safely").
#[derive(Args)]
struct PerimeterArgs {
    /// Address of the admin listener (`/metrics`, `/healthz`, `/readyz`); never the ingest port.
    #[arg(long, default_value = "127.0.0.1:8081")]
    admin_listen: SocketAddr,
    /// Bearer tokens accepted on `POST /events`, one a line (two during a rotation).
    #[arg(long)]
    ingest_token_file: Option<PathBuf>,
    /// When set, the `Host` header of ingest requests must equal this.
    #[arg(long)]
    expected_host: Option<String>,
    /// TLS certificate chain (PEM) of the ingest listener; with --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) of the ingest listener.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require client certificates issued by this CA (PEM); needs --tls-cert.
    #[arg(long, requires = "tls_cert")]
    client_ca: Option<PathBuf>,
    /// Listen on a non-loopback address without a token or client certificates.
    #[arg(long)]
    insecure_listen: bool,
    /// Open ingest connections at most.
    #[arg(long, default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// Time to send a request head, and the longest idle time between requests, in ms.
    #[arg(long, default_value_t = 10_000)]
    header_timeout_ms: u64,
    /// Time for a request body to arrive, in ms (also the longest wait for a processing slot).
    #[arg(long, default_value_t = 30_000)]
    body_timeout_ms: u64,
    /// Ingest requests processed at once.
    #[arg(long, default_value_t = Limits::default().max_concurrent_ingest)]
    max_concurrent_ingest: usize,
    /// The largest batch body, in bytes.
    #[arg(long, default_value_t = Limits::default().max_batch_body)]
    max_batch_bytes: usize,
    /// The most events in one batch.
    #[arg(long, default_value_t = Limits::default().max_batch_events)]
    max_batch_events: usize,
    /// Bytes of a rejected event kept in the rejects table.
    #[arg(long, default_value_t = Limits::default().reject_max_bytes)]
    reject_max_bytes: usize,
    /// Total size of the rejects table, in MiB; beyond it rejects are counted and logged only.
    #[arg(long, default_value_t = Limits::default().reject_max_total >> 20)]
    reject_max_total_mb: u64,
    /// How long rejected events are kept, in hours.
    #[arg(long, default_value_t = Limits::default().reject_retention.as_secs() / 3600)]
    reject_retention_hours: u64,
    /// Free space kept on the data directory's file system, in MiB: below it ingest answers
    /// 503 (Retry-After) and /readyz fails.
    #[arg(long, default_value_t = Limits::default().min_free_disk >> 20)]
    min_free_disk_mb: u64,
}

impl PerimeterArgs {
    fn apply(self, opts: &mut ServeOptions) -> anyhow::Result<()> {
        let tokens = match &self.ingest_token_file {
            Some(f) => IngestAuth::from_token_file(f)?,
            None => Vec::new(),
        };
        opts.auth = IngestAuth::new(tokens, self.expected_host);
        opts.admin_listen = self.admin_listen;
        opts.insecure_listen = self.insecure_listen;
        opts.tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert,
                key,
                client_ca: self.client_ca,
            }),
            _ => None,
        };
        let defaults = Limits::default();
        opts.limits = Limits {
            max_connections: self.max_connections.max(1),
            header_timeout: Duration::from_millis(self.header_timeout_ms.max(1)),
            body_timeout: Duration::from_millis(self.body_timeout_ms.max(1)),
            max_concurrent_ingest: self.max_concurrent_ingest.max(1),
            max_batch_body: self.max_batch_bytes,
            max_batch_events: self.max_batch_events.max(1),
            reject_max_bytes: self.reject_max_bytes,
            reject_max_total: self.reject_max_total_mb.saturating_mul(1 << 20),
            reject_retention: Duration::from_secs(self.reject_retention_hours.saturating_mul(3600)),
            min_free_disk: self.min_free_disk_mb.saturating_mul(1 << 20),
            ..defaults
        };
        Ok(())
    }
}

/// Where the dead letters are: a `callbacks serve` data directory, or (AWS) an SQS DLQ.
#[derive(Args)]
pub struct DlqSource {
    #[cfg_attr(not(feature = "aws"), arg(long, required = true))]
    #[cfg_attr(
        feature = "aws",
        arg(
            long,
            required_unless_present = "sqs_queue_url",
            conflicts_with = "sqs_queue_url"
        )
    )]
    pub data_dir: Option<PathBuf>,
    /// An https-mode client DLQ on SQS instead of a data directory (AWS).
    #[cfg(feature = "aws")]
    #[arg(long)]
    pub sqs_queue_url: Option<String>,
}

#[derive(Subcommand)]
pub enum DlqCommand {
    /// List dead-lettered callbacks: one line each (id, client, target, messageId, attempts,
    /// last outcome), or JSON with the full attempt history.
    List {
        #[command(flatten)]
        source: DlqSource,
        /// Only this client's dead letters.
        #[arg(long)]
        client: Option<String>,
        /// JSON output (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Re-queue dead-lettered callbacks (all, one client's, or one entry).
    Replay {
        #[command(flatten)]
        source: DlqSource,
        #[arg(long)]
        client: Option<String>,
        /// The id of one entry (from `dlq list`).
        #[arg(long)]
        id: Option<i64>,
        /// With --sqs-queue-url: the SQS message id of one entry (from `dlq list`).
        #[cfg(feature = "aws")]
        #[arg(long, requires = "sqs_queue_url")]
        sqs_message_id: Option<String>,
        /// With --sqs-queue-url: the queue to put entries back on (default: the entry's
        /// sourceQueueUrl attribute, else the DLQ URL without its `-dlq` suffix).
        #[cfg(feature = "aws")]
        #[arg(long, requires = "sqs_queue_url")]
        to_queue_url: Option<String>,
        #[cfg(feature = "aws")]
        #[command(flatten)]
        bus: crate::dlq_sqs::BusArgs,
    },
}

/// Prints one line on stdout, flushed.
fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// `--demo`'s temporary data directory, removed when dropped.
struct DemoDataDir(PathBuf);

impl Drop for DemoDataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `NAME=IP` of `--resolve`.
fn parse_pin(s: &str) -> Result<(String, std::net::IpAddr), String> {
    let (name, ip) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not NAME=IP"))?;
    let ip = ip
        .parse()
        .map_err(|_| format!("{ip:?} is not an IP address"))?;
    if name.is_empty() {
        return Err(format!("{s:?} has no host name"));
    }
    Ok((name.to_string(), ip))
}

fn run_serve(args: ServeArgs) -> anyhow::Result<()> {
    let config_dir = args
        .config
        .unwrap_or_else(|| PathBuf::from("examples/config"));
    let (data_dir, _demo_dir) = match args.data_dir {
        Some(d) => (d, None),
        None => {
            let d = std::env::temp_dir().join(format!("callbacks-demo-{}", std::process::id()));
            (d.clone(), Some(DemoDataDir(d)))
        }
    };
    let temporary = _demo_dir.is_some();
    let mut opts = ServeOptions::new(config_dir.clone(), data_dir.clone());
    opts.listen = args.listen;
    opts.allow_http = args.allow_http || args.demo;
    opts.allow_private_egress = args.allow_private_egress || args.demo;
    opts.resolve = args.resolve;
    opts.core = CoreOptions {
        link_base: args.link_base,
    };
    opts.reload_interval = Duration::from_millis(args.reload_interval_ms.max(50));
    opts.shutdown_grace = Duration::from_millis(args.shutdown_grace_ms);
    opts.event_retention = Duration::from_secs(args.event_retention_hours.saturating_mul(3600));
    opts.dlq_retention = Duration::from_secs(args.dlq_retention_hours.saturating_mul(3600));
    args.perimeter.apply(&mut opts)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async {
        let demo = if args.demo {
            let d = local::demo::Demo::start(&config_dir, std::sync::Arc::new(say))
                .await
                .context("--demo: cannot start the client endpoint")?;
            Some(d)
        } else {
            None
        };
        local::serve(opts, move |bound| {
            let scheme = if bound.tls { "https" } else { "http" };
            say(format!("listening on {scheme}://{}", bound.ingest));
            say(format!("admin on http://{}", bound.admin));
            if let Some(demo) = demo {
                let removed = if temporary { " (removed at exit)" } else { "" };
                say(format!(
                    "demo: data directory {}{removed}",
                    data_dir.display()
                ));
                tokio::spawn(demo.post_events(bound.ingest, args.demo_events));
            }
        })
        .await?;
        anyhow::Ok(())
    })
}

pub fn serve(args: ServeArgs) -> ExitCode {
    crate::exit_code(run_serve(args))
}

pub fn dlq(command: DlqCommand) -> ExitCode {
    #[cfg(feature = "aws")]
    if let Some(code) = crate::dlq_sqs::dispatch(&command) {
        return code;
    }
    let result = match command {
        DlqCommand::List {
            source:
                DlqSource {
                    data_dir: Some(data_dir),
                    ..
                },
            client,
            json,
            ..
        } => {
            let mut out = std::io::stdout().lock();
            dlq::list(&data_dir, client.as_deref(), json, &mut out).map(|_| ())
        }
        DlqCommand::Replay {
            source:
                DlqSource {
                    data_dir: Some(data_dir),
                    ..
                },
            client,
            id,
            ..
        } => dlq::replay(&data_dir, client.as_deref(), id).map(|n| {
            println!("re-queued {n} callback(s)");
        }),
        _ => {
            eprintln!("error: --data-dir is required");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
