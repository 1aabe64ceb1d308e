//! Blocks of a regular-file input read through a memory map: each block is a slice of the map
//! cut at newlines, nothing is copied. The blocks are the ones [`BlockReader`](super::blocks)
//! would give for the same bytes in every way the output can see: whole lines, a line longer
//! than the event limit counted and skipped (never handed to a worker), at most one such line
//! at a block's start.
//!
//! Memory stays flat: the map is page cache, not heap, and the pages of the input that every
//! written block has passed (and those of a skipped over-long line) are given back with
//! `MADV_DONTNEED` (a huge page at a time, [`RELEASE`]), so the resident set holds only the
//! blocks in flight and at most 2 MiB more.

use std::fs::File;
use std::io;

use memmap2::{Advice, Mmap, UncheckedAdvice};

use crate::event::MAX_EVENT_BYTES;

use super::blocks::{Block, BLOCK_BYTES};

/// The granularity pages are given back at. A page larger than this only means a page shared
/// with a neighbouring line may be dropped too, and read again from the page cache.
const PAGE: usize = 4096;

/// The granularity the pages every written block has passed are given back at: a huge page,
/// so that a map the kernel backs with huge pages is unmapped whole, not split (and the
/// resident set holds at most this much more than the blocks in flight).
const RELEASE: usize = 2 << 20;

/// How much of an over-long line is scanned before its pages are given back.
const SKIP_PIECE: usize = 1 << 20;

/// A regular file mapped for reading, from the file's current offset.
pub struct MappedInput {
    map: Mmap,
    start: usize,
}

impl MappedInput {
    /// Maps `file` if it is a regular file that can be mapped (`Ok(None)` otherwise: read it as
    /// a stream).
    pub fn new(file: &File) -> io::Result<Option<Self>> {
        if !file.metadata()?.is_file() {
            return Ok(None);
        }
        let start = io::Seek::stream_position(&mut &*file)?;
        // SAFETY: the map is only read. Like any reader of a memory-mapped file, the run
        // assumes the file is not truncated or rewritten while it runs (a truncation would end
        // the process with SIGBUS); it reads the file as it was when mapped.
        let Ok(map) = (unsafe { Mmap::map(file) }) else {
            return Ok(None);
        };
        // Advice only: a kernel that refuses it reads the map all the same.
        let _ = map.advise(Advice::Sequential);
        let start = usize::try_from(start).unwrap_or(usize::MAX).min(map.len());
        Ok(Some(MappedInput { map, start }))
    }

    /// The block source over the map.
    pub fn blocks(&self) -> MappedBlocks<'_> {
        MappedBlocks {
            map: &self.map,
            pos: self.start,
            released: self.start.next_multiple_of(PAGE),
        }
    }
}

/// Cuts a mapped input into blocks.
pub struct MappedBlocks<'a> {
    map: &'a Mmap,
    /// Offset in the map of the next block.
    pos: usize,
    /// Pages before this offset have been given back.
    released: usize,
}

impl<'a> MappedBlocks<'a> {
    /// Fills `block` with the next lines; `false` at the end of the input.
    pub fn next_block(&mut self, block: &mut Block<'a>) -> bool {
        let map: &'a [u8] = self.map;
        block.overlong = None;
        block.data.clear();
        block.mapped = None;
        if self.pos >= map.len() {
            return false;
        }
        if fitting_line(&map[self.pos..]).is_none() {
            let n = self.skip_line();
            block.overlong = Some(n);
            self.pos = (self.pos + n + 1).min(map.len());
        }
        let rest = &map[self.pos..];
        let end = block_end(rest);
        block.mapped = Some(&rest[..end]);
        self.pos += end;
        block.end = self.pos;
        true
    }

    /// A block ending at `end` (its [`Block::end`]) and every one before it have been written:
    /// gives back the pages they covered.
    pub fn written(&mut self, end: usize) {
        let end = end - end % RELEASE;
        if end > self.released {
            self.give_back(self.released, end);
            self.released = end;
        }
    }

    /// The length (without its newline) of the over-long line at `pos`, scanned a piece at a
    /// time, each piece's pages given back once passed (no block holds them).
    fn skip_line(&mut self) -> usize {
        let line = &self.map[self.pos..];
        let mut n = 0;
        loop {
            let piece = &line[n..line.len().min(n + SKIP_PIECE)];
            let found = memchr::memchr(b'\n', piece);
            let passed = found.unwrap_or(piece.len());
            let (from, to) = (self.pos + n, self.pos + n + passed);
            let (from, to) = (from.next_multiple_of(PAGE), to - to % PAGE);
            if to > from {
                self.give_back(from, to);
            }
            n += passed;
            if found.is_some() || n == line.len() {
                return n;
            }
        }
    }

