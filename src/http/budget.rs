//! A request budget per credential: a token bucket (GCRA, the governor crate) with a rate
//! and a burst, kept in this process's memory. Beyond it a request gets 429 with
//! Retry-After, which Okta and Entra both honour.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

pub struct Budget {
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl Budget {
    /// A budget of `per_sec` requests a second with `burst` at once; None when `per_sec`
    /// is 0 (budgets off).
    pub fn new(per_sec: f64, burst: u32) -> Option<Budget> {
        if !(per_sec.is_finite() && per_sec > 0.0) {
            return None;
        }
        let period = Duration::from_secs_f64(1.0 / per_sec).max(Duration::from_nanos(1));
        let quota = Quota::with_period(period)?
            .allow_burst(NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN));
        Some(Budget {
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        })
    }

    /// Takes one request from `key`'s bucket, or says how long until one is there.
    pub fn take(&self, key: &str) -> Result<(), Duration> {
        match self.limiter.check_key(&key.to_string()) {
            Ok(()) => Ok(()),
            Err(not_until) => Err(not_until.wait_time_from(self.clock.now())),
        }
    }
}

/// Failed authentications per client address. Each failure takes from the address's
/// bucket; when it is empty the address is refused (429, Retry-After) before any
/// credential it presents is checked, until the bucket has room again.
pub struct Failures {
    budget: Budget,
    /// Addresses refused now, until when; only those, so it stays small.
    blocked: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

/// The most addresses remembered as refused at once.
const MAX_BLOCKED: usize = 100_000;

impl Failures {
    /// None when `per_sec` is 0 (off).
    pub fn new(per_sec: f64, burst: u32) -> Option<Failures> {
        Some(Failures {
            budget: Budget::new(per_sec, burst)?,
            blocked: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// How long `addr` must still wait, while it is refused.
    pub fn refused(&self, addr: &str) -> Option<Duration> {
        let blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        let until = *blocked.get(addr)?;
        until.checked_duration_since(std::time::Instant::now())
    }

    /// Counts a failure from `addr`; when it empties the bucket, the address is refused
    /// from now on for the wait returned.
    pub fn failed(&self, addr: &str) -> Option<Duration> {
        let wait = self.budget.take(addr).err()?;
        let now = std::time::Instant::now();
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        if blocked.len() >= MAX_BLOCKED {
            blocked.retain(|_, until| *until > now);
        }
        if blocked.len() < MAX_BLOCKED {
            blocked.insert(addr.to_string(), now + wait);
        }
        Some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_over_its_burst_waits_and_others_do_not() {
        let b = Budget::new(1.0, 2).expect("on");
        assert!(b.take("a").is_ok() && b.take("a").is_ok());
        let wait = b.take("a").expect_err("over");
        assert!(wait <= Duration::from_secs(1));
        assert!(b.take("b").is_ok(), "each credential has its own bucket");
        assert!(Budget::new(0.0, 5).is_none(), "0 turns budgets off");
    }

    #[test]
    fn an_address_past_its_failures_is_refused_until_its_bucket_refills() {
        let f = Failures::new(0.5, 2).expect("on");
        assert!(f.failed("10.0.0.1").is_none() && f.failed("10.0.0.1").is_none());
        assert!(f.refused("10.0.0.1").is_none());
        let wait = f.failed("10.0.0.1").expect("over");
        assert!(wait > Duration::ZERO);
        assert!(f.refused("10.0.0.1").is_some());
        assert!(f.refused("10.0.0.2").is_none(), "each address has its own");
    }
}
