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
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub message_id: Option<String>,
    pub message_reference: Option<String>,
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supplier_status: Option<String>,
    pub idempotency_key: Option<String>,
    pub items: usize,
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
        let Summary {
            kind,
            message_id,
            message_reference,
            status,
            supplier_status,
            idempotency_key,
            items,
        } = verdict.summary.clone();
        Line {
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            path: path.to_string(),
            client_id: verdict.endpoint.map(|e| e.client_id.clone()),
            target_id: verdict.endpoint.map(|e| e.target_id.clone()),
            kind,
            message_id,
            message_reference,
            status,
            supplier_status,
            idempotency_key,
            items,
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
        let mut out = format!(
            "{} {}/{} {} messageId={} status={}",
            self.time,
            or_dash(&self.client_id),
            or_dash(&self.target_id),
            or_dash(&self.kind),
            or_dash(&self.message_id),
            or_dash(&self.status),
        );
        if let Some(s) = &self.supplier_status {
            out.push_str(&format!(" supplierStatus={s}"));
        }
        out.push_str(&format!(
            " idempotencyKey={}",
            or_dash(&self.idempotency_key)
        ));
        if self.items > 1 {
            out.push_str(&format!(" items={}", self.items));
        }
        let signature = match self.signature {
            Signature::Ok => "signature ok",
            Signature::Bad => "signature bad",
            Signature::Missing => "signature missing",
            Signature::Unchecked => "signature not checked",
        };
        out.push_str(&format!(" {signature} -> {}", self.answer));
        if let Some(s) = self.retry_after {
            out.push_str(&format!(" retry-after={s}"));
        }
        if let Some(r) = &self.reason {
            out.push_str(&format!(" ({r})"));
        }
        out
    }
}
