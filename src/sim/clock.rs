//! The simulated clock: simulated time = start time + real elapsed × time-scale + manual
//! advances. Move progress, StartAfter / CompleteAfter and incremental syncs read it, so tests can
//! fast-forward; what clients meet in wall-clock time (tokens, paging cursors) reads
//! [`Clock::unscaled_now`], which follows manual advances but not the scale.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};

#[derive(Debug)]
pub struct Clock {
    real_start: Instant,
    sim_start: DateTime<Utc>,
    scale: f64,
    /// Manual advances in milliseconds (`/_sim/clock/advance`).
    advanced_ms: AtomicI64,
}

impl Clock {
    pub fn new(sim_start: DateTime<Utc>, scale: f64) -> Self {
        Self {
            real_start: Instant::now(),
            sim_start,
            scale: if scale.is_finite() && scale >= 0.0 {
                scale
            } else {
                1.0
            },
            advanced_ms: AtomicI64::new(0),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        let real = self.real_start.elapsed().as_secs_f64() * self.scale * 1000.0;
        let ms = real as i64 + self.advanced_ms.load(Ordering::Relaxed);
        self.sim_start + Duration::milliseconds(ms)
    }

    /// Real elapsed time plus manual advances, without the time-scale: for what clients meet in
    /// wall-clock time (tokens, assertions, credential end dates, paging cursors). A sped-up clock
    /// speeds up moves and schedules, not these; a manual advance still expires them.
    pub fn unscaled_now(&self) -> DateTime<Utc> {
        let real = self.real_start.elapsed().as_millis() as i64;
        self.sim_start + Duration::milliseconds(real + self.advanced_ms.load(Ordering::Relaxed))
    }

    pub fn advance(&self, by: Duration) {
        self.advanced_ms
            .fetch_add(by.num_milliseconds().max(0), Ordering::Relaxed);
    }

    pub fn scale(&self) -> f64 {
        self.scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unscaled_time_ignores_the_scale_but_follows_advances() {
        let c = Clock::new(Utc::now(), 7200.0);
        let t0 = c.unscaled_now();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(c.unscaled_now() - t0 < Duration::seconds(5), "not sped up");
        assert!(
            c.now() - t0 > Duration::seconds(60),
            "the simulated clock is"
        );
        c.advance(Duration::hours(2));
        assert!(c.unscaled_now() - t0 >= Duration::hours(2));
    }

    #[test]
    fn advance_moves_time_forward_only() {
        let c = Clock::new(Utc::now(), 0.0);
        let t0 = c.now();
        c.advance(Duration::hours(24));
        assert_eq!(c.now() - t0, Duration::hours(24));
        c.advance(Duration::hours(-5));
        assert_eq!(c.now() - t0, Duration::hours(24));
    }
}
