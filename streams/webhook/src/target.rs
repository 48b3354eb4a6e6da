//! Which endpoints a webhook may reach. Unless `allow_private_targets` is set, an endpoint is
//! refused when its host is, or resolves to, any address that is not public: loopback,
//! private (RFC 1918, IPv6 unique-local), link-local (cloud metadata endpoints live there),
//! CGNAT, unspecified, broadcast, multicast, documentation or benchmarking ranges, and the
//! IPv4-mapped forms of these. Every address is checked, not just the first, and the check
//! runs again in the HTTP client's resolver at connect time, so a name that later re-resolves
//! to a private address (DNS rebinding) is refused too.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// Returns whether an address is publicly routable.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return public_v4(v4);
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64
                || s[0] == 0) // ::/16 and the deprecated IPv4-compatible forms
        }
    }
}

fn public_v4(v4: Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    !(v4.is_private()
        || v4.is_loopback()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0
        || (a == 100 && (64..=127).contains(&b)) // CGNAT 100.64/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

/// Why a target is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The URL does not parse or has no host.
    #[error("invalid webhook URL `{0}`")]
    Url(String),
    /// The host does not resolve.
    #[error("cannot resolve {host}: {reason}")]
    Resolve {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
    /// The host is or resolves to an address that is not public.
    #[error(
        "refused webhook target {host}: it resolves to {addr}, which is not a public address (set webhooks.allow_private_targets = true to allow it)"
    )]
    Private {
        /// The host.
        host: String,
        /// The offending address.
        addr: IpAddr,
    },
}

/// Resolves a URL's host and checks every address (unless private targets are allowed).
pub async fn check(
    url: &reqwest::Url,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, TargetError> {
    let host = url
        .host_str()
        .ok_or_else(|| TargetError::Url(url.to_string()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| TargetError::Url(url.to_string()))?;
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| TargetError::Resolve {
                host: host.clone(),
                reason: e.to_string(),
            })?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(TargetError::Resolve {
            host,
            reason: "no addresses".into(),
        });
    }
    if !allow_private && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
        return Err(TargetError::Private {
            host,
            addr: bad.ip(),
        });
    }
    Ok(addrs)
}

/// The HTTP client's resolver: the system's, with every answer checked.
#[derive(Debug)]
pub(crate) struct GuardedResolver {
    pub(crate) allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow_private && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
                return Err(Box::new(TargetError::Private {
                    host,
                    addr: bad.ip(),
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Returns the resolver as reqwest takes it.
pub(crate) fn resolver(allow_private: bool) -> Arc<GuardedResolver> {
    Arc::new(GuardedResolver { allow_private })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn loopback_urls_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:9/hook",
            "http://[::1]:9/",
            "http://localhost:9/",
        ] {
            let url = reqwest::Url::parse(url).unwrap();
            assert!(
                matches!(check(&url, false).await, Err(TargetError::Private { .. })),
                "{url}"
            );
            assert!(check(&url, true).await.is_ok(), "{url}");
        }
    }
}
