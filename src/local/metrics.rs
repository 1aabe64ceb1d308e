//! Prometheus metrics of `callbacks serve`, rendered by hand in the text exposition format:
//! events received and rejected, callbacks delivered, retried and dead-lettered, per-target
//! queue depth and circuit state, request duration and end-to-end latency histograms.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histograms.
const BOUNDS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A fixed-bucket histogram of durations.
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BOUNDS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BOUNDS.iter().position(|b| secs <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in BOUNDS.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// Counters of one (client, target).
#[derive(Debug, Default)]
pub struct TargetMetrics {
    pub delivered: AtomicU64,
    pub retried: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub attempts: AtomicU64,
    pub queue_depth: AtomicI64,
    pub in_flight: AtomicI64,
    /// 0 closed, 1 open, 2 half-open.
    pub circuit_state: AtomicU8,
    /// When the last attempt that got a 2xx, and the last that failed, ended (ms since the
    /// epoch; 0: none since the server started).
    pub last_success_ms: AtomicI64,
    pub last_failure_ms: AtomicI64,
    pub request_duration: Histogram,
}

/// Every metric of the server.
#[derive(Debug, Default)]
pub struct Metrics {
    pub events_received: AtomicU64,
    pub events_rejected: AtomicU64,
    pub events_accepted: AtomicU64,
    pub callbacks_queued: AtomicU64,
    pub config_reload_errors: AtomicU64,
    /// Delivery workers that panicked and were started again.
    pub worker_restarts: AtomicU64,
    pub end_to_end: Histogram,
    targets: Mutex<BTreeMap<(String, String), Arc<TargetMetrics>>>,
    dlq_depth: Mutex<BTreeMap<String, i64>>,
}

/// Escapes a label value.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn target(&self, client_id: &str, target_id: &str) -> Arc<TargetMetrics> {
        let mut map = self.targets.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((client_id.to_string(), target_id.to_string()))
            .or_default()
            .clone()
    }

    /// The targets of one client that have counters, by target id.
    pub fn targets_of(&self, client_id: &str) -> Vec<(String, Arc<TargetMetrics>)> {
        let map = self.targets.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .filter(|((c, _), _)| c == client_id)
            .map(|((_, t), m)| (t.clone(), m.clone()))
            .collect()
    }

    pub fn set_dlq_depths(&self, depths: Vec<(String, i64)>) {
        let mut map = self.dlq_depth.lock().unwrap_or_else(|p| p.into_inner());
        map.clear();
        map.extend(depths);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        self.render_server(&mut out);
        self.render_targets(&mut out);
        let name = "callbacks_delivery_latency_seconds";
        let _ = writeln!(out, "# HELP {name} Time from an event being accepted to its callback being delivered.\n# TYPE {name} histogram");
        self.end_to_end.render(&mut out, name, "");
        self.render_dlq(&mut out);
        out
    }

    /// The server-wide counters.
    fn render_server(&self, out: &mut String) {
        let counters: [(&str, &str, &AtomicU64); 6] = [
            (
                "callbacks_events_received_total",
                "Events received on POST /events.",
                &self.events_received,
            ),
            (
                "callbacks_events_rejected_total",
                "Events rejected as invalid.",
                &self.events_rejected,
            ),
            (
                "callbacks_events_accepted_total",
                "Events accepted and stored.",
                &self.events_accepted,
            ),
            (
                "callbacks_queued_total",
                "Callbacks queued for delivery.",
                &self.callbacks_queued,
            ),
            (
                "callbacks_config_reload_errors_total",
                "Configuration files that failed to load on reload.",
                &self.config_reload_errors,
            ),
            (
                "callbacks_worker_restarts_total",
                "Delivery workers that panicked and were restarted.",
                &self.worker_restarts,
            ),
        ];
        for (name, help, v) in counters {
            let v = v.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        }
    }

    /// The counters, gauges and request-duration histogram of each target.
    fn render_targets(&self, out: &mut String) {
        let targets: Vec<_> = {
            let map = self.targets.lock().unwrap_or_else(|p| p.into_inner());
            map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        type Get = fn(&TargetMetrics) -> i64;
        let per_target: [(&str, &str, &str, Get); 7] = [
            (
                "callbacks_delivered_total",
                "counter",
                "Callbacks delivered (2xx).",
                |t| t.delivered.load(Ordering::Relaxed) as i64,
            ),
            (
                "callbacks_retried_total",
                "counter",
                "Failed attempts that were scheduled for retry.",
                |t| t.retried.load(Ordering::Relaxed) as i64,
            ),
            (
                "callbacks_dead_lettered_total",
                "counter",
                "Callbacks moved to the dead-letter queue.",
                |t| t.dead_lettered.load(Ordering::Relaxed) as i64,
            ),
            (
                "callbacks_attempts_total",
                "counter",
                "Delivery attempts.",
                |t| t.attempts.load(Ordering::Relaxed) as i64,
            ),
            (
                "callbacks_queue_depth",
                "gauge",
                "Callbacks queued (including in flight).",
                |t| t.queue_depth.load(Ordering::Relaxed),
            ),
            ("callbacks_in_flight", "gauge", "Requests in flight.", |t| {
                t.in_flight.load(Ordering::Relaxed)
            }),
            (
                "callbacks_circuit_state",
                "gauge",
                "Circuit breaker state: 0 closed, 1 open, 2 half-open.",
                |t| i64::from(t.circuit_state.load(Ordering::Relaxed)),
            ),
        ];
        for (name, kind, help, get) in per_target {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for ((c, t), m) in &targets {
                let _ = writeln!(
                    out,
                    "{name}{{client=\"{}\",target=\"{}\"}} {}",
                    esc(c),
                    esc(t),
                    get(m)
                );
            }
        }
        let name = "callbacks_request_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Duration of delivery attempts.\n# TYPE {name} histogram"
        );
        for ((c, t), m) in &targets {
            m.request_duration.render(
                out,
                name,
                &format!("client=\"{}\",target=\"{}\"", esc(c), esc(t)),
            );
        }
    }

    /// Dead letters per client.
    fn render_dlq(&self, out: &mut String) {
        let name = "callbacks_dlq_depth";
        let _ = writeln!(
            out,
            "# HELP {name} Dead-lettered callbacks per client.\n# TYPE {name} gauge"
        );
        let dlq = self.dlq_depth.lock().unwrap_or_else(|p| p.into_inner());
        for (c, n) in dlq.iter() {
            let _ = writeln!(out, "{name}{{client=\"{}\"}} {n}", esc(c));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.events_received.fetch_add(3, Ordering::Relaxed);
        let t = m.target("client \"a\"", "t1");
        t.delivered.fetch_add(2, Ordering::Relaxed);
        t.request_duration.observe(Duration::from_millis(3));
        t.request_duration.observe(Duration::from_secs(100));
        let text = m.render();
        assert!(text.contains("callbacks_events_received_total 3\n"));
        assert!(text
            .contains("callbacks_delivered_total{client=\"client \\\"a\\\"\",target=\"t1\"} 2\n"));
        assert!(text.contains("callbacks_request_duration_seconds_bucket{client=\"client \\\"a\\\"\",target=\"t1\",le=\"0.005\"} 1\n"));
        assert!(text.contains("callbacks_request_duration_seconds_bucket{client=\"client \\\"a\\\"\",target=\"t1\",le=\"+Inf\"} 2\n"));
        assert!(text.contains("callbacks_delivery_latency_seconds_count 0\n"));
    }
}
