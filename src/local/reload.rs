//! Configuration reload: the configuration directory is polled; a changed file is loaded and
//! checked, and replaces that client's configuration only if it is valid. An invalid file is
//! reported once (per content) and the last good configuration of its client stays in force.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::config::{self, ClientSettings, ConfigErrors, ConfigProblem, ConfigSet};

/// Extra checks a server makes on a client (endpoint scheme, mTLS files).
pub type Check = dyn Fn(&str, &ClientSettings) -> Vec<ConfigProblem> + Send + Sync;

struct FileState {
    hash: [u8; 32],
    /// The last good configuration this file gave.
    good: Option<Arc<ClientSettings>>,
}

/// Watches one configuration directory.
pub struct ConfigWatcher {
    dir: PathBuf,
    check: Arc<Check>,
    app_ids_hash: Option<[u8; 32]>,
    app_ids: HashMap<String, String>,
    files: BTreeMap<PathBuf, FileState>,
}

fn hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// What a poll found.
pub struct Reloaded {
    pub configs: ConfigSet,
    /// Problems found in changed files (already logged).
    pub problems: Vec<ConfigProblem>,
    /// Configuration files deleted since the last poll (logged); their clients are removed.
    pub removed: usize,
}

impl ConfigWatcher {
    /// Loads the directory; at start-up every file must be valid.
    pub fn start(
        dir: &Path,
        check: Arc<Check>,
    ) -> Result<(ConfigWatcher, ConfigSet), ConfigErrors> {
        let mut w = ConfigWatcher {
            dir: dir.to_path_buf(),
            check,
            app_ids_hash: None,
            app_ids: HashMap::new(),
            files: BTreeMap::new(),
        };
        match w.poll() {
            Ok(Some(r)) if r.problems.is_empty() => Ok((w, r.configs)),
            Ok(Some(r)) => Err(ConfigErrors(r.problems)),
            Ok(None) => Ok((w, ConfigSet::default())),
            Err(e) => Err(e),
        }
    }

    /// Looks for changes. `Ok(None)`: nothing changed.
    pub fn poll(&mut self) -> Result<Option<Reloaded>, ConfigErrors> {
        let mut problems = Vec::new();
        let all_changed = self.reload_application_ids(&mut problems)?;
        let paths = config::config_files(&self.dir)?;
        let removed = self.forget_removed(&paths);
        let mut changed = all_changed || removed > 0;
        for path in paths {
            changed |= self.reload_file(path, all_changed, &mut problems);
        }
        if !changed && problems.is_empty() {
            return Ok(None);
        }
        Ok(Some(Reloaded {
            configs: self.current(&mut problems),
            problems,
            removed,
        }))
    }

    /// Reads the clientId → applicationId map if it changed. `Ok(true)`: the ids in force
    /// changed (every file must be compiled again); a bad map is a problem and the ids stay.
    fn reload_application_ids(
        &mut self,
        problems: &mut Vec<ConfigProblem>,
    ) -> Result<bool, ConfigErrors> {
        let map_path = self.dir.join(config::APPLICATION_ID_MAP_FILE);
        let map_bytes = match std::fs::read(&map_path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(ConfigErrors(vec![ConfigProblem {
                    source_name: map_path.display().to_string(),
                    pointer: String::new(),
                    reason: format!("cannot read: {e}"),
                }]))
            }
        };
        let map_hash = map_bytes.as_deref().map(hash);
        if map_hash == self.app_ids_hash {
            return Ok(false);
        }
        self.app_ids_hash = map_hash;
        match map_bytes
            .as_deref()
            .map(|b| config::parse_application_ids(&map_path.display().to_string(), b))
        {
            None => {
                self.app_ids.clear();
                Ok(true)
            }
            Some(Ok(ids)) => {
                self.app_ids = ids;
                Ok(true)
            }
            Some(Err(e)) => {
                problems.extend(e.0);
                Ok(false)
            }
        }
    }

    /// Forgets (and logs) the files no longer in `paths`; returns how many.
    fn forget_removed(&mut self, paths: &[PathBuf]) -> usize {
        let mut removed = 0;
        self.files.retain(|p, f| {
            let keep = paths.contains(p);
            if !keep {
                removed += 1;
                tracing::warn!(file = %p.display(), client_id = f.good.as_ref().map(|c| c.client_id.as_str()),
                    "configuration file removed; its client is no longer configured");
            }
            keep
        });
        removed
    }

    /// Loads `path` if its content changed (or `all_changed`). Returns whether it gave a new
    /// good configuration; an invalid one is logged and added to `problems`, and the file keeps
    /// its last good configuration.
    fn reload_file(
        &mut self,
        path: PathBuf,
        all_changed: bool,
        problems: &mut Vec<ConfigProblem>,
    ) -> bool {
        let name = path.display().to_string();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                // Removed or replaced between listing and reading: look again next time.
                tracing::debug!(file = %name, error = %e, "cannot read configuration file");
                return false;
            }
        };
        let h = hash(&bytes);
        if !all_changed && self.files.get(&path).is_some_and(|f| f.hash == h) {
            return false;
        }
        let parsed = self.parse_checked(&name, &bytes);
        let prev = self.files.remove(&path).and_then(|f| f.good);
        let (good, loaded) = match parsed {
            Ok(c) => {
                tracing::info!(file = %name, client_id = %c.client_id, "configuration loaded");
                (Some(Arc::new(c)), true)
            }
            Err(e) => {
                for p in &e.0 {
                    tracing::error!(file = %name, problem = %p, client_id = prev.as_ref().map(|c| c.client_id.as_str()),
                        "invalid configuration; the last good configuration of this client stays in force");
                }
                problems.extend(e.0);
                (prev, false)
            }
        };
        self.files.insert(path, FileState { hash: h, good });
        loaded
    }

    /// One file's client, validated and compiled, then put through the server's own checks.
    fn parse_checked(&self, name: &str, bytes: &[u8]) -> Result<ClientSettings, ConfigErrors> {
        config::parse_client(name, bytes, &self.app_ids).and_then(|c| {
            let extra = (self.check)(name, &c);
            if extra.is_empty() {
                Ok(c)
            } else {
                Err(ConfigErrors(extra))
            }
        })
    }

    /// The configuration in force: the last good configuration of every file. A client
    /// configured by two files keeps the first file's (in name order).
    fn current(&self, problems: &mut Vec<ConfigProblem>) -> ConfigSet {
        let mut set = ConfigSet::default();
        let mut owner: HashMap<&str, &Path> = HashMap::new();
        for (path, f) in &self.files {
            let Some(c) = &f.good else { continue };
            if let Some(first) = owner.get(c.client_id.as_str()) {
                let p = ConfigProblem {
                    source_name: path.display().to_string(),
                    pointer: "/clientId".into(),
                    reason: format!(
                        "client {:?} is already configured in {}",
                        c.client_id,
                        first.display()
                    ),
                };
                tracing::error!(problem = %p, "duplicate client configuration ignored");
                problems.push(p);
                continue;
            }
            owner.insert(&c.client_id, path);
            set.insert(ClientSettings::clone(c));
        }
        set
    }
}

/// The server's own checks: endpoint and API-key rules ([`config::rules`]) under `policy`.
pub fn endpoint_check(
    policy: config::rules::EndpointPolicy,
) -> impl Fn(&str, &ClientSettings) -> Vec<ConfigProblem> + Send + Sync {
    move |name, client| config::rules::target_problems(name, client, policy)
}

#[cfg(test)]
mod tests;
