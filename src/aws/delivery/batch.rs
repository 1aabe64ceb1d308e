//! The handler: one batch in, each message's fate out (deliver, retry, defer, dead-letter).
//! One message's way to its attempt is in [`super::attempt`]; the queue actions in
//! [`super::received`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::aws::handler::ConfigSource;
use crate::deliver::TokenBucket;

use super::received::Msg;
use super::{
    parse_body, BatchResult, DeliveryOptions, DeliveryState, Fate, ItemFailure, QueueOps, Sender,
    SqsMessage, TargetKey,
};

struct Bucket {
    rate: f64,
    bucket: Arc<tokio::sync::Mutex<TokenBucket>>,
}

/// The delivery handler and what it keeps between invocations of one execution environment
/// (token buckets; the HTTP clients live in the [`Sender`]).
pub struct Delivery<Q, S, C, D> {
    pub queue: Q,
    pub sender: S,
    pub configs: Arc<C>,
    pub state: D,
    pub options: DeliveryOptions,
    buckets: Mutex<HashMap<TargetKey, Bucket>>,
}

/// Per-message outcome with what the metrics need.
pub(super) struct Processed {
    pub fate: Fate,
    pub client_id: Option<String>,
    pub latency_ms: Option<f64>,
    pub signature_recomputed: bool,
}

impl Processed {
    pub(super) fn new(fate: Fate) -> Self {
        Processed {
            fate,
            client_id: None,
            latency_ms: None,
            signature_recomputed: false,
        }
    }
}

impl<Q: QueueOps, S: Sender, C: ConfigSource, D: DeliveryState> Delivery<Q, S, C, D> {
    pub fn new(queue: Q, sender: S, configs: Arc<C>, state: D, options: DeliveryOptions) -> Self {
        Delivery {
            queue,
            sender,
            configs,
            state,
            options,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn buckets(&self) -> MutexGuard<'_, HashMap<TargetKey, Bucket>> {
        self.buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// This invocation's token bucket for a target at `rate` requests per second.
    pub(super) fn bucket(
        &self,
        key: &TargetKey,
        rate: f64,
    ) -> Arc<tokio::sync::Mutex<TokenBucket>> {
        let mut buckets = self.buckets();
        match buckets.get(key) {
            Some(b) if b.rate == rate => Arc::clone(&b.bucket),
            _ => {
                let bucket = Arc::new(tokio::sync::Mutex::new(TokenBucket::new(
                    rate,
                    Instant::now(),
                )));
                buckets.insert(
                    key.clone(),
                    Bucket {
                        rate,
                        bucket: Arc::clone(&bucket),
                    },
                );
                bucket
            }
        }
    }

    /// Handles one batch. `deadline`: when the Lambda will be stopped (no attempt is started
    /// that could not finish before it).
    pub async fn handle(
        self: &Arc<Self>,
        records: Vec<SqsMessage>,
        deadline: Option<Instant>,
    ) -> BatchResult {
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        let ids: Vec<String> = records.iter().map(|r| r.message_id.clone()).collect();
        for (i, rec) in records.into_iter().enumerate() {
            let this = Arc::clone(self);
            let task = async move { (i, this.process(rec, deadline).await) };
            tasks.spawn(tracing::Instrument::instrument(
                task,
                tracing::Span::current(),
            ));
        }
        let mut processed: Vec<Option<Processed>> = (0..ids.len()).map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((i, p)) => {
                    if let Some(slot) = processed.get_mut(i) {
                        *slot = Some(p);
                    }
                }
                Err(e) => tracing::error!(error = %e, "delivery task failed"),
            }
        }
        let mut result = BatchResult::default();
        for (id, p) in ids.into_iter().zip(processed) {
            // A task that died leaves its message on the queue.
            let p = p.unwrap_or_else(|| {
                Processed::new(Fate::Failed {
                    reason: "delivery task failed".into(),
                })
            });
            if let Some(client) = &p.client_id {
                let m = result.metrics.entry(client.clone()).or_default();
                match &p.fate {
                    Fate::Delivered { .. } => m.delivered += 1,
                    Fate::Retried { .. } => m.retried += 1,
                    Fate::Deferred { .. } => m.deferred += 1,
                    Fate::DeadLettered { .. } => m.dead_lettered += 1,
                    Fate::Failed { .. } => m.failed += 1,
                }
                m.signature_recomputed += u64::from(p.signature_recomputed);
                m.latencies_ms.extend(p.latency_ms);
            }
            if p.fate.stays() {
                result.response.batch_item_failures.push(ItemFailure {
                    item_identifier: id.clone(),
                });
            }
            result.fates.push((id, p.fate));
        }
        result.duration = started.elapsed();
        result
    }

    async fn process(&self, rec: SqsMessage, deadline: Option<Instant>) -> Processed {
        let received = Instant::now();
        let sqs_id = rec.message_id.clone();
        if rec.receipt_handle.is_empty() || sqs_id.is_empty() {
            tracing::error!(event_id = None::<&str>, message_id = None::<&str>, sqs_message_id = %sqs_id, "record without a message id or receipt handle; left on the queue");
            return Processed::new(Fate::Failed {
                reason: "record without a message id or receipt handle".into(),
            });
        }
        let queue = match self.queue.info(&rec.event_source_arn).await {
            Ok(q) => q,
            Err(e) => {
                tracing::error!(event_id = None::<&str>, message_id = None::<&str>, sqs_message_id = %sqs_id, error = %e, "source queue unknown; left on the queue");
                return Processed::new(Fate::Failed {
                    reason: e.to_string(),
                });
            }
        };
        let ev = match parse_body(&rec.body) {
            Ok(ev) => ev,
            Err(reason) => {
                tracing::error!(event_id = None::<&str>, message_id = None::<&str>, sqs_message_id = %sqs_id, reason = %reason, "malformed message");
                let letter = self.letter(&rec, None, reason, Vec::new()).await;
                return Processed::new(self.dead_letter(&queue, &rec, letter).await);
            }
        };
        let last_receive = queue
            .max_receive_count
            .is_some_and(|max| rec.receive_count() >= max);
        let m = Msg {
            rec: &rec,
            queue: &queue,
            ev: &ev,
            received,
            deadline,
            last_receive,
        };
        let mut out = self.deliver(m).await;
        out.client_id = Some(ev.client_id.clone());
        out
    }
}
