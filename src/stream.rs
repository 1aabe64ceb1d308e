//! Newline-delimited event streams (`callbacks transform`): one CloudEvent per input line, one
//! callback request per output line, one error report per rejected line. Streams: memory stays
//! flat in the number of events, and a line longer than the event limit is skipped, not buffered.

use std::io::{self, BufRead, Write};

use serde::Serialize;

use crate::config::ConfigSet;
use crate::event::MAX_EVENT_BYTES;
use crate::pipeline::{self, Callback, CoreOptions, Outcome, ProcessError};

/// Counts of one run.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamStats {
    pub lines: u64,
    pub events: u64,
    pub rejected: u64,
    pub callbacks: u64,
    pub no_client_config: u64,
    pub no_match: u64,
}

/// One output line: the request to send.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestLine<'a> {
    client_id: &'a str,
    target_id: &'a str,
    url: &'a str,
    method: &'a str,
    headers: serde_json::Map<String, serde_json::Value>,
    body: &'a str,
}

/// One error line.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorLine<'a> {
    line: u64,
    event_id: Option<&'a str>,
    error: String,
}

/// Reads one line of at most `limit` bytes into `buf` (without the newline). Returns
/// `Ok(None)` at end of input, `Ok(Some(true))` for a line, `Ok(Some(false))` for a line that
/// was longer than the limit (its bytes are consumed and dropped; `buf` holds its first bytes).
fn read_line_bounded(
    input: &mut impl BufRead,
    buf: &mut Vec<u8>,
    limit: usize,
    total: &mut usize,
) -> io::Result<Option<bool>> {
    buf.clear();
    *total = 0;
    let mut any = false;
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            return Ok(if any { Some(*total <= limit) } else { None });
        }
        any = true;
        let (take, done) = match memchr(chunk) {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        if *total + take <= limit {
            buf.extend_from_slice(&chunk[..take]);
        } else if buf.len() < limit {
            let room = limit - buf.len();
            buf.extend_from_slice(&chunk[..take.min(room)]);
        }
        *total += take;
        input.consume(if done { take + 1 } else { take });
        if done {
            return Ok(Some(*total <= limit));
        }
    }
}

fn memchr(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

fn write_callback(out: &mut impl Write, cb: &Callback) -> io::Result<()> {
    let headers = cb
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let body =
        std::str::from_utf8(&cb.body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let line = RequestLine {
        client_id: &cb.client_id,
        target_id: &cb.target_id,
        url: &cb.url,
        method: cb.method,
        headers,
        body,
    };
    serde_json::to_writer(&mut *out, &line)?;
    out.write_all(b"\n")
}

fn write_error(
    err: &mut impl Write,
    line: u64,
    event_id: Option<&str>,
    error: String,
) -> io::Result<()> {
    serde_json::to_writer(
        &mut *err,
        &ErrorLine {
            line,
            event_id,
            error,
        },
    )?;
    err.write_all(b"\n")
}

/// Runs the core over every line of `input`. Blank lines are skipped. I/O errors end the run;
/// bad events never do.
pub fn transform_stream(
    mut input: impl BufRead,
    mut out: impl Write,
    mut err: impl Write,
    configs: &ConfigSet,
    opts: &CoreOptions,
) -> io::Result<StreamStats> {
    let mut stats = StreamStats::default();
    let mut buf = Vec::with_capacity(4096);
    let mut total = 0usize;
    while let Some(fits) = read_line_bounded(&mut input, &mut buf, MAX_EVENT_BYTES, &mut total)? {
        stats.lines += 1;
        let line_no = stats.lines;
        if !fits {
            stats.rejected += 1;
            write_error(
                &mut err,
                line_no,
                None,
                format!("event is {total} bytes; the limit is {MAX_EVENT_BYTES} bytes"),
            )?;
            continue;
        }
        let line = trim(&buf);
        if line.is_empty() {
            continue;
        }
        match pipeline::process(line, configs, opts) {
            Ok(Outcome::Callbacks { callbacks, .. }) => {
                stats.events += 1;
                if callbacks.is_empty() {
                    stats.no_match += 1;
                }
                for cb in &callbacks {
                    write_callback(&mut out, cb)?;
                    stats.callbacks += 1;
                }
            }
            Ok(Outcome::NoClientConfig { event }) => {
                stats.events += 1;
                stats.no_client_config += 1;
                tracing::info!(
                    event_id = event.id(),
                    message_id = event.message_id(),
                    client_id = event.client_id(),
                    "no configuration for client"
                );
            }
            Err(e) => {
                stats.rejected += 1;
                let id = e.event_id().map(str::to_owned);
                let text = match &e {
                    ProcessError::Rejected(r) => r.error.to_string(),
                    ProcessError::Transform { source, .. } => source.to_string(),
                };
                write_error(&mut err, line_no, id.as_deref(), text)?;
            }
        }
    }
    out.flush()?;
    err.flush()?;
    Ok(stats)
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &b[start..end]
}
