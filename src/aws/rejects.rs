//! The rejected-events queue: events that failed parsing or validation, each with its reason,
//! sent to SQS with `SendMessageBatch` (10 messages and 256 KiB per call). Any message the
//! queue does not take after one retry fails the invocation, so nothing is lost.

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

use super::handler::{RejectFault, RejectSink, RejectedRecord};

/// The SQS message size limit this sender keeps to (the classic limit, accepted everywhere).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Entries per `SendMessageBatch` call (the SQS limit).
pub const MAX_BATCH_ENTRIES: usize = 10;
/// `SendMessageBatch` calls in flight at once.
const CONCURRENT_CALLS: usize = 16;

/// The SQS message body of a rejected event: the [`RejectedRecord`] as JSON. When the record
/// body would push the message over [`MAX_MESSAGE_BYTES`] it is cut (on a character boundary)
/// and `bodyTruncated` is set.
pub fn message_body(record: &RejectedRecord) -> String {
    let full = serde_json::to_string(record).unwrap_or_default();
    if full.len() <= MAX_MESSAGE_BYTES {
        return full;
    }
    let mut short = RejectedRecord {
        body: String::new(),
        body_truncated: true,
        ..record.clone()
    };
    let room =
        MAX_MESSAGE_BYTES.saturating_sub(serde_json::to_string(&short).map_or(0, |t| t.len()));
    let (mut used, mut cut) = (0, 0);
    for (i, ch) in record.body.char_indices() {
        used += escaped_len(ch);
        if used > room {
            break;
        }
        cut = i + ch.len_utf8();
    }
    short.body = record.body[..cut].to_string();
    serde_json::to_string(&short).unwrap_or_default()
}

/// The length of a character inside a JSON string as serde_json writes it.
fn escaped_len(ch: char) -> usize {
    match ch {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// Groups message bodies into `SendMessageBatch` calls: at most 10 entries and
/// [`MAX_MESSAGE_BYTES`] per call. Returns indices into `bodies`.
pub fn batches(bodies: &[String]) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut size = 0;
    for (i, b) in bodies.iter().enumerate() {
        if !current.is_empty()
            && (current.len() == MAX_BATCH_ENTRIES || size + b.len() > MAX_MESSAGE_BYTES)
        {
            out.push(std::mem::take(&mut current));
            size = 0;
        }
        current.push(i);
        size += b.len();
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The SQS-backed [`RejectSink`].
#[derive(Debug, Clone)]
pub struct SqsRejects {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsRejects {
    pub fn new(sqs: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        SqsRejects {
            sqs,
            queue_url: queue_url.into(),
        }
    }

    /// Sends one batch; returns the indices SQS did not take.
    async fn send_batch(&self, bodies: &[(usize, String)]) -> Result<Vec<usize>, String> {
        let entries = bodies
            .iter()
            .map(|(i, body)| {
                SendMessageBatchRequestEntry::builder()
                    .id(format!("r{i}"))
                    .message_body(body.clone())
                    .build()
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .sqs
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| format!("SendMessageBatch failed: {}", DisplayErrorContext(&e)))?;
        let mut failed = Vec::new();
        for f in out.failed() {
            tracing::warn!(
                entry = f.id(),
                code = f.code(),
                sender_fault = f.sender_fault(),
                "rejected-events queue refused a message"
            );
            if let Some(i) = f
                .id()
                .strip_prefix('r')
                .and_then(|n| n.parse::<usize>().ok())
            {
                failed.push(i);
            }
        }
        Ok(failed)
    }

    async fn send_all(
        &self,
        bodies: &[String],
        indices: Vec<usize>,
    ) -> Result<Vec<usize>, RejectFault> {
        let picked: Vec<String> = indices.iter().map(|&i| bodies[i].clone()).collect();
        let groups = batches(&picked);
        let mut failed = Vec::new();
        for wave in groups.chunks(CONCURRENT_CALLS) {
            let mut tasks = tokio::task::JoinSet::new();
            for group in wave {
                let this = self.clone();
                let items: Vec<(usize, String)> = group
                    .iter()
                    .map(|&j| (indices[j], picked[j].clone()))
                    .collect();
                let task = async move { this.send_batch(&items).await };
                tasks.spawn(tracing::Instrument::instrument(
                    task,
                    tracing::Span::current(),
                ));
            }
            while let Some(joined) = tasks.join_next().await {
                let result = joined.map_err(|e| RejectFault(format!("send task failed: {e}")))?;
                failed.extend(result.map_err(RejectFault)?);
            }
        }
        Ok(failed)
    }
}

impl RejectSink for SqsRejects {
    async fn send(&self, rejects: &[RejectedRecord]) -> Result<(), RejectFault> {
        let bodies: Vec<String> = rejects.iter().map(message_body).collect();
        let mut pending: Vec<usize> = (0..bodies.len()).collect();
        for _attempt in 0..2 {
            pending = self.send_all(&bodies, pending).await?;
            if pending.is_empty() {
                return Ok(());
            }
        }
        Err(RejectFault(format!(
            "{} message(s) not accepted by the queue after a retry",
            pending.len()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(body: String) -> RejectedRecord {
        RejectedRecord {
            reason: "r".into(),
            fields: vec![],
            event_id: Some("e".into()),
            message_id: None,
            sqs_message_id: Some("m".into()),
            body,
            body_truncated: false,
        }
    }

    #[test]
    fn oversized_bodies_are_cut_to_fit_one_message() {
        let big = "\u{1}é".repeat(200_000);
        let text = message_body(&record(big));
        assert!(text.len() <= MAX_MESSAGE_BYTES, "{}", text.len());
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["bodyTruncated"], true);
        let small = message_body(&record("{}".into()));
        assert!(!small.contains("bodyTruncated"));
    }

    #[test]
    fn batches_keep_to_ten_entries_and_the_size_limit() {
        let bodies: Vec<String> = (0..25).map(|_| "x".repeat(100)).collect();
        let b = batches(&bodies);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5]);
        let bodies: Vec<String> = (0..5).map(|_| "x".repeat(100_000)).collect();
        let b = batches(&bodies);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    }
}
