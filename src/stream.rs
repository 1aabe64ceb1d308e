//! Newline-delimited event streams (`callbacks transform`): one CloudEvent per input line, one
//! callback request per output line, one error report per rejected line.
//!
//! The input is cut into blocks of whole lines ([`blocks`]; slices of a memory map when the
//! input is a regular file, [`mapped`]); worker threads run the core on blocks; the calling
//! thread cuts the input and writes the results in input order. At most `2 × workers + 2`
//! blocks are in flight, so memory stays flat in the number of events (about 1 MiB of input
//! plus its output per block), and a line longer than the event limit is skipped as it
//! streams past, not buffered.

mod blocks;
mod body;
mod lines;
mod mapped;
mod requests;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::num::NonZeroUsize;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::config::ConfigSet;
use crate::pipeline::CoreOptions;

use blocks::{Block, BlockReader};
use lines::{BlockOutput, LineError};
use mapped::{MappedBlocks, MappedInput};

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

impl StreamStats {
    fn add(&mut self, o: &StreamStats) {
        self.lines += o.lines;
        self.events += o.events;
        self.rejected += o.rejected;
        self.callbacks += o.callbacks;
        self.no_client_config += o.no_client_config;
        self.no_match += o.no_match;
    }
}

/// One error line.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorLine<'a> {
    line: u64,
    event_id: Option<&'a str>,
    error: &'a str,
}

/// The number of workers [`transform_stream`] uses: one per core this process may run on.
pub fn default_workers() -> NonZeroUsize {
    std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
}

/// Runs the core over every line of `input` on [`default_workers`] threads. Blank lines are
/// skipped. I/O errors end the run; bad events never do.
pub fn transform_stream(
    input: impl Read,
    out: impl Write,
    err: impl Write,
    configs: &ConfigSet,
    opts: &CoreOptions,
) -> io::Result<StreamStats> {
    transform_stream_with(input, out, err, configs, opts, default_workers())
}

/// A block and its results, travelling between the calling thread and a worker.
#[derive(Default)]
struct Job<'a> {
    seq: u64,
    block: Block<'a>,
    output: BlockOutput,
}

/// As [`transform_stream`], on `workers` threads. The output is the same for any count.
pub fn transform_stream_with(
    input: impl Read,
    out: impl Write,
    err: impl Write,
    configs: &ConfigSet,
    opts: &CoreOptions,
    workers: NonZeroUsize,
) -> io::Result<StreamStats> {
    run(
        Source::Stream(BlockReader::new(input)),
        out,
        err,
        configs,
        opts,
        workers,
    )
}

/// As [`transform_stream_with`], for a file (such as standard input): a regular file is read
/// through a memory map, with no copy (from its current offset, as it is when the run starts;
/// it must not be truncated while the run lasts); anything else (a pipe, a socket, a terminal)
/// is read as a stream. The output is the same either way.
pub fn transform_file_with(
    input: &File,
    out: impl Write,
    err: impl Write,
    configs: &ConfigSet,
    opts: &CoreOptions,
    workers: NonZeroUsize,
) -> io::Result<StreamStats> {
    match MappedInput::new(input)? {
        Some(map) => run(
            Source::<&File>::Mapped(map.blocks()),
            out,
            err,
            configs,
            opts,
            workers,
        ),
        None => transform_stream_with(input, out, err, configs, opts, workers),
    }
}

/// Where the blocks come from.
enum Source<'a, R> {
    Stream(BlockReader<R>),
    Mapped(MappedBlocks<'a>),
}

impl<'a, R: Read> Source<'a, R> {
    fn next_block(&mut self, block: &mut Block<'a>) -> io::Result<bool> {
        match self {
            Source::Stream(reader) => reader.next_block(block),
            Source::Mapped(blocks) => Ok(blocks.next_block(block)),
        }
    }

    /// `block` and every block before it have been written.
    fn written(&mut self, block: &Block<'a>) {
        if let Source::Mapped(blocks) = self {
            blocks.written(block.end);
        }
    }
}

