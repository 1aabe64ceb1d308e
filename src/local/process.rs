//! Runs the core over an ingest request (one event or a batch) and collects what to commit
//! (callbacks, audit rows, bounded rejects) and what to answer (a bounded report).

use serde::Serialize;
use serde_json::value::RawValue;

use crate::config::ConfigSet;
use crate::pipeline::{self, CoreOptions, Outcome, ProcessError};
use crate::schema::FieldError;

use super::store::{Accept, NewCallback, NewEvent, NewReject};

/// Errors described per rejected event in an answer.
const MAX_ANSWER_ERRORS: usize = 10;
/// Bytes of a reason kept (in the answer and in the rejects table).
const MAX_REASON_BYTES: usize = 1024;

/// How much of the rejected events is kept and told.
#[derive(Debug, Clone, Copy)]
pub struct RejectBounds {
    /// Bytes of a rejected event stored.
    pub max_row_bytes: usize,
    /// Rejected events described in the answer.
    pub max_answer_rejects: usize,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectReport {
    /// Position in the batch (absent for a single event).
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
    event_id: Option<String>,
    errors: Vec<FieldError>,
}

/// A callback an ingest request queued: the id to follow it by (`GET /callbacks/{id}` on the
/// admin listener).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuedRef {
    pub id: i64,
    pub event_id: String,
    pub client_id: String,
    pub target_id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestReport {
    pub accepted: usize,
    pub callbacks: usize,
    /// The first queued callbacks (at most `max_answer_callbacks`), in order, with their ids.
    pub queued: Vec<QueuedRef>,
    /// The first rejected events (at most `max_answer_rejects`).
    pub rejected: Vec<RejectReport>,
    /// Every rejected event, described or not.
    pub rejected_count: usize,
}

/// The result of running the core over a request.
pub struct Processed {
    pub accept: Accept,
    pub report: IngestReport,
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// A rejects-table row: the reason and at most `max_row_bytes` of what was sent.
pub fn request_reject(
    event_id: Option<String>,
    reason: &str,
    raw: &[u8],
    bounds: RejectBounds,
) -> NewReject {
    NewReject {
        event_id,
        reason: reason.to_string(),
        body: raw[..raw.len().min(bounds.max_row_bytes)].to_vec(),
    }
}

struct Collector {
    bounds: RejectBounds,
    accept: Accept,
    report: IngestReport,
}

impl Collector {
    fn new(bounds: RejectBounds) -> Self {
        Collector {
            bounds,
            accept: Accept::default(),
            report: IngestReport {
                accepted: 0,
                callbacks: 0,
                queued: Vec::new(),
                rejected: Vec::new(),
                rejected_count: 0,
            },
        }
    }

    fn reject(&mut self, e: &ProcessError, index: Option<usize>, raw: &[u8]) {
        let event_id = e.event_id().map(str::to_owned);
        let reason = truncate(e.to_string(), MAX_REASON_BYTES);
        self.accept
            .rejects
            .push(request_reject(event_id.clone(), &reason, raw, self.bounds));
        self.report.rejected_count += 1;
        if self.report.rejected.len() >= self.bounds.max_answer_rejects {
            return;
        }
        let errors = match e {
            ProcessError::Rejected(r) => r.error.fields(),
            ProcessError::Transform { source, .. } => vec![FieldError {
                pointer: String::new(),
                reason: source.to_string(),
            }],
        };
        let errors = errors
            .into_iter()
            .take(MAX_ANSWER_ERRORS)
            .map(|f| FieldError {
                pointer: truncate(f.pointer, MAX_REASON_BYTES),
                reason: truncate(f.reason, MAX_REASON_BYTES),
            })
            .collect();
        self.report.rejected.push(RejectReport {
            index,
            event_id,
            errors,
        });
    }

    fn outcome(&mut self, outcome: Outcome) {
        let (accept, report) = (&mut self.accept, &mut self.report);
        report.accepted += 1;
        match outcome {
            Outcome::Callbacks { event, callbacks } => {
                report.callbacks += callbacks.len();
                accept.events.push(NewEvent {
                    event_id: event.id().to_string(),
                    source: event.source().to_string(),
                    client_id: event.client_id().to_string(),
                    message_id: event.message_id().to_string(),
                    callbacks: u32::try_from(callbacks.len()).unwrap_or(u32::MAX),
                    outcome: if callbacks.is_empty() {
                        "no-match"
                    } else {
                        "queued"
                    },
                });
                accept
                    .callbacks
                    .extend(callbacks.into_iter().map(NewCallback::from));
            }
            Outcome::NoClientConfig { event } => {
                tracing::debug!(event_id = %event.id(), message_id = %event.message_id(), client_id = %event.client_id(),
                    "event for a client with no configuration; nothing to deliver");
                accept.events.push(NewEvent {
                    event_id: event.id().to_string(),
                    source: event.source().to_string(),
                    client_id: event.client_id().to_string(),
                    message_id: event.message_id().to_string(),
                    callbacks: 0,
                    outcome: "no-client-config",
                });
            }
        }
    }

    fn run(&mut self, raw: &[u8], index: Option<usize>, configs: &ConfigSet, core: &CoreOptions) {
        match pipeline::process(raw, configs, core) {
            Ok(outcome) => self.outcome(outcome),
            Err(e) => self.reject(&e, index, raw),
        }
    }

    fn done(self) -> Processed {
        Processed {
            accept: self.accept,
            report: self.report,
        }
    }
}

pub fn single(
    body: &[u8],
    configs: &ConfigSet,
    core: &CoreOptions,
    bounds: RejectBounds,
) -> Processed {
    let mut c = Collector::new(bounds);
    c.run(body, None, configs, core);
    c.done()
}

/// The elements of a batch, each as the exact text it was sent as; `None` when the body is not
/// a JSON array.
pub fn batch_items(body: &[u8]) -> Option<Vec<&RawValue>> {
    serde_json::from_slice(body).ok()
}

/// Each element goes through the same path as a single event (the core's fast path, its size
/// limit, the reference path for rejections); a rejected element is kept as it was sent.
pub fn batch(
    items: &[&RawValue],
    configs: &ConfigSet,
    core: &CoreOptions,
    bounds: RejectBounds,
) -> Processed {
    let mut c = Collector::new(bounds);
    for (i, item) in items.iter().enumerate() {
        c.run(item.get().as_bytes(), Some(i), configs, core);
    }
    c.done()
}
