//! `callbacks dlq list|replay --sqs-queue-url URL`: the same commands on an https-mode client
//! DLQ on SQS (credentials and region from the usual AWS environment / profile).

use std::process::ExitCode;

use anyhow::Context as _;

use callbacks::aws::delivery::dlq;
use callbacks::deliver::listing;

use crate::serve::{DlqCommand, DlqSource};

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
            ..
        } => run(replay(
            url,
            client.as_deref(),
            sqs_message_id.as_deref(),
            to_queue_url.as_deref(),
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
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    aws_sdk_sqs::Client::new(&sdk)
}

async fn list(url: &str, client_id: Option<&str>, json: bool) -> anyhow::Result<()> {
    let entries = dlq::list(&client().await, url, client_id).await?;
    let mut out = std::io::stdout().lock();
    listing::write(&mut out, &entries, json, |e: &dlq::SqsDlqEntry| {
        listing::Line {
            id: e.id.as_str().into(),
            client_id: &e.client_id,
            target_id: &e.target_id,
            message_id: &e.message_id,
            attempts: e.attempts,
            last_outcome: e.last_outcome.as_str().into(),
            dead_at: &e.dead_at,
            reason: &e.reason,
        }
    })?;
    Ok(())
}

async fn replay(
    url: &str,
    client_id: Option<&str>,
    id: Option<&str>,
    to: Option<&str>,
) -> anyhow::Result<()> {
    let n = dlq::replay(&client().await, url, client_id, id, to).await?;
    println!("re-queued {n} callback(s)");
    Ok(())
}
