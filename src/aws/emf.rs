//! CloudWatch Embedded Metric Format: one JSON line per invocation on stdout, which Lambda
//! ships to CloudWatch Logs and CloudWatch turns into metrics (no PutMetricData calls).

use std::time::Duration;

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

/// One metric of an EMF document: its name, CloudWatch unit and value (a number, or an array
/// of numbers).
pub struct Metric<'a> {
    pub name: &'a str,
    pub unit: &'a str,
    pub value: Value,
}

impl<'a> Metric<'a> {
    pub fn count(name: &'a str, value: u64) -> Self {
        Metric {
            name,
            unit: "Count",
            value: json!(value),
        }
    }
    pub fn milliseconds(name: &'a str, value: impl Into<Value>) -> Self {
        Metric {
            name,
            unit: "Milliseconds",
            value: value.into(),
        }
    }
}

/// The EMF document of `metrics` under `namespace`, with one dimension (name, value). Every
/// Lambda's metrics are written through this one function.
pub fn document(
    namespace: &str,
    (dimension, dimension_value): (&str, &str),
    timestamp_ms: u64,
    metrics: Vec<Metric<'_>>,
) -> Value {
    let declared: Vec<Value> = metrics
        .iter()
        .map(|m| json!({"Name": m.name, "Unit": m.unit}))
        .collect();
    let mut doc = serde_json::Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [[dimension]],
                "Metrics": declared,
            }]
        }),
    );
    doc.insert(dimension.into(), json!(dimension_value));
    for m in metrics {
        doc.insert(m.name.into(), m.value);
    }
    Value::Object(doc)
}

/// Milliseconds since the Unix epoch, for [`document`]'s timestamp.
pub fn now_ms() -> u64 {
    crate::deliver::EpochMs::now().0
}

/// Writes EMF documents to stdout, one line each, all at once. Best effort: a closed stdout
/// must not fail the batch.
pub fn write_lines(docs: impl IntoIterator<Item = Value>) {
    use std::io::Write;
    let mut text = String::new();
    for doc in docs {
        text.push_str(&doc.to_string());
        text.push('\n');
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

impl InvocationMetrics {
    /// The EMF document for these metrics, with a `FunctionName` dimension.
    pub fn to_emf(&self, namespace: &str, function_name: &str, timestamp_ms: u64) -> Value {
        document(
            namespace,
            ("FunctionName", function_name),
            timestamp_ms,
            vec![
                Metric::count("EventsIn", self.events_in),
                Metric::count("EventsRejected", self.rejected),
                Metric::count("EventsFilteredOut", self.filtered_out),
                Metric::count("CallbacksOut", self.callbacks_out),
                Metric::count("ConfigCacheHits", self.config_cache_hits),
                Metric::count("ConfigCacheMisses", self.config_cache_misses),
                Metric::milliseconds("Duration", self.duration.as_secs_f64() * 1000.0),
            ],
        )
    }

    /// Writes the EMF line to stdout.
    pub fn emit(&self, namespace: &str, function_name: &str) {
        write_lines([self.to_emf(namespace, function_name, now_ms())]);
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
