//! `callbacks dlq list|replay --sqs-queue-url URL`: the same commands on a client DLQ on SQS
//! (credentials and region from the usual AWS environment / profile): an https-mode DLQ, whose
//! entries go back to the client queue, or an API-destination DLQ, whose entries go back on the
//! Callbacks Event Bus, re-signed with the API key in force.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use callbacks::aws::delivery::dlq::{self, SqsDlqError};
use callbacks::aws::replay::dead_letters::{self, Bus};
use callbacks::aws::s3_config::S3ConfigSource;
use callbacks::deliver::listing;

use crate::aws_env;
use crate::serve::{DlqCommand, DlqSource};

/// Where API-destination dead letters are put back.
#[derive(Args)]
pub struct BusArgs {
    /// With --sqs-queue-url: the Callbacks Event Bus that API-destination dead letters are put
    /// back on (re-signed with the key in force: CLIENT_CONFIG_BUCKET must be set).
    #[arg(long, env = "CALLBACKS_EVENT_BUS_NAME")]
    pub bus_name: Option<String>,
}

/// Runs the command when it names an SQS queue; `None` when it is for a data directory.
pub fn dispatch(command: &DlqCommand) -> Option<ExitCode> {
    let result = match command {
        DlqCommand::List {
            source:
                DlqSource {
                    sqs_queue_url: Some(url),
                    ..
                },
            client,
            json,
            ..
        } => run(list(url, client.as_deref(), *json)),
        DlqCommand::Replay {
            source:
                DlqSource {
                    sqs_queue_url: Some(url),
                    ..
                },
            client,
            sqs_message_id,
            to_queue_url,
            bus,
            ..
        } => run(replay(
            url,
            client.as_deref(),
            sqs_message_id.as_deref(),
            to_queue_url.as_deref(),
            bus.bus_name.as_deref(),
        )),
        _ => return None,
    };
    Some(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    })
}

fn run(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?
        .block_on(fut)
}

async fn client() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&aws_env::sdk().await)
}

async fn list(url: &str, client_id: Option<&str>, json: bool) -> anyhow::Result<()> {
    let entries = dlq::list(&client().await, url, client_id).await?;
    let mut out = std::io::stdout().lock();
    listing::write(&mut out, entries.iter().map(|e| &e.record), json)?;
    Ok(())
}

async fn replay(
    url: &str,
    client_id: Option<&str>,
    id: Option<&str>,
    to: Option<&str>,
    bus_name: Option<&str>,
) -> anyhow::Result<()> {
    let sdk = aws_env::sdk().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (events, configs) = match bus_name {
        Some(_) => {
            let (s3, settings) = aws_env::config_bucket(&sdk)?;
            (
                Some(aws_sdk_eventbridge::Client::new(&sdk)),
                Some(S3ConfigSource::new(s3, settings)),
            )
        }
        None => (None, None),
    };
    let bus = match (&events, &configs, bus_name) {
        (Some(events), Some(configs), Some(name)) => Some(Bus {
            events,
            name,
            configs,
        }),
        _ => None,
    };
    let to_bus = dead_letters::replay(&sqs, url, client_id, id, bus.as_ref())
        .await
        .context("API-destination dead letters")?;
    if to_bus.matched > 0 {
        println!(
            "put {} callback(s) back on the Callbacks Event Bus {} ({} with a signature from a key rotated since)",
            to_bus.replayed,
            bus_name.unwrap_or_default(),
            to_bus.resigned_with_new_key
        );
        for r in &to_bus.refused {
            println!("not replayed {}: {}", r.sqs_message_id, r.reason);
        }
    }
    if !(id.is_some() && to_bus.matched > 0) {
        match dlq::replay(&sqs, url, client_id, id, to).await {
            Ok(n) if n > 0 || to_bus.matched == 0 => println!("re-queued {n} callback(s)"),
            Ok(_) => {}
            Err(SqsDlqError::NothingMatched) if to_bus.matched > 0 => {}
            Err(e) => return Err(e.into()),
        }
    }
    if !to_bus.refused.is_empty() {
        anyhow::bail!(
            "{} dead letter(s) were not replayed and stay on the DLQ",
            to_bus.refused.len()
        );
    }
    Ok(())
}
