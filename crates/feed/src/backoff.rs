//! When to try a failed delivery again: exponential backoff from 1 s,
//! doubling to a cap of 5 minutes, with jitter so that many webhooks failing
//! at once (a receiver's outage) do not retry in step. A receiver's
//! `Retry-After` wins when it gives one. Pure, with the randomness passed in.

use std::time::Duration;

pub const FIRST: Duration = Duration::from_secs(1);
pub const CAP: Duration = Duration::from_secs(300);
/// The longest `Retry-After` honoured: a receiver asking for more is
/// probably wrong, and the feed keeps its place anyway.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The delay before retry number `attempt` (0 for the first retry), before
/// jitter: 1 s, 2 s, 4 s, … up to [`CAP`].
pub fn base(attempt: u32) -> Duration {
    FIRST
        .checked_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX))
        .unwrap_or(CAP)
        .min(CAP)
}

/// "Equal jitter": half the base delay, plus up to the other half at
/// random (`unit` in [0, 1)). Never less than half the base, never above it.
pub fn with_jitter(base: Duration, unit: f64) -> Duration {
    let half = base / 2;
    half + half.mul_f64(unit.clamp(0.0, 1.0))
}

/// The delay before retry `attempt`, with jitter drawn from `rng`.
pub fn delay(attempt: u32, rng: &mut impl rand::Rng) -> Duration {
    with_jitter(base(attempt), rng.random::<f64>())
}

/// [`delay`] with the thread's generator (taken and dropped here, so the
/// caller's future stays `Send`).
pub fn next(attempt: u32) -> Duration {
    delay(attempt, &mut rand::rng())
}

/// A `Retry-After` value: seconds, or an HTTP date (relative to `now`).
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
            (at.with_timezone(&chrono::Utc) - now)
                .to_std()
                .unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_one_second_to_the_cap() {
        let secs: Vec<u64> = (0..12).map(|a| base(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(base(40), CAP, "no overflow however long it fails");
        assert_eq!(base(u32::MAX), CAP);
    }

    #[test]
    fn jitter_stays_between_half_and_whole() {
        let b = Duration::from_secs(8);
        assert_eq!(with_jitter(b, 0.0), Duration::from_secs(4));
        assert_eq!(with_jitter(b, 0.5), Duration::from_secs(6));
        assert!(with_jitter(b, 0.999_999) <= b);
        assert_eq!(with_jitter(b, 7.0), b, "out-of-range randomness is clamped");
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let delays: Vec<Duration> = (0..50).map(|_| delay(3, &mut rng)).collect();
        assert!(
            delays
                .iter()
                .all(|d| *d >= Duration::from_secs(4) && *d <= Duration::from_secs(8))
        );
        assert!(
            delays.iter().any(|d| *d != delays[0]),
            "delays are spread, not in step"
        );
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(parse_retry_after("999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
