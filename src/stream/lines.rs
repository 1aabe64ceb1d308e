//! One block of input lines through the core: callback request lines, error reports, counts.

use std::io;

use crate::config::ConfigSet;
use crate::event::{self, MAX_EVENT_BYTES};
use crate::pipeline::{self, CoreOptions, ProcessError};

use super::blocks::Block;
use super::requests::RequestWriter;
use super::StreamStats;

/// A rejected line of a block.
#[derive(Debug)]
pub struct LineError {
    /// The line number within the block (1-based).
    pub line: u64,
    pub event_id: Option<String>,
    pub error: String,
}

/// What one block produced. Buffers are cleared and reused for the next block.
#[derive(Default)]
pub struct BlockOutput {
    /// One request line per callback, each ending with `\n`.
    pub callbacks: Vec<u8>,
    pub errors: Vec<LineError>,
    pub stats: StreamStats,
    /// Set if an output line could not be written (the run stops with it).
    pub failure: Option<io::Error>,
}

/// Runs the core over every line of `block`.
pub fn process_block<'c>(
    block: &Block<'_>,
    output: &mut BlockOutput,
    configs: &'c ConfigSet,
    opts: &CoreOptions,
    requests: &mut RequestWriter<'c>,
) {
    output.callbacks.clear();
    output.errors.clear();
    output.stats = StreamStats::default();
    output.failure = None;
    if let Some(total) = block.overlong {
        output.stats.lines += 1;
        too_large(output, total);
    }
    let mut rest = block.lines();
    while !rest.is_empty() {
        let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        let line = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or_default();
        output.stats.lines += 1;
        if line.len() > MAX_EVENT_BYTES {
            too_large(output, line.len());
            continue;
        }
        let line = trim(line);
        if !line.is_empty() {
            if let Err(e) = process_line(line, output, configs, opts, requests) {
                output.failure = Some(e);
                return;
            }
        }
    }
}

fn too_large(output: &mut BlockOutput, total: usize) {
    output.stats.rejected += 1;
    output.errors.push(LineError {
        line: output.stats.lines,
        event_id: None,
        error: format!("event is {total} bytes; the limit is {MAX_EVENT_BYTES} bytes"),
    });
}

fn process_line<'c>(
    line: &[u8],
    output: &mut BlockOutput,
    configs: &'c ConfigSet,
    opts: &CoreOptions,
    requests: &mut RequestWriter<'c>,
) -> io::Result<()> {
    let event = match event::parse_event(line) {
        Ok(event) => event,
        Err(rejected) => {
            reject(output, ProcessError::Rejected(rejected));
            return Ok(());
        }
    };
    let Some(client) = configs.get(event.client_id()) else {
        output.stats.events += 1;
        output.stats.no_client_config += 1;
        tracing::info!(
            event_id = event.id(),
            message_id = event.message_id(),
            client_id = event.client_id(),
            "no configuration for client"
        );
        return Ok(());
    };
    match pipeline::route_payload(&event, client, opts) {
        Ok(Some((payload, routes))) => {
            output.stats.events += 1;
            let n = requests.write(&mut output.callbacks, client, &routes, &payload)?;
            output.stats.callbacks += n as u64;
        }
        Ok(None) => {
            output.stats.events += 1;
            output.stats.no_match += 1;
        }
        Err(e) => reject(output, e),
    }
    Ok(())
}

fn reject(output: &mut BlockOutput, e: ProcessError) {
    output.stats.rejected += 1;
    let event_id = e.event_id().map(str::to_owned);
    let error = match &e {
        ProcessError::Rejected(r) => r.error.to_string(),
        ProcessError::Transform { source, .. } => source.to_string(),
    };
    output.errors.push(LineError {
        line: output.stats.lines,
        event_id,
        error,
    });
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
