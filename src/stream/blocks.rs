//! Splits a byte stream into blocks of whole lines, holding at most about two blocks' worth of
//! bytes. A line longer than the event limit is counted and skipped
//! as it streams past, never buffered.

use std::io::{self, Read};

use crate::event::MAX_EVENT_BYTES;

/// How many bytes of input one block aims for (whole lines are added until this is reached).
pub const BLOCK_BYTES: usize = 512 * 1024;

/// One block of input lines.
#[derive(Debug, Default)]
pub struct Block<'a> {
    /// A line longer than the limit that came just before the lines: its length in bytes
    /// (without the newline). It counts as one line.
    pub overlong: Option<usize>,
    /// Whole lines read from a stream, each ending with `\n`, except the input's last line
    /// when it has none.
    pub data: Vec<u8>,
    /// Or the same, as a slice of a mapped input ([`super::mapped`]); `data` is then empty.
    pub mapped: Option<&'a [u8]>,
    /// Where the block ends in a mapped input.
    pub end: usize,
}

impl Block<'_> {
    /// The block's lines.
    pub fn lines(&self) -> &[u8] {
        self.mapped.unwrap_or(&self.data)
    }
}

/// Reads [`Block`]s from an input.
pub struct BlockReader<R> {
    input: R,
    /// The partial line after the last block's final newline.
    carry: Vec<u8>,
    eof: bool,
}

impl<R: Read> BlockReader<R> {
    pub fn new(input: R) -> Self {
        BlockReader {
            input,
            carry: Vec::new(),
            eof: false,
        }
    }

    /// Fills `block` with the next lines; `Ok(false)` at the end of the input.
    pub fn next_block(&mut self, block: &mut Block<'_>) -> io::Result<bool> {
        block.overlong = None;
        block.mapped = None;
        block.data.clear();
        if self.eof {
            return Ok(false);
        }
        block.data.append(&mut self.carry);
        loop {
            let (whole, partial) = split_partial(&block.data);
            if partial > MAX_EVENT_BYTES {
                if whole > 0 || block.overlong.is_some() {
                    // End the block before the over-long line; the next block starts with it.
                    self.carry.extend_from_slice(&block.data[whole..]);
                    block.data.truncate(whole);
                    return Ok(true);
                }
                // Drop what we have of it and count the rest as it streams past.
                let mut total = partial;
                let found = self.skip_line(&mut total, &mut block.data)?;
                block.overlong = Some(total);
                if !found {
                    self.eof = true;
                    return Ok(true);
                }
                continue;
            }
            if block.data.len() >= BLOCK_BYTES && whole > 0 {
                self.carry.extend_from_slice(&block.data[whole..]);
                block.data.truncate(whole);
                return Ok(true);
            }
            if !self.fill(&mut block.data)? {
                self.eof = true;
                return Ok(block.overlong.is_some() || !block.data.is_empty());
            }
        }
    }

    /// Reads up to [`BLOCK_BYTES`] more input onto the end of `buf`; `Ok(false)` at the end of
    /// the input. `read_to_end` reads into the spare capacity as it is (a reader such as stdin
    /// or a file fills it without the buffer being zeroed first).
    fn fill(&mut self, buf: &mut Vec<u8>) -> io::Result<bool> {
        buf.reserve(BLOCK_BYTES);
        let n = (&mut self.input)
            .take(BLOCK_BYTES as u64)
            .read_to_end(buf)?;
        Ok(n > 0)
    }

    /// Consumes the rest of an over-long line, adding its length to `total`. Bytes after its
    /// newline are left in `buf`. `Ok(false)` when the input ended inside the line.
    fn skip_line(&mut self, total: &mut usize, buf: &mut Vec<u8>) -> io::Result<bool> {
        buf.clear();
        loop {
            if !self.fill(buf)? {
                return Ok(false);
            }
            if let Some(i) = memchr::memchr(b'\n', buf) {
                *total += i;
                buf.drain(..=i);
                return Ok(true);
            }
            *total += buf.len();
            buf.clear();
        }
    }
}

/// `(length of the whole lines, length of the partial line after them)`.
fn split_partial(data: &[u8]) -> (usize, usize) {
    match memchr::memrchr(b'\n', data) {
        Some(i) => (i + 1, data.len() - i - 1),
        None => (0, data.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads in small pieces, to cross every boundary.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(buf.len()).min(self.1);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// Every line of the input as the blocks give them back: `Ok(line)`, or `Err(length)` for
    /// a line over the limit.
    fn lines_of(input: &[u8], piece: usize) -> Vec<Result<Vec<u8>, usize>> {
        let mut reader = BlockReader::new(Trickle(input, piece));
        let mut block = Block::default();
        let mut out = Vec::new();
        while reader.next_block(&mut block).expect("read") {
            assert!(block.data.len() <= 2 * BLOCK_BYTES + MAX_EVENT_BYTES);
            if let Some(n) = block.overlong {
                out.push(Err(n));
            }
            let mut rest = &block.data[..];
            while !rest.is_empty() {
                let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
                // A whole over-long line may come inside a block: the worker refuses it.
                let line = &rest[..end];
                out.push(if line.len() > MAX_EVENT_BYTES {
                    Err(line.len())
                } else {
                    Ok(line.to_vec())
                });
                rest = rest.get(end + 1..).unwrap_or_default();
            }
        }
        out
    }

    #[test]
    fn blocks_hold_whole_lines_in_order_and_overlong_lines_are_only_counted() {
        let huge = vec![b'x'; MAX_EVENT_BYTES + 10];
        let mut input = Vec::new();
        let mut expected = Vec::new();
        for i in 0..3000 {
            let line = format!("line {i} {}", "y".repeat(i % 400)).into_bytes();
            input.extend_from_slice(&line);
            input.push(b'\n');
            expected.push(Ok(line));
            if i % 1000 == 7 {
                input.extend_from_slice(&huge);
                input.push(b'\n');
                expected.push(Err(huge.len()));
                input.push(b'\n');
                expected.push(Ok(Vec::new()));
            }
        }
        input.extend_from_slice(b"last without newline");
        expected.push(Ok(b"last without newline".to_vec()));
        for piece in [1 << 20, 70_000, 4096] {
            assert_eq!(lines_of(&input, piece), expected, "piece {piece}");
        }
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_kept_and_one_more_byte_is_not() {
        let fits = vec![b'a'; MAX_EVENT_BYTES];
        let over = vec![b'b'; MAX_EVENT_BYTES + 1];
        let mut input = fits.clone();
        input.push(b'\n');
        input.extend_from_slice(&over);
        assert_eq!(
            lines_of(&input, 1 << 20),
            vec![Ok(fits), Err(MAX_EVENT_BYTES + 1)]
        );
        assert!(lines_of(b"", 10).is_empty());
        assert_eq!(lines_of(b"\n", 10), vec![Ok(Vec::new())]);
    }
}
