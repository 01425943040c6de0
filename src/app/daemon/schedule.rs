//! When the next scheduled cycle is due: the configured interval, jittered.

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

/// `interval` ± 10 %, uniformly: agents started together (a fleet rebooted at once) drift apart
/// instead of hitting the sources in lockstep. Exact in nanoseconds; saturates instead of
/// overflowing.
pub fn jittered<R: Rng + ?Sized>(interval: Duration, rng: &mut R) -> Duration {
    let nanos = interval.as_nanos();
    let spread = nanos / 10;
    let offset = rng.random_range(0..=2 * spread);
    let total = nanos - spread + offset;
    match u64::try_from(total / 1_000_000_000) {
        // The remainder is below 10^9, so it fits.
        Ok(secs) => Duration::new(secs, (total % 1_000_000_000) as u32),
        Err(_) => Duration::MAX,
    }
}

/// When the next scheduled cycle is due: a jittered `interval` from now. An interval too long
/// for the clock lands far in the future instead of panicking.
pub fn next_wakeup<R: Rng + ?Sized>(interval: Duration, rng: &mut R) -> Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    let now = Instant::now();
    now.checked_add(jittered(interval, rng))
        .or_else(|| now.checked_add(FAR))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    proptest! {
        #[test]
        fn jitter_stays_within_ten_percent(nanos in 0u64..=u64::MAX, seed in any::<u64>()) {
            let interval = Duration::from_nanos(nanos);
            let mut rng = SmallRng::seed_from_u64(seed);
            let got = jittered(interval, &mut rng);
            let spread = interval.as_nanos() / 10;
            prop_assert!(got.as_nanos() >= interval.as_nanos() - spread);
            prop_assert!(got.as_nanos() <= interval.as_nanos() + spread);
        }
    }

    #[test]
    fn jitter_spreads_and_saturates() {
        let mut rng = SmallRng::seed_from_u64(7);
        let minute = Duration::from_secs(60);
        let samples: Vec<Duration> = (0..1000).map(|_| jittered(minute, &mut rng)).collect();
        let (min, max) = (samples.iter().min(), samples.iter().max());
        assert!(min < Some(&Duration::from_secs(55)), "{min:?}");
        assert!(max > Some(&Duration::from_secs(65)), "{max:?}");
        assert_eq!(jittered(Duration::ZERO, &mut rng), Duration::ZERO);
        assert!(jittered(Duration::MAX, &mut rng) >= Duration::MAX.mul_f64(0.89));
        let _ = next_wakeup(Duration::MAX, &mut rng);
    }
}
