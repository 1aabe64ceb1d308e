//! Circuit breaker per target, time injected. Closed: requests flow; after `threshold`
//! consecutive endpoint failures it opens. Open: nothing is sent until the cool-down has
//! passed. Half-open: exactly one probe is let through; its success closes the circuit, its
//! failure opens it again for another cool-down.

use std::time::{Duration, Instant};

/// The externally visible state (also the metric value: 0 closed, 1 open, 2 half-open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    pub fn metric_value(self) -> u8 {
        match self {
            CircuitState::Closed => 0,
            CircuitState::Open => 1,
            CircuitState::HalfOpen => 2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inner {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probe_in_flight: bool },
}

/// May a request be sent now?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Yes.
    Allowed,
    /// Yes, as the half-open probe: report its outcome.
    Probe,
    /// No; ask again at this instant (or after a probe's outcome arrives).
    Denied { retry_at: Option<Instant> },
}

#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    inner: Inner,
}

impl CircuitBreaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        CircuitBreaker {
            threshold: threshold.max(1),
            cooldown,
            inner: Inner::Closed { failures: 0 },
        }
    }

    pub fn state(&self, now: Instant) -> CircuitState {
        match self.inner {
            Inner::Closed { .. } => CircuitState::Closed,
            Inner::Open { until } if now >= until => CircuitState::HalfOpen,
            Inner::Open { .. } => CircuitState::Open,
            Inner::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    /// Asks to send one request.
    pub fn admit(&mut self, now: Instant) -> Admission {
        match self.inner {
            Inner::Closed { .. } => Admission::Allowed,
            Inner::Open { until } if now < until => Admission::Denied {
                retry_at: Some(until),
            },
            Inner::Open { .. }
            | Inner::HalfOpen {
                probe_in_flight: false,
            } => {
                self.inner = Inner::HalfOpen {
                    probe_in_flight: true,
                };
                Admission::Probe
            }
            Inner::HalfOpen {
                probe_in_flight: true,
            } => Admission::Denied { retry_at: None },
        }
    }

    /// Reports a request that reached the endpoint and did not fail it (2xx, or a 4xx that
    /// shows the endpoint is up).
    pub fn on_success(&mut self) {
        self.inner = Inner::Closed { failures: 0 };
    }

    /// Reports an endpoint failure (timeout, connection error, 408, 429, 5xx).
    pub fn on_failure(&mut self, now: Instant) {
        self.inner = match self.inner {
            Inner::Closed { failures } if failures + 1 < self.threshold => Inner::Closed {
                failures: failures + 1,
            },
            Inner::Closed { .. } | Inner::HalfOpen { .. } => Inner::Open {
                // Saturating: a cool-down past what `Instant` can hold means "open for good".
                until: now
                    .checked_add(self.cooldown)
                    .unwrap_or_else(|| far_future(now)),
            },
            // Outcomes of requests sent before the circuit opened: keep the current cool-down.
            open @ Inner::Open { .. } => open,
        };
    }

    /// Reports that an admitted probe was not sent after all (e.g. shutdown): let another go.
    pub fn probe_abandoned(&mut self) {
        if let Inner::HalfOpen {
            probe_in_flight: true,
        } = self.inner
        {
            self.inner = Inner::HalfOpen {
                probe_in_flight: false,
            };
        }
    }
}

/// The latest instant after `now` that `Instant` can represent, within a century.
fn far_future(now: Instant) -> Instant {
    let mut d = Duration::from_secs(100 * 365 * 24 * 3600);
    loop {
        if let Some(t) = now.checked_add(d) {
            return t;
        }
        d /= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_probes_and_closes() {
        let t0 = Instant::now();
        let cool = Duration::from_secs(30);
        let mut c = CircuitBreaker::new(3, cool);
        assert_eq!(c.admit(t0), Admission::Allowed);
        c.on_failure(t0);
        c.on_failure(t0);
        assert_eq!(c.state(t0), CircuitState::Closed);
        c.on_failure(t0);
        assert_eq!(c.state(t0), CircuitState::Open);
        assert_eq!(
            c.admit(t0 + Duration::from_secs(1)),
            Admission::Denied {
                retry_at: Some(t0 + cool)
            }
        );
        // Cool-down over: one probe, then nothing until it reports.
        let t1 = t0 + cool;
        assert_eq!(c.state(t1), CircuitState::HalfOpen);
        assert_eq!(c.admit(t1), Admission::Probe);
        assert_eq!(c.admit(t1), Admission::Denied { retry_at: None });
        c.on_failure(t1);
        assert_eq!(c.state(t1), CircuitState::Open);
        assert_eq!(
            c.admit(t1 + cool - Duration::from_millis(1)),
            Admission::Denied {
                retry_at: Some(t1 + cool)
            }
        );
        let t2 = t1 + cool;
        assert_eq!(c.admit(t2), Admission::Probe);
        c.on_success();
        assert_eq!(c.state(t2), CircuitState::Closed);
        assert_eq!(c.admit(t2), Admission::Allowed);
    }

    #[test]
    fn success_resets_the_count() {
        let t0 = Instant::now();
        let mut c = CircuitBreaker::new(2, Duration::from_secs(1));
        c.on_failure(t0);
        c.on_success();
        c.on_failure(t0);
        assert_eq!(c.state(t0), CircuitState::Closed);
        c.on_failure(t0);
        assert_eq!(c.state(t0), CircuitState::Open);
    }

    #[test]
    fn a_huge_cooldown_opens_the_circuit_without_panicking() {
        let now = Instant::now();
        let mut c = CircuitBreaker::new(1, Duration::MAX);
        c.on_failure(now);
        assert!(matches!(
            c.admit(now + Duration::from_secs(3600)),
            Admission::Denied { .. }
        ));
    }

    #[test]
    fn late_failures_do_not_extend_the_cooldown_and_abandoned_probes_free_the_slot() {
        let t0 = Instant::now();
        let mut c = CircuitBreaker::new(1, Duration::from_secs(10));
        c.on_failure(t0);
        c.on_failure(t0 + Duration::from_secs(5));
        assert_eq!(c.admit(t0 + Duration::from_secs(10)), Admission::Probe);
        c.probe_abandoned();
        assert_eq!(c.admit(t0 + Duration::from_secs(10)), Admission::Probe);
        assert_eq!(CircuitState::HalfOpen.metric_value(), 2);
    }
}
