//! Time as a parameter: logic asks a [`Clock`], so tests can fix it.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, SecondsFormat, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Clone)]
pub struct FixedClock(Arc<Mutex<DateTime<Utc>>>);

impl FixedClock {
    pub fn new(at: DateTime<Utc>) -> FixedClock {
        FixedClock(Arc::new(Mutex::new(at)))
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Real time moved forward by a shift that only grows: time passes as it does, and a test
/// can skip ahead to when a retry is due instead of waiting for it.
#[derive(Debug, Clone, Default)]
pub struct ShiftedClock(Arc<Mutex<chrono::Duration>>);

impl ShiftedClock {
    pub fn new() -> ShiftedClock {
        ShiftedClock::default()
    }

    /// Moves this clock forward to `at`, if it is not there yet.
    pub fn advance_to(&self, at: DateTime<Utc>) {
        let mut shift = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let now = Utc::now() + *shift;
        if at > now {
            *shift += at - now;
        }
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut shift = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *shift += by.max(chrono::Duration::zero());
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The one timestamp format the store keeps: fixed width, so text order is time order.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Reads a timestamp written by [`format_time`].
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc))
}
