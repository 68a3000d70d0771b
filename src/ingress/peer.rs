//! Who a request comes from, for the limits that are kept per client: the address of the
//! connection's peer, or, when that peer is a proxy named by `--trusted-proxies`, the client
//! address the proxy wrote into `X-Forwarded-For`. Nobody is trusted by default, so a client
//! cannot pick its own address by sending the header.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

use crate::config::TrustedProxy;

/// The peer address of the connection a request arrived on; the server loop puts it in every
/// request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<TrustedProxy>);

impl TrustedProxies {
    pub fn new(proxies: &[TrustedProxy]) -> Self {
        Self(proxies.to_vec())
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|p| p.contains(ip))
    }

    /// The client a request from `peer` with `headers` stands for. From a trusted proxy, the
    /// `X-Forwarded-For` list is read from its end (the hop nearest to this service) back, past
    /// the trusted proxies, to the first address that is not one; an entry that is not an
    /// address stops the walk at the hop before it. From anyone else, the peer itself.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = canonical(peer);
        if !self.trusts(client) {
            return client;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                break;
            };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port (`[::1]:80`, `1.2.3.4:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    hop.parse::<SocketAddr>().ok().map(|s| canonical(s.ip()))
}

/// An IPv4 address mapped into IPv6 (`::ffff:1.2.3.4`, as a dual-stack listener reports it) is
/// the IPv4 address, so one client has one key.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies(list.iter().map(|p| p.parse().expect("a proxy")).collect())
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", v.parse().expect("a header value"));
        }
        headers
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let none = TrustedProxies::default();
        let headers = forwarded(&["203.0.113.9"]);
        assert_eq!(none.client(ip("127.0.0.1"), &headers), ip("127.0.0.1"));
    }

    #[test]
    fn a_peer_that_is_not_trusted_cannot_name_its_client() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let headers = forwarded(&["203.0.113.9"]);
        assert_eq!(trusted.client(ip("192.0.2.1"), &headers), ip("192.0.2.1"));
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_hop_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8", "192.0.2.7"]);
        // The client wrote a lie first; the proxies appended what they saw.
        let headers = forwarded(&["198.51.100.1, 203.0.113.9", "10.1.2.3"]);
        assert_eq!(trusted.client(ip("192.0.2.7"), &headers), ip("203.0.113.9"));
        assert_eq!(
            trusted.client(ip("10.0.0.1"), &forwarded(&["203.0.113.9:4711"])),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn a_malformed_hop_stops_at_the_hop_before_it() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let headers = forwarded(&["203.0.113.9, garbage, 10.0.0.2"]);
        assert_eq!(trusted.client(ip("10.0.0.1"), &headers), ip("10.0.0.2"));
        assert_eq!(
            trusted.client(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn mapped_ipv4_is_the_ipv4_address() {
        let trusted = proxies(&["127.0.0.1"]);
        assert!(trusted.trusts(ip("::ffff:127.0.0.1")));
        assert!("nonsense".parse::<TrustedProxy>().is_err());
        assert!("fd00::/8".parse::<TrustedProxy>().is_ok());
    }
}
