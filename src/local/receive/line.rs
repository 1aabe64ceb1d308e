//! The line `callbacks receive` prints per callback: readable text, or JSON (`--json`).

use serde::Serialize;

use super::check::{Signature, Summary, Verdict};

/// One callback as received and answered. Never holds an API key.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    /// When it was received (RFC 3339, UTC, milliseconds).
    pub time: String,
    pub path: String,
    pub client_id: Option<String>,
    pub target_id: Option<String>,
    /// What the body says (`type`, `messageId`, `status`, `idempotencyKey`, ...).
    #[serde(flatten)]
    pub summary: Summary,
    pub signature: Signature,
    /// The status answered.
    pub answer: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<i64>,
    /// Why the answer is not a plain 202 (the refusal or the script).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Line {
    pub fn new(path: &str, verdict: &Verdict<'_>) -> Line {
        Line {
            time: crate::deliver::rfc3339(std::time::SystemTime::now()),
            path: path.to_string(),
            client_id: verdict.endpoint.map(|e| e.client_id.clone()),
            target_id: verdict.endpoint.map(|e| e.target_id.clone()),
            summary: verdict.summary.clone(),
            signature: verdict.signature,
            answer: 0,
            retry_after: None,
            reason: None,
        }
    }

    /// One JSON object, or the readable form:
    /// `TIME client/target TYPE messageId=… status=… idempotencyKey=… signature ok -> 202`.
    pub fn render(&self, json: bool) -> String {
        if json {
            return serde_json::to_string(self).unwrap_or_default();
        }
        let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        let s = &self.summary;
        let mut out = format!(
            "{} {}/{} {} messageId={} status={}",
            self.time,
            or_dash(&self.client_id),
            or_dash(&self.target_id),
            or_dash(&s.kind),
            or_dash(&s.message_id),
            or_dash(&s.status),
        );
        if let Some(supplier) = &s.supplier_status {
            out.push_str(&format!(" supplierStatus={supplier}"));
        }
        out.push_str(&format!(" idempotencyKey={}", or_dash(&s.idempotency_key)));
        if s.items > 1 {
            out.push_str(&format!(" items={}", s.items));
        }
        let signature = match self.signature {
            Signature::Ok => "signature ok",
            Signature::Bad => "signature bad",
            Signature::Missing => "signature missing",
            Signature::Unchecked => "signature not checked",
        };
        out.push_str(&format!(" {signature} -> {}", self.answer));
        if let Some(wait) = self.retry_after {
            out.push_str(&format!(" retry-after={wait}"));
        }
        if let Some(r) = &self.reason {
            out.push_str(&format!(" ({r})"));
        }
        out
    }
}
