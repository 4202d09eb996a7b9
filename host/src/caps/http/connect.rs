//! Where and how a plugin's requests connect: the client each plugin gets, its resolver (which lets a request reach
//! only public addresses, or the ones a grant names exactly, so the connection goes to the addresses that were
//! checked), and the one TLS set-up every client shares.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Once, OnceLock};
use std::time::Duration;

use crate::grants::OriginPattern;

/// A client for a plugin granted `allow`, with host names in `pinned` resolved to those addresses; requests time out
/// connecting after `connect_timeout`. Redirects are not followed (the caller follows them, checking each hop).
pub(super) fn client(
    allow: Arc<[OriginPattern]>,
    pinned: Arc<BTreeMap<String, Vec<IpAddr>>>,
    connect_timeout: Duration,
) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(shared_tls()?)
        // An environment proxy would connect on our behalf to addresses we never checked.
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(GuardedResolver { allow, pinned })
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        .user_agent(concat!("plughost/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())
}

/// Makes ring the process's rustls provider (reqwest is built without one). Idempotent.
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // `Err` means some provider is installed already, which is all reqwest needs.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The TLS set-up every plugin's client shares: rustls with ring, the system's root certificates (what reqwest
/// itself would use: the platform verifier), HTTP/1.1. Built once per process, on the first request of any plugin;
/// reading and parsing the roots took ~4 ms, which every plugin granted `http` paid at every load.
fn shared_tls() -> Result<rustls::ClientConfig, String> {
    static TLS: OnceLock<Result<rustls::ClientConfig, String>> = OnceLock::new();
    TLS.get_or_init(|| {
        install_crypto_provider();
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
        let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
            .map_err(|e| format!("the system's root certificates: {e}"))?;
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(tls)
    })
    .clone()
}

/// Whether an address is on the public internet. Loopback, private, link-local, shared (CGNAT), unspecified,
/// broadcast, multicast, documentation and reserved ranges are not; IPv4-mapped and NAT64 IPv6 addresses are
/// judged by the IPv4 address inside.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    // NAT64 well-known prefix 64:ff9b::/96.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        return is_public_v4(Ipv4Addr::new(a, b, c, d));
    }
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || s[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible and reserved
}

/// The resolver's refusal: a name resolved to an address that no grant names.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to {addr}, a non-public address that no grant names explicitly")]
pub(super) struct NonPublicAddress {
    host: String,
    addr: IpAddr,
}

/// DNS through tokio (getaddrinfo), or the pinned addresses, then the public-address check.
struct GuardedResolver {
    allow: Arc<[OriginPattern]>,
    pinned: Arc<BTreeMap<String, Vec<IpAddr>>>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let explicit = self.allow.iter().any(|o| o.names_host_exactly(&host));
        let pinned = self.pinned.get(&host).cloned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = match pinned {
                Some(ips) => ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect(),
                None => tokio::net::lookup_host((host.as_str(), 0)).await?.collect(),
            };
            if !explicit && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
                return Err(Box::new(NonPublicAddress {
                    host,
                    addr: bad.ip(),
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn public_and_non_public_addresses() {
        for s in [
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
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "::127.0.0.1",
        ] {
            assert!(!is_public(ip(s)), "{s} must not count as public");
        }
        for s in [
            "1.1.1.1",
            "104.16.132.229",
            "2606:4700::6810:84e5",
            "::ffff:1.1.1.1",
        ] {
            assert!(is_public(ip(s)), "{s} is public");
        }
    }
}
