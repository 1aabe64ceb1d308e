//! The per-target rate limit, time injected. Request starts are scheduled on an absolute
//! timeline, `1/rate` apart: a start that happens late (a timer's overshoot, a busy runtime)
//! does not push the following ones back, so the long-run rate is the configured one (a token
//! bucket of one token loses every overshoot). A sliding-window guard keeps the hard cap: of
//! the last `n = max(1, floor(rate))` starts, the oldest is at least `n / rate` (one second
//! for a whole rate) before the next, so no one-second window holds more than `rate` starts
//! (`ceil(rate)` for a fractional one, such as the delivery Lambda's share `rate / C`).
//! After an idle spell the timeline restarts at most 20 ms (or a tenth of that window) in the
//! past: a small catch-up, still under the cap. Memory: `n` instants (16 bytes each) per target.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How far in the past the timeline may be when a start comes late: lateness up to this is
/// made up (timer overshoot), beyond it (an idle spell) the timeline restarts this far back.
const MAX_CATCH_UP: Duration = Duration::from_millis(20);

/// A target's request-start schedule (the name is historical: see the module text).
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    interval: Duration,
    window: Duration,
    slack: Duration,
    /// When the next start is due on the timeline.
    next: Instant,
    /// The last `n` starts, oldest first.
    starts: VecDeque<Instant>,
    n: usize,
}

impl TokenBucket {
    /// A schedule at `rate_per_second` (a non-positive or non-finite rate is 1/s) whose first
    /// start may be at `now`.
    pub fn new(rate_per_second: f64, now: Instant) -> Self {
        let rate = if rate_per_second.is_finite() && rate_per_second > 0.0 {
            rate_per_second
        } else {
            1.0
        };
        // At most 10,000 remembered starts, whatever the rate.
        let n = (rate.floor() as usize).clamp(1, 10_000);
        let window = Duration::from_secs_f64(n as f64 / rate);
        TokenBucket {
            rate,
            interval: Duration::from_secs_f64(1.0 / rate),
            window,
            slack: MAX_CATCH_UP.min(window / 10),
            next: now,
            starts: VecDeque::with_capacity(n),
            n,
        }
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Records a start at `now` if one may start now; otherwise tells how long until one may.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        let due = self.next.max(now.checked_sub(self.slack).unwrap_or(now));
        let mut earliest = due;
        if self.starts.len() == self.n {
            if let Some(oldest) = self.starts.front() {
                earliest = earliest.max(*oldest + self.window);
            }
        }
        if now < earliest {
            // Round up to the next microsecond so a caller sleeping this long may start.
            let wait = earliest - now;
            return Err(Duration::from_micros(wait.as_micros() as u64 + 1));
        }
        if self.starts.len() == self.n {
            self.starts.pop_front();
        }
        self.starts.push_back(now);
        self.next = due + self.interval;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backlog drained by a caller that sleeps as told, each sleep `overshoot` late; the
    /// start times over `secs` simulated seconds.
    fn drain(rate: f64, overshoot: Duration, secs: u64) -> Vec<Instant> {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(rate, t0);
        let mut starts = Vec::new();
        let mut t = t0;
        while t < t0 + Duration::from_secs(secs) {
            match b.try_take(t) {
                Ok(()) => {
                    starts.push(t);
                    t += Duration::from_micros(20);
                }
                Err(wait) => t += wait + overshoot,
            }
        }
        starts
    }

    fn max_in_window(starts: &[Instant], window: Duration) -> usize {
        (0..starts.len())
            .map(|i| {
                starts[i..]
                    .iter()
                    .take_while(|s| s.duration_since(starts[i]) < window)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn the_long_run_rate_is_reached_and_no_second_exceeds_it() {
        for rate in [50.0, 300.0, 1000.0] {
            for overshoot in [
                Duration::ZERO,
                Duration::from_micros(300),
                Duration::from_micros(1300),
            ] {
                let starts = drain(rate, overshoot, 10);
                let want = rate * 10.0;
                assert!(
                    starts.len() as f64 >= 0.98 * want,
                    "{rate}/s with {overshoot:?} late wake-ups: {} of {want}",
                    starts.len()
                );
                let peak = max_in_window(&starts, Duration::from_secs(1));
                assert!(peak as f64 <= rate, "{rate}/s: {peak} in one second");
            }
        }
    }

    #[test]
    fn fractional_and_slow_rates_keep_their_spacing() {
        let starts = drain(0.5, Duration::from_millis(1), 20);
        assert_eq!(starts.len(), 10);
        assert_eq!(max_in_window(&starts, Duration::from_secs(2)), 1);
        let starts = drain(2.5, Duration::from_millis(1), 20);
        assert!(starts.len() >= 49, "{}", starts.len());
        // A fractional rate cannot keep every second under floor(rate) and reach the rate:
        // the cap is n = 2 starts per n / rate = 0.8 s, so at most 3 in a second.
        assert!(max_in_window(&starts, Duration::from_millis(800)) <= 2);
        assert!(max_in_window(&starts, Duration::from_secs(1)) <= 3);
    }

    #[test]
    fn an_idle_spell_allows_only_a_small_catch_up() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100.0, t0);
        assert!(b.try_take(t0).is_ok());
        let later = t0 + Duration::from_secs(60);
        let burst = (0..100).take_while(|_| b.try_take(later).is_ok()).count();
        assert_eq!(burst, 3, "the timeline restarts 20 ms back");
    }

    #[test]
    fn odd_rates_are_sane() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(0.0, t0);
        assert_eq!(b.rate(), 1.0);
        assert!(b.try_take(t0).is_ok());
        let wait = b.try_take(t0).unwrap_err();
        assert!(wait >= Duration::from_secs(1) && wait <= Duration::from_millis(1001));
    }
}
