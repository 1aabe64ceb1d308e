//! The effective delivery settings of a target: its `delivery` fields, each one left out
//! taking its `default` from the schema.

use crate::schema::types::{self, Target};

/// The effective delivery settings of a target, defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliverySettings {
    pub mode: types::DeliveryMode,
    pub max_retry_duration: std::time::Duration,
    pub initial_backoff: std::time::Duration,
    pub max_backoff: std::time::Duration,
    pub timeout: std::time::Duration,
    pub circuit_breaker: Option<CircuitSettings>,
    pub rate_limit_per_second: u32,
    /// The client certificate presented to the target (`delivery.mtls`).
    pub mtls: Option<MtlsFiles>,
}

/// Client certificate files for mutual TLS (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtlsFiles {
    pub cert_pem: std::path::PathBuf,
    pub key_pem: std::path::PathBuf,
    /// When given, only this CA bundle is trusted for the target's server certificate.
    pub ca_pem: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CircuitSettings {
    pub failure_threshold: u32,
    pub cooldown: std::time::Duration,
}

impl DeliverySettings {
    /// The settings of a target: its `delivery` fields, each absent one taking its `default`
    /// from `schemas/client-config.schema.json` (the generated `Default`).
    pub fn of(target: &Target) -> Self {
        let rate = u32::try_from(target.invocation_rate_limit.get()).unwrap_or(u32::MAX);
        Self::from_delivery(target.delivery.as_ref(), rate)
    }

    /// The schema's defaults, at `rate_limit_per_second`.
    pub fn defaults(rate_limit_per_second: u32) -> Self {
        Self::from_delivery(None, rate_limit_per_second)
    }

    fn from_delivery(delivery: Option<&types::Delivery>, rate_limit_per_second: u32) -> Self {
        use std::time::Duration;
        let default = types::Delivery::default();
        let d = delivery.unwrap_or(&default);
        let ms = |n: std::num::NonZeroU64| Duration::from_millis(n.get());
        DeliverySettings {
            mode: d.mode,
            max_retry_duration: Duration::from_secs(
                u64::try_from(d.max_retry_duration_seconds).unwrap_or(0),
            ),
            initial_backoff: ms(d.initial_backoff_ms),
            max_backoff: ms(d.max_backoff_ms),
            timeout: ms(d.timeout_ms),
            circuit_breaker: d.circuit_breaker.as_ref().filter(|c| c.enabled).map(|c| {
                CircuitSettings {
                    failure_threshold: u32::try_from(c.failure_threshold.get()).unwrap_or(u32::MAX),
                    cooldown: ms(c.cooldown_ms),
                }
            }),
            rate_limit_per_second,
            mtls: d.mtls.as_ref().map(|m| MtlsFiles {
                cert_pem: std::path::PathBuf::from(m.cert_pem_file.as_str()),
                key_pem: std::path::PathBuf::from(m.key_pem_file.as_str()),
                ca_pem: m
                    .ca_pem_file
                    .as_ref()
                    .map(|c| std::path::PathBuf::from(c.as_str())),
            }),
        }
    }
}
