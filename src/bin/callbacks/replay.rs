//! `callbacks replay`: replay the Callbacks Event Bus archive for a time window, restricted to
//! one client's (or one target's) rules (`callbacks::aws::replay::archive`).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::Args;

use callbacks::aws::replay::archive::{self, Plan, ReplayRequest, StaleConfig};

use crate::aws_env;

#[derive(Args)]
pub struct ReplayArgs {
    /// The Callbacks Event Bus (Terraform output `callbacks_event_bus_name`).
    #[arg(long, env = "CALLBACKS_EVENT_BUS_NAME")]
    bus_name: String,
    /// Its archive (Terraform output `callbacks_event_bus_archive_name`).
    #[arg(long, env = "CALLBACKS_EVENT_BUS_ARCHIVE_NAME")]
    archive_name: String,
    /// Start of the window (RFC 3339, e.g. 2026-12-01T13:00:00Z).
    #[arg(long, value_parser = parse_time)]
    from: DateTime<Utc>,
    /// End of the window (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    to: DateTime<Utc>,
    /// Only this client's callbacks (its per-target rules). Without it, every rule of the bus.
    #[arg(long)]
    client: Option<String>,
    /// Only this target of the client.
    #[arg(long, requires = "client")]
    target: Option<String>,
    /// Print the rules, the window and the configuration check; start nothing.
    #[arg(long)]
    dry_run: bool,
    /// Replay even though a configuration object changed after --from (archived events carry
    /// the signature made at the time).
    #[arg(long)]
    force: bool,
    /// Seconds between two DescribeReplay calls.
    #[arg(long, default_value_t = 5)]
    poll_interval_secs: u64,
    /// Stop waiting (the replay goes on) after this many seconds.
    #[arg(long, default_value_t = 3600)]
    max_wait_secs: u64,
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{s:?} is not an RFC 3339 time (e.g. 2026-12-01T13:00:00Z): {e}"))
}

pub fn replay(args: ReplayArgs) -> ExitCode {
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")
        .and_then(|rt| rt.block_on(run(args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn print_plan(plan: &Plan, stale: &[StaleConfig]) {
    let r = &plan.request;
    println!("bus\t{}\t{}", r.bus_name, plan.bus_arn);
    println!("archive\t{}\t{}", r.archive_name, plan.archive_arn);
    println!(
        "window\t{}\t{}",
        r.from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        r.to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    if !plan.filtered {
        println!("filter\tnone: every rule of the bus");
    }
    for rule in &plan.rules {
        println!(
            "rule\t{}\t{}\t{}\t{}",
            rule.name,
            rule.client_ids.join(","),
            rule.target_ids.join(","),
            rule.arn
        );
    }
    for s in stale {
        println!(
            "changed\t{}\t{}",
            s.key,
            s.last_modified
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
    }
}

async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let sdk = aws_env::sdk().await;
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let plan = archive::plan(
        &events,
        ReplayRequest {
            bus_name: args.bus_name,
            archive_name: args.archive_name,
            from: args.from,
            to: args.to,
            client_id: args.client,
            target_id: args.target,
        },
    )
    .await?;
    let stale = match aws_env::config_bucket(&sdk) {
        Ok((s3, settings)) => {
            archive::stale_configs(&s3, &settings, &plan.client_ids(), plan.request.from).await?
        }
        Err(e) if args.force => {
            eprintln!("warning: configuration not checked ({e:#})");
            Vec::new()
        }
        Err(e) => {
            return Err(e.context("checking that no API key changed since --from (or pass --force)"))
        }
    };
    print_plan(&plan, &stale);
    if args.dry_run {
        println!("dry run: no replay started");
        return Ok(());
    }
    if !stale.is_empty() && !args.force {
        anyhow::bail!(
            "refusing to replay: {} changed after --from. Archived events carry the signature made \
             when they were archived and API destinations send it unchanged, so if an API key was \
             rotated every replayed callback fails the client's signature check. Replay a window \
             that starts after the change, or pass --force if no key changed",
            stale
                .iter()
                .map(|s| s.key.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let name = archive::replay_name(plan.request.client_id.as_deref(), Utc::now());
    let arn = archive::start(&events, &plan, &name).await?;
    println!("started\t{name}\t{arn}");
    let end = archive::wait(
        &events,
        &name,
        Duration::from_secs(args.poll_interval_secs.max(1)),
        Duration::from_secs(args.max_wait_secs),
        |p| {
            eprintln!(
                "replay {name}: {}{}",
                p.state,
                p.last_replayed
                    .as_deref()
                    .map(|t| format!(", events up to {t} replayed"))
                    .unwrap_or_default()
            )
        },
    )
    .await?;
    println!("{}\t{name}", end.state);
    if !end.succeeded {
        anyhow::bail!(
            "replay {name} ended {}: {}",
            end.state,
            end.reason.as_deref().unwrap_or("no reason given")
        );
    }
    Ok(())
}
