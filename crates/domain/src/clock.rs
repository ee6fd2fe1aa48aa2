//! Time, behind a trait so that tests move the clock instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};

/// Milliseconds since the Unix epoch, UTC. Stored as BIGINT on both databases.
pub type Millis = i64;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Millis;
}

#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        let now = time::OffsetDateTime::now_utc();
        (now.unix_timestamp_nanos() / 1_000_000) as Millis
    }
}

/// The system clock plus an offset that tests can move forward.
#[derive(Debug, Default)]
pub struct ShiftableClock {
    offset: AtomicI64,
}

impl ShiftableClock {
    pub fn advance(&self, millis: Millis) {
        self.offset.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Clock for ShiftableClock {
    fn now(&self) -> Millis {
        SystemClock.now() + self.offset.load(Ordering::SeqCst)
    }
}

/// RFC 3339 with milliseconds, as n8n prints dates (`2026-11-23T12:00:00.000Z`).
pub fn rfc3339(millis: Millis) -> String {
    let nanos = i128::from(millis) * 1_000_000;
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

pub const MINUTE: Millis = 60_000;
pub const HOUR: Millis = 60 * MINUTE;
