//! AWS adapters: the transform-filter Lambda (EventBridge Pipe enrichment).
//!
//! - [`handler`]: the enrichment handler, a plain async function over a [`handler::ConfigSource`]
//!   and a [`handler::RejectSink`];
//! - [`s3_config`]: client configuration from S3, cached with a TTL and ETag revalidation;
//! - [`rejects`]: the rejected-events SQS queue;
//! - [`emf`]: CloudWatch Embedded Metric Format lines;
//! - [`env`]: the Lambdas' environment reader (one for both);
//! - [`init_error`]: init-phase failures reported to the Runtime API;
//! - [`delivery`]: the delivery Lambda (https delivery mode), `src/bin/delivery_lambda.rs`;
//! - [`replay`]: `callbacks dlq replay` of API-destination dead letters and `callbacks replay`
//!   of the bus archive (operator commands of the `callbacks` binary).
//!
//! The binary is `src/bin/transform_filter_lambda.rs` (`bootstrap` once packaged by
//! `scripts/build-lambda.sh`).

pub mod delivery;
pub mod emf;
pub mod env;
pub mod handler;
pub mod init_error;
pub mod rejects;
pub mod replay;
pub mod s3_config;

use std::time::Duration;

use crate::transform::DEFAULT_LINK_BASE;

pub use env::{Env, SettingsError};

/// The Lambda binaries' logging: JSON lines on stdout (`RUST_LOG`, default `info`); every line
/// carries the invocation span (`requestId`) and event lines their `event_id` / `message_id`.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stdout)
        .init();
}

/// The default configuration cache TTL.
pub const DEFAULT_CONFIG_TTL: Duration = Duration::from_secs(60);

/// The Lambda's settings, from its environment (names as the Terraform sets them).
#[derive(Debug, Clone, PartialEq)]
pub struct LambdaSettings {
    /// `CLIENT_CONFIG_BUCKET` (required).
    pub config_bucket: String,
    /// `CLIENT_CONFIG_PREFIX` (default empty); objects are `{prefix}{clientId}.json`.
    pub config_prefix: String,
    /// `APPLICATION_ID_MAP_KEY` (optional): key of the clientId → applicationId map object.
    pub application_id_map_key: Option<String>,
    /// `CONFIG_CACHE_TTL_SECONDS` (default 60).
    pub config_ttl: Duration,
    /// `REJECTED_EVENTS_QUEUE_URL` (required).
    pub rejected_queue_url: String,
    /// `MESSAGE_LINK_BASE_URL` (default the production NHS Notify API base).
    pub link_base: String,
    /// `METRICS_NAMESPACE` (default [`emf::DEFAULT_NAMESPACE`]).
    pub metrics_namespace: String,
    /// `AWS_LAMBDA_FUNCTION_NAME` (set by Lambda), the metrics dimension.
    pub function_name: String,
    /// `S3_FORCE_PATH_STYLE=true`, or an endpoint override (`AWS_ENDPOINT_URL[_S3]`, e.g. a
    /// local S3 emulator): address the bucket in the path.
    pub s3_force_path_style: bool,
}

impl LambdaSettings {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `var` (for tests).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let env = Env(var);
        let config = env.s3_config()?;
        Ok(LambdaSettings {
            config_bucket: config.bucket,
            config_prefix: config.prefix,
            application_id_map_key: config.application_id_map_key,
            config_ttl: config.ttl,
            rejected_queue_url: env.required("REJECTED_EVENTS_QUEUE_URL")?,
            link_base: env
                .get("MESSAGE_LINK_BASE_URL")
                .unwrap_or_else(|| DEFAULT_LINK_BASE.to_string()),
            metrics_namespace: env.metrics_namespace(),
            function_name: env
                .get("AWS_LAMBDA_FUNCTION_NAME")
                .unwrap_or_else(|| "transform-filter".to_string()),
            s3_force_path_style: env.s3_force_path_style(),
        })
    }

    /// The S3 cache settings.
    pub fn s3_config(&self) -> s3_config::S3ConfigSettings {
        s3_config::S3ConfigSettings {
            bucket: self.config_bucket.clone(),
            prefix: self.config_prefix.clone(),
            application_id_map_key: self.application_id_map_key.clone(),
            ttl: self.config_ttl,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<LambdaSettings, SettingsError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LambdaSettings::from_lookup(|k| env.get(k).cloned())
    }

    #[test]
    fn settings_come_from_the_terraform_variable_names_with_defaults() {
        let s = settings(&[
            ("CLIENT_CONFIG_BUCKET", "b"),
            ("REJECTED_EVENTS_QUEUE_URL", "https://q"),
        ])
        .expect("ok");
        assert_eq!(s.config_bucket, "b");
        assert_eq!(s.config_prefix, "");
        assert_eq!(s.config_ttl, Duration::from_secs(60));
        assert_eq!(s.link_base, DEFAULT_LINK_BASE);
        assert!(!s.s3_force_path_style);
        let s = settings(&[
            ("CLIENT_CONFIG_BUCKET", "b"),
            ("CLIENT_CONFIG_PREFIX", "clients/"),
            ("REJECTED_EVENTS_QUEUE_URL", "https://q"),
            ("CONFIG_CACHE_TTL_SECONDS", "5"),
            ("APPLICATION_ID_MAP_KEY", "application-ids.json"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ])
        .expect("ok");
        assert_eq!(s.config_ttl, Duration::from_secs(5));
        assert_eq!(s.s3_config().prefix, "clients/");
        assert_eq!(
            s.application_id_map_key.as_deref(),
            Some("application-ids.json")
        );
        assert!(s.s3_force_path_style);
    }

    #[test]
    fn missing_or_malformed_settings_are_named() {
        let e = settings(&[("REJECTED_EVENTS_QUEUE_URL", "q")]).expect_err("no bucket");
        assert_eq!(e.name, "CLIENT_CONFIG_BUCKET");
        let e = settings(&[
            ("CLIENT_CONFIG_BUCKET", "b"),
            ("REJECTED_EVENTS_QUEUE_URL", "q"),
            ("CONFIG_CACHE_TTL_SECONDS", "x"),
        ])
        .expect_err("bad ttl");
        assert_eq!(e.name, "CONFIG_CACHE_TTL_SECONDS");
    }
}
