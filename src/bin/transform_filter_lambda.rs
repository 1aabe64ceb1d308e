//! The transform-filter Lambda (`bootstrap` on `provided.al2023`): the EventBridge Pipe's
//! enrichment step. Input: the Pipe's batch of SQS records; output: one Callbacks-bus event
//! `detail` per signed callback. See `callbacks::aws` for the behaviour.

use std::sync::Arc;

use anyhow::Context as _;
use aws_config::BehaviorVersion;
use lambda_runtime::{service_fn, LambdaEvent};

use callbacks::aws::handler::{self, CallbackDetail, SqsRecord};
use callbacks::aws::rejects::SqsRejects;
use callbacks::aws::s3_config::S3ConfigSource;
use callbacks::aws::LambdaSettings;
use callbacks::pipeline::CoreOptions;
use callbacks::schema::Schemas;

#[global_allocator]
static GLOBAL: callbacks::alloc::Mimalloc = callbacks::alloc::Mimalloc;

struct App {
    configs: Arc<S3ConfigSource>,
    rejects: SqsRejects,
    opts: CoreOptions,
    settings: LambdaSettings,
}

async fn invoke(
    app: &App,
    event: LambdaEvent<Vec<SqsRecord>>,
) -> Result<Vec<CallbackDetail>, lambda_runtime::Error> {
    let result = handler::handle(event.payload, &app.configs, &app.rejects, &app.opts).await;
    match result {
        Ok(batch) => {
            let m = &batch.metrics;
            tracing::info!(
                events_in = m.events_in,
                rejected = m.rejected,
                filtered_out = m.filtered_out,
                callbacks_out = m.callbacks_out,
                config_cache_hits = m.config_cache_hits,
                config_cache_misses = m.config_cache_misses,
                duration_ms = m.duration.as_secs_f64() * 1000.0,
                "batch processed"
            );
            m.emit(&app.settings.metrics_namespace, &app.settings.function_name);
            Ok(batch.output)
        }
        Err(e) => {
            tracing::error!(error = %e, "batch failed; the Pipe will retry it");
            Err(e.into())
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    callbacks::aws::init_logging();
    let settings = callbacks::aws::init_error::reported(LambdaSettings::from_env()).await?;
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(settings.s3_force_path_style)
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    // Compile the schema validators and the one-pass reading plans during the init phase.
    Schemas::get().ready();
    let _ = callbacks::event::planned_types();
    let app = Arc::new(App {
        configs: Arc::new(S3ConfigSource::new(s3, settings.s3_config())),
        rejects: SqsRejects::new(sqs, settings.rejected_queue_url.clone()),
        opts: CoreOptions {
            link_base: settings.link_base.clone(),
        },
        settings,
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Vec<SqsRecord>>| {
        let app = Arc::clone(&app);
        async move { invoke(&app, event).await }
    }))
    .await
    .map_err(|e| anyhow::anyhow!(e))
    .context("the Lambda runtime stopped")
}
