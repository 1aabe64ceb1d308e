//! `callbacks`: the command-line entry point. Thin: parses arguments and calls the library.

use std::io::{self, BufWriter};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: callbacks::alloc::Mimalloc = callbacks::alloc::Mimalloc;

use callbacks::config;
use callbacks::pipeline::CoreOptions;

#[cfg(feature = "local")]
#[path = "callbacks/serve.rs"]
mod serve;

#[cfg(feature = "local")]
#[path = "callbacks/receive.rs"]
mod receive;

// `callbacks dlq list|replay --sqs-queue-url`: an https-mode client DLQ on SQS.
#[cfg(all(feature = "local", feature = "aws"))]
#[path = "callbacks/dlq_sqs.rs"]
mod dlq_sqs;

// The AWS environment of `dlq --sqs-queue-url` and `replay`.
#[cfg(feature = "aws")]
#[path = "callbacks/aws_env.rs"]
mod aws_env;

// `callbacks replay`: the Callbacks Event Bus archive (AWS).
#[cfg(feature = "aws")]
#[path = "callbacks/replay.rs"]
mod replay;

#[derive(Parser)]
#[command(name = "callbacks", version, about = "NHS Notify client callbacks")]
struct Cli {
    /// Log lines on stderr: `json` (one object a line; the default) or `text` (for a terminal;
    /// the default of `serve --demo`). The level is `RUST_LOG` (default `info` for `serve`,
    /// `warn` otherwise).
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Json,
    Text,
}

#[derive(Subcommand)]
enum Command {
    /// Read newline-delimited CloudEvents on stdin; write one callback request per line on stdout.
    Transform {
        /// Directory of client configurations (one `*.json` per client).
        #[arg(long)]
        config: PathBuf,
        /// Base URL of `links.message`.
        #[arg(long, env = "MESSAGE_LINK_BASE_URL", default_value = callbacks::transform::DEFAULT_LINK_BASE)]
        link_base: String,
        /// Worker threads (default: one per core this process may use). The output is the
        /// same, line for line and in order, for any count.
        #[arg(long)]
        workers: Option<std::num::NonZeroUsize>,
    },
    /// Check every client configuration in a directory; report every problem.
    ValidateConfig {
        /// Directory of client configurations.
        dir: PathBuf,
        /// Accept `http://` endpoints, as `serve --allow-http` does.
        #[arg(long)]
        allow_http: bool,
        /// Accept non-public endpoint addresses, as `serve --allow-private-egress` does.
        #[arg(long)]
        allow_private_egress: bool,
    },
    /// Run the embedded pipeline: HTTP ingest, durable queue, delivery workers.
    #[cfg(feature = "local")]
    Serve(Box<serve::ServeArgs>),
    /// A client endpoint for development and tests: verifies and prints each callback.
    #[cfg(feature = "local")]
    Receive(receive::ReceiveArgs),
    /// Show and re-queue dead-lettered callbacks.
    #[cfg(feature = "local")]
    Dlq {
        #[command(subcommand)]
        command: serve::DlqCommand,
    },
    /// Replay the Callbacks Event Bus archive for a window, for one client (AWS).
    #[cfg(feature = "aws")]
    Replay(replay::ReplayArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `serve` tells what it does at `info`; the other commands only warn (`transform`'s stderr
    // carries its rejects).
    #[cfg(feature = "local")]
    let (serve, demo) = match &cli.command {
        Command::Serve(a) => (true, a.demo),
        _ => (false, false),
    };
    #[cfg(not(feature = "local"))]
    let (serve, demo) = (false, false);
    let default = if demo {
        LogFormat::Text
    } else {
        LogFormat::Json
    };
    init_logs(
        cli.log_format.unwrap_or(default),
        if serve { "info" } else { "warn" },
    );
    match cli.command {
        Command::Transform {
            config,
            link_base,
            workers,
        } => transform(&config, link_base, workers),
        Command::ValidateConfig {
            dir,
            allow_http,
            allow_private_egress,
        } => validate_config(
            &dir,
            config::rules::EndpointPolicy {
                allow_http,
                allow_private: allow_private_egress,
            },
        ),
        #[cfg(feature = "local")]
        Command::Serve(args) => serve::serve(*args),
        #[cfg(feature = "local")]
        Command::Receive(args) => receive::receive(args),
        #[cfg(feature = "local")]
        Command::Dlq { command } => serve::dlq(command),
        #[cfg(feature = "aws")]
        Command::Replay(args) => replay::replay(args),
    }
}

/// Exit status 0, or the error on stderr and 2 (`serve`, `receive`).
#[cfg(feature = "local")]
fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logs(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| default_level.into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
        .with_writer(io::stderr);
    match format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs.init(),
    }
}

fn transform(
    dir: &std::path::Path,
    link_base: String,
    workers: Option<std::num::NonZeroUsize>,
) -> ExitCode {
    // The one-pass reading plans compile while the configurations load (the workers wait for
    // them); both take milliseconds, and the run starts when both are ready.
    std::thread::spawn(callbacks::event::planned_types);
    let configs = match config::load_dir(dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: invalid configuration in {}: {e}", dir.display());
            return ExitCode::from(2);
        }
    };
    // Unbuffered: the stream writes whole blocks of request lines (hundreds of KiB each), which
    // a buffer would only copy.
    let stdout = io::stdout().lock();
    let stderr = BufWriter::new(io::stderr().lock());
    let opts = CoreOptions { link_base };
    let workers = workers.unwrap_or_else(callbacks::stream::default_workers);
    // Standard input as a file, so that a regular file is mapped rather than copied.
    let stdin = match io::stdin().as_fd().try_clone_to_owned() {
        Ok(fd) => std::fs::File::from(fd),
        Err(e) => {
            eprintln!("error: standard input: {e}");
            return ExitCode::FAILURE;
        }
    };
    match callbacks::stream::transform_file_with(&stdin, stdout, stderr, &configs, &opts, workers) {
        Ok(stats) => {
            tracing::info!(
                lines = stats.lines,
                events = stats.events,
                rejected = stats.rejected,
                callbacks = stats.callbacks,
                "transform finished"
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Every problem of every file: the schema and cross-references, then the endpoint and
/// API-key rules `serve` applies (the same function).
fn validate_config(dir: &std::path::Path, policy: config::rules::EndpointPolicy) -> ExitCode {
    let mut problems = match config::load_dir(dir) {
        Ok(_) => Vec::new(),
        Err(e) => e.0,
    };
    let ids = config::load_application_ids(dir).unwrap_or_default();
    let mut clients = 0;
    for path in config::config_files(dir).unwrap_or_default() {
        if let Ok(c) = config::load_file(&path, &ids) {
            clients += 1;
            problems.extend(config::rules::target_problems(
                &path.display().to_string(),
                &c,
                policy,
            ));
        }
    }
    if problems.is_empty() {
        println!(
            "{}: {clients} client configuration(s), all valid",
            dir.display()
        );
        ExitCode::SUCCESS
    } else {
        eprintln!("{}", config::ConfigErrors(problems));
        ExitCode::from(1)
    }
}
