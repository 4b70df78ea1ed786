//! Time for the whole broker: one seam so a simulator can drive it (DESIGN.md, simulation-ready).

use std::time::{SystemTime, UNIX_EPOCH};

/// Monotonic time for timeouts and wall time for record timestamps and retention.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Monotonic now, for deadlines and timeouts.
    fn now(&self) -> tokio::time::Instant;
    /// Milliseconds since the Unix epoch, for timestamps, segment.ms and retention.
    fn wall_ms(&self) -> i64;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> tokio::time::Instant {
        tokio::time::Instant::now()
    }

    fn wall_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}
