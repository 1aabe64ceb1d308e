//! The floor `scripts/bench-transform.sh` compares `callbacks transform` with: every
//! newline-delimited JSON line of stdin parsed into a `serde_json::Value` and written back
//! compact to stdout, on one thread. It validates nothing and signs nothing.
//! Run: `cargo run --release --example serde_floor < events.ndjson > /dev/null`.

use std::io::{self, BufRead, BufReader, BufWriter, Write};

#[global_allocator]
static GLOBAL: callbacks::alloc::Mimalloc = callbacks::alloc::Mimalloc;

fn main() -> anyhow::Result<()> {
    let mut input = BufReader::with_capacity(1 << 20, io::stdin().lock());
    let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
    let mut line = Vec::with_capacity(4096);
    let (mut lines, mut bad) = (0u64, 0u64);
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        lines += 1;
        match serde_json::from_slice::<serde_json::Value>(&line) {
            Ok(value) => {
                serde_json::to_writer(&mut out, &value)?;
                out.write_all(b"\n")?;
            }
            Err(_) => bad += 1,
        }
    }
    out.flush()?;
    eprintln!("{lines} lines, {bad} not JSON");
    Ok(())
}
