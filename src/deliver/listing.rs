//! The dead-letter listing of `callbacks dlq list`, the same for every backend (the SQLite
//! store of `callbacks serve`, an https-mode or API-destination DLQ on SQS): a JSON array of
//! [`DeadLetterRecord`]s, or a header and one tab-separated line per entry.

use std::io::{self, Write};

use super::record::DeadLetterRecord;

/// The header of the tab-separated listing.
pub const HEADER: &str = "id\tclient\ttarget\tmessageId\tattempts\tlastOutcome\tdeadAt\treason";

/// Writes `entries` as a JSON array (`json`) or as the tab-separated listing.
pub fn write<'a>(
    out: &mut impl Write,
    entries: impl IntoIterator<Item = &'a DeadLetterRecord>,
    json: bool,
) -> io::Result<()> {
    let entries: Vec<&DeadLetterRecord> = entries.into_iter().collect();
    if json {
        serde_json::to_writer_pretty(&mut *out, &entries)?;
        return writeln!(out);
    }
    writeln!(out, "{HEADER}")?;
    for e in entries {
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            e.id,
            e.routing.client_id,
            e.routing.target_id,
            e.routing.message_id,
            e.attempts,
            e.last_outcome,
            e.dead_at,
            e.reason
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deliver::RoutingIds;

    fn entry() -> DeadLetterRecord {
        DeadLetterRecord {
            id: "7".into(),
            routing: RoutingIds {
                client_id: "c".into(),
                target_id: "t".into(),
                event_id: "e".into(),
                message_id: "m".into(),
                traceparent: None,
                subscription_ids: vec![],
            },
            attempts: 2,
            first_attempt_at: None,
            last_outcome: "HTTP 500".into(),
            dead_at: "2025-01-01T00:00:00.000Z".into(),
            reason: "retry budget spent".into(),
            history: vec![],
            source_queue_url: None,
            payload: serde_json::Value::Null,
        }
    }

    #[test]
    fn tab_separated_under_a_header_or_a_json_array() {
        let entries = [entry()];
        let mut text = Vec::new();
        write(&mut text, &entries, false).expect("write");
        assert_eq!(
            String::from_utf8(text).expect("utf8"),
            format!(
                "{HEADER}\n7\tc\tt\tm\t2\tHTTP 500\t2025-01-01T00:00:00.000Z\tretry budget spent\n"
            )
        );
        let mut json = Vec::new();
        write(&mut json, &entries, true).expect("write");
        let v: serde_json::Value = serde_json::from_slice(&json).expect("json");
        assert_eq!(v[0]["id"], "7");
        assert_eq!(v[0]["lastOutcome"], "HTTP 500");
        assert_eq!(v[0]["sourceQueueUrl"], serde_json::Value::Null);
        assert_eq!(v.as_array().map(Vec::len), Some(1));
    }
}
