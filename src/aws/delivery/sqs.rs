//! [`QueueOps`] on SQS: queue URLs from the event source ARN, the DLQ and limits from the
//! queue's own redrive policy and retention (`GetQueueAttributes`, cached), dead letters with
//! their history as message attributes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName};

use super::{DeadLetter, QueueFault, QueueInfo, QueueOps};

/// How long queue attributes are cached.
const INFO_TTL: Duration = Duration::from_secs(300);

/// Message attribute names of a dead letter (at most 10, the SQS limit).
pub mod attr {
    pub const CLIENT_ID: &str = "clientId";
    pub const TARGET_ID: &str = "targetId";
    pub const EVENT_ID: &str = "eventId";
    pub const MESSAGE_ID: &str = "messageId";
    pub const REASON: &str = "reason";
    /// Number.
    pub const ATTEMPTS: &str = "attempts";
    pub const FIRST_ATTEMPT_AT: &str = "firstAttemptAt";
    pub const LAST_OUTCOME: &str = "lastOutcome";
    /// JSON array of `AttemptRecord`.
    pub const ATTEMPT_HISTORY: &str = "attemptHistory";
    /// Where `callbacks dlq replay` puts it back.
    pub const SOURCE_QUEUE_URL: &str = "sourceQueueUrl";
}

/// The queue URL of an SQS ARN (`arn:<partition>:sqs:<region>:<account>:<name>`): on
/// `base/<account>/<name>` when a base is given (an emulator), else the regional endpoint.
pub fn queue_url(arn: &str, base: Option<&str>) -> Option<String> {
    let parts: Vec<&str> = arn.split(':').collect();
    let [_, partition, "sqs", region, account, name] = parts.as_slice() else {
        return None;
    };
    if region.is_empty() || account.is_empty() || name.is_empty() {
        return None;
    }
    Some(match base {
        Some(b) => format!("{}/{account}/{name}", b.trim_end_matches('/')),
        None if partition.starts_with("aws-cn") => {
            format!("https://sqs.{region}.amazonaws.com.cn/{account}/{name}")
        }
        None => format!("https://sqs.{region}.amazonaws.com/{account}/{name}"),
    })
}

/// A string message attribute.
pub fn string_attr(value: impl Into<String>) -> Option<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .ok()
}

/// The message attributes of a dead letter. Empty values are left out (SQS refuses them).
pub fn dead_letter_attributes(
    letter: &DeadLetter,
    source_queue_url: &str,
) -> HashMap<String, MessageAttributeValue> {
    let mut out = HashMap::new();
    let mut put = |name: &str, value: Option<String>| {
        if let Some(v) = value.filter(|v| !v.is_empty()).and_then(string_attr) {
            out.insert(name.to_string(), v);
        }
    };
    put(attr::CLIENT_ID, letter.client_id.clone());
    put(attr::TARGET_ID, letter.target_id.clone());
    put(attr::EVENT_ID, letter.event_id.clone());
    put(attr::MESSAGE_ID, letter.message_id.clone());
    put(attr::REASON, Some(letter.reason.clone()));
    put(attr::FIRST_ATTEMPT_AT, letter.first_attempt_at.clone());
    put(attr::LAST_OUTCOME, letter.last_outcome.clone());
    put(
        attr::ATTEMPT_HISTORY,
        serde_json::to_string(&letter.history).ok(),
    );
    put(attr::SOURCE_QUEUE_URL, Some(source_queue_url.to_string()));
    if let Ok(n) = MessageAttributeValue::builder()
        .data_type("Number")
        .string_value(letter.attempts.to_string())
        .build()
    {
        out.insert(attr::ATTEMPTS.to_string(), n);
    }
    out
}

/// The SQS-backed [`QueueOps`].
#[derive(Debug)]
pub struct SqsQueue {
    sqs: aws_sdk_sqs::Client,
    url_base: Option<String>,
    info: Mutex<HashMap<String, (QueueInfo, Instant)>>,
}

