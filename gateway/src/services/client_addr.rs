//! Which client a request is counted as, for the per-address limits.
//!
//! The TCP peer, unless it is one of `trusted_proxies` (a load balancer in
//! front of the gateway): then the right-most address of `X-Forwarded-For`
//! that is not itself a trusted proxy (every `X-Forwarded-For` header, in
//! order, as one list). Addresses to the left of that one were written by
//! the client and are not believed. A header that is missing, or whose
//! entry at that place is not an IP address, leaves the peer: a client must
//! not be able to pick the address it is counted under.

use std::net::IpAddr;

use http::HeaderMap;
use sse_gateway_config::IpCidr;

/// The address `peer`'s request is counted under (see the module docs).
pub(crate) fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpCidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if trusted.is_empty() || !is_trusted(peer) {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    for entry in entries.iter().rev() {
        match parse_entry(entry) {
            Some(ip) if is_trusted(ip) => continue,
            Some(ip) => return ip,
            None => return peer,
        }
    }
    peer
}

/// One `X-Forwarded-For` entry: an address, maybe with a port
/// (`192.0.2.7:4711`, `[2001:db8::1]:4711`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse() {
        return Some(ip);
    }
    entry
        .parse::<std::net::SocketAddr>()
        .ok()
        .map(|addr| addr.ip())
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn only_a_trusted_peer_is_looked_through() {
        let trusted = [IpCidr::parse("10.0.0.0/8").unwrap()];
        let forwarded = headers(&["198.51.100.9"]);
        // An untrusted peer is its own client, whatever it claims.
        assert_eq!(
            client_ip(ip("203.0.113.5"), &forwarded, &trusted),
            ip("203.0.113.5")
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), &forwarded, &trusted),
            ip("198.51.100.9")
        );
        assert_eq!(client_ip(ip("10.0.0.2"), &forwarded, &[]), ip("10.0.0.2"));
    }

    #[test]
    fn the_right_most_untrusted_entry_counts() {
        let trusted = [
            IpCidr::parse("10.0.0.0/8").unwrap(),
            IpCidr::parse("2001:db8::/32").unwrap(),
        ];
        let peer = ip("10.0.0.2");
        // The client wrote "1.2.3.4" itself; the first proxy saw 198.51.100.9.
        let chain = headers(&["1.2.3.4, 198.51.100.9", "10.1.1.1"]);
        assert_eq!(client_ip(peer, &chain, &trusted), ip("198.51.100.9"));
        let ports = headers(&["[2001:db9::7]:4711, 10.0.0.9:80"]);
        assert_eq!(client_ip(peer, &ports, &trusted), ip("2001:db9::7"));
        // Garbage where the client address should be: counted as the peer.
        assert_eq!(
            client_ip(peer, &headers(&["nonsense, 10.0.0.9"]), &trusted),
            peer
        );
        assert_eq!(client_ip(peer, &HeaderMap::new(), &trusted), peer);
        // Every hop trusted: the peer.
        assert_eq!(client_ip(peer, &headers(&["10.0.0.7"]), &trusted), peer);
    }
}
