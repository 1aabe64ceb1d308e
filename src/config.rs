//! Client subscription configuration: load, validate (schema and cross-references) and compile
//! into the form the filter uses.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::schema::types::{self, ClientConfig, Subscription, Target};
use crate::schema::{FieldError, Schemas};

pub mod rules;

/// The name of the optional clientId → applicationId map file inside a configuration directory.
pub const APPLICATION_ID_MAP_FILE: &str = "application-ids.json";

/// One problem in one configuration source. Never carries secret values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {pointer}: {reason}", pointer = if .pointer.is_empty() { "/" } else { .pointer })]
pub struct ConfigProblem {
    /// The file (or S3 key) the problem is in.
    pub source_name: String,
    /// A JSON pointer into that document.
    pub pointer: String,
    pub reason: String,
}

/// Every problem found while loading configuration.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} configuration problem(s):\n{}", .0.len(), .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigProblem>);

/// A compiled subscription: its statuses folded to lower case for case-insensitive matching.
#[derive(Debug, Clone)]
pub enum CompiledSubscription {
    MessageStatus {
        id: String,
        statuses: Vec<String>,
        targets: Vec<usize>,
    },
    ChannelStatus {
        id: String,
        channel_type: String,
        channel_statuses: Vec<String>,
        supplier_statuses: Vec<String>,
        targets: Vec<usize>,
    },
}

impl CompiledSubscription {
    pub fn id(&self) -> &str {
        match self {
            Self::MessageStatus { id, .. } | Self::ChannelStatus { id, .. } => id,
        }
    }
    pub fn targets(&self) -> &[usize] {
        match self {
            Self::MessageStatus { targets, .. } | Self::ChannelStatus { targets, .. } => targets,
        }
    }
}

/// One client's configuration, ready for the filter.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub client_id: String,
    pub application_id: String,
    pub subscriptions: Vec<CompiledSubscription>,
    /// The targets, in configuration order; subscriptions refer to them by index.
    pub targets: Vec<Target>,
    /// The document as written (for `dlq`/diagnostics; Debug never shows API keys).
    pub document: ClientConfig,
}

/// The configuration of every client, by clientId.
#[derive(Debug, Clone, Default)]
pub struct ConfigSet {
    clients: HashMap<String, Arc<ClientSettings>>,
}

impl ConfigSet {
    pub fn get(&self, client_id: &str) -> Option<&Arc<ClientSettings>> {
        self.clients.get(client_id)
    }
    pub fn insert(&mut self, client: ClientSettings) {
        self.clients
            .insert(client.client_id.clone(), Arc::new(client));
    }
    pub fn len(&self) -> usize {
        self.clients.len()
    }
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
    pub fn clients(&self) -> impl Iterator<Item = &Arc<ClientSettings>> {
        self.clients.values()
    }
}

fn problem(
    source_name: &str,
    pointer: impl Into<String>,
    reason: impl Into<String>,
) -> ConfigProblem {
    ConfigProblem {
        source_name: source_name.to_string(),
        pointer: pointer.into(),
        reason: reason.into(),
    }
}

/// Parses a clientId → applicationId map document.
pub fn parse_application_ids(
    source_name: &str,
    bytes: &[u8],
) -> Result<HashMap<String, String>, ConfigErrors> {
    let map: BTreeMap<String, Value> = serde_json::from_slice(bytes).map_err(|e| {
        ConfigErrors(vec![problem(
            source_name,
            "",
            format!("not a JSON object of strings: {e}"),
        )])
    })?;
    let mut out = HashMap::new();
    let mut errs = Vec::new();
    for (client, app) in map {
        match app.as_str() {
            Some(a) if !a.is_empty() => {
                out.insert(client, a.to_string());
            }
            _ => errs.push(problem(
                source_name,
                format!("/{client}"),
                "must be a non-empty string (the application id)",
            )),
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(ConfigErrors(errs))
    }
}

/// Parses, validates and compiles one client configuration document. Every problem in the
/// document is reported. `application_ids` supplies `applicationId` when the document has none.
pub fn parse_client(
    source_name: &str,
    bytes: &[u8],
    application_ids: &HashMap<String, String>,
) -> Result<ClientSettings, ConfigErrors> {
    let mut value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ConfigErrors(vec![problem(
            source_name,
            "",
            format!("not valid JSON: {e}"),
        )])
    })?;
    // Status and channel-type values in any case read as the schema's spelling (input rule 3).
    Schemas::get().normalise_client_config(&mut value);
    if let Err(errs) = Schemas::get().validate_client_config(&value) {
        return Err(ConfigErrors(
            errs.into_iter()
                .map(|FieldError { pointer, reason }| problem(source_name, pointer, reason))
                .collect(),
        ));
    }
    let doc: ClientConfig = serde_json::from_value(value).map_err(|e| {
        ConfigErrors(vec![problem(
            source_name,
            "",
            format!("does not match the generated type: {e}"),
        )])
    })?;
    compile(source_name, doc, application_ids)
}

fn lower(v: &impl std::fmt::Display) -> String {
    v.to_string().to_ascii_lowercase()
}

