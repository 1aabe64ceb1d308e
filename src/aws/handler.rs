//! The EventBridge Pipe enrichment handler: a batch of SQS records in, one Callbacks-bus event
//! `detail` per signed callback out.
//!
//! A plain async function over a [`ConfigSource`] (client configuration) and a [`RejectSink`]
//! (the rejected-events queue), so it runs without the Lambda runtime, S3 or SQS in tests.
//!
//! Failure policy: an event that fails parsing or validation goes to the reject sink with its
//! reason and the rest of the batch proceeds. Only infrastructure faults (configuration
//! unavailable with nothing cached, the reject sink failing) fail the invocation; the Pipe then
//! retries the whole batch and, in the end, the source queue's DLQ keeps it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use crate::config::ClientSettings;
use crate::event::{EventError, InboundEvent, Rejected};
use crate::pipeline::{self, CoreOptions, ProcessError};
use crate::schema::FieldError;
use crate::sign::SigningKey;
use crate::transform::{self, Payload};

use super::emf::InvocationMetrics;

mod parallel;
mod records;

pub use records::SqsRecord;
use records::{parse_record, reject_record, Accepted, Parsed};

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

/// The callback payload inside an output element: its compact serialization
/// ([`crate::transform::body`]), the exact bytes every route's signature was computed over,
/// written into the output as the JSON object it is (not serialized again). The details of one
/// event share it.
#[derive(Debug, Clone)]
pub struct SharedPayload(Arc<RawValue>);

impl SharedPayload {
    /// The payload's body, serialized once ([`transform::body_raw`]).
    pub fn of(payload: &Payload) -> SharedPayload {
        SharedPayload(Arc::from(transform::body_raw(payload)))
    }

    /// The payload's body: the bytes that were signed.
    pub fn body(&self) -> &str {
        self.0.get()
    }
}

impl Serialize for SharedPayload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// One element of the handler's output: the `detail` of one event on the Callbacks bus
/// (docs/CONTRACTS.md, "Callbacks Event Bus event"). Field order is the contract's.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackDetail {
    pub client_id: String,
    pub target_id: String,
    pub subscription_ids: Vec<String>,
    /// The `x-hmac-sha256-signature` header value (an API Destination reads it with
    /// `$.detail.signature`).
    pub signature: String,
    /// The request body (an API Destination sends it with `InputPath = $.detail.payload`).
    pub payload: SharedPayload,
    pub event_id: String,
    pub message_id: String,
    pub traceparent: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------------------------

/// How a configuration lookup was served (for the cache metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// Served from the cache without calling the store.
    Hit,
    /// The store was asked (first load, expired entry, or revalidation).
    Miss,
}

/// The configuration in force for one client.
#[derive(Debug, Clone)]
pub struct ConfigLookup {
    /// `None`: the client has no configuration (no subscriptions).
    pub settings: Option<Arc<ClientSettings>>,
    pub cache: CacheUse,
}

/// Configuration could not be obtained and nothing usable is cached: an infrastructure fault.
#[derive(Debug, Clone, thiserror::Error)]
#[error("configuration of client {client_id:?} is unavailable: {reason}")]
pub struct ConfigFault {
    pub client_id: String,
    pub reason: String,
}

/// Where client configurations come from (S3 in the Lambda; a map in tests).
pub trait ConfigSource: Send + Sync + 'static {
    fn client(
        &self,
        client_id: &str,
    ) -> impl Future<Output = Result<ConfigLookup, ConfigFault>> + Send;
}

/// An event that was not accepted, with the reason, as sent to the rejected-events queue.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectedRecord {
    pub reason: String,
    /// The violated fields (JSON pointers into the CloudEvent).
    pub fields: Vec<FieldError>,
    pub event_id: Option<String>,
    pub message_id: Option<String>,
    /// The SQS message id of the record in the Pipe's source queue.
    pub sqs_message_id: Option<String>,
    /// The record body as received (a client event carries no secrets).
    pub body: String,
    /// Set when `body` was cut to fit one SQS message.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub body_truncated: bool,
}

