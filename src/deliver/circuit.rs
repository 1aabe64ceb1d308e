//! Circuit breaker per target, time injected: the one state machine of serve (one breaker per
//! target, [`Instant`]s) and of the delivery Lambda (the same breaker loaded from and stored to
//! DynamoDB, [`EpochMs`]). Closed: requests flow; after `threshold` consecutive endpoint
//! failures it opens. Open: nothing is sent until the cool-down has passed. Half-open (open and
//! the cool-down over): one probe at a time is let through, optionally on a lease that expires
//! (so a probe whose sender died frees its slot); its success closes the circuit, its failure
//! opens it again for another cool-down. Outcomes of requests sent before the circuit opened
//! change nothing while it is open.

use std::time::{Duration, Instant};

/// A point in time the breaker can count on: [`Instant`] in a process, [`EpochMs`] in a store
/// shared by processes.
pub trait Moment: Copy + Ord + std::fmt::Debug {
    /// `self + d`, saturating (a cool-down past what the type can hold means "for good").
    fn plus(self, d: Duration) -> Self;
}

impl Moment for Instant {
    fn plus(self, d: Duration) -> Self {
        self.checked_add(d).unwrap_or_else(|| far_future(self))
    }
}

/// Milliseconds since the Unix epoch (wall clock, comparable between processes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct EpochMs(pub u64);

impl EpochMs {
    /// `t` in milliseconds since the epoch (0 before it, saturating far after it).
    pub fn of(t: std::time::SystemTime) -> Self {
        EpochMs(
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }

    pub fn now() -> Self {
        Self::of(std::time::SystemTime::now())
    }
}

impl Moment for EpochMs {
    fn plus(self, d: Duration) -> Self {
        EpochMs(
            self.0
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }
}

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

/// The half-open probe slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe<T> {
    Free,
    /// Taken; the lease ends at `until` (`None`: held until its outcome is reported).
    Held {
        until: Option<T>,
    },
}

/// What the breaker remembers (what a shared store keeps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase<T> {
    Closed {
        failures: u32,
    },
    /// Open until `until`; half-open from then on, with the probe slot.
    Open {
        until: T,
        probe: Probe<T>,
    },
}

/// May a request be sent now?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission<T = Instant> {
    /// Yes.
    Allowed,
    /// Yes, as the half-open probe: report its outcome.
    Probe,
    /// No; ask again at this instant (or after a probe's outcome arrives).
    Denied { retry_at: Option<T> },
}

#[derive(Debug, Clone)]
pub struct CircuitBreaker<T = Instant> {
    threshold: u32,
    cooldown: Duration,
    phase: Phase<T>,
}