fn compile(
    source_name: &str,
    doc: ClientConfig,
    application_ids: &HashMap<String, String>,
) -> Result<ClientSettings, ConfigErrors> {
    let mut errs = Vec::new();
    let client_id = doc.client_id.to_string();
    let application_id = match (&doc.application_id, application_ids.get(&client_id)) {
        (Some(a), _) => a.to_string(),
        (None, Some(a)) => a.clone(),
        (None, None) => {
            errs.push(problem(
                source_name,
                "/applicationId",
                format!("is missing and {APPLICATION_ID_MAP_FILE} has no entry for client {client_id:?}"),
            ));
            String::new()
        }
    };

    let mut target_index: HashMap<&str, usize> = HashMap::new();
    for (i, t) in doc.targets.iter().enumerate() {
        if target_index.insert(t.target_id.as_str(), i).is_some() {
            errs.push(problem(
                source_name,
                format!("/targets/{i}/targetId"),
                format!("duplicate targetId {:?}", *t.target_id),
            ));
        }
        if let Some(d) = &t.delivery {
            // Effective values: a field left out has its schema `default`.
            let (lo, hi) = (d.initial_backoff_ms, d.max_backoff_ms);
            {
                if lo > hi {
                    errs.push(problem(
                        source_name,
                        format!("/targets/{i}/delivery/initialBackoffMs"),
                        "is greater than maxBackoffMs",
                    ));
                }
            }
        }
    }

    let mut seen_subs = HashSet::new();
    let mut subscriptions = Vec::with_capacity(doc.subscriptions.len());
    for (i, s) in doc.subscriptions.iter().enumerate() {
        let (id, target_ids) = match s {
            Subscription::MessageStatusSubscription(m) => {
                (m.subscription_id.as_str(), &m.target_ids)
            }
            Subscription::ChannelStatusSubscription(c) => {
                (c.subscription_id.as_str(), &c.target_ids)
            }
        };
        if !seen_subs.insert(id) {
            errs.push(problem(
                source_name,
                format!("/subscriptions/{i}/subscriptionId"),
                format!("duplicate subscriptionId {id:?}"),
            ));
        }
        let mut targets = Vec::new();
        for (j, t) in target_ids.iter().enumerate() {
            match target_index.get(t.as_str()) {
                Some(&idx) if !targets.contains(&idx) => targets.push(idx),
                Some(_) => {}
                None => errs.push(problem(
                    source_name,
                    format!("/subscriptions/{i}/targetIds/{j}"),
                    format!("names target {:?}, which is not in targets", t.as_str()),
                )),
            }
        }
        subscriptions.push(match s {
            Subscription::MessageStatusSubscription(m) => CompiledSubscription::MessageStatus {
                id: id.to_string(),
                statuses: m.message_statuses.iter().map(lower).collect(),
                targets,
            },
            Subscription::ChannelStatusSubscription(c) => CompiledSubscription::ChannelStatus {
                id: id.to_string(),
                channel_type: lower(&c.channel_type),
                channel_statuses: c.channel_statuses.iter().map(lower).collect(),
                supplier_statuses: c.supplier_statuses.iter().map(lower).collect(),
                targets,
            },
        });
    }
    if !errs.is_empty() {
        return Err(ConfigErrors(errs));
    }
    Ok(ClientSettings {
        client_id,
        application_id,
        subscriptions,
        targets: doc.targets.clone(),
        document: doc,
    })
}

/// The client configuration files of a directory: every `*.json` except the application id map.
pub fn config_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigErrors> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        ConfigErrors(vec![problem(
            &dir.display().to_string(),
            "",
            format!("cannot read directory: {e}"),
        )])
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && p.file_name().is_some_and(|n| n != APPLICATION_ID_MAP_FILE)
                && p.is_file()
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Reads the application id map of a directory, if there is one.
pub fn load_application_ids(dir: &Path) -> Result<HashMap<String, String>, ConfigErrors> {
    let path = dir.join(APPLICATION_ID_MAP_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => parse_application_ids(&path.display().to_string(), &bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashMap::new()),
        Err(e) => Err(ConfigErrors(vec![problem(
            &path.display().to_string(),
            "",
            format!("cannot read: {e}"),
        )])),
    }
}

/// Loads one configuration file.
pub fn load_file(
    path: &Path,
    application_ids: &HashMap<String, String>,
) -> Result<ClientSettings, ConfigErrors> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path)
        .map_err(|e| ConfigErrors(vec![problem(&name, "", format!("cannot read: {e}"))]))?;
    parse_client(&name, &bytes, application_ids)
}

/// Loads every client configuration in a directory, reporting every problem in every file.
pub fn load_dir(dir: &Path) -> Result<ConfigSet, ConfigErrors> {
    let mut errs = Vec::new();
    let application_ids = load_application_ids(dir).unwrap_or_else(|e| {
        errs.extend(e.0);
        HashMap::new()
    });
    let mut set = ConfigSet::default();
    let mut owner: HashMap<String, PathBuf> = HashMap::new();
    for path in config_files(dir)? {
        match load_file(&path, &application_ids) {
            Ok(client) => {
                if let Some(first) = owner.get(&client.client_id) {
                    errs.push(problem(
                        &path.display().to_string(),
                        "/clientId",
                        format!(
                            "client {:?} is already configured in {}",
                            client.client_id,
                            first.display()
                        ),
                    ));
                    continue;
                }
                owner.insert(client.client_id.clone(), path.clone());
                set.insert(client);
            }
            Err(e) => errs.extend(e.0),
        }
    }
    if errs.is_empty() {
        Ok(set)
    } else {
        Err(ConfigErrors(errs))
    }
}

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
