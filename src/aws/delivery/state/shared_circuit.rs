//! The circuit of one target as DynamoDB keeps it. The transitions are the engine's
//! [`CircuitBreaker`] (the same as serve's): an item is loaded into a breaker, stepped, and the
//! phase it ends in is written back if it changed. This module only maps the item's numbers to
//! the breaker's [`Phase`] and back.

use std::time::Duration;

use crate::config::CircuitSettings;
use crate::deliver::{Admission, CircuitBreaker, EpochMs, Phase, Probe};

use super::super::Gate;

/// The stored circuit of one target. Closed: `open_until_ms == 0` (with `failures` counted).
/// Open: `now < open_until_ms`. Half-open: `open_until_ms <= now`; then one probe at a time
/// holds the lease `probe_until_ms` (0: no probe).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SharedCircuit {
    pub failures: u32,
    pub open_until_ms: u64,
    pub probe_until_ms: u64,
}

impl SharedCircuit {
    pub fn phase(&self) -> Phase<EpochMs> {
        if self.open_until_ms == 0 {
            return Phase::Closed {
                failures: self.failures,
            };
        }
        Phase::Open {
            until: EpochMs(self.open_until_ms),
            probe: match self.probe_until_ms {
                0 => Probe::Free,
                t => Probe::Held {
                    until: Some(EpochMs(t)),
                },
            },
        }
    }

    pub fn of(phase: Phase<EpochMs>) -> Self {
        match phase {
            Phase::Closed { failures } => SharedCircuit {
                failures,
                ..Self::default()
            },
            Phase::Open { until, probe } => SharedCircuit {
                failures: 0,
                // 0 is "closed": an open circuit is never stored as 0.
                open_until_ms: until.0.max(1),
                probe_until_ms: match probe {
                    // A probe without a lease is not taken here (every shared probe is leased).
                    Probe::Free | Probe::Held { until: None } => 0,
                    Probe::Held { until: Some(t) } => t.0,
                },
            },
        }
    }

    /// One step of the breaker on this state: its answer, and the state to write if it changed.
    fn step<A>(
        &self,
        circuit: &CircuitSettings,
        f: impl FnOnce(&mut CircuitBreaker<EpochMs>) -> A,
    ) -> (A, Option<SharedCircuit>) {
        let mut breaker =
            CircuitBreaker::with_phase(circuit.failure_threshold, circuit.cooldown, self.phase());
        let answer = f(&mut breaker);
        let next = SharedCircuit::of(breaker.phase());
        (answer, (next != *self).then_some(next))
    }

    /// The gate, and the state to write to take it (a probe's lease).
    pub fn admit(
        &self,
        circuit: &CircuitSettings,
        now: EpochMs,
        lease: Duration,
    ) -> (Gate, Option<SharedCircuit>) {
        let (admission, next) = self.step(circuit, |b| b.admit_leased(now, Some(lease)));
        let gate = match admission {
            Admission::Allowed => Gate::Allowed,
            Admission::Probe => Gate::Probe,
            Admission::Denied { retry_at } => {
                Gate::Denied(retry_at.map_or(Duration::from_secs(1), |t| {
                    Duration::from_millis(t.0.saturating_sub(now.0))
                }))
            }
        };
        (gate, next)
    }

    /// The state after an outcome, if it changes.
    pub fn after(
        &self,
        circuit: &CircuitSettings,
        gate: Gate,
        failed: bool,
        now: EpochMs,
    ) -> Option<SharedCircuit> {
        self.step(circuit, |b| {
            if failed {
                b.on_failure(now, gate == Gate::Probe);
            } else {
                b.on_success();
            }
        })
        .1
    }

    /// A probe that was not sent gives its lease back.
    pub fn without_probe(&self) -> Option<SharedCircuit> {
        // Giving a probe back uses neither the threshold nor the cool-down.
        let any = CircuitSettings {
            failure_threshold: 1,
            cooldown: Duration::ZERO,
        };
        self.step(&any, |b| b.probe_abandoned()).1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_circuit_follows_the_engine_breaker() {
        let s = CircuitSettings {
            failure_threshold: 2,
            cooldown: Duration::from_secs(30),
        };
        let lease = Duration::from_secs(10);
        let at = EpochMs;
        let c = SharedCircuit::default();
        assert_eq!(c.admit(&s, at(0), lease), (Gate::Allowed, None));
        assert_eq!(
            c.after(&s, Gate::Allowed, false, at(0)),
            None,
            "no write on success"
        );
        let c = c
            .after(&s, Gate::Allowed, true, at(1_000))
            .expect("counted");
        assert_eq!(c.failures, 1);
        let c = c.after(&s, Gate::Allowed, true, at(2_000)).expect("opens");
        assert_eq!(c.open_until_ms, 32_000);
        assert_eq!(
            c.admit(&s, at(12_000), lease),
            (Gate::Denied(Duration::from_secs(20)), None)
        );
        // A late failure keeps the cool-down.
        assert_eq!(c.after(&s, Gate::Allowed, true, at(5_000)), None);
        // Half-open: one probe holds the lease; others wait for it.
        let (gate, leased) = c.admit(&s, at(32_000), lease);
        assert_eq!(gate, Gate::Probe);
        let leased = leased.expect("lease");
        assert_eq!(leased.probe_until_ms, 42_000);
        assert_eq!(
            leased.admit(&s, at(33_000), lease).0,
            Gate::Denied(Duration::from_secs(9))
        );
        // A late failure while the probe is out changes nothing either.
        assert_eq!(leased.after(&s, Gate::Allowed, true, at(33_000)), None);
        // An expired lease (a crashed probe) lets another probe go.
        assert_eq!(leased.admit(&s, at(42_000), lease).0, Gate::Probe);
        // The probe fails: open again; it succeeds: closed.
        let reopened = leased
            .after(&s, Gate::Probe, true, at(33_000))
            .expect("reopens");
        assert_eq!(reopened.open_until_ms, 63_000);
        assert_eq!(reopened.probe_until_ms, 0);
        assert_eq!(
            leased.after(&s, Gate::Probe, false, at(33_000)),
            Some(SharedCircuit::default())
        );
        assert_eq!(leased.without_probe().map(|c| c.probe_until_ms), Some(0));
    }

    #[test]
    fn phases_round_trip_through_the_item() {
        for c in [
            SharedCircuit::default(),
            SharedCircuit {
                failures: 3,
                ..SharedCircuit::default()
            },
            SharedCircuit {
                failures: 0,
                open_until_ms: 5,
                probe_until_ms: 0,
            },
            SharedCircuit {
                failures: 0,
                open_until_ms: 5,
                probe_until_ms: 9,
            },
        ] {
            assert_eq!(SharedCircuit::of(c.phase()), c);
        }
    }
}
