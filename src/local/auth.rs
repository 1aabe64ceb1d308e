//! Ingest authentication of `callbacks serve`: bearer tokens (`--ingest-token-file`, one token
//! a line so that two can overlap during a rotation), compared in constant time, and an
//! optional expected `Host`. Tokens never reach logs or error messages.

use std::path::Path;

use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The shortest token accepted from the token file.
pub const MIN_TOKEN_BYTES: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("cannot read the ingest token file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("ingest token file {path}: line {line}: {reason}")]
    Invalid {
        path: String,
        line: usize,
        reason: &'static str,
    },
    #[error("ingest token file {path} holds no token")]
    Empty { path: String },
}

/// Why a request was refused (the answer names the reason, never a token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("missing or invalid bearer token")]
    Token,
    #[error("unexpected Host header")]
    Host,
}

/// What an ingest request must carry.
#[derive(Clone, Default)]
pub struct IngestAuth {
    /// SHA-256 of each accepted token (comparing digests keeps the compare length-independent).
    tokens: Vec<[u8; 32]>,
    /// When set, the `Host` header must equal this (case-insensitive).
    host: Option<String>,
}

impl std::fmt::Debug for IngestAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestAuth")
            .field("tokens", &self.tokens.len())
            .field("host", &self.host)
            .finish()
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

impl IngestAuth {
    /// Reads the token file: one token a line (blank lines and `#` comments ignored); each
    /// token is visible ASCII, at least [`MIN_TOKEN_BYTES`] long.
    pub fn from_token_file(path: &Path) -> Result<Vec<[u8; 32]>, TokenFileError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
            path: name.clone(),
            source,
        })?;
        let mut tokens = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let invalid = |reason| TokenFileError::Invalid {
                path: name.clone(),
                line: i + 1,
                reason,
            };
            if !t.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(invalid("a token is visible ASCII without spaces"));
            }
            if t.len() < MIN_TOKEN_BYTES {
                return Err(invalid("a token is at least 16 characters"));
            }
            tokens.push(digest(t.as_bytes()));
        }
        if tokens.is_empty() {
            return Err(TokenFileError::Empty { path: name });
        }
        Ok(tokens)
    }

    pub fn new(tokens: Vec<[u8; 32]>, host: Option<String>) -> Self {
        IngestAuth {
            tokens,
            host: host.map(|h| h.to_ascii_lowercase()),
        }
    }

    /// Whether a bearer token is required.
    pub fn has_tokens(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// Checks the `Host` header (when configured) and the bearer token (when tokens are set).
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        if let Some(expected) = &self.host {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_ascii_lowercase);
            if host.as_deref() != Some(expected.as_str()) {
                return Err(Refusal::Host);
            }
        }
        if self.tokens.is_empty() {
            return Ok(());
        }
        let presented = headers
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes())
            .and_then(|v| {
                let (scheme, rest) = v.split_at(v.len().min(7));
                scheme.eq_ignore_ascii_case(b"bearer ").then_some(rest)
            })
            .ok_or(Refusal::Token)?;
        let d = digest(presented);
        // Every token is compared, whichever matches.
        let matched = self
            .tokens
            .iter()
            .fold(subtle::Choice::from(0), |acc, t| acc | t.ct_eq(&d));
        if bool::from(matched) {
            Ok(())
        } else {
            Err(Refusal::Token)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(auth: Option<&str>, host: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(a).unwrap());
        }
        if let Some(a) = host {
            h.insert(header::HOST, HeaderValue::from_str(a).unwrap());
        }
        h
    }

    #[test]
    fn token_file_rotation_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(
            &path,
            "# rotation\nold-token-0123456789\n\nnew-token-0123456789\n",
        )
        .unwrap();
        let auth = IngestAuth::new(IngestAuth::from_token_file(&path).unwrap(), None);
        assert!(auth
            .check(&headers(Some("Bearer old-token-0123456789"), None))
            .is_ok());
        assert!(auth
            .check(&headers(Some("bearer new-token-0123456789"), None))
            .is_ok());
        for bad in [
            None,
            Some("Bearer old-token-012345678"),
            Some("Basic old-token-0123456789"),
            Some("old-token-0123456789"),
        ] {
            assert_eq!(
                auth.check(&headers(bad, None)),
                Err(Refusal::Token),
                "{bad:?}"
            );
        }
        std::fs::write(&path, "short\n").unwrap();
        let e = IngestAuth::from_token_file(&path).unwrap_err().to_string();
        assert!(e.contains("line 1") && !e.contains("short"), "{e}");
        std::fs::write(&path, "\n# none\n").unwrap();
        assert!(matches!(
            IngestAuth::from_token_file(&path),
            Err(TokenFileError::Empty { .. })
        ));
    }

    #[test]
    fn host_is_checked_when_configured() {
        let auth = IngestAuth::new(Vec::new(), Some("Ingest.Example:8080".into()));
        assert!(auth
            .check(&headers(None, Some("ingest.example:8080")))
            .is_ok());
        assert_eq!(
            auth.check(&headers(None, Some("evil.example"))),
            Err(Refusal::Host)
        );
        assert_eq!(auth.check(&headers(None, None)), Err(Refusal::Host));
    }
}
