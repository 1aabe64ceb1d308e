//! What a client endpoint checks on each callback, in the order the public API documents:
//! which target it is for (by path, else by API key) and the API key (`401`), the
//! `x-hmac-sha256-signature` over the exact body bytes (`403`), the content type (`415`) and the
//! body against the callback payload schema (`400`).

use axum::http::{header, HeaderMap, Uri};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::ConfigSet;
use crate::schema::{EventKind, FieldError, Schemas};
use crate::secret::Secret;
use crate::sign;

/// The content type of a callback.
pub const CONTENT_TYPE: &str = "application/vnd.api+json";

/// One configured target, as its endpoint sees it.
#[derive(Debug)]
pub struct Endpoint {
    pub client_id: String,
    pub target_id: String,
    application_id: String,
    /// The path of `invocationEndpoint`.
    path: String,
    header_name: String,
    api_key: Secret,
}

/// Every configured target, found by path and API key.
#[derive(Debug, Default)]
pub struct Directory {
    endpoints: Vec<Endpoint>,
}

impl Directory {
    /// The targets of every client, sorted by client and target id.
    pub fn new(configs: &ConfigSet) -> Directory {
        let mut endpoints = Vec::new();
        for client in configs.clients() {
            for t in &client.targets {
                let path = t
                    .invocation_endpoint
                    .parse::<Uri>()
                    .map(|u| u.path().to_string())
                    .unwrap_or_else(|_| "/".into());
                endpoints.push(Endpoint {
                    client_id: client.client_id.clone(),
                    target_id: t.target_id.to_string(),
                    application_id: client.application_id.clone(),
                    path,
                    header_name: t.api_key.header_name.to_ascii_lowercase(),
                    api_key: t.api_key.header_value.clone(),
                });
            }
        }
        endpoints.sort_by(|a, b| (&a.client_id, &a.target_id).cmp(&(&b.client_id, &b.target_id)));
        Directory { endpoints }
    }

    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// `client/target path` of every endpoint (for the start-up line; no keys).
    pub fn describe(&self) -> Vec<String> {
        self.endpoints
            .iter()
            .map(|e| format!("{}/{} {}", e.client_id, e.target_id, e.path))
            .collect()
    }
}

/// What the signature check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Signature {
    Ok,
    Bad,
    Missing,
    /// Not checked: no target could be identified (wrong or missing API key).
    Unchecked,
}

/// The fields of a callback body worth a line (best effort: also for a body that is refused).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub message_id: Option<String>,
    pub message_reference: Option<String>,
    /// `messageStatus`, or `channelStatus` for a channel status callback.
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supplier_status: Option<String>,
    pub idempotency_key: Option<String>,
    /// How many items `data` holds (the line shows the first).
    pub items: usize,
}

impl Summary {
    fn of(body: &Value) -> Summary {
        let first = &body["data"][0];
        let attrs = &first["attributes"];
        let text = |v: &Value| v.as_str().map(str::to_owned);
        Summary {
            kind: text(&first["type"]),
            message_id: text(&attrs["messageId"]),
            message_reference: text(&attrs["messageReference"]),
            status: text(&attrs["messageStatus"]).or_else(|| text(&attrs["channelStatus"])),
            supplier_status: text(&attrs["supplierStatus"]),
            idempotency_key: text(&first["meta"]["idempotencyKey"]),
            items: body["data"].as_array().map_or(0, Vec::len),
        }
    }
}

/// The result of the checks.
#[derive(Debug)]
pub struct Verdict<'a> {
    pub endpoint: Option<&'a Endpoint>,
    pub signature: Signature,
    pub summary: Summary,
    /// Why the callback is refused (status and reason), if it is.
    pub refusal: Option<(u16, String)>,
}