impl<T: Moment> CircuitBreaker<T> {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self::with_phase(threshold, cooldown, Phase::Closed { failures: 0 })
    }

    /// A breaker in a remembered phase (loaded from a shared store).
    pub fn with_phase(threshold: u32, cooldown: Duration, phase: Phase<T>) -> Self {
        CircuitBreaker {
            threshold: threshold.max(1),
            cooldown,
            phase,
        }
    }

    pub fn phase(&self) -> Phase<T> {
        self.phase
    }

    pub fn state(&self, now: T) -> CircuitState {
        match self.phase {
            Phase::Closed { .. } => CircuitState::Closed,
            Phase::Open { until, .. } if now < until => CircuitState::Open,
            Phase::Open { .. } => CircuitState::HalfOpen,
        }
    }

    /// Asks to send one request; a probe holds its slot until its outcome is reported.
    pub fn admit(&mut self, now: T) -> Admission<T> {
        self.admit_leased(now, None)
    }

    /// Asks to send one request; a probe's slot frees itself after `lease` (if given).
    pub fn admit_leased(&mut self, now: T, lease: Option<Duration>) -> Admission<T> {
        let Phase::Open { until, probe } = self.phase else {
            return Admission::Allowed;
        };
        match probe {
            _ if now < until => Admission::Denied {
                retry_at: Some(until),
            },
            Probe::Held { until: None } => Admission::Denied { retry_at: None },
            Probe::Held { until: Some(end) } if now < end => Admission::Denied {
                retry_at: Some(end),
            },
            Probe::Free | Probe::Held { .. } => {
                self.phase = Phase::Open {
                    until,
                    probe: Probe::Held {
                        until: lease.map(|d| now.plus(d)),
                    },
                };
                Admission::Probe
            }
        }
    }

    /// Reports a request that reached the endpoint and did not fail it (2xx, or a 4xx that
    /// shows the endpoint is up).
    pub fn on_success(&mut self) {
        self.phase = Phase::Closed { failures: 0 };
    }

    /// Reports an endpoint failure (timeout, connection error, 408, 429, 5xx); `probe`: the
    /// request was admitted as the probe.
    pub fn on_failure(&mut self, now: T, probe: bool) {
        let open = Phase::Open {
            until: now.plus(self.cooldown),
            probe: Probe::Free,
        };
        self.phase = match self.phase {
            Phase::Closed { failures } if failures.saturating_add(1) < self.threshold => {
                Phase::Closed {
                    failures: failures + 1,
                }
            }
            Phase::Closed { .. } => open,
            Phase::Open { .. } if probe => open,
            // Outcomes of requests sent before the circuit opened: keep the current cool-down.
            kept @ Phase::Open { .. } => kept,
        };
    }

    /// Reports that an admitted probe was not sent after all (e.g. shutdown): let another go.
    pub fn probe_abandoned(&mut self) {
        if let Phase::Open { until, .. } = self.phase {
            self.phase = Phase::Open {
                until,
                probe: Probe::Free,
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
        c.on_failure(t0, false);
        c.on_failure(t0, false);
        assert_eq!(c.state(t0), CircuitState::Closed);
        c.on_failure(t0, false);
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
        c.on_failure(t1, true);
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
        c.on_failure(t0, false);
        c.on_success();
        c.on_failure(t0, false);
        assert_eq!(c.state(t0), CircuitState::Closed);
        c.on_failure(t0, false);
        assert_eq!(c.state(t0), CircuitState::Open);
    }

    #[test]
    fn a_huge_cooldown_opens_the_circuit_without_panicking() {
        let now = Instant::now();
        let mut c = CircuitBreaker::new(1, Duration::MAX);
        c.on_failure(now, false);
        assert!(matches!(
            c.admit(now + Duration::from_secs(3600)),
            Admission::Denied { .. }
        ));
    }

    #[test]
    fn late_failures_do_not_extend_the_cooldown_and_abandoned_probes_free_the_slot() {
        let t0 = Instant::now();
        let mut c = CircuitBreaker::new(1, Duration::from_secs(10));
        c.on_failure(t0, false);
        c.on_failure(t0 + Duration::from_secs(5), false);
        assert_eq!(c.admit(t0 + Duration::from_secs(10)), Admission::Probe);
        c.probe_abandoned();
        assert_eq!(c.admit(t0 + Duration::from_secs(10)), Admission::Probe);
        assert_eq!(CircuitState::HalfOpen.metric_value(), 2);
    }

    #[test]
    fn only_the_probe_reopens_and_a_lease_expires() {
        let t0 = EpochMs(1_000);
        let cool = Duration::from_secs(30);
        let mut c = CircuitBreaker::new(1, cool);
        c.on_failure(t0, false);
        let t1 = t0.plus(cool);
        let lease = Some(Duration::from_secs(10));
        assert_eq!(c.admit_leased(t1, lease), Admission::Probe);
        // A request sent before the circuit opened fails late: the probe still decides.
        c.on_failure(t1, false);
        assert_eq!(
            c.admit_leased(t1, lease),
            Admission::Denied {
                retry_at: Some(EpochMs(41_000))
            }
        );
        // The lease ran out (its sender died): another probe goes; its failure reopens.
        assert_eq!(c.admit_leased(EpochMs(41_000), lease), Admission::Probe);
        c.on_failure(EpochMs(41_000), true);
        assert_eq!(
            c.phase(),
            Phase::Open {
                until: EpochMs(71_000),
                probe: Probe::Free
            }
        );
        assert_eq!(EpochMs(u64::MAX - 1).plus(Duration::MAX), EpochMs(u64::MAX));
    }
}
