//! Rules on target endpoints and API-key headers that a JSON Schema cannot say: one
//! implementation, used by `callbacks validate-config` and by `callbacks serve` (at start-up
//! and on every reload), and by the delivery egress guard for resolved addresses
//! ([`is_public`]). Problems name the field; API key values never appear in them.

use std::net::IpAddr;

use super::{ClientSettings, ConfigProblem};

/// What a server allows beyond the strict rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointPolicy {
    /// `http://` endpoints (`--allow-http`; local development and tests only).
    pub allow_http: bool,
    /// Loopback, private, link-local and other non-public addresses (`--allow-private-egress`).
    pub allow_private: bool,
}

/// Whether `ip` is a public unicast address: not loopback, private (RFC 1918, fc00::/7),
/// link-local (169.254/16 with the cloud metadata address, fe80::/10), shared (100.64/10),
/// unspecified, multicast, broadcast, documentation or reserved. IPv4-mapped IPv6 addresses
/// are judged as the IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (18..20).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s0 = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s0 & 0xfe00) == 0xfc00
                || (s0 & 0xffc0) == 0xfe80
                || s0 == 0x2001 && v6.segments()[1] == 0x0db8
                || s0 == 0x0064 && v6.segments()[1] == 0xff9b)
        }
    }
}

/// Checks one endpoint URL.
pub fn check_endpoint(raw: &str, policy: EndpointPolicy) -> Result<(), String> {
    if raw.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err("must not contain control characters or spaces".into());
    }
    let url = url::Url::parse(raw).map_err(|e| format!("is not a valid URL: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_http => {}
        "http" => {
            return Err(
                "must be https:// (start the server with --allow-http for local development)"
                    .into(),
            )
        }
        _ => return Err("must be an https:// URL".into()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials (user:pass@)".into());
    }
    if url.port() == Some(0) {
        return Err("port 0 is not a port".into());
    }
    let ip = match url.host() {
        None => return Err("has no host".into()),
        Some(url::Host::Domain(d)) => {
            if d.eq_ignore_ascii_case("localhost") || d.to_ascii_lowercase().ends_with(".localhost")
            {
                Some(IpAddr::from([127, 0, 0, 1]))
            } else {
                None
            }
        }
        Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
    };
    match ip {
        Some(ip) if !policy.allow_private && !is_public(ip) => Err(format!(
            "the host is the non-public address {ip} (loopback, private, link-local, metadata or reserved); start the server with --allow-private-egress to allow it"
        )),
        _ => Ok(()),
    }
}

/// Header names an API key may not use: hop-by-hop, framing, host, content and signature.
const FORBIDDEN_HEADERS: [&str; 13] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "expect",
    crate::sign::SIGNATURE_HEADER,
    "idempotency-key",
];

/// Checks `apiKey.headerName` (an RFC 9110 token, not a reserved header) and the key itself
/// (visible ASCII). The key's value never appears in the reason.
pub fn check_api_key(header_name: &str, value: &str) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let lower = header_name.to_ascii_lowercase();
    let token = !header_name.is_empty()
        && header_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        out.push((
            "headerName",
            "must be an HTTP header name (a token)".to_string(),
        ));
    } else if FORBIDDEN_HEADERS.contains(&lower.as_str()) || lower.starts_with("content-") {
        out.push((
            "headerName",
            format!("{header_name:?} is a hop-by-hop, framing, host, content or signature header"),
        ));
    }
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic()) {
        out.push((
            "headerValue",
            "must be visible ASCII without spaces or control characters (value not shown)".into(),
        ));
    }
    out
}

/// Every endpoint and API-key problem of a client.
pub fn target_problems(
    source_name: &str,
    client: &ClientSettings,
    policy: EndpointPolicy,
) -> Vec<ConfigProblem> {
    let mut out = Vec::new();
    for (i, t) in client.targets.iter().enumerate() {
        if let Err(reason) = check_endpoint(&t.invocation_endpoint, policy) {
            out.push(ConfigProblem {
                source_name: source_name.to_string(),
                pointer: format!("/targets/{i}/invocationEndpoint"),
                reason,
            });
        }
        for (field, reason) in check_api_key(
            &t.api_key.header_name.to_string(),
            t.api_key.header_value.expose(),
        ) {
            out.push(ConfigProblem {
                source_name: source_name.to_string(),
                pointer: format!("/targets/{i}/apiKey/{field}"),
                reason,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: EndpointPolicy = EndpointPolicy {
        allow_http: false,
        allow_private: false,
    };

    #[test]
    fn ssrf_shaped_endpoints_are_refused() {
        for bad in [
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.1/x",
            "https://192.168.1.1/x",
            "https://172.16.0.1/x",
            "https://127.0.0.1/x",
            "https://localhost/x",
            "https://0.0.0.0/x",
            "https://2130706433/x",
            "https://0x7f000001/x",
            "https://[::1]/x",
            "https://[fd00:ec2::254]/x",
            "https://[fe80::1]/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://100.100.100.200/x",
            "https://224.0.0.1/x",
            "https://255.255.255.255/x",
            "https://user:pass@example.org/x",
            "https://example.org:99999/x",
            "https://example.org/\u{0}x",
            "http://example.org/x",
            "ftp://example.org/x",
        ] {
            assert!(check_endpoint(bad, STRICT).is_err(), "{bad} passed");
        }
        for good in [
            "https://example.org/cb",
            "https://93.184.216.34:8443/cb",
            "https://[2606:4700::1]/cb",
        ] {
            assert_eq!(check_endpoint(good, STRICT), Ok(()), "{good}");
        }
        let local = EndpointPolicy {
            allow_http: true,
            allow_private: true,
        };
        assert_eq!(
            check_endpoint("http://127.0.0.1:9000/callbacks", local),
            Ok(())
        );
        assert!(check_endpoint("http://user:pw@127.0.0.1:9000/", local).is_err());
    }

    #[test]
    fn header_names_and_keys() {
        for bad in [
            "Host",
            "Content-Length",
            "Transfer-Encoding",
            "Connection",
            "Content-Type",
            "X-HMAC-SHA256-Signature",
            "x api key",
            "",
        ] {
            assert!(
                check_api_key(bad, "key")
                    .iter()
                    .any(|(f, _)| *f == "headerName"),
                "{bad:?} passed"
            );
        }
        assert!(check_api_key("x-api-key", "key").is_empty());
        assert!(check_api_key("Authorization", "key").is_empty());
        for bad in ["a\r\nb", "a\u{0}", "with space", "", "é"] {
            let p = check_api_key("x-api-key", bad);
            assert_eq!(p.len(), 1, "{bad:?}");
            assert!(!p[0].1.contains(bad) || bad.is_empty());
        }
    }
}
