//! `IP` or `IP/PREFIX` (a network), for `trusted_proxies`.

use std::fmt;
use std::net::IpAddr;

use thiserror::Error;

/// An IP network: an address and a prefix length (`10.0.0.0/8`,
/// `2001:db8::/32`); a bare address is its own network (`/32`, `/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpCidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a network could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CidrError {
    /// Not an IP address (before the `/`).
    #[error(
        "`{0}` is not an IP address or network (write 10.0.0.0/8, 192.0.2.7 or 2001:db8::/32)"
    )]
    Address(String),
    /// The prefix is not a number within the address's length.
    #[error("`{0}`: the prefix length must be 0 to {1}")]
    Prefix(String, u8),
    /// Bits are set after the prefix (`10.0.0.1/8`): a typo for the host or for the prefix.
    #[error("`{0}` has bits set after its /{1} prefix; did you mean {2}?")]
    HostBits(String, u8, String),
}

// === impl IpCidr ===

impl IpCidr {
    /// Reads `IP` or `IP/PREFIX`.
    pub fn parse(text: &str) -> Result<Self, CidrError> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| CidrError::Address(text.to_owned()))?;
        let max = match network {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        let prefix = match prefix {
            None => max,
            Some(prefix) => prefix
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| CidrError::Prefix(text.to_owned(), max))?,
        };
        let cidr = Self { network, prefix };
        let masked = cidr.masked(network);
        if masked != network {
            return Err(CidrError::HostBits(
                text.to_owned(),
                prefix,
                format!("{masked}/{prefix}"),
            ));
        }
        Ok(cidr)
    }

    /// Whether `ip` is in this network (an IPv4-mapped IPv6 address counts
    /// as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.masked(ip) == self.network
    }

    /// `ip` with the bits after the prefix cleared; an address of the other
    /// family is returned as it is (it is never equal to the network).
    fn masked(&self, ip: IpAddr) -> IpAddr {
        match (self.network, ip) {
            (IpAddr::V4(_), IpAddr::V4(v4)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(v4) & mask).into())
            }
            (IpAddr::V6(_), IpAddr::V6(v6)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
            _ => ip,
        }
    }
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn networks_and_addresses() {
        let net = IpCidr::parse("10.0.0.0/8").unwrap();
        assert!(net.contains(ip("10.1.2.3")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(net.contains(ip("::ffff:10.9.9.9")));
        assert!(!net.contains(ip("2001:db8::1")));
        let host = IpCidr::parse("192.0.2.7").unwrap();
        assert!(host.contains(ip("192.0.2.7")) && !host.contains(ip("192.0.2.8")));
        let v6 = IpCidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        assert!(IpCidr::parse("0.0.0.0/0")
            .unwrap()
            .contains(ip("203.0.113.9")));
        assert_eq!(v6.to_string(), "2001:db8::/32");
    }

    #[test]
    fn mistakes_are_named() {
        assert!(matches!(
            IpCidr::parse("lb.internal"),
            Err(CidrError::Address(_))
        ));
        assert!(matches!(
            IpCidr::parse("10.0.0.0/33"),
            Err(CidrError::Prefix(_, 32))
        ));
        assert!(matches!(
            IpCidr::parse("10.0.0.0/x"),
            Err(CidrError::Prefix(_, 32))
        ));
        let err = IpCidr::parse("10.0.0.1/8").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`10.0.0.1/8` has bits set after its /8 prefix; did you mean 10.0.0.0/8?"
        );
    }
}
