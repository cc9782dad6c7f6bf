//! Per-client-address limits on the fan-out routes: concurrent event
//! streams (`limits.max_streams_per_address`) and the rate of new topics
//! (`limits.new_topics_per_address`).
//!
//! An address is an IPv4 address, or an IPv6 /64 (one customer's prefix:
//! per single IPv6 address, a client with a /64 would have 2^64 budgets).
//! IPv4-mapped IPv6 addresses count as their IPv4 address.
//!
//! The rate of new topics is kept exactly per address by `governor`'s keyed
//! GCRA limiter: an address may open `max` topics at once and then one more
//! every `per / max` (a token bucket, no window edges to burst across). A
//! refused request costs the address nothing, so a flood from other
//! addresses can never use up anyone's allowance (an estimator such as a
//! count-min sketch can: its collisions count other addresses' requests).
//! Only requests that would open a topic are asked: joining an open topic is
//! never limited by it. Addresses whose allowance is whole again are dropped
//! from the table every [`PRUNE_EVERY`], so it holds only the addresses that
//! opened topics lately.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;
use sse_gateway_config::TopicOpenRate;

/// How often addresses with a whole allowance are dropped from the table.
pub(crate) const PRUNE_EVERY: Duration = Duration::from_secs(10);

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
    limiter: DefaultKeyedRateLimiter<AddressKey>,
    last_prune: Mutex<Instant>,
}

// === impl AddressKey ===

impl std::fmt::Display for AddressKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => v4.fmt(f),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

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
    /// At most `limit.max` new topics per address at once, then one more
    /// every `limit.per / limit.max`.
    pub(crate) fn new(limit: TopicOpenRate) -> Self {
        let burst = NonZeroU32::new(limit.max).unwrap_or(NonZeroU32::MIN);
        let every = (limit.per / burst.get()).max(Duration::from_nanos(1));
        let quota = Quota::with_period(every)
            .unwrap_or_else(|| Quota::per_second(burst))
            .allow_burst(burst);
        Self {
            limiter: RateLimiter::keyed(quota),
            last_prune: Mutex::new(Instant::now()),
        }
    }

    /// Takes one new topic from `key`'s allowance; false (and nothing
    /// taken) when it has none left.
    pub(crate) fn allow(&self, key: AddressKey) -> bool {
        self.prune_now_and_then();
        self.limiter.check_key(&key).is_ok()
    }

    fn prune_now_and_then(&self) {
        let now = Instant::now();
        let Some(mut last) = self.last_prune.try_lock() else {
            return; // someone else is pruning
        };
        if now.duration_since(*last) < PRUNE_EVERY {
            return;
        }
        *last = now;
        drop(last);
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// Addresses in the table.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.limiter.len()
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
    fn the_new_topic_rate_refuses_past_its_max_and_refusals_cost_nothing() {
        let rate = NewTopicRate::new(TopicOpenRate {
            max: 3,
            per: Duration::from_secs(60),
        });
        let a = key("192.0.2.1");
        assert!((0..3).all(|_| rate.allow(a)));
        assert!(!rate.allow(a));
        assert!(rate.allow(key("192.0.2.2")), "each address has its own");
        // A flood of refused requests from many addresses leaves a fresh
        // address's allowance whole.
        for n in 0..5000u32 {
            let flood = AddressKey::of(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n)));
            for _ in 0..4 {
                rate.allow(flood);
            }
        }
        let fresh = key("192.0.2.3");
        assert!((0..3).all(|_| rate.allow(fresh)));
    }

    #[test]
    fn the_allowance_comes_back_and_whole_addresses_are_pruned() {
        let rate = NewTopicRate::new(TopicOpenRate {
            max: 2,
            per: Duration::from_millis(200),
        });
        let a = key("192.0.2.1");
        assert!(rate.allow(a) && rate.allow(a));
        assert!(!rate.allow(a));
        std::thread::sleep(Duration::from_millis(250));
        assert!(rate.allow(a), "one back every 100 ms");
        assert_eq!(rate.tracked(), 1);
        std::thread::sleep(Duration::from_millis(250));
        *rate.last_prune.lock() = Instant::now() - PRUNE_EVERY;
        rate.prune_now_and_then();
        assert_eq!(rate.tracked(), 0, "a whole allowance is not kept");
    }
}
