//! `callbacks transform` gives the same output whether its standard input is a regular file
//! (read through a memory map) or a pipe (read as a stream), over several blocks, with lines
//! over the event limit (alone, back to back, first and last) and a last line without a newline.

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::process::{Command, Output, Stdio};

use common::*;

fn transform(cfg: &std::path::Path, stdin: Stdio, workers: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_callbacks"));
    cmd.args(["transform", "--config", cfg.to_str().expect("path")])
        .args(["--workers", workers])
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn piped(cfg: &std::path::Path, input: &[u8], workers: &str) -> Output {
    let mut child = transform(cfg, Stdio::piped(), workers)
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("writer");
    out
}

/// Runs with standard input a file holding `input`, opened at `offset`.
fn from_file(cfg: &std::path::Path, input: &[u8], offset: u64, workers: &str) -> Output {
    let mut file = tempfile::tempfile().expect("tempfile");
    file.write_all(input).expect("write");
    file.seek(SeekFrom::Start(offset)).expect("seek");
    transform(cfg, Stdio::from(file), workers)
        .output()
        .expect("run")
}

fn over_limit() -> String {
    format!("{{\"pad\":\"{}\"}}", "x".repeat(300 * 1024))
}

/// About 4 MiB: several blocks, events to the configured client and others, rejects, blanks.
fn input(last: &str) -> String {
    let mut s = String::new();
    s.push_str(&over_limit());
    s.push('\n');
    for i in 0..4000 {
        let client = if i % 3 == 0 { "client-b" } else { "client-a" };
        let event = if i % 2 == 0 {
            message_event(&format!("m-{i}"), client, "DELIVERED")
        } else {
            channel_event(&format!("c-{i}"), client, "DELIVERED", "READ")
        };
        s.push_str(&event.to_string());
        s.push('\n');
        match i % 700 {
            5 => s.push_str("  \t\n\n"),
            6 => s.push_str("{\"specversion\":\"1.0\"}\n"),
            7 => {
                for _ in 0..2 {
                    s.push_str(&over_limit());
                    s.push('\n');
                }
            }
            _ => {}
        }
    }
    s.push_str(last);
    s
}

fn assert_same(a: &Output, b: &Output, what: &str) {
    assert_eq!(a.status.code(), Some(0), "{what}");
    assert_eq!(b.status.code(), Some(0), "{what}");
    assert!(a.stdout == b.stdout, "{what}: callbacks differ");
    assert_eq!(
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr),
        "{what}"
    );
}

#[test]
fn a_regular_file_and_a_pipe_give_the_same_output() {
    let cfg = config_dir(&[client_config("client-a", "https://client.example/cb")]);
    let last_event = message_event("last", "client-a", "DELIVERED").to_string();
    let mut callbacks = Vec::new();
    for last in [last_event.as_str(), &over_limit(), ""] {
        let input = input(last);
        for workers in ["1", "2"] {
            let piped = piped(cfg.path(), input.as_bytes(), workers);
            let mapped = from_file(cfg.path(), input.as_bytes(), 0, workers);
            assert_same(&piped, &mapped, &format!("last {}, {workers}", last.len()));
            let errors = String::from_utf8_lossy(&mapped.stderr);
            let over = 13 + last.len() / 300_000;
            assert_eq!(errors.matches("the limit is").count(), over, "{errors}");
            callbacks.push(mapped.stdout.iter().filter(|&&b| b == b'\n').count());
        }
    }
    // The last line without a newline is an event like the others.
    assert!(callbacks[4] > 2000, "{callbacks:?}");
    assert_eq!(callbacks, [1, 1, 0, 0, 0, 0].map(|n| callbacks[4] + n));
}

#[test]
fn a_file_is_read_from_its_current_offset() {
    let cfg = config_dir(&[client_config("client-a", "https://client.example/cb")]);
    let input = input("");
    // The start of the 101st line.
    let offset = input.match_indices('\n').nth(99).expect("lines").0 + 1;
    let piped = piped(cfg.path(), &input.as_bytes()[offset..], "2");
    let mapped = from_file(cfg.path(), input.as_bytes(), offset as u64, "2");
    assert_same(&piped, &mapped, "from an offset");
    // Past the end: nothing.
    let past = from_file(cfg.path(), input.as_bytes(), input.len() as u64 + 10, "1");
    assert_eq!(past.status.code(), Some(0));
    assert!(past.stdout.is_empty() && past.stderr.is_empty());
}
