//! Client configuration from S3: one object per client (`{prefix}{clientId}.json`, the same
//! documents as the local configuration directory), cached per client with a TTL and
//! revalidated with the object's ETag (`If-None-Match`).
//!
//! - A missing object (`NoSuchKey` / 404) means the client has no subscriptions.
//! - An invalid object is logged with its reasons and the last good version stays in force
//!   (when there is none, the client has no configuration in force). Its ETag is remembered,
//!   so it is not fetched and logged again until it changes.
//! - S3 unreachable: a cached version (however old) stays in force; with nothing cached the
//!   lookup is a [`ConfigFault`](super::handler::ConfigFault) and the invocation fails (the
//!   Pipe retries the batch).
//! - The optional clientId → applicationId map object is cached the same way; when it
//!   changes, every client is re-read (its `applicationId` may come from the map).
//!
//! The client objects are read in `client.rs`, the map object in `map.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::primitives::ByteStreamError;

use crate::config::{ClientSettings, ConfigErrors};

mod client;
mod map;

/// Where the configuration objects live and how long a cached one is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3ConfigSettings {
    pub bucket: String,
    /// Key prefix; an object is `{prefix}{clientId}.json`.
    pub prefix: String,
    /// Key of the clientId → applicationId map object, if any.
    pub application_id_map_key: Option<String>,
    /// How long a cached object is used without asking S3.
    pub ttl: Duration,
}

/// Why a configuration object could not be read (no usable answer from S3). The text is the
/// `reason` logged and carried in a [`ConfigFault`](super::handler::ConfigFault).
#[derive(Debug, thiserror::Error)]
enum S3ConfigError {
    #[error("s3://{bucket}/{key}: GetObject failed: {}", DisplayErrorContext(.source.as_ref()))]
    GetObject {
        bucket: String,
        key: String,
        source: Box<SdkError<GetObjectError, aws_sdk_s3::config::http::HttpResponse>>,
    },
    #[error("s3://{bucket}/{key}: reading the object failed: {source}")]
    ReadBody {
        bucket: String,
        key: String,
        source: ByteStreamError,
    },
    /// `object` is how the caller names the object (the key, or its `s3://` address).
    #[error("{object}: 304 Not Modified without a cached copy")]
    NotModifiedUncached { object: String },
}

/// The result of one conditional GET.
#[derive(Debug)]
enum Fetched {
    Object {
        bytes: Vec<u8>,
        etag: Option<String>,
    },
    NotModified,
    Missing,
}

#[derive(Debug, Clone)]
struct ClientEntry {
    /// The configuration in force (`None`: no configuration).
    settings: Option<Arc<ClientSettings>>,
    /// The ETag of the object last seen (valid or not).
    etag: Option<String>,
    checked: Instant,
    /// The application id map generation the settings were compiled with.
    map_generation: u64,
}

#[derive(Debug, Clone)]
struct MapEntry {
    ids: Arc<HashMap<String, String>>,
    etag: Option<String>,
    checked: Instant,
    generation: u64,
}

#[derive(Debug, Default)]
struct State {
    clients: HashMap<String, ClientEntry>,
    map: Option<MapEntry>,
}

/// The S3-backed, cached [`ConfigSource`](super::handler::ConfigSource).
#[derive(Debug)]
pub struct S3ConfigSource {
    s3: aws_sdk_s3::Client,
    settings: S3ConfigSettings,
    state: Mutex<State>,
    /// Serializes refreshes of the application id map.
    map_refresh: tokio::sync::Mutex<()>,
    /// One refresh at a time per client: lookups of a stale client made while its object is
    /// being read wait for that read instead of each going to S3 (a cold start's first batch).
    client_refresh: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl S3ConfigSource {
    pub fn new(s3: aws_sdk_s3::Client, settings: S3ConfigSettings) -> Self {
        S3ConfigSource {
            s3,
            settings,
            state: Mutex::new(State::default()),
            map_refresh: tokio::sync::Mutex::new(()),
            client_refresh: Mutex::new(HashMap::new()),
        }
    }

    /// The object key of a client's configuration.
    pub fn key_of(&self, client_id: &str) -> String {
        format!("{}{client_id}.json", self.settings.prefix)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn fetch(&self, key: &str, etag: Option<&str>) -> Result<Fetched, S3ConfigError> {
        let mut req = self.s3.get_object().bucket(&self.settings.bucket).key(key);
        if let Some(tag) = etag {
            req = req.if_none_match(tag);
        }
        match req.send().await {
            Ok(out) => {
                let etag = out.e_tag().map(str::to_owned);
                let bytes = out
                    .body
                    .collect()
                    .await
                    .map_err(|source| S3ConfigError::ReadBody {
                        bucket: self.settings.bucket.clone(),
                        key: key.to_string(),
                        source,
                    })?
                    .into_bytes()
                    .to_vec();
                Ok(Fetched::Object { bytes, etag })
            }
            Err(err) => classify(&err).ok_or_else(|| S3ConfigError::GetObject {
                bucket: self.settings.bucket.clone(),
                key: key.to_string(),
                source: Box::new(err),
            }),
        }
    }
}

/// Which GetObject errors are answers rather than faults: `NoSuchKey` (the object is missing)
/// and 304 (not modified). Everything else, `NoSuchBucket` and `AccessDenied` included, is a
/// fault.
fn classify(
    err: &SdkError<GetObjectError, aws_sdk_s3::config::http::HttpResponse>,
) -> Option<Fetched> {
    if err
        .as_service_error()
        .is_some_and(GetObjectError::is_no_such_key)
    {
        return Some(Fetched::Missing);
    }
    match err.raw_response().map(|r| r.status().as_u16()) {
        Some(304) => Some(Fetched::NotModified),
        _ => None,
    }
}

fn log_invalid(key: &str, errs: &ConfigErrors, keeping_last_good: bool) {
    // `ConfigProblem`s never carry secret values (see config.rs).
    let problems: Vec<String> = errs.0.iter().map(ToString::to_string).collect();
    tracing::error!(
        key = %key,
        problems = ?problems,
        keeping_last_good,
        "invalid configuration object ignored"
    );
}
