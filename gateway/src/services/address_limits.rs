//! Per-client-address limits on the fan-out routes: concurrent event
//! streams (`limits.max_streams_per_address`) and the rate of new topics
//! (`limits.new_topics_per_address`).
//!
//! An address is an IPv4 address, or an IPv6 /64 (one customer's prefix:
//! per single IPv6 address, a client with a /64 would have 2^64 budgets).
//! IPv4-mapped IPv6 addresses count as their IPv4 address.
//!
//! The rate of new topics is estimated with pingora-limits' [`Rate`] (a
//! count-min sketch per window: fixed memory whatever the number of
//! addresses; a collision can only overestimate, never let a flood through).
//! Only requests that would open a topic are counted: joining an open topic
//! is never limited by it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use parking_lot::Mutex;
use pingora_limits::rate::Rate;
use sse_gateway_config::TopicOpenRate;

/// The address a limit counts: an IPv4 address or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct AddressKey(IpAddr);

/// Concurrent event streams per address.
pub(crate) struct AddressStreams {
    max: usize,
    counts: Mutex<HashMap<AddressKey, usize>>,
}

/// One stream's place in its address's count; dropped when the stream ends.
pub(crate) struct StreamSlot {
    streams: Arc<AddressStreams>,
    key: AddressKey,
}

/// New topics per address per window.
pub(crate) struct NewTopicRate {
    rate: Rate,
    max: isize,
}

// === impl AddressKey ===

impl AddressKey {
    /// The key of a client address.
    pub(crate) fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !u128::from(u64::MAX);
                    Self(IpAddr::V6(Ipv6Addr::from(prefix)))
                }
            },
        }
    }
}

// === impl AddressStreams ===

impl AddressStreams {
    /// At most `max` streams per address.
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            counts: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more stream from `key`, or `None` when it has `max`.
    pub(crate) fn try_open(self: &Arc<Self>, key: AddressKey) -> Option<StreamSlot> {
        let mut counts = self.counts.lock();
        let count = counts.entry(key).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(StreamSlot {
            streams: self.clone(),
            key,
        })
    }

    /// Streams open from `key`.
    #[cfg(test)]
    fn count(&self, key: AddressKey) -> usize {
        self.counts.lock().get(&key).copied().unwrap_or(0)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut counts = self.streams.counts.lock();
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

// === impl NewTopicRate ===

impl NewTopicRate {
    /// At most `limit.max` new topics per address per `limit.per`.
    pub(crate) fn new(limit: TopicOpenRate) -> Self {
        Self {
            rate: Rate::new(limit.per),
            max: isize::try_from(limit.max).unwrap_or(isize::MAX),
        }
    }

    /// Counts one new topic for `key`; false when it is over the rate.
    pub(crate) fn allow(&self, key: AddressKey) -> bool {
        self.rate.observe(&key, 1) <= self.max
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn key(text: &str) -> AddressKey {
        AddressKey::of(text.parse().unwrap())
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
        assert_ne!(key("192.0.2.7"), key("192.0.2.8"));
    }

    #[test]
    fn streams_are_counted_per_address_and_released() {
        let streams = AddressStreams::new(2);
        let a = key("192.0.2.1");
        let first = streams.try_open(a).unwrap();
        let _second = streams.try_open(a).unwrap();
        assert!(streams.try_open(a).is_none(), "a third is over the limit");
        assert!(
            streams.try_open(key("192.0.2.2")).is_some(),
            "another address"
        );
        drop(first);
        assert_eq!(streams.count(a), 1);
        assert!(streams.try_open(a).is_some());
    }

    #[test]
    fn the_new_topic_rate_refuses_past_its_max_per_window() {
        let rate = NewTopicRate::new(TopicOpenRate {
            max: 3,
            per: Duration::from_secs(60),
        });
        let a = key("192.0.2.1");
        assert!((0..3).all(|_| rate.allow(a)));
        assert!(!rate.allow(a));
        assert!(rate.allow(key("192.0.2.2")), "each address has its own");
    }
}
