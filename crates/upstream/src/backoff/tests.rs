//! Properties of [`Backoff`].

use std::time::Duration;

use proptest::prelude::*;

use super::{Backoff, BackoffError};

fn bounds() -> impl Strategy<Value = (Duration, Duration)> {
    (0u64..10_000, 1u64..100_000).prop_map(|(a, b)| {
        let (initial, max) = if a <= b { (a, b) } else { (b, a) };
        (
            Duration::from_millis(initial),
            Duration::from_millis(max.max(1)),
        )
    })
}

proptest! {
    #[test]
    fn every_delay_lies_within_zero_and_the_cap(
        (initial, max) in bounds(),
        seed in any::<u64>(),
        steps in 1usize..64,
    ) {
        let mut backoff = Backoff::with_rng(initial, max, fastrand::Rng::with_seed(seed)).unwrap();
        for _ in 0..steps {
            let cap = backoff.cap();
            let delay = backoff.next_delay();
            prop_assert!(delay <= cap, "delay {delay:?} above cap {cap:?}");
            prop_assert!(cap <= max);
        }
    }

    #[test]
    fn the_cap_grows_and_saturates_at_max(
        (initial, max) in bounds(),
        seed in any::<u64>(),
    ) {
        let mut backoff = Backoff::with_rng(initial, max, fastrand::Rng::with_seed(seed)).unwrap();
        prop_assert_eq!(backoff.cap(), initial);
        let mut previous = backoff.cap();
        // Doubling from at least 1 ms reaches any max below 2^40 ms in 40 steps.
        for _ in 0..40 {
            backoff.next_delay();
            prop_assert!(backoff.cap() >= previous, "the cap shrank");
            prop_assert!(backoff.cap() <= max);
            previous = backoff.cap();
        }
        prop_assert_eq!(backoff.cap(), max);
        backoff.next_delay();
        prop_assert_eq!(backoff.cap(), max);
    }

    #[test]
    fn reset_goes_back_to_initial(
        (initial, max) in bounds(),
        seed in any::<u64>(),
        steps in 0usize..20,
    ) {
        let mut backoff = Backoff::with_rng(initial, max, fastrand::Rng::with_seed(seed)).unwrap();
        for _ in 0..steps {
            backoff.next_delay();
        }
        backoff.reset();
        prop_assert_eq!(backoff.cap(), initial);
        prop_assert!(backoff.next_delay() <= initial);
    }

    #[test]
    fn the_retry_floor_is_honoured(
        (initial, max) in bounds(),
        seed in any::<u64>(),
        floor_ms in 0u64..200_000,
    ) {
        let floor = Duration::from_millis(floor_ms);
        let mut backoff = Backoff::with_rng(initial, max, fastrand::Rng::with_seed(seed)).unwrap();
        for _ in 0..8 {
            let cap = backoff.cap();
            let delay = backoff.next_delay_at_least(floor);
            prop_assert!(delay >= floor);
            prop_assert!(delay <= cap.max(floor));
        }
    }
}

#[test]
fn invalid_bounds_are_refused() {
    let ms = Duration::from_millis;
    assert_eq!(
        Backoff::try_new(ms(0), ms(0)).unwrap_err(),
        BackoffError::ZeroMax
    );
    assert_eq!(
        Backoff::try_new(ms(500), ms(100)).unwrap_err(),
        BackoffError::InitialAboveMax {
            initial: ms(500),
            max: ms(100)
        }
    );
    assert!(Backoff::try_new(ms(100), ms(100)).is_ok());
}

#[test]
fn saturate_jumps_to_max() {
    let mut backoff = Backoff::try_new(Duration::from_millis(10), Duration::from_secs(5)).unwrap();
    backoff.saturate();
    assert_eq!(backoff.cap(), Duration::from_secs(5));
}
