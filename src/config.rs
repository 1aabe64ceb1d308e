//! Client subscription configuration: load, validate (schema and cross-references) and compile
//! into the form the filter uses.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

use crate::schema::types::{ClientConfig, NonEmptyString, Subscription, Target};
use crate::schema::{FieldError, Schemas};

mod delivery;
mod dir;
pub mod rules;

pub use delivery::{CircuitSettings, DeliverySettings, MtlsFiles};
pub use dir::{config_files, load_application_ids, load_dir, load_file};

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
    let application_id =
        resolve_application_id(source_name, &doc, &client_id, application_ids, &mut errs);
    let target_index = index_targets(source_name, &doc.targets, &mut errs);
    let subscriptions =
        compile_subscriptions(source_name, &doc.subscriptions, &target_index, &mut errs);
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

/// The document's `applicationId`, else the map's entry for the client; a problem when neither has one.
fn resolve_application_id(
    source_name: &str,
    doc: &ClientConfig,
    client_id: &str,
    application_ids: &HashMap<String, String>,
    errs: &mut Vec<ConfigProblem>,
) -> String {
    match (&doc.application_id, application_ids.get(client_id)) {
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
    }
}

/// Each targetId's index in `targets`; reports duplicate ids and inverted backoff bounds.
fn index_targets<'a>(
    source_name: &str,
    targets: &'a [Target],
    errs: &mut Vec<ConfigProblem>,
) -> HashMap<&'a str, usize> {
    let mut target_index: HashMap<&str, usize> = HashMap::new();
    for (i, t) in targets.iter().enumerate() {
        if target_index.insert(t.target_id.as_str(), i).is_some() {
            errs.push(problem(
                source_name,
                format!("/targets/{i}/targetId"),
                format!("duplicate targetId {:?}", *t.target_id),
            ));
        }
        if let Some(d) = &t.delivery {
            // Effective values: a field left out has its schema `default`.
            if d.initial_backoff_ms > d.max_backoff_ms {
                errs.push(problem(
                    source_name,
                    format!("/targets/{i}/delivery/initialBackoffMs"),
                    "is greater than maxBackoffMs",
                ));
            }
        }
    }
    target_index
}

/// Compiles every subscription; reports duplicate subscriptionIds.
fn compile_subscriptions(
    source_name: &str,
    subscriptions: &[Subscription],
    target_index: &HashMap<&str, usize>,
    errs: &mut Vec<ConfigProblem>,
) -> Vec<CompiledSubscription> {
    let mut seen_subs = HashSet::new();
    let mut compiled = Vec::with_capacity(subscriptions.len());
    for (i, s) in subscriptions.iter().enumerate() {
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
        let targets = resolve_targets(source_name, i, target_ids, target_index, errs);
        compiled.push(compile_subscription(s, id, targets));
    }
    compiled
}

/// Subscription `i`'s targetIds as target indexes (each once, in order); reports unknown ids.
fn resolve_targets(
    source_name: &str,
    i: usize,
    target_ids: &[NonEmptyString],
    target_index: &HashMap<&str, usize>,
    errs: &mut Vec<ConfigProblem>,
) -> Vec<usize> {
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
    targets
}

/// One subscription with its statuses folded to lower case.
fn compile_subscription(s: &Subscription, id: &str, targets: Vec<usize>) -> CompiledSubscription {
    match s {
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
    }
}

#[cfg(test)]
mod tests;
