//! Token bucket rate limiter, time injected. With a capacity of one token (the default for
//! targets) requests are spaced at least `1/rate` apart, so no window of one second ever
//! holds more than `rate` request starts (a half-open window), and a longer window `T` at
//! most `1 + rate * T`.

use std::time::{Duration, Instant};

/// A token bucket: `rate` tokens per second, at most `capacity` stored.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket. `rate` must be positive (a non-positive rate is treated as 1/s);
    /// `capacity` is at least one token.
    pub fn new(rate_per_second: f64, capacity: f64, now: Instant) -> Self {
        let rate = if rate_per_second.is_finite() && rate_per_second > 0.0 {
            rate_per_second
        } else {
            1.0
        };
        let capacity = if capacity.is_finite() {
            capacity.max(1.0)
        } else {
            1.0
        };
        TokenBucket {
            rate,
            capacity,
            tokens: capacity,
            last: now,
        }
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    fn refill(&mut self, now: Instant) {
        if now > self.last {
            let add = now.duration_since(self.last).as_secs_f64() * self.rate;
            self.tokens = (self.tokens + add).min(self.capacity);
            self.last = now;
        }
    }

    /// Takes one token if there is one; otherwise tells how long until there will be.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let missing = 1.0 - self.tokens;
            // Round up to the next microsecond so a caller sleeping this long finds a token.
            let secs = missing / self.rate;
            Err(Duration::from_micros((secs * 1e6).ceil() as u64).max(Duration::from_micros(1)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaces_requests_at_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 1.0, t0);
        assert!(b.try_take(t0).is_ok());
        let wait = b.try_take(t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        assert!(b.try_take(t0 + Duration::from_millis(99)).is_err());
        assert!(b.try_take(t0 + Duration::from_millis(100)).is_ok());
    }

    #[test]
    fn never_more_than_rate_in_any_second() {
        // Simulate a greedy caller polling every 0.1 ms for 5 s at 50/s.
        let t0 = Instant::now();
        let mut b = TokenBucket::new(50.0, 1.0, t0);
        let mut sent = Vec::new();
        let mut t = t0;
        while t < t0 + Duration::from_secs(5) {
            if b.try_take(t).is_ok() {
                sent.push(t);
            }
            t += Duration::from_micros(100);
        }
        for (i, start) in sent.iter().enumerate() {
            let in_window = sent[i..]
                .iter()
                .take_while(|s| s.duration_since(*start) < Duration::from_secs(1))
                .count();
            assert!(in_window <= 50, "{in_window} in one second");
        }
        assert!(sent.len() >= 249, "throughput too low: {}", sent.len());
    }

    #[test]
    fn capacity_allows_bursts_and_caps_savings() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100.0, 5.0, t0);
        for _ in 0..5 {
            assert!(b.try_take(t0).is_ok());
        }
        assert!(b.try_take(t0).is_err());
        let later = t0 + Duration::from_secs(60);
        for _ in 0..5 {
            assert!(b.try_take(later).is_ok());
        }
        assert!(b.try_take(later).is_err());
    }

    #[test]
    fn odd_rates_are_sane() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(0.0, 0.0, t0);
        assert_eq!(b.rate(), 1.0);
        assert!(b.try_take(t0).is_ok());
        assert_eq!(b.try_take(t0).unwrap_err(), Duration::from_secs(1));
    }
}
