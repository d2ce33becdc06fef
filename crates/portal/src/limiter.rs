//! Sign-in posts counted per client address in memory, beside the
//! per-identifier limit on codes (`kith_web::auth::codes`): that one stops a
//! guesser hammering one identifier, this one stops one client walking
//! through many identifiers or guessing codes for them.
//!
//! The client is the address of the TCP connection, never a header such as
//! `X-Forwarded-For` that the client can write itself.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Sign-in posts (asking for a code, typing a code) one client may make per window.
pub const PER_CLIENT: usize = 10;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Beyond this many clients, those quiet for a window are forgotten; if that
/// is not enough, the oldest are, so memory stays bounded under a flood.
const MAX_CLIENTS: usize = 50_000;

#[derive(Debug)]
pub struct Limiter {
    limit: usize,
    window: Duration,
    seen: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter::new(PER_CLIENT, WINDOW)
    }
}

/// IPv6 clients usually hold a whole /64, so they are counted by it; an
/// unknown client (no connection address) is one shared client.
fn client_key(ip: Option<IpAddr>) -> String {
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

impl Limiter {
    pub fn new(limit: usize, window: Duration) -> Self {
        Limiter {
            limit,
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one sign-in post from `client` and says whether it may go on:
    /// `Err(wait)` when the client has used up its window, with how long until
    /// it may try again. A refused post is not counted.
    pub fn admit(&self, client: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        // A panic while holding the lock leaves counts that are still counts.
        let mut map = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let key = client_key(client);
        if !map.contains_key(&key) && map.len() >= MAX_CLIENTS {
            let window = self.window;
            map.retain(|_, t| t.back().is_some_and(|t| now.duration_since(*t) < window));
            if map.len() >= MAX_CLIENTS
                && let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, t)| t.back().copied())
                    .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        let times = map.entry(key).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            times.pop_front();
        }
        if times.len() >= self.limit {
            let oldest = times[times.len() - self.limit];
            return Err(self
                .window
                .saturating_sub(now.duration_since(oldest))
                .max(Duration::from_secs(1)));
        }
        times.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn a_client_is_stopped_after_its_posts_until_the_window_passes() {
        let l = Limiter::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(
                l.admit(ip("10.0.0.1"), t0 + Duration::from_secs(i)),
                Ok(()),
                "post {i}"
            );
        }
        let at = t0 + Duration::from_secs(10);
        assert_eq!(
            l.admit(ip("10.0.0.1"), at),
            Err(Duration::from_secs(50)),
            "the fourth post waits for the first to age out"
        );
        assert_eq!(l.admit(ip("10.0.0.2"), at), Ok(()), "other clients are not");
        // Refused posts do not count: once the first ages out, one more fits.
        assert_eq!(
            l.admit(ip("10.0.0.1"), t0 + Duration::from_secs(60)),
            Ok(())
        );
        assert!(
            l.admit(ip("10.0.0.1"), t0 + Duration::from_secs(60))
                .is_err()
        );
    }

    #[test]
    fn ipv6_clients_count_by_their_64_and_mapped_v4_as_v4() {
        let l = Limiter::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(l.admit(ip("2001:db8:1:2::7"), t0).is_ok());
        assert!(l.admit(ip("2001:db8:1:2::8"), t0).is_ok());
        assert!(l.admit(ip("2001:db8:1:2::9"), t0).is_err());
        assert!(l.admit(ip("2001:db8:1:3::1"), t0).is_ok());
        assert!(l.admit(ip("192.0.2.1"), t0).is_ok());
        assert!(l.admit(ip("::ffff:192.0.2.1"), t0).is_ok());
        assert!(l.admit(ip("192.0.2.1"), t0).is_err());
    }

    #[test]
    fn memory_stays_bounded_under_many_clients() {
        let l = Limiter::new(1, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..(MAX_CLIENTS as u32 + 10) {
            let a = IpAddr::from(i.to_be_bytes());
            assert!(l.admit(Some(a), t0).is_ok());
        }
        assert!(l.seen.lock().unwrap().len() <= MAX_CLIENTS);
    }
}
