//! The README's quick start, run as written: its first command (the binary from this build, from
//! the repository root) shows a signed callback delivered and verified within 60 s.

mod receive_support;

use std::path::Path;
use std::time::Duration;

use receive_support::Proc;

/// The arguments of the README's first command (`cargo run -- ARGS`), the first line of its
/// first `bash` block that is not a comment.
fn quick_start_args(readme: &str) -> Vec<String> {
    let block = readme
        .split("```bash\n")
        .nth(1)
        .expect("README has a bash block");
    let command = block
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .expect("the block has a command");
    let args = command
        .strip_prefix("cargo run -- ")
        .unwrap_or_else(|| panic!("the first command runs the binary: {command:?}"));
    args.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn the_readme_quick_start_shows_a_verified_callback_within_a_minute() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let args = quick_start_args(&readme);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let p = Proc::start(&args, root, &[]);
    let line = p.wait_line(Duration::from_secs(60), |l| {
        l.starts_with("receiver: ") && l.contains("signature ok -> 202")
    });
    assert!(line.contains("demo-client/local-receiver"), "{line}");
    // Every example event was accepted, and each made a verified callback.
    let events = std::fs::read_dir(root.join("examples/events"))
        .unwrap()
        .count();
    p.wait_line(Duration::from_secs(30), |_| {
        p.lines()
            .iter()
            .filter(|l| l.starts_with("receiver: ") && l.contains("signature ok -> 202"))
            .count()
            == events
    });
    let posted = p
        .lines()
        .iter()
        .filter(|l| l.starts_with("demo: POST ") && l.contains(" -> 202 "))
        .count();
    assert_eq!(posted, events, "{}", p.lines().join("\n"));
    let data_dir = p
        .lines()
        .iter()
        .find_map(|l| l.strip_prefix("demo: data directory ").map(str::to_owned))
        .unwrap();
    let data_dir = data_dir.trim_end_matches(" (removed at exit)").to_string();
    assert!(Path::new(&data_dir).exists());
    let stderr = p.stderr();
    assert!(
        !stderr.contains("demo-api-key"),
        "no API key in the logs: {stderr}"
    );
    assert_eq!(p.terminate(), Some(0));
    assert!(
        !Path::new(&data_dir).exists(),
        "the demo's data directory is removed"
    );
}
