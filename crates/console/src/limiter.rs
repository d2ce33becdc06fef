//! Failed staff sign-ins, counted per e-mail address and per client address
//! in memory, so password guessing stops after a few tries. Counting both
//! keys stops one address guessing many accounts and many addresses guessing
//! one. Unknown e-mail addresses are counted like known ones, so the limiter
//! says nothing about which accounts exist.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed attempts allowed per e-mail address in one window.
pub const PER_EMAIL: usize = 5;
/// Failed attempts allowed per client address (or IPv6 /64) in one window.
pub const PER_CLIENT: usize = 20;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Beyond this many keys, expired ones are dropped; if that is not enough,
/// new e-mail keys are not tracked (the per-client limit still holds).
const MAX_KEYS: usize = 50_000;

#[derive(Debug)]
pub struct Limiter {
    per_email: usize,
    per_client: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter::new(PER_EMAIL, PER_CLIENT, WINDOW)
    }
}

fn email_key(email: &str) -> String {
    format!("email:{}", email.trim().to_lowercase())
}

/// IPv6 clients usually hold a whole /64, so they are counted by it.
fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let s = v6.segments();
                format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

impl Limiter {
    pub fn new(per_email: usize, per_client: usize, window: Duration) -> Self {
        Limiter {
            per_email,
            per_client,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Instant>>> {
        // A panic while holding the lock leaves counts that are still counts.
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long until another attempt may be made, when the e-mail address or
    /// the client has used up its failures; `None` when it may try now.
    pub fn blocked(&self, email: &str, client: IpAddr, now: Instant) -> Option<Duration> {
        let mut map = self.lock();
        let mut wait = None;
        for (key, limit) in [
            (email_key(email), self.per_email),
            (client_key(client), self.per_client),
        ] {
            let Some(times) = map.get_mut(&key) else {
                continue;
            };
            while times
                .front()
                .is_some_and(|t| now.duration_since(*t) >= self.window)
            {
                times.pop_front();
            }
            if times.len() >= limit {
                let oldest = times[times.len() - limit];
                let left = self.window.saturating_sub(now.duration_since(oldest));
                wait = Some(wait.map_or(left, |w: Duration| w.max(left)));
            }
        }
        wait
    }

    /// Counts a failed attempt against both keys.
    pub fn failed(&self, email: &str, client: IpAddr, now: Instant) {
        let mut map = self.lock();
        if map.len() >= MAX_KEYS {
            let window = self.window;
            map.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < window)
            });
        }
        let email = email_key(email);
        let track_email = map.len() < MAX_KEYS || map.contains_key(&email);
        for (key, track) in [(email, track_email), (client_key(client), true)] {
            if track {
                let times = map.entry(key).or_default();
                times.push_back(now);
                // Only the newest `limit` failures matter; keep no more.
                while times.len() > self.per_client.max(self.per_email) {
                    times.pop_front();
                }
            }
        }
    }

    /// A successful sign-in forgets the account's failures (not the client's:
    /// one good password must not reset a client that is guessing others).
    pub fn succeeded(&self, email: &str) {
        self.lock().remove(&email_key(email));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_account_is_blocked_after_its_failures_until_the_window_passes() {
        let l = Limiter::new(3, 100, Duration::from_secs(60));
        let t0 = Instant::now();
        let a = ip("10.0.0.1");
        for i in 0..3 {
            assert_eq!(l.blocked("Ann@X.com", a, t0), None, "attempt {i}");
            l.failed("ann@x.com ", a, t0 + Duration::from_secs(i));
        }
        let wait = l.blocked("ann@x.com", ip("10.0.0.2"), t0 + Duration::from_secs(10));
        assert_eq!(
            wait,
            Some(Duration::from_secs(50)),
            "another client is blocked too"
        );
        assert_eq!(
            l.blocked("bob@x.com", a, t0),
            None,
            "other accounts are not"
        );
        assert_eq!(
            l.blocked("ann@x.com", a, t0 + Duration::from_secs(61)),
            None
        );
    }

    #[test]
    fn a_client_is_blocked_after_failures_across_accounts() {
        let l = Limiter::new(100, 4, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..4 {
            l.failed(&format!("user{i}@x.com"), ip("2001:db8:1:2::7"), t0);
        }
        // The same /64 is the same client; another /64 is not.
        assert!(l.blocked("new@x.com", ip("2001:db8:1:2::99"), t0).is_some());
        assert!(l.blocked("new@x.com", ip("2001:db8:1:3::1"), t0).is_none());
    }

    #[test]
    fn success_forgets_the_account_but_not_the_client() {
        let l = Limiter::new(2, 3, Duration::from_secs(60));
        let t0 = Instant::now();
        let a = ip("10.0.0.1");
        l.failed("ann@x.com", a, t0);
        l.failed("ann@x.com", a, t0);
        assert!(l.blocked("ann@x.com", ip("10.9.9.9"), t0).is_some());
        l.succeeded("ann@x.com");
        assert!(l.blocked("ann@x.com", ip("10.9.9.9"), t0).is_none());
        l.failed("bob@x.com", a, t0);
        assert!(
            l.blocked("carl@x.com", a, t0).is_some(),
            "the client still counts 3"
        );
    }
}
