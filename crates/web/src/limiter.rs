//! Attempts counted in memory per key over a sliding window, so that
//! guessing stops after a few tries. The portal counts every sign-in post
//! per client ([`Limiter::admit`]); the console counts failed staff
//! sign-ins per e-mail address and per client ([`Limiter::wait`],
//! [`Limiter::count`], [`Limiter::forget`]).
//!
//! A client is the address of the TCP connection ([`client_key`]), never a
//! header such as `X-Forwarded-For` that the client can write itself.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, header};
use axum::response::Response;

/// Beyond this many keys, those quiet for a window are forgotten; if that is
/// not enough, the [`EVICT`] quietest are, so memory stays bounded under a flood.
const MAX_KEYS: usize = 50_000;
const EVICT: usize = MAX_KEYS / 100;

/// `limit` attempts per key in any `window`.
#[derive(Debug)]
pub struct Limiter {
    limit: usize,
    window: Duration,
    seen: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// The key of a client: its address, or its /64 for IPv6 (a client usually
/// holds a whole /64); an IPv4-mapped IPv6 address counts as the IPv4
/// address. A router without connection info (a test harness) has no
/// address: every such client is one shared client.
pub fn client_key(ip: Option<IpAddr>) -> String {
    match ip {
        None => "unknown".into(),
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Adds `Retry-After` (whole seconds, at least one) to a refusal.
pub fn retry_after(mut response: Response, wait: Duration) -> Response {
    let secs = wait.as_secs().max(1);
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

impl Limiter {
    pub fn new(limit: usize, window: Duration) -> Self {
        Limiter {
            limit,
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, VecDeque<Instant>>> {
        // A panic while holding the lock leaves counts that are still counts.
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long until `key` may make another attempt (at least a second),
    /// or `None` when it may go on now. Counts nothing.
    pub fn wait(&self, key: &str, now: Instant) -> Option<Duration> {
        let mut map = self.lock();
        let times = map.get_mut(key)?;
        self.wait_for(times, now)
    }

    /// Counts one attempt by `key`.
    pub fn count(&self, key: &str, now: Instant) {
        let mut map = self.lock();
        let times = self.entry(&mut map, key, now);
        times.push_back(now);
        // Only the newest `limit` attempts decide a wait; keep no more.
        while times.len() > self.limit {
            times.pop_front();
        }
    }

    /// Counts one attempt by `key` if it may make one; otherwise
    /// `Err(wait)`, how long until it may. A refused attempt is not counted.
    pub fn admit(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut map = self.lock();
        let times = self.entry(&mut map, key, now);
        if let Some(wait) = self.wait_for(times, now) {
            return Err(wait);
        }
        times.push_back(now);
        Ok(())
    }

    /// Forgets every attempt by `key`.
    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }

    /// Drops the attempts that left the window; the wait when `limit` remain.
    fn wait_for(&self, times: &mut VecDeque<Instant>, now: Instant) -> Option<Duration> {
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            times.pop_front();
        }
        if times.len() < self.limit {
            return None;
        }
        let oldest = times[times.len() - self.limit];
        Some(
            self.window
                .saturating_sub(now.duration_since(oldest))
                .max(Duration::from_secs(1)),
        )
    }

    /// The attempts of `key`, making room for a new key when the map is full.
    fn entry<'m>(
        &self,
        map: &'m mut HashMap<String, VecDeque<Instant>>,
        key: &str,
        now: Instant,
    ) -> &'m mut VecDeque<Instant> {
        if !map.contains_key(key) && map.len() >= MAX_KEYS {
            let window = self.window;
            map.retain(|_, t| t.back().is_some_and(|t| now.duration_since(*t) < window));
            if map.len() >= MAX_KEYS {
                // A flood: forget the quietest in a batch, so that each new
                // key does not cost a pass over the whole map.
                let mut quiet: Vec<(Option<Instant>, String)> = map
                    .iter()
                    .map(|(k, t)| (t.back().copied(), k.clone()))
                    .collect();
                let n = EVICT.min(quiet.len() - 1);
                quiet.select_nth_unstable(n);
                for (_, k) in &quiet[..=n] {
                    map.remove(k);
                }
            }
        }
        map.entry(key.to_string()).or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn a_key_is_stopped_after_its_attempts_until_the_window_passes() {
        let l = Limiter::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(
                l.admit("10.0.0.1", t0 + Duration::from_secs(i)),
                Ok(()),
                "attempt {i}"
            );
        }
        let at = t0 + Duration::from_secs(10);
        assert_eq!(
            l.admit("10.0.0.1", at),
            Err(Duration::from_secs(50)),
            "the fourth attempt waits for the first to age out"
        );
        assert_eq!(l.admit("10.0.0.2", at), Ok(()), "other keys are not");
        // Refused attempts do not count: once the first ages out, one more fits.
        assert_eq!(l.admit("10.0.0.1", t0 + Duration::from_secs(60)), Ok(()));
        assert!(l.admit("10.0.0.1", t0 + Duration::from_secs(60)).is_err());
    }

    #[test]
    fn counting_and_asking_are_separate_and_forgetting_clears_a_key() {
        let l = Limiter::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(l.wait("ann", t0), None, "an unknown key may go on");
        l.count("ann", t0);
        assert_eq!(l.wait("ann", t0), None);
        l.count("ann", t0 + Duration::from_secs(5));
        assert_eq!(
            l.wait("ann", t0 + Duration::from_secs(10)),
            Some(Duration::from_secs(50))
        );
        assert_eq!(l.wait("ann", t0 + Duration::from_secs(61)), None);
        // Counting past the limit keeps only the newest attempts.
        for i in 0..10 {
            l.count("bob", t0 + Duration::from_secs(i));
        }
        assert_eq!(l.lock()["bob"].len(), 2);
        l.forget("ann");
        assert_eq!(l.wait("ann", t0 + Duration::from_secs(10)), None);
        assert!(l.wait("bob", t0 + Duration::from_secs(10)).is_some());
    }

    #[test]
    fn ipv6_clients_count_by_their_64_and_mapped_v4_as_v4() {
        assert_eq!(client_key(ip("2001:db8:1:2::7")), "2001:db8:1:2::/64");
        assert_eq!(
            client_key(ip("2001:db8:1:2::7")),
            client_key(ip("2001:db8:1:2::9"))
        );
        assert_ne!(
            client_key(ip("2001:db8:1:2::7")),
            client_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(client_key(ip("::ffff:192.0.2.1")), "192.0.2.1");
        assert_eq!(client_key(ip("192.0.2.1")), "192.0.2.1");
        assert_eq!(client_key(None), "unknown");
    }

    #[test]
    fn memory_stays_bounded_under_many_keys() {
        let l = Limiter::new(1, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..(MAX_KEYS as u32 + 10) {
            assert!(l.admit(&i.to_string(), t0).is_ok());
        }
        assert!(l.lock().len() <= MAX_KEYS);
        for i in 0..(EVICT as u32 * 3) {
            l.count(&format!("c{i}"), t0 + Duration::from_secs(1));
        }
        assert!(l.lock().len() <= MAX_KEYS);
        assert!(
            l.lock().contains_key(&format!("c{}", EVICT * 3 - 1)),
            "the newest key is kept"
        );
    }

    #[test]
    fn retry_after_is_whole_seconds_and_never_zero() {
        let r = retry_after(Response::default(), Duration::from_millis(300));
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        let r = retry_after(Response::default(), Duration::from_secs(50));
        assert_eq!(r.headers()[header::RETRY_AFTER], "50");
    }
}