impl SqsQueue {
    /// `url_base`: see [`queue_url`].
    pub fn new(sqs: aws_sdk_sqs::Client, url_base: Option<String>) -> Self {
        SqsQueue {
            sqs,
            url_base,
            info: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, arn: &str) -> Option<QueueInfo> {
        let map = self.info.lock().unwrap_or_else(|p| p.into_inner());
        map.get(arn)
            .filter(|(_, at)| at.elapsed() < INFO_TTL)
            .map(|(i, _)| i.clone())
    }
}

fn fault(what: &str, e: impl std::error::Error + 'static) -> QueueFault {
    QueueFault(format!("{what} failed: {}", DisplayErrorContext(e)))
}

impl QueueOps for SqsQueue {
    async fn info(&self, queue_arn: &str) -> Result<QueueInfo, QueueFault> {
        if let Some(i) = self.cached(queue_arn) {
            return Ok(i);
        }
        let url = queue_url(queue_arn, self.url_base.as_deref())
            .ok_or_else(|| QueueFault(format!("{queue_arn:?} is not an SQS queue ARN")))?;
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .attribute_names(QueueAttributeName::MessageRetentionPeriod)
            .send()
            .await
            .map_err(|e| fault("GetQueueAttributes", e))?;
        let attrs = out.attributes();
        let redrive: Option<serde_json::Value> = attrs
            .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy))
            .and_then(|p| serde_json::from_str(p).ok());
        let dlq_url = redrive
            .as_ref()
            .and_then(|r| r.get("deadLetterTargetArn"))
            .and_then(|v| v.as_str())
            .and_then(|arn| queue_url(arn, self.url_base.as_deref()));
        let max_receive_count = redrive
            .as_ref()
            .and_then(|r| r.get("maxReceiveCount"))
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .and_then(|n| u32::try_from(n).ok());
        let retention = attrs
            .and_then(|a| a.get(&QueueAttributeName::MessageRetentionPeriod))
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        if dlq_url.is_none() {
            tracing::error!(queue = %url, "the client queue has no redrive policy: undeliverable callbacks cannot be dead-lettered");
        }
        let info = QueueInfo {
            url,
            dlq_url,
            max_receive_count,
            retention,
        };
        self.info
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(queue_arn.to_string(), (info.clone(), Instant::now()));
        Ok(info)
    }

    async fn change_visibility(
        &self,
        queue: &QueueInfo,
        receipt_handle: &str,
        timeout: Duration,
    ) -> Result<(), QueueFault> {
        let secs = i32::try_from(timeout.as_secs().min(43_200)).unwrap_or(43_200);
        self.sqs
            .change_message_visibility()
            .queue_url(&queue.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(secs)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| fault("ChangeMessageVisibility", e))
    }

    async fn delete(&self, queue: &QueueInfo, receipt_handle: &str) -> Result<(), QueueFault> {
        self.sqs
            .delete_message()
            .queue_url(&queue.url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| fault("DeleteMessage", e))
    }

    async fn dead_letter(&self, queue: &QueueInfo, letter: &DeadLetter) -> Result<(), QueueFault> {
        let dlq = queue
            .dlq_url
            .as_deref()
            .ok_or_else(|| QueueFault(format!("queue {} has no DLQ", queue.url)))?;
        self.sqs
            .send_message()
            .queue_url(dlq)
            .message_body(&letter.body)
            .set_message_attributes(Some(dead_letter_attributes(letter, &queue.url)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| fault("SendMessage to the DLQ", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_urls_come_from_arns() {
        assert_eq!(
            queue_url("arn:aws:sqs:eu-west-2:123456789012:q-https", None).as_deref(),
            Some("https://sqs.eu-west-2.amazonaws.com/123456789012/q-https")
        );
        assert_eq!(
            queue_url(
                "arn:aws:sqs:eu-west-2:123456789012:q",
                Some("http://127.0.0.1:5000/")
            )
            .as_deref(),
            Some("http://127.0.0.1:5000/123456789012/q")
        );
        assert_eq!(queue_url("arn:aws:sns:eu-west-2:1:q", None), None);
        assert_eq!(queue_url("nonsense", None), None);
    }

    #[test]
    fn dead_letter_attributes_stay_within_the_sqs_limit() {
        let letter = DeadLetter {
            body: "{}".into(),
            client_id: Some("c".into()),
            target_id: Some("t".into()),
            event_id: Some("e".into()),
            message_id: Some("m".into()),
            reason: "r".into(),
            attempts: 3,
            first_attempt_at: Some("2025-01-01T00:00:00.000Z".into()),
            last_outcome: Some("HTTP 500".into()),
            history: vec![],
        };
        let a = dead_letter_attributes(&letter, "https://q");
        assert_eq!(a.len(), 10);
        assert_eq!(a[attr::ATTEMPTS].data_type(), "Number");
        let none = DeadLetter {
            client_id: None,
            first_attempt_at: None,
            ..letter
        };
        assert_eq!(dead_letter_attributes(&none, "https://q").len(), 8);
    }
}
