//! The egress guard, on every connection: the HTTP client resolves host names through
//! [`GuardedResolver`], which drops every address that is not public ([`is_public`], the same
//! rule `validate-config` applies to literal addresses) and refuses the name when none is left
//! — so a name that passes validation and later resolves to 127.0.0.1 or the metadata address
//! (DNS rebinding) is never connected to. Literal-IP endpoints never reach a resolver; they
//! are checked when the request starts ([`Egress::check_url`]). One implementation for
//! `callbacks serve` and the delivery Lambda.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::config::rules::is_public;

/// What a sender may connect to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Egress {
    /// `http://` endpoints (`--allow-http`; local development and tests only).
    pub allow_http: bool,
    /// Loopback, private, link-local and other non-public addresses
    /// (`--allow-private-egress`; the Lambda's `ALLOW_PRIVATE_EGRESS`).
    pub allow_private: bool,
    /// Host names answered without DNS (`--resolve NAME=IP`, as `curl --resolve`); the
    /// addresses still pass the guard.
    pub pins: Arc<BTreeMap<String, Vec<IpAddr>>>,
}

/// A connection the guard refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    #[error("egress refused: {host} resolves only to non-public addresses ({addrs}); --allow-private-egress allows them")]
    NonPublic { host: String, addrs: String },
    #[error("egress refused: {0} is a non-public address; --allow-private-egress allows it")]
    Literal(IpAddr),
}

impl Egress {
    /// The addresses of `host` this guard lets a connection use (all of them when private
    /// egress is allowed); an error when none is left.
    pub fn admit(
        &self,
        host: &str,
        addrs: impl IntoIterator<Item = SocketAddr>,
    ) -> Result<Vec<SocketAddr>, EgressError> {
        let all: Vec<SocketAddr> = addrs.into_iter().collect();
        if self.allow_private {
            return Ok(all);
        }
        let (public, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
            all.into_iter().partition(|a| is_public(a.ip()));
        if public.is_empty() {
            let addrs: Vec<String> = refused.iter().map(|a| a.ip().to_string()).collect();
            return Err(EgressError::NonPublic {
                host: host.to_string(),
                addrs: addrs.join(", "),
            });
        }
        Ok(public)
    }

    /// Refuses a URL whose host is a literal non-public address (such a URL never reaches
    /// the resolver). Unparseable URLs are left to the HTTP client to report.
    pub fn check_url(&self, url: &str) -> Result<(), EgressError> {
        if self.allow_private {
            return Ok(());
        }
        let ip = match url::Url::parse(url)
            .ok()
            .and_then(|u| u.host().map(|h| h.to_owned()))
        {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            _ => return Ok(()),
        };
        if is_public(ip) {
            Ok(())
        } else {
            Err(EgressError::Literal(ip))
        }
    }

    /// The resolver to install in a `reqwest` client.
    pub fn resolver(&self) -> GuardedResolver {
        GuardedResolver(self.clone())
    }
}

/// A `reqwest` resolver: the pinned addresses or the system's (`getaddrinfo`), then
/// [`Egress::admit`].
#[derive(Debug, Clone)]
pub struct GuardedResolver(Egress);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let egress = self.0.clone();
        let host = name.as_str().to_ascii_lowercase();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = match egress.pins.get(&host) {
                Some(ips) => ips.iter().map(|ip| SocketAddr::new(*ip, 0)).collect(),
                None => tokio::net::lookup_host((host.as_str(), 0)).await?.collect(),
            };
            let admitted = egress.admit(&host, addrs)?;
            Ok(Box::new(admitted.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pinned(allow_private: bool, pins: &[(&str, &[IpAddr])]) -> Egress {
        Egress {
            allow_http: false,
            allow_private,
            pins: Arc::new(
                pins.iter()
                    .map(|(h, ips)| (h.to_string(), ips.to_vec()))
                    .collect(),
            ),
        }
    }

    async fn resolve(egress: &Egress, host: &str) -> Result<Vec<IpAddr>, String> {
        let name: Name = host.parse().map_err(|_| "bad name".to_string())?;
        match egress.resolver().resolve(name).await {
            Ok(addrs) => Ok(addrs.map(|a| a.ip()).collect()),
            Err(e) => Err(e.to_string()),
        }
    }

    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const METADATA: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(169, 254, 169, 254));
    const PUBLIC: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(93, 184, 216, 34));

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_unless_allowed() {
        // The system resolver: `localhost` is 127.0.0.1 / ::1 on every machine.
        let err = resolve(&Egress::default(), "localhost").await.unwrap_err();
        assert!(err.contains("egress refused: localhost resolves only to non-public addresses"));
        assert!(err.contains("--allow-private-egress"), "{err}");
        let allowed = resolve(&pinned(true, &[]), "localhost").await.unwrap();
        assert!(allowed.iter().all(|ip| ip.is_loopback()) && !allowed.is_empty());
        // DNS rebinding: a name that passed validation now answers with internal addresses.
        let rebind = pinned(false, &[("rebind.example", &[LOOPBACK, METADATA])]);
        let err = resolve(&rebind, "Rebind.Example").await.unwrap_err();
        assert!(err.contains("127.0.0.1, 169.254.169.254"), "{err}");
    }

    #[tokio::test]
    async fn only_public_addresses_of_a_mixed_answer_are_used() {
        let mixed = pinned(false, &[("mixed.example", &[LOOPBACK, PUBLIC, METADATA])]);
        assert_eq!(
            resolve(&mixed, "mixed.example").await.unwrap(),
            vec![PUBLIC]
        );
    }

    #[test]
    fn literal_addresses_are_checked_at_request_time() {
        let strict = Egress::default();
        for bad in [
            "https://127.0.0.1:8443/x",
            "https://169.254.169.254/latest",
            "https://[::1]/x",
            "https://[fd00::1]/x",
            "https://10.1.2.3/x",
        ] {
            assert!(
                matches!(strict.check_url(bad), Err(EgressError::Literal(_))),
                "{bad}"
            );
        }
        assert_eq!(strict.check_url("https://93.184.216.34/x"), Ok(()));
        assert_eq!(strict.check_url("https://example.org/x"), Ok(()));
        assert_eq!(pinned(true, &[]).check_url("https://127.0.0.1/x"), Ok(()));
    }
}
