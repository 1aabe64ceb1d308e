//! Scripted answers of `callbacks receive`, for demos and tests of a sender's retries: the
//! first N callbacks fail, every callback fails with a chosen status, a `Retry-After`, and a
//! per-message rule (`force-NNN-` at the start of `messageReference` or `messageId` answers NNN).

use std::sync::atomic::{AtomicU64, Ordering};

use super::check::Summary;

/// The status of an accepted callback (the public API's `202 Accepted`).
pub const ACCEPTED: u16 = 202;
/// The status of a scripted failure when `--status` is not given.
pub const DEFAULT_FAILURE: u16 = 500;
/// The per-message rule's prefix.
pub const FORCE_PREFIX: &str = "force-";

/// What to answer to callbacks that pass every check.
#[derive(Debug, Clone, Default)]
pub struct ScriptOptions {
    /// Answer the first N such callbacks with `status` (default 500), then 202.
    pub fail_first: Option<u64>,
    /// The status of scripted failures; without `fail_first`, every callback gets it.
    pub status: Option<u16>,
    /// `Retry-After` (seconds; negative means "stop retrying") on every scripted non-2xx answer.
    pub retry_after: Option<i64>,
}

/// The scripted answer to one callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<i64>,
    /// Why this answer (for the line), when it is not the plain 202.
    pub reason: Option<String>,
}

/// The script and its counter of callbacks answered.
#[derive(Debug, Default)]
pub struct Script {
    opts: ScriptOptions,
    answered: AtomicU64,
}

/// The status named by a `force-NNN-` prefix (200..=599).
fn forced(value: &str) -> Option<u16> {
    let rest = value.strip_prefix(FORCE_PREFIX)?;
    let (digits, tail) = rest.split_at_checked(3)?;
    let code: u16 = digits.parse().ok()?;
    (tail.starts_with('-') && (200..=599).contains(&code)).then_some(code)
}

impl Script {
    pub fn new(opts: ScriptOptions) -> Script {
        Script {
            opts,
            answered: AtomicU64::new(0),
        }
    }

    /// The answer to a callback that passed every check.
    pub fn answer(&self, summary: &Summary) -> Answer {
        let failure = |status: u16, reason: String| Answer {
            status,
            retry_after: self.opts.retry_after.filter(|_| status >= 300),
            reason: Some(reason),
        };
        let rule = [&summary.message_reference, &summary.message_id]
            .into_iter()
            .flatten()
            .find_map(|v| forced(v));
        if let Some(code) = rule {
            return failure(code, format!("scripted: {FORCE_PREFIX}{code}- prefix"));
        }
        let n = self.answered.fetch_add(1, Ordering::Relaxed);
        let status = self.opts.status.unwrap_or(DEFAULT_FAILURE);
        match self.opts.fail_first {
            Some(first) if n < first => failure(
                status,
                format!("scripted: --fail-first {first} ({} of {first})", n + 1),
            ),
            None if self.opts.status.is_some() => failure(status, "scripted: --status".into()),
            _ => Answer {
                status: ACCEPTED,
                retry_after: None,
                reason: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_reference(r: &str) -> Summary {
        Summary {
            message_reference: Some(r.into()),
            ..Summary::default()
        }
    }

    #[test]
    fn force_prefix_names_the_status() {
        assert_eq!(forced("force-500-abc"), Some(500));
        assert_eq!(forced("force-429-"), Some(429));
        assert_eq!(forced("force-50-abc"), None);
        assert_eq!(forced("force-5000-abc"), None);
        assert_eq!(forced("force-700-abc"), None);
        assert_eq!(forced("xforce-500-abc"), None);
        let s = Script::new(ScriptOptions {
            retry_after: Some(3),
            ..ScriptOptions::default()
        });
        let a = s.answer(&with_reference("force-503-ref"));
        assert_eq!((a.status, a.retry_after), (503, Some(3)));
        let a = s.answer(&with_reference("ordinary"));
        assert_eq!((a.status, a.retry_after, a.reason), (202, None, None));
    }

    #[test]
    fn fail_first_then_accept() {
        let s = Script::new(ScriptOptions {
            fail_first: Some(2),
            status: Some(429),
            retry_after: Some(-1),
        });
        let got: Vec<(u16, Option<i64>)> = (0..4)
            .map(|_| s.answer(&Summary::default()))
            .map(|a| (a.status, a.retry_after))
            .collect();
        assert_eq!(
            got,
            [(429, Some(-1)), (429, Some(-1)), (202, None), (202, None)]
        );
    }

    #[test]
    fn status_alone_applies_to_every_callback() {
        let s = Script::new(ScriptOptions {
            status: Some(410),
            ..ScriptOptions::default()
        });
        for _ in 0..3 {
            assert_eq!(s.answer(&Summary::default()).status, 410);
        }
        let plain = Script::new(ScriptOptions::default());
        assert_eq!(plain.answer(&Summary::default()).status, 202);
    }
}