fn run<'a, R: Read>(
    source: Source<'a, R>,
    out: impl Write,
    err: impl Write,
    configs: &ConfigSet,
    opts: &CoreOptions,
    workers: NonZeroUsize,
) -> io::Result<StreamStats> {
    let in_flight = 2 * workers.get() + 2;
    std::thread::scope(|scope| {
        let (job_tx, job_rx) = mpsc::sync_channel::<Job<'a>>(in_flight);
        let (done_tx, done_rx) = mpsc::channel::<Job<'a>>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        for _ in 0..workers.get() {
            let (job_rx, done_tx) = (Arc::clone(&job_rx), done_tx.clone());
            scope.spawn(move || work(&job_rx, &done_tx, configs, opts));
        }
        drop(done_tx);
        let pool = (0..in_flight).map(|_| Job::default()).collect();
        Coordinator {
            source,
            out,
            err,
            pool,
            waiting: BTreeMap::new(),
            next_seq: 0,
            next_write: 0,
            stats: StreamStats::default(),
        }
        .run(job_tx, &done_rx)
    })
}

/// A worker: runs the core on blocks until the calling thread stops sending them.
fn work<'a>(
    jobs: &Mutex<Receiver<Job<'a>>>,
    done: &Sender<Job<'a>>,
    configs: &ConfigSet,
    opts: &CoreOptions,
) {
    let mut requests = requests::RequestWriter::default();
    loop {
        let next = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(mut job) = next else { return };
        lines::process_block(&job.block, &mut job.output, configs, opts, &mut requests);
        if done.send(job).is_err() {
            return;
        }
    }
}

/// The calling thread's part: reads blocks, hands them out, writes results in input order.
struct Coordinator<'a, R, O, E> {
    source: Source<'a, R>,
    out: O,
    err: E,
    /// Jobs not in flight (their buffers are reused).
    pool: Vec<Job<'a>>,
    /// Finished jobs that wait for an earlier one.
    waiting: BTreeMap<u64, Job<'a>>,
    next_seq: u64,
    next_write: u64,
    stats: StreamStats,
}

impl<'a, R: Read, O: Write, E: Write> Coordinator<'a, R, O, E> {
    fn run(
        mut self,
        jobs: SyncSender<Job<'a>>,
        done: &Receiver<Job<'a>>,
    ) -> io::Result<StreamStats> {
        let mut eof = false;
        loop {
            while let Ok(job) = done.try_recv() {
                self.finished(job)?;
            }
            if !eof {
                if let Some(mut job) = self.pool.pop() {
                    if self.source.next_block(&mut job.block)? {
                        job.seq = self.next_seq;
                        self.next_seq += 1;
                        jobs.send(job).map_err(|_| worker_gone())?;
                    } else {
                        eof = true;
                        self.pool.push(job);
                    }
                    continue;
                }
            }
            if self.next_write == self.next_seq {
                break;
            }
            let job = done.recv().map_err(|_| worker_gone())?;
            self.finished(job)?;
        }
        drop(jobs);
        self.out.flush()?;
        self.err.flush()?;
        Ok(self.stats)
    }

    /// Takes a finished job; writes it and any that waited for it.
    fn finished(&mut self, job: Job<'a>) -> io::Result<()> {
        self.waiting.insert(job.seq, job);
        while let Some(mut job) = self.waiting.remove(&self.next_write) {
            if let Some(e) = job.output.failure.take() {
                return Err(e);
            }
            self.write(&job.output)?;
            self.source.written(&job.block);
            self.next_write += 1;
            self.pool.push(job);
        }
        Ok(())
    }

    fn write(&mut self, output: &BlockOutput) -> io::Result<()> {
        self.out.write_all(&output.callbacks)?;
        for LineError {
            line,
            event_id,
            error,
        } in &output.errors
        {
            let line = ErrorLine {
                line: self.stats.lines + line,
                event_id: event_id.as_deref(),
                error,
            };
            serde_json::to_writer(&mut self.err, &line)?;
            self.err.write_all(b"\n")?;
        }
        self.stats.add(&output.stats);
        Ok(())
    }
}

fn worker_gone() -> io::Error {
    io::Error::other("a transform worker stopped")
}
