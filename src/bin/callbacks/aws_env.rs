//! The AWS environment of the operator commands (`dlq --sqs-queue-url`, `replay`): the SDK
//! configuration (credentials, region, endpoint) and the client configuration bucket, from the
//! same variables as the Lambdas (`CLIENT_CONFIG_BUCKET`, `CLIENT_CONFIG_PREFIX`,
//! `APPLICATION_ID_MAP_KEY`, `S3_FORCE_PATH_STYLE` / `AWS_ENDPOINT_URL`).

use anyhow::Context as _;

use callbacks::aws::delivery::DeliveryLambdaSettings;
use callbacks::aws::s3_config::S3ConfigSettings;

pub async fn sdk() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}

/// The S3 client and where the client configuration objects are.
pub fn config_bucket(
    sdk: &aws_config::SdkConfig,
) -> anyhow::Result<(aws_sdk_s3::Client, S3ConfigSettings)> {
    let settings = DeliveryLambdaSettings::from_env()
        .context("the client configuration in S3 is needed (the API keys in force)")?;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(settings.s3_force_path_style)
            .build(),
    );
    Ok((s3, settings.config))
}
