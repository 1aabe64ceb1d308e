//! Client configuration from S3: one object per client (`{prefix}{clientId}.json`, the same
//! documents as the local configuration directory), cached per client with a TTL and
//! revalidated with the object's ETag (`If-None-Match`).
//!
//! - A missing object (`NoSuchKey` / 404) means the client has no subscriptions.
//! - An invalid object is logged with its reasons and the last good version stays in force
//!   (when there is none, the client has no configuration in force). Its ETag is remembered,
//!   so it is not fetched and logged again until it changes.
//! - S3 unreachable: a cached version (however old) stays in force; with nothing cached the
//!   lookup is a [`ConfigFault`] and the invocation fails (the Pipe retries the batch).
//! - The optional clientId → applicationId map object is cached the same way; when it
//!   changes, every client is re-read (its `applicationId` may come from the map).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectError;

use crate::config::{parse_application_ids, parse_client, ClientSettings, ConfigErrors};

use super::handler::{CacheUse, ConfigFault, ConfigLookup, ConfigSource};

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

/// The S3-backed, cached [`ConfigSource`].
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

    /// The lock a refresh of this client's object holds (one refresh at a time per client).
    fn client_refresh_lock(&self, client_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        Arc::clone(
            self.client_refresh
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(client_id.to_string())
                .or_default(),
        )
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn fetch(&self, key: &str, etag: Option<&str>) -> Result<Fetched, String> {
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
                    .map_err(|e| {
                        format!(
                            "s3://{}/{key}: reading the object failed: {e}",
                            self.settings.bucket
                        )
                    })?
                    .into_bytes()
                    .to_vec();
                Ok(Fetched::Object { bytes, etag })
            }
            Err(err) => classify(&err).ok_or_else(|| {
                format!(
                    "s3://{}/{key}: GetObject failed: {}",
                    self.settings.bucket,
                    DisplayErrorContext(&err)
                )
            }),
        }
    }

    /// The application id map in force and its generation.
    async fn application_ids(&self) -> Result<(Arc<HashMap<String, String>>, u64), String> {
        let Some(key) = self.settings.application_id_map_key.clone() else {
            return Ok((Arc::new(HashMap::new()), 0));
        };
        if let Some(found) = self.fresh_map() {
            return Ok(found);
        }
        let _refreshing = self.map_refresh.lock().await;
        if let Some(found) = self.fresh_map() {
            return Ok(found);
        }
        let cached = self.state().map.clone();
        let fetched = self
            .fetch(&key, cached.as_ref().and_then(|m| m.etag.as_deref()))
            .await;
        let entry = match fetched {
            Ok(fetched) => self.next_map(&key, cached, fetched)?,
            Err(reason) => match cached {
                Some(m) => {
                    tracing::warn!(key = %key, reason = %reason, "S3 unavailable; using the cached application id map");
                    return Ok((m.ids, m.generation));
                }
                None => return Err(reason),
            },
        };
        let found = (Arc::clone(&entry.ids), entry.generation);
        self.state().map = Some(entry);
        Ok(found)
    }

    /// The cached application id map and its generation, if it is within its TTL.
    fn fresh_map(&self) -> Option<(Arc<HashMap<String, String>>, u64)> {
        self.state()
            .map
            .as_ref()
            .filter(|m| m.checked.elapsed() < self.settings.ttl)
            .map(|m| (Arc::clone(&m.ids), m.generation))
    }

    /// The map entry to cache after S3 answered (`cached`: the entry cached before).
    fn next_map(
        &self,
        key: &str,
        cached: Option<MapEntry>,
        fetched: Fetched,
    ) -> Result<MapEntry, String> {
        let generation = cached.as_ref().map_or(0, |m| m.generation);
        Ok(match fetched {
            Fetched::NotModified => match cached {
                Some(m) => MapEntry {
                    checked: Instant::now(),
                    ..m
                },
                None => {
                    return Err(format!(
                        "s3://{}/{key}: 304 Not Modified without a cached copy",
                        self.settings.bucket
                    ))
                }
            },
            Fetched::Missing => {
                tracing::info!(key = %key, "no application id map object; applicationId must be in each client document");
                let changed = cached.as_ref().is_some_and(|m| !m.ids.is_empty());
                MapEntry {
                    ids: Arc::new(HashMap::new()),
                    etag: None,
                    checked: Instant::now(),
                    generation: generation + u64::from(changed || cached.is_none()),
                }
            }
            Fetched::Object { bytes, etag } => map_from_object(key, cached, &bytes, etag),
        })
    }
}

