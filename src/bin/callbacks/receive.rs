//! `callbacks receive`: argument parsing and output around `callbacks::local::receive`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use callbacks::local::receive::script::ScriptOptions;
use callbacks::local::receive::{ReceiveOptions, Receiver, Sink};

#[derive(Args)]
pub struct ReceiveArgs {
    /// Directory of client configurations whose targets this endpoint plays.
    #[arg(long)]
    config: PathBuf,
    /// Address to listen on (port 0 picks a free port; the address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// One JSON object per callback instead of a readable line (for scripts).
    #[arg(long)]
    json: bool,
    /// Answer the first N callbacks that pass the checks with --status (default 500), then 202.
    #[arg(long, value_name = "N")]
    fail_first: Option<u64>,
    /// The status of scripted failures; without --fail-first, every callback gets it.
    #[arg(long, value_name = "CODE", value_parser = clap::value_parser!(u16).range(200..=599))]
    status: Option<u16>,
    /// Send `Retry-After: S` with every scripted failure (negative: "stop retrying").
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    retry_after: Option<i64>,
}

impl ReceiveArgs {
    fn options(&self) -> ReceiveOptions {
        let mut opts = ReceiveOptions::new(self.config.clone(), self.listen);
        opts.script = ScriptOptions {
            fail_first: self.fail_first,
            status: self.status,
            retry_after: self.retry_after,
        };
        opts
    }
}

/// Prints each callback's line on stdout, flushed (readable or JSON).
pub fn stdout_sink(json: bool) -> Sink {
    Arc::new(move |line| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", line.render(json));
        let _ = out.flush();
    })
}

fn run(args: ReceiveArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async {
        let receiver = Receiver::bind(args.options(), stdout_sink(args.json)).await?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "listening on http://{}", receiver.addr)?;
            if !args.json {
                for t in receiver.targets() {
                    writeln!(out, "  target {t}")?;
                }
            }
            out.flush()?;
        }
        receiver.serve(callbacks::local::shutdown_signal()).await?;
        anyhow::Ok(())
    })
}

pub fn receive(args: ReceiveArgs) -> ExitCode {
    crate::exit_code(run(args))
}
