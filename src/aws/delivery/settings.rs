//! The delivery Lambda's settings, read from its environment.

use super::ConcurrencyCap;
use crate::aws;

/// The delivery Lambda's settings, from its environment (names as the Terraform sets them).
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryLambdaSettings {
    /// `CLIENT_CONFIG_BUCKET`, `CLIENT_CONFIG_PREFIX`, `APPLICATION_ID_MAP_KEY`,
    /// `CONFIG_CACHE_TTL_SECONDS`: as for the transform-filter Lambda.
    pub config: aws::s3_config::S3ConfigSettings,
    /// `METRICS_NAMESPACE`.
    pub metrics_namespace: String,
    /// `DELIVERY_STATE_TABLE` (optional): the DynamoDB table that shares circuit breaker state
    /// and attempt histories between invocations. Without it, both live per execution
    /// environment.
    pub state_table: Option<String>,
    /// `EXTRA_CA_BUNDLE_FILE` (optional): a PEM bundle trusted in addition to the system roots.
    pub extra_ca_file: Option<std::path::PathBuf>,
    /// `ALLOW_PRIVATE_EGRESS` (`true`; tests on loopback only): endpoints on loopback,
    /// private and other non-public addresses are connected to (the egress guard).
    pub allow_private_egress: bool,
    /// `CLIENT_MAX_CONCURRENCY` (optional): the event source mappings' `maximum_concurrency`
    /// when it is not the Terraform formula.
    pub concurrency: ConcurrencyCap,
    /// `S3_FORCE_PATH_STYLE` or an endpoint override.
    pub s3_force_path_style: bool,
    /// `AWS_ENDPOINT_URL_SQS` / `AWS_ENDPOINT_URL` (tests against an emulator): queue URLs are
    /// built on this base instead of `https://sqs.<region>.amazonaws.com`.
    pub sqs_url_base: Option<String>,
}

impl DeliveryLambdaSettings {
    pub fn from_env() -> Result<Self, aws::SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, aws::SettingsError> {
        let env = aws::Env(var);
        let concurrency = match env.get("CLIENT_MAX_CONCURRENCY") {
            None => ConcurrencyCap::Terraform,
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) if n >= 1 => ConcurrencyCap::Fixed(n),
                _ => {
                    return Err(aws::SettingsError {
                        name: "CLIENT_MAX_CONCURRENCY",
                        reason: format!("{v:?} is not a positive whole number"),
                    })
                }
            },
        };
        let endpoint = env
            .get("AWS_ENDPOINT_URL_SQS")
            .or_else(|| env.get("AWS_ENDPOINT_URL"));
        Ok(DeliveryLambdaSettings {
            config: env.s3_config()?,
            metrics_namespace: env.metrics_namespace(),
            state_table: env.get("DELIVERY_STATE_TABLE"),
            extra_ca_file: env
                .get("EXTRA_CA_BUNDLE_FILE")
                .map(std::path::PathBuf::from),
            allow_private_egress: env.flag("ALLOW_PRIVATE_EGRESS"),
            concurrency,
            s3_force_path_style: env.s3_force_path_style(),
            sqs_url_base: endpoint.map(|e| e.trim_end_matches('/').to_string()),
        })
    }
}
