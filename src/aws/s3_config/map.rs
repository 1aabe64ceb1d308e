//! The clientId → applicationId map object: cached with a TTL, revalidated by ETag; a new
//! generation whenever its content changes (every client is then re-read).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::config::parse_application_ids;

use super::{log_invalid, Fetched, MapEntry, S3ConfigError, S3ConfigSource};

impl S3ConfigSource {
    /// The application id map in force and its generation.
    pub(super) async fn application_ids(
        &self,
    ) -> Result<(Arc<HashMap<String, String>>, u64), S3ConfigError> {
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
    ) -> Result<MapEntry, S3ConfigError> {
        let generation = cached.as_ref().map_or(0, |m| m.generation);
        Ok(match fetched {
            Fetched::NotModified => match cached {
                Some(m) => MapEntry {
                    checked: Instant::now(),
                    ..m
                },
                None => {
                    return Err(S3ConfigError::NotModifiedUncached {
                        object: format!("s3://{}/{key}", self.settings.bucket),
                    })
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