    fn give_back(&self, from: usize, to: usize) {
        // SAFETY: the map is a shared, read-only mapping of a file: `MADV_DONTNEED` only drops
        // the pages from this process; a later read of them (a block still in flight whose
        // page straddles the range) faults them in again from the file, with the same bytes.
        // Advice only: if refused, the pages stay resident until the map is dropped.
        let _ = unsafe {
            self.map
                .unchecked_advise_range(UncheckedAdvice::DontNeed, from, to - from)
        };
    }
}

/// Where the block that starts `rest` ends: after the first line that reaches [`BLOCK_BYTES`],
/// or before the first over-long line, or at the end of the input.
fn block_end(rest: &[u8]) -> usize {
    quick_block_end(rest).unwrap_or_else(|| line_by_line_end(rest))
}

/// [`block_end`], reading every line.
fn line_by_line_end(rest: &[u8]) -> usize {
    let mut end = 0;
    while end < rest.len() && end < BLOCK_BYTES {
        match fitting_line(&rest[end..]) {
            Some(n) => end += n,
            // An over-long line starts the next block.
            None => break,
        }
    }
    end
}

/// Every stretch of this many bytes holding a newline means no line is longer than twice it.
const NEWLINE_STRIDE: usize = MAX_EVENT_BYTES / 4;

/// [`block_end`] without reading every line, when no line up to it can be over-long: the end of
/// the first line that reaches [`BLOCK_BYTES`] (or of the input), provided each whole
/// [`NEWLINE_STRIDE`] of the block holds a newline (a line longer than the event limit would
/// cover at least three whole stretches). `None`: the block must be cut line by line.
fn quick_block_end(rest: &[u8]) -> Option<usize> {
    let end = match rest.get(BLOCK_BYTES - 1..) {
        Some(tail) => memchr::memchr(b'\n', tail).map_or(rest.len(), |at| BLOCK_BYTES + at),
        None => rest.len(),
    };
    rest[..end]
        .chunks_exact(NEWLINE_STRIDE)
        .all(|stretch| memchr::memchr(b'\n', stretch).is_some())
        .then_some(end)
}

/// The length of the line at the start of `rest` with its newline (all of `rest` for a last
/// line without one); `None` if the line is longer than the event limit.
fn fitting_line(rest: &[u8]) -> Option<usize> {
    let window = &rest[..rest.len().min(MAX_EVENT_BYTES + 1)];
    match memchr::memchr(b'\n', window) {
        Some(i) => Some(i + 1),
        None => (rest.len() <= MAX_EVENT_BYTES).then_some(rest.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs of lines of awkward lengths (around the stride, the block size and the event
    /// limit), with and without a final newline.
    fn inputs() -> Vec<Vec<u8>> {
        let lengths = [
            0,
            1,
            900,
            NEWLINE_STRIDE - 1,
            NEWLINE_STRIDE,
            2 * NEWLINE_STRIDE + 1,
            BLOCK_BYTES - 1,
            BLOCK_BYTES,
            MAX_EVENT_BYTES,
            MAX_EVENT_BYTES + 1,
            3 * MAX_EVENT_BYTES,
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut out = Vec::new();
        for round in 0..24 {
            let mut input = Vec::new();
            for _ in 0..1500 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Mostly short lines, now and then an awkward one.
                let len = if x % 256 == 0 {
                    lengths[(x >> 8) as usize % lengths.len()]
                } else {
                    (x >> 16) as usize % 2000
                };
                input.extend(std::iter::repeat_n(b'a', len));
                input.push(b'\n');
            }
            if round % 2 == 1 {
                input.extend(std::iter::repeat_n(
                    b'z',
                    (x >> 24) as usize % (BLOCK_BYTES + 10),
                ));
            }
            out.push(input);
        }
        out
    }

    #[test]
    fn the_quick_cut_ends_each_block_where_reading_every_line_does() {
        let (mut quick, mut slow) = (0, 0);
        for input in inputs() {
            let mut pos = 0;
            while pos < input.len() {
                let rest = &input[pos..];
                let want = line_by_line_end(rest);
                match quick_block_end(rest) {
                    Some(end) => {
                        assert_eq!(end, want, "at {pos} of {}", input.len());
                        quick += 1;
                    }
                    None => slow += 1,
                }
                // As next_block moves on: past an over-long line, else past the block.
                pos += if want == 0 {
                    fitting_line(rest).unwrap_or_else(|| {
                        rest.iter()
                            .position(|&b| b == b'\n')
                            .map_or(rest.len(), |i| i + 1)
                    })
                } else {
                    want
                };
            }
        }
        assert!(quick > 20 && slow > 5, "quick {quick}, slow {slow}");
    }
}
