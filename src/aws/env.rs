//! The one reader of the Lambdas' environments (names as the Terraform sets them): both the
//! transform-filter and the delivery Lambda read their variables, the S3 configuration source
//! and the emulator switches through [`Env`], so a name means the same in both.

use std::time::Duration;

use super::s3_config::S3ConfigSettings;
use super::{emf, DEFAULT_CONFIG_TTL};

/// A missing or malformed setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {name}: {reason}")]
pub struct SettingsError {
    pub name: &'static str,
    pub reason: String,
}

/// Variables looked up through a function (the process environment, or a map in tests).
pub struct Env<F>(pub F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// The value, as set (possibly empty).
    pub fn raw(&self, name: &str) -> Option<String> {
        (self.0)(name)
    }

    /// The value, if set and not blank.
    pub fn get(&self, name: &str) -> Option<String> {
        self.raw(name).filter(|v| !v.trim().is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, SettingsError> {
        self.get(name).ok_or_else(|| SettingsError {
            name,
            reason: "is required".into(),
        })
    }

    /// `1` or `true` (any usual case); anything else, or unset, is false.
    pub fn flag(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|v| matches!(v.trim(), "1" | "true" | "TRUE" | "True"))
    }

    /// A whole number of seconds, `default` when unset.
    pub fn seconds(
        &self,
        name: &'static str,
        default: Duration,
    ) -> Result<Duration, SettingsError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|_| SettingsError {
                    name,
                    reason: format!("{v:?} is not a whole number of seconds"),
                }),
        }
    }

    /// `CLIENT_CONFIG_BUCKET` (required), `CLIENT_CONFIG_PREFIX` (default empty),
    /// `APPLICATION_ID_MAP_KEY` (optional), `CONFIG_CACHE_TTL_SECONDS` (default 60).
    pub fn s3_config(&self) -> Result<S3ConfigSettings, SettingsError> {
        Ok(S3ConfigSettings {
            bucket: self.required("CLIENT_CONFIG_BUCKET")?,
            prefix: self.raw("CLIENT_CONFIG_PREFIX").unwrap_or_default(),
            application_id_map_key: self.get("APPLICATION_ID_MAP_KEY"),
            ttl: self.seconds("CONFIG_CACHE_TTL_SECONDS", DEFAULT_CONFIG_TTL)?,
        })
    }

    /// `METRICS_NAMESPACE` (default [`emf::DEFAULT_NAMESPACE`]).
    pub fn metrics_namespace(&self) -> String {
        self.get("METRICS_NAMESPACE")
            .unwrap_or_else(|| emf::DEFAULT_NAMESPACE.to_string())
    }

    /// `S3_FORCE_PATH_STYLE`, or an endpoint override (`AWS_ENDPOINT_URL[_S3]`, e.g. a local S3
    /// emulator): address the bucket in the path.
    pub fn s3_force_path_style(&self) -> bool {
        self.flag("S3_FORCE_PATH_STYLE")
            || self.get("AWS_ENDPOINT_URL").is_some()
            || self.get("AWS_ENDPOINT_URL_S3").is_some()
    }
}
