//! The delivery Lambda (`bootstrap` on `provided.al2023`): consumes a client's https-mode
//! queue (SQS event source mapping with `ReportBatchItemFailures`) and delivers each callback
//! with the engine of `callbacks serve`. See `callbacks::aws::delivery` for the behaviour.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use anyhow::Context as _;
use aws_config::BehaviorVersion;
use lambda_runtime::{service_fn, LambdaEvent};

use callbacks::aws::delivery::sender::HttpSenders;
use callbacks::aws::delivery::sqs::SqsQueue;
use callbacks::aws::delivery::state::{DynamoState, LocalState};
use callbacks::aws::delivery::{
    BatchResponse, Delivery, DeliveryLambdaSettings, DeliveryOptions, DeliveryState, SqsEvent,
};
use callbacks::aws::emf;
use callbacks::aws::s3_config::S3ConfigSource;

#[global_allocator]
static GLOBAL: callbacks::alloc::Mimalloc = callbacks::alloc::Mimalloc;

/// Converts the runtime's wall-clock deadline into an [`Instant`].
fn deadline_of(ctx: &lambda_runtime::Context) -> Option<Instant> {
    let left = ctx.deadline().duration_since(SystemTime::now()).ok()?;
    Some(Instant::now() + left)
}

async fn run<D: DeliveryState>(
    app: Arc<Delivery<SqsQueue, HttpSenders, S3ConfigSource, D>>,
    namespace: String,
) -> anyhow::Result<()> {
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let app = Arc::clone(&app);
        let namespace = namespace.clone();
        async move {
            let deadline = deadline_of(&event.context);
            let result = app.handle(event.payload.records, deadline).await;
            emf::write_lines(result.to_emf(&namespace, emf::now_ms()));
            tracing::info!(
                messages = result.fates.len(),
                failures = result.response.batch_item_failures.len(),
                duration_ms = result.duration.as_secs_f64() * 1000.0,
                "batch processed"
            );
            Ok::<BatchResponse, lambda_runtime::Error>(result.response)
        }
    }))
    .await
    .map_err(|e| anyhow::anyhow!(e))
    .context("the Lambda runtime stopped")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    callbacks::aws::init_logging();
    let settings = callbacks::aws::init_error::reported(DeliveryLambdaSettings::from_env()).await?;
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(settings.s3_force_path_style)
            .build(),
    );
    let queue = SqsQueue::new(
        aws_sdk_sqs::Client::new(&sdk),
        settings.sqs_url_base.clone(),
    );
    let configs = Arc::new(S3ConfigSource::new(s3, settings.config.clone()));
    let senders = HttpSenders::new(
        settings.extra_ca_file.clone(),
        settings.allow_private_egress,
    );
    let options = DeliveryOptions {
        concurrency: settings.concurrency,
    };
    let namespace = settings.metrics_namespace.clone();
    match &settings.state_table {
        Some(table) => {
            let state = DynamoState::new(aws_sdk_dynamodb::Client::new(&sdk), table.clone());
            let app = Arc::new(Delivery::new(queue, senders, configs, state, options));
            run(app, namespace).await
        }
        None => {
            let app = Arc::new(Delivery::new(
                queue,
                senders,
                configs,
                LocalState::new(),
                options,
            ));
            run(app, namespace).await
        }
    }
}