/// The rejected-events queue could not take the rejects: an infrastructure fault.
#[derive(Debug, Clone, thiserror::Error)]
#[error("rejected-events queue: {0}")]
pub struct RejectFault(pub String);

/// Where rejected events go (SQS in the Lambda; a vector in tests).
pub trait RejectSink: Send + Sync {
    fn send(
        &self,
        rejects: &[RejectedRecord],
    ) -> impl Future<Output = Result<(), RejectFault>> + Send;
}

/// Why an invocation failed (the Pipe retries the whole batch).
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(transparent)]
    Config(#[from] ConfigFault),
    #[error(transparent)]
    Rejects(#[from] RejectFault),
}

// ---------------------------------------------------------------------------------------------
// The handler
// ---------------------------------------------------------------------------------------------

/// What one invocation produced.
#[derive(Debug)]
pub struct BatchResult {
    pub output: Vec<CallbackDetail>,
    pub metrics: InvocationMetrics,
}

/// What one accepted event produced.
enum Built {
    /// No configuration for the client, or no subscription matched.
    FilteredOut,
    Details(Vec<CallbackDetail>),
    Rejected(RejectedRecord),
}

/// A client's configuration with its targets' signing keys, keyed once per batch (as
/// `callbacks transform` keys them once per run): signing a callback then hashes the body and
/// one outer block, not the key's pad blocks again.
struct Client {
    settings: Arc<ClientSettings>,
    /// By target index.
    keys: Vec<SigningKey>,
}

impl Client {
    fn new(settings: Arc<ClientSettings>) -> Client {
        let keys = settings
            .targets
            .iter()
            .map(|t| SigningKey::new(&settings.application_id, pipeline::target_api_key(t)))
            .collect();
        Client { settings, keys }
    }
}

type Clients = HashMap<String, Option<Client>>;

/// Filters, transforms and signs one accepted event.
fn build(a: Accepted, clients: &Clients, opts: &CoreOptions) -> Built {
    let ev = &a.event;
    let Some(client) = clients.get(ev.client_id()).and_then(Option::as_ref) else {
        tracing::debug!(
            event_id = ev.id(),
            message_id = ev.message_id(),
            client_id = ev.client_id(),
            "no configuration for client"
        );
        return Built::FilteredOut;
    };
    match details_for(ev, client, opts) {
        Ok(details) if details.is_empty() => {
            tracing::debug!(
                event_id = ev.id(),
                message_id = ev.message_id(),
                "no subscription matched"
            );
            Built::FilteredOut
        }
        Ok(details) => {
            tracing::debug!(
                event_id = ev.id(),
                message_id = ev.message_id(),
                callbacks = details.len(),
                "callbacks built"
            );
            Built::Details(details)
        }
        Err(reason) => {
            tracing::error!(event_id = ev.id(), message_id = ev.message_id(), reason = %reason, "event rejected");
            let r = Rejected {
                event_id: Some(ev.id().to_string()),
                error: EventError::Invalid(vec![FieldError {
                    pointer: String::new(),
                    reason,
                }]),
            };
            Built::Rejected(reject_record(
                &r,
                a.sqs_message_id,
                Some(ev.message_id().to_string()),
                a.body.into_string(),
            ))
        }
    }
}

/// Handles one enrichment batch. Parsing and building run on every core the environment has
/// ([`parallel`]); the output keeps the batch order.
pub async fn handle<C: ConfigSource, R: RejectSink>(
    records: Vec<SqsRecord>,
    configs: &Arc<C>,
    rejects: &R,
    opts: &CoreOptions,
) -> Result<BatchResult, HandlerError> {
    let started = Instant::now();
    let mut metrics = InvocationMetrics {
        events_in: records.len() as u64,
        ..Default::default()
    };
    let threads = parallel::threads_for(records.len());
    let mut rejected: Vec<RejectedRecord> = Vec::new();
    let mut accepted: Vec<Accepted> = Vec::with_capacity(records.len());

    // 1. Parse and validate every record.
    for parsed in parallel::map_in_order(records, threads, parse_record) {
        match parsed {
            Parsed::Accepted(a) => accepted.push(a),
            Parsed::Rejected(r) => rejected.push(r),
        }
    }

    // 2. The configuration of every client in the batch, fetched concurrently.
    let clients: Clients = lookup_clients(&accepted, configs, &mut metrics)
        .await?
        .into_iter()
        .map(|(id, settings)| (id, settings.map(Client::new)))
        .collect();

    // 3. Filter, transform, sign.
    let mut output = Vec::with_capacity(accepted.len());
    for built in parallel::map_in_order(accepted, threads, |a| build(a, &clients, opts)) {
        match built {
            Built::FilteredOut => metrics.filtered_out += 1,
            Built::Details(details) => {
                metrics.callbacks_out += details.len() as u64;
                output.extend(details);
            }
            Built::Rejected(r) => rejected.push(r),
        }
    }

    // 4. Rejects must be safely on their queue before the batch is acknowledged.
    metrics.rejected = rejected.len() as u64;
    if !rejected.is_empty() {
        rejects.send(&rejected).await?;
    }
    metrics.duration = started.elapsed();
    Ok(BatchResult { output, metrics })
}

async fn lookup_clients<C: ConfigSource>(
    accepted: &[Accepted],
    configs: &Arc<C>,
    metrics: &mut InvocationMetrics,
) -> Result<HashMap<String, Option<Arc<ClientSettings>>>, ConfigFault> {
    let mut clients: HashMap<String, Option<Arc<ClientSettings>>> = HashMap::new();
    let mut wanted: Vec<String> = Vec::new();
    for a in accepted {
        let id = a.event.client_id();
        if !clients.contains_key(id) {
            clients.insert(id.to_string(), None);
            wanted.push(id.to_string());
        }
    }
    let mut tasks = tokio::task::JoinSet::new();
    for id in wanted {
        let source = Arc::clone(configs);
        let task = async move {
            let found = source.client(&id).await;
            (id, found)
        };
        // Keep the invocation span (requestId) on the lookup's log lines.
        tasks.spawn(tracing::Instrument::instrument(
            task,
            tracing::Span::current(),
        ));
    }
    let mut fault = None;
    while let Some(joined) = tasks.join_next().await {
        let (id, found) = joined.map_err(|e| ConfigFault {
            client_id: String::new(),
            reason: format!("lookup task failed: {e}"),
        })?;
        match found {
            Ok(lookup) => {
                match lookup.cache {
                    CacheUse::Hit => metrics.config_cache_hits += 1,
                    CacheUse::Miss => metrics.config_cache_misses += 1,
                }
                clients.insert(id, lookup.settings);
            }
            Err(e) => {
                fault.get_or_insert(e);
            }
        }
    }
    match fault {
        Some(e) => Err(e),
        None => Ok(clients),
    }
}

/// The output elements for one event and one client (empty when no subscription matched).
/// The payload is built and serialized once; each route is signed over that body with its
/// target's key.
fn details_for(
    ev: &InboundEvent,
    client: &Client,
    opts: &CoreOptions,
) -> Result<Vec<CallbackDetail>, String> {
    let settings = client.settings.as_ref();
    let routed = pipeline::route_payload(ev, settings, opts).map_err(|e| match e {
        ProcessError::Rejected(r) => r.to_string(),
        ProcessError::Transform { source, .. } => source.to_string(),
    })?;
    let Some((payload, routes)) = routed else {
        return Ok(Vec::new());
    };
    let payload = SharedPayload::of(&payload);
    Ok(routes
        .into_iter()
        .map(|route| CallbackDetail {
            client_id: settings.client_id.clone(),
            target_id: settings.targets[route.target].target_id.to_string(),
            subscription_ids: route
                .subscription_ids
                .iter()
                .map(|s| s.to_string())
                .collect(),
            signature: client.keys[route.target].signature(payload.body().as_bytes()),
            payload: payload.clone(),
            event_id: ev.id().to_string(),
            message_id: ev.message_id().to_string(),
            traceparent: ev.traceparent().map(str::to_owned),
        })
        .collect())
}
