//! The one request builder of both delivery drivers (`callbacks serve` and the delivery
//! Lambda): a queued callback holds only its body and routing ids; the endpoint, the API key and
//! the signature come from the configuration in force when the request is made.

use crate::config::ClientSettings;
use crate::pipeline::CONTENT_TYPE;
use crate::schema::types::Target;
use crate::secret::Secret;
use crate::sign::{self, SIGNATURE_HEADER};

/// Where and how one target's callbacks are sent, read from its client configuration.
/// `Debug` never shows the API key.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: String,
    pub application_id: String,
    /// The API key header name, lower case.
    pub api_key_header: String,
    pub api_key: Secret,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("application_id", &self.application_id)
            .field("api_key_header", &self.api_key_header)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// The endpoint of `target`, one of `client`'s targets.
    pub fn of(client: &ClientSettings, target: &Target) -> Self {
        Endpoint {
            url: target.invocation_endpoint.to_string(),
            application_id: client.application_id.clone(),
            api_key_header: target.api_key.header_name.to_ascii_lowercase(),
            api_key: target.api_key.header_value.clone(),
        }
    }

    /// `x-hmac-sha256-signature` of `body` with the current API key.
    pub fn signature(&self, body: &[u8]) -> String {
        sign::signature(body, &self.application_id, self.api_key.expose())
    }

    /// The three request headers: content type, API key, and `signature` (of the body sent).
    pub fn headers(&self, signature: String) -> Vec<(String, String)> {
        vec![
            ("content-type".to_string(), CONTENT_TYPE.to_string()),
            (
                self.api_key_header.clone(),
                self.api_key.expose().to_string(),
            ),
            (SIGNATURE_HEADER.to_string(), signature),
        ]
    }

    /// The headers of a request carrying `body`, signed now.
    pub fn signed_headers(&self, body: &[u8]) -> Vec<(String, String)> {
        self.headers(self.signature(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_carry_the_current_key_and_a_signature_over_the_body() {
        let ep = Endpoint {
            url: "https://example.test/cb".into(),
            application_id: "app".into(),
            api_key_header: "x-api-key".into(),
            api_key: Secret::new("key-2"),
        };
        let h = ep.signed_headers(b"{\"data\":[]}");
        assert_eq!(h[0], ("content-type".into(), CONTENT_TYPE.into()));
        assert_eq!(h[1], ("x-api-key".into(), "key-2".into()));
        assert_eq!(h[2].0, SIGNATURE_HEADER);
        assert!(sign::verify(b"{\"data\":[]}", "app", "key-2", &h[2].1));
        assert!(!sign::verify(b"{\"data\":[]}", "app", "key-1", &h[2].1));
        assert!(!format!("{ep:?}").contains("key-2"));
    }
}
