//! One client's configuration object: cached with a TTL, revalidated by ETag, read again in
//! full after the application id map changes; one refresh at a time per client.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::aws::handler::{CacheUse, ConfigFault, ConfigLookup, ConfigSource};
use crate::config::{parse_client, ClientSettings, ConfigErrors};

use super::{log_invalid, ClientEntry, Fetched, S3ConfigError, S3ConfigSource};

impl ConfigSource for S3ConfigSource {
    async fn client(&self, client_id: &str) -> Result<ConfigLookup, ConfigFault> {
        let fault = |reason: S3ConfigError| ConfigFault {
            client_id: client_id.to_string(),
            reason: reason.to_string(),
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

impl S3ConfigSource {
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
    ) -> Result<ClientEntry, S3ConfigError> {
        let (client_id, key) = (self.client_id, self.key);
        match fetched {
            Fetched::NotModified => match cached {
                Some(e) => Ok(ClientEntry {
                    checked: Instant::now(),
                    ..e
                }),
                None => Err(S3ConfigError::NotModifiedUncached {
                    object: key.to_string(),
                }),
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
