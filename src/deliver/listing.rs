//! The dead-letter listing of `callbacks dlq list`, the same for every backend (the SQLite
//! store of `callbacks serve`, an https-mode client DLQ on SQS): a JSON array with each entry's
//! full record, or a header and one tab-separated line per entry.

use std::borrow::Cow;
use std::io::{self, Write};

use serde::Serialize;

/// The header of the tab-separated listing.
pub const HEADER: &str = "id\tclient\ttarget\tmessageId\tattempts\tlastOutcome\tdeadAt\treason";

/// One line of the tab-separated listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<'a> {
    pub id: Cow<'a, str>,
    pub client_id: &'a str,
    pub target_id: &'a str,
    pub message_id: &'a str,
    pub attempts: u32,
    pub last_outcome: Cow<'a, str>,
    pub dead_at: &'a str,
    pub reason: &'a str,
}

/// Writes `entries` as a JSON array (`json`) or as the tab-separated listing, `line` giving
/// each entry's columns. Entries must not hold request headers (they carry the API key).
pub fn write<T: Serialize>(
    out: &mut impl Write,
    entries: &[T],
    json: bool,
    line: impl Fn(&T) -> Line<'_>,
) -> io::Result<()> {
    if json {
        serde_json::to_writer_pretty(&mut *out, entries)?;
        return writeln!(out);
    }
    writeln!(out, "{HEADER}")?;
    for e in entries {
        let l = line(e);
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            l.id,
            l.client_id,
            l.target_id,
            l.message_id,
            l.attempts,
            l.last_outcome,
            l.dead_at,
            l.reason
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Entry {
        id: u32,
        reason: String,
    }

    fn line(e: &Entry) -> Line<'_> {
        Line {
            id: e.id.to_string().into(),
            client_id: "c",
            target_id: "t",
            message_id: "m",
            attempts: 2,
            last_outcome: "HTTP 500".into(),
            dead_at: "2025-01-01T00:00:00Z",
            reason: &e.reason,
        }
    }

    #[test]
    fn tab_separated_under_a_header_or_a_json_array() {
        let entries = [Entry {
            id: 7,
            reason: "retry budget spent".into(),
        }];
        let mut text = Vec::new();
        write(&mut text, &entries, false, line).expect("write");
        assert_eq!(
            String::from_utf8(text).expect("utf8"),
            format!(
                "{HEADER}\n7\tc\tt\tm\t2\tHTTP 500\t2025-01-01T00:00:00Z\tretry budget spent\n"
            )
        );
        let mut json = Vec::new();
        write(&mut json, &entries, true, line).expect("write");
        let v: serde_json::Value = serde_json::from_slice(&json).expect("json");
        assert_eq!(
            v,
            serde_json::json!([{"id": 7, "reason": "retry budget spent"}])
        );
    }
}
