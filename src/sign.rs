//! Callback signing: `x-hmac-sha256-signature` and the idempotency key.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The signature header name.
pub const SIGNATURE_HEADER: &str = "x-hmac-sha256-signature";

/// Lowercase hex HMAC-SHA256 of the exact body bytes, keyed with `"{application_id}.{api_key}"`.
pub fn signature(body: &[u8], application_id: &str, api_key: &str) -> String {
    SigningKey::new(application_id, api_key).signature(body)
}

/// The HMAC key of one target, keyed once: the inner and outer pad blocks are hashed when it is
/// made, and each signature starts from a copy of that state (one body pass, one outer block).
#[derive(Clone)]
pub struct SigningKey(Hmac<Sha256>);

impl SigningKey {
    /// The key `"{application_id}.{api_key}"`.
    pub fn new(application_id: &str, api_key: &str) -> Self {
        let mut key = Vec::with_capacity(application_id.len() + 1 + api_key.len());
        key.extend_from_slice(application_id.as_bytes());
        key.push(b'.');
        key.extend_from_slice(api_key.as_bytes());
        SigningKey(
            <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC accepts keys of any length"),
        )
    }

    /// The lowercase hex signature of `body`, as ASCII bytes.
    pub fn signature_hex(&self, body: &[u8]) -> [u8; 64] {
        let mut mac = self.0.clone();
        mac.update(body);
        let mut out = [0u8; 64];
        for (pair, b) in out.chunks_exact_mut(2).zip(mac.finalize().into_bytes()) {
            pair[0] = HEX_DIGITS[usize::from(b >> 4)];
            pair[1] = HEX_DIGITS[usize::from(b & 0x0f)];
        }
        out
    }

    /// The lowercase hex signature of `body`.
    pub fn signature(&self, body: &[u8]) -> String {
        // Only ASCII digits are in it.
        String::from_utf8(self.signature_hex(body).to_vec()).unwrap_or_default()
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of a digest (table lookup; `hex::encode` goes through `char` iterators).
fn lower_hex(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(HEX_DIGITS[usize::from(b >> 4)]);
        out.push(HEX_DIGITS[usize::from(b & 0x0f)]);
    }
    // Only ASCII digits were pushed.
    String::from_utf8(out).unwrap_or_default()
}

/// Checks a signature in constant time (for receivers and tests).
pub fn verify(body: &[u8], application_id: &str, api_key: &str, signature_hex: &str) -> bool {
    let Ok(given) = hex::decode(signature_hex) else {
        return false;
    };
    let mut mac = SigningKey::new(application_id, api_key).0;
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
    lower_hex(&h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values computed independently with `openssl dgst -sha256 -hmac` and `sha256sum`.
    #[test]
    fn signature_is_hmac_sha256_of_the_body_keyed_with_application_id_dot_api_key() {
        let sig = signature(br#"{"data":[]}"#, "app-1", "key-1");
        assert_eq!(
            sig,
            "a7179f819cf79446cba76c0bb9205c3ed5c144facae78e6f876e5a6062dd995e"
        );
        assert!(verify(br#"{"data":[]}"#, "app-1", "key-1", &sig));
        assert!(!verify(br#"{"data":[ ]}"#, "app-1", "key-1", &sig));
        assert!(!verify(br#"{"data":[]}"#, "app-1", "key-2", &sig));
        assert!(!verify(br#"{"data":[]}"#, "app-1", "key-1", "zz"));
        // A key used again gives the same signature; a second body is signed on its own.
        let key = SigningKey::new("app-1", "key-1");
        assert_eq!(key.signature(br#"{"data":[]}"#), sig);
        assert_eq!(key.signature(br#"{"data":[]}"#), sig);
        assert_eq!(
            key.signature(b"other"),
            signature(b"other", "app-1", "key-1")
        );
        assert_ne!(key.signature(b"other"), sig);
    }

    #[test]
    fn idempotency_key_is_sha256_of_source_newline_id() {
        assert_eq!(
            idempotency_key("/src", "id-1"),
            "161a07587f3c9327883120dc3d8fd7099252974bcbef3ad6e3e1ce325e0a2ba4"
        );
        assert_ne!(
            idempotency_key("/src", "id-2"),
            idempotency_key("/src", "id-1")
        );
        assert_ne!(
            idempotency_key("/src2", "id-1"),
            idempotency_key("/src", "id-1")
        );
        assert_eq!(idempotency_key("/src", "id-1").len(), 64);
    }
}