/// Equality of two secrets without an early exit on the first differing byte.
fn same_secret(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes())
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Runs every check on one request.
pub fn check<'a>(dir: &'a Directory, path: &str, headers: &HeaderMap, body: &[u8]) -> Verdict<'a> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let summary = parsed.as_ref().map(Summary::of).unwrap_or_default();
    let refused = |endpoint, signature, status, reason: String| Verdict {
        endpoint,
        signature,
        summary: summary.clone(),
        refusal: Some((status, reason)),
    };
    let signature = header(headers, sign::SIGNATURE_HEADER);
    let endpoint = match dir.target(path, headers, body, signature) {
        Ok(endpoint) => endpoint,
        Err(reason) => return refused(None, Signature::Unchecked, 401, reason),
    };
    if let Err((found, reason)) = check_signature(endpoint, body, signature) {
        return refused(Some(endpoint), found, 403, reason);
    }
    if let Err((status, reason)) = check_body(headers, parsed.as_ref()) {
        return refused(Some(endpoint), Signature::Ok, status, reason);
    }
    Verdict {
        endpoint: Some(endpoint),
        signature: Signature::Ok,
        summary,
        refusal: None,
    }
}

impl Directory {
    /// The target a request is for: those at this path, or (no target has this path) every
    /// target; then the one whose API key the request carries. Of several, the first whose
    /// signature verifies. `Err`: why none is (the `401` reason).
    fn target(
        &self,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<&Endpoint, String> {
        let at_path: Vec<&Endpoint> = self.endpoints.iter().filter(|e| e.path == path).collect();
        let candidates = if at_path.is_empty() {
            self.endpoints.iter().collect()
        } else {
            at_path
        };
        let keyed: Vec<&Endpoint> = candidates
            .into_iter()
            .filter(|e| {
                header(headers, &e.header_name).is_some_and(|k| same_secret(k, e.api_key.expose()))
            })
            .collect();
        let verifies = |e: &Endpoint| {
            signature.is_some_and(|s| sign::verify(body, &e.application_id, e.api_key.expose(), s))
        };
        if let Some(endpoint) = keyed
            .iter()
            .find(|e| verifies(e))
            .or(keyed.first())
            .copied()
        {
            return Ok(endpoint);
        }
        Err(if self.endpoints.iter().any(|e| e.path == path) {
            format!("API key missing or wrong for the target(s) at {path}")
        } else {
            format!("no target has the path {path} and no target's API key was sent")
        })
    }
}

/// The `x-hmac-sha256-signature` over the exact body bytes, keyed with the target's
/// `applicationId.apiKey`. `Err`: what was found and why it is refused (`403`).
fn check_signature(
    endpoint: &Endpoint,
    body: &[u8],
    signature: Option<&str>,
) -> Result<(), (Signature, String)> {
    let Some(given) = signature else {
        let reason = format!("{} header missing", sign::SIGNATURE_HEADER);
        return Err((Signature::Missing, reason));
    };
    if !sign::verify(
        body,
        &endpoint.application_id,
        endpoint.api_key.expose(),
        given,
    ) {
        let reason = format!(
            "{} does not match the body (HMAC-SHA256 keyed with applicationId.apiKey)",
            sign::SIGNATURE_HEADER
        );
        return Err((Signature::Bad, reason));
    }
    Ok(())
}

/// The content type (`415`), then the body against the callback payload schema (`400`).
/// `Err`: the status and reason of the refusal.
fn check_body(headers: &HeaderMap, parsed: Option<&Value>) -> Result<(), (u16, String)> {
    let content_type = header(headers, header::CONTENT_TYPE.as_str()).unwrap_or("");
    if content_type.split(';').next().map(str::trim) != Some(CONTENT_TYPE) {
        return Err((
            415,
            format!("content-type {content_type:?} is not {CONTENT_TYPE}"),
        ));
    }
    let Some(value) = parsed else {
        return Err((400, "body is not JSON".into()));
    };
    if let Err(errors) = validate(value) {
        let reasons: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return Err((400, reasons.join("; ")));
    }
    Ok(())
}

/// Validates a callback body against the payload schema of its first item's `type`.
fn validate(body: &Value) -> Result<(), Vec<FieldError>> {
    let kind = match body["data"][0]["type"].as_str() {
        Some("MessageStatus") => EventKind::MessageStatus,
        Some("ChannelStatus") => EventKind::ChannelStatus,
        _ => {
            return Err(vec![FieldError {
                pointer: "/data/0/type".into(),
                reason: "must be \"MessageStatus\" or \"ChannelStatus\"".into(),
            }])
        }
    };
    Schemas::get().validate_callback(kind, body)
}
