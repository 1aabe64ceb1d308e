//! Callback signing: `x-hmac-sha256-signature` and the idempotency key.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The signature header name.
pub const SIGNATURE_HEADER: &str = "x-hmac-sha256-signature";

/// Lowercase hex HMAC-SHA256 of the exact body bytes, keyed with `"{application_id}.{api_key}"`.
pub fn signature(body: &[u8], application_id: &str, api_key: &str) -> String {
    let mut key = Vec::with_capacity(application_id.len() + 1 + api_key.len());
    key.extend_from_slice(application_id.as_bytes());
    key.push(b'.');
    key.extend_from_slice(api_key.as_bytes());
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC accepts keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Checks a signature in constant time (for receivers and tests).
pub fn verify(body: &[u8], application_id: &str, api_key: &str, signature_hex: &str) -> bool {
    let Ok(given) = hex::decode(signature_hex) else { return false };
    let mut key = format!("{application_id}.").into_bytes();
    key.extend_from_slice(api_key.as_bytes());
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC accepts keys of any length");
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// `meta.idempotencyKey`: lowercase hex SHA-256 of `source + "\n" + id` (CloudEvents `source`
/// and `id`). `source` cannot contain white space (schema), so the formula is unambiguous:
/// the same event always gets the same key and different events different keys.
pub fn idempotency_key(source: &str, id: &str) -> String {
    let mut h = Sha256::new();
    h.update(source.as_bytes());
    h.update(b"\n");
    h.update(id.as_bytes());
    hex::encode(h.finalize())
}
