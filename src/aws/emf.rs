//! CloudWatch Embedded Metric Format: one JSON line per invocation on stdout, which Lambda
//! ships to CloudWatch Logs and CloudWatch turns into metrics (no PutMetricData calls).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// The default metric namespace (override with `METRICS_NAMESPACE`).
pub const DEFAULT_NAMESPACE: &str = "NHSNotify/ClientCallbacks";

/// The counts of one invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvocationMetrics {
    /// Records in the batch.
    pub events_in: u64,
    /// Records sent to the rejected-events queue.
    pub rejected: u64,
    /// Valid events that produced no callback (no configuration, or no subscription matched).
    pub filtered_out: u64,
    /// Output elements (one per callback).
    pub callbacks_out: u64,
    pub config_cache_hits: u64,
    pub config_cache_misses: u64,
    pub duration: Duration,
}

/// The metric names, in the order they appear in the EMF directive.
pub const METRIC_NAMES: [&str; 7] = [
    "EventsIn",
    "EventsRejected",
    "EventsFilteredOut",
    "CallbacksOut",
    "ConfigCacheHits",
    "ConfigCacheMisses",
    "Duration",
];

impl InvocationMetrics {
    /// The EMF document for these metrics, with a `FunctionName` dimension.
    pub fn to_emf(&self, namespace: &str, function_name: &str, timestamp_ms: u64) -> Value {
        let count = |name: &str| json!({"Name": name, "Unit": "Count"});
        json!({
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": namespace,
                    "Dimensions": [["FunctionName"]],
                    "Metrics": [
                        count("EventsIn"), count("EventsRejected"), count("EventsFilteredOut"),
                        count("CallbacksOut"), count("ConfigCacheHits"), count("ConfigCacheMisses"),
                        {"Name": "Duration", "Unit": "Milliseconds"}
                    ]
                }]
            },
            "FunctionName": function_name,
            "EventsIn": self.events_in,
            "EventsRejected": self.rejected,
            "EventsFilteredOut": self.filtered_out,
            "CallbacksOut": self.callbacks_out,
            "ConfigCacheHits": self.config_cache_hits,
            "ConfigCacheMisses": self.config_cache_misses,
            "Duration": self.duration.as_secs_f64() * 1000.0,
        })
    }

    /// Writes the EMF line to stdout (one line, newline-terminated, written at once).
    pub fn emit(&self, namespace: &str, function_name: &str) {
        use std::io::Write;
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let mut line = self.to_emf(namespace, function_name, ts).to_string();
        line.push('\n');
        let mut out = std::io::stdout().lock();
        // Metrics are best effort: a closed stdout must not fail the batch.
        let _ = out.write_all(line.as_bytes()).and_then(|()| out.flush());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_document_declares_every_metric_and_carries_its_value() {
        let m = InvocationMetrics {
            events_in: 10,
            rejected: 1,
            filtered_out: 2,
            callbacks_out: 9,
            config_cache_hits: 3,
            config_cache_misses: 1,
            duration: Duration::from_micros(12_500),
        };
        let doc = m.to_emf("NS", "fn", 1_700_000_000_000);
        let declared: Vec<&str> = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .map(|a| a.iter().filter_map(|m| m["Name"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(declared, METRIC_NAMES);
        for name in METRIC_NAMES {
            assert!(
                doc.get(name).is_some_and(Value::is_number),
                "{name} has a value"
            );
        }
        assert_eq!(doc["EventsIn"], 10);
        assert_eq!(doc["Duration"], 12.5);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["FunctionName"]])
        );
        assert_eq!(doc["FunctionName"], "fn");
    }
}