/// The map entry to cache after reading the map object: the parsed map, or (invalid) the
/// cached map kept with the new ETag, or an empty map when nothing was cached.
fn map_from_object(
    key: &str,
    cached: Option<MapEntry>,
    bytes: &[u8],
    etag: Option<String>,
) -> MapEntry {
    let generation = cached.as_ref().map_or(0, |m| m.generation);
    match parse_application_ids(key, bytes) {
        Ok(ids) => {
            tracing::info!(key = %key, clients = ids.len(), "application id map loaded");
            MapEntry {
                ids: Arc::new(ids),
                etag,
                checked: Instant::now(),
                generation: generation + 1,
            }
        }
        Err(errs) => {
            log_invalid(key, &errs, cached.is_some());
            match cached {
                Some(m) => MapEntry {
                    etag,
                    checked: Instant::now(),
                    ..m
                },
                None => MapEntry {
                    ids: Arc::new(HashMap::new()),
                    etag,
                    checked: Instant::now(),
                    generation: generation + 1,
                },
            }
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

impl ConfigSource for S3ConfigSource {
    async fn client(&self, client_id: &str) -> Result<ConfigLookup, ConfigFault> {
        let fault = |reason: String| ConfigFault {
            client_id: client_id.to_string(),
            reason,
        };
        let (ids, generation) = self.application_ids().await.map_err(fault)?;
        let fresh = |e: &ClientEntry| {
            e.map_generation == generation && e.checked.elapsed() < self.settings.ttl
        };
        let hit = |e: &ClientEntry| ConfigLookup {
            settings: e.settings.clone(),
            cache: CacheUse::Hit,
        };
        if let Some(e) = self.state().clients.get(client_id).filter(|e| fresh(e)) {
            return Ok(hit(e));
        }
        let refresh = self.client_refresh_lock(client_id);
        let _refreshing = refresh.lock().await;
        // Another lookup may have refreshed it while this one waited.
        let cached = self.state().clients.get(client_id).cloned();
        if let Some(e) = cached.as_ref().filter(|e| fresh(e)) {
            return Ok(hit(e));
        }
        let key = self.key_of(client_id);
        // After a map change the document is read again in full (no If-None-Match).
        let etag = cached
            .as_ref()
            .filter(|e| e.map_generation == generation)
            .and_then(|e| e.etag.as_deref());
        let entry = match self.fetch(&key, etag).await {
            Ok(fetched) => {
                let read = ClientRead {
                    client_id,
                    key: &key,
                    ids: &ids,
                    generation,
                };
                read.next_entry(cached, fetched).map_err(fault)?
            }
            Err(reason) => match cached {
                Some(e) => {
                    tracing::warn!(client_id = %client_id, reason = %reason, "S3 unavailable; using the cached configuration");
                    return Ok(ConfigLookup {
                        settings: e.settings,
                        cache: CacheUse::Miss,
                    });
                }
                None => return Err(fault(reason)),
            },
        };
        let settings = entry.settings.clone();
        self.state().clients.insert(client_id.to_string(), entry);
        Ok(ConfigLookup {
            settings,
            cache: CacheUse::Miss,
        })
    }
}

/// One read of a client's configuration object: what the new cache entry is compiled from.
struct ClientRead<'a> {
    client_id: &'a str,
    key: &'a str,
    ids: &'a HashMap<String, String>,
    /// The application id map generation in force.
    generation: u64,
}

impl ClientRead<'_> {
    /// The client entry to cache after S3 answered (`cached`: the entry cached before).
    fn next_entry(
        &self,
        cached: Option<ClientEntry>,
        fetched: Fetched,
    ) -> Result<ClientEntry, String> {
        let (client_id, key) = (self.client_id, self.key);
        match fetched {
            Fetched::NotModified => match cached {
                Some(e) => Ok(ClientEntry {
                    checked: Instant::now(),
                    ..e
                }),
                None => Err(format!("{key}: 304 Not Modified without a cached copy")),
            },
            Fetched::Missing => {
                if cached.as_ref().is_none_or(|e| e.settings.is_some()) {
                    tracing::info!(client_id = %client_id, key = %key, "no configuration object: client has no subscriptions");
                }
                Ok(self.entry(None, None))
            }
            Fetched::Object { bytes, etag } => Ok(match self.parse(&bytes) {
                Ok(settings) => {
                    tracing::info!(client_id = %client_id, key = %key, etag = etag.as_deref(), "configuration loaded");
                    self.entry(Some(Arc::new(settings)), etag)
                }
                Err(errs) => {
                    let last_good = cached.and_then(|e| e.settings);
                    log_invalid(key, &errs, last_good.is_some());
                    self.entry(last_good, etag)
                }
            }),
        }
    }

    /// The object's settings, which must be for this client (`/clientId`).
    fn parse(&self, bytes: &[u8]) -> Result<ClientSettings, ConfigErrors> {
        let (client_id, key) = (self.client_id, self.key);
        parse_client(key, bytes, self.ids).and_then(|s| {
            if s.client_id == client_id {
                Ok(s)
            } else {
                Err(ConfigErrors(vec![crate::config::ConfigProblem {
                    source_name: key.to_string(),
                    pointer: "/clientId".into(),
                    reason: format!(
                        "is {:?}, but the object is for client {client_id:?}",
                        s.client_id
                    ),
                }]))
            }
        })
    }

    /// A fresh entry (checked now) compiled with the map generation in force.
    fn entry(&self, settings: Option<Arc<ClientSettings>>, etag: Option<String>) -> ClientEntry {
        ClientEntry {
            settings,
            etag,
            checked: Instant::now(),
            map_generation: self.generation,
        }
    }
}
