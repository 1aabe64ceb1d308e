//! The replay itself: `StartReplay` over the plan's rules, then `DescribeReplay` polled until
//! it ends.

use std::time::Duration;

use aws_sdk_eventbridge::primitives::DateTime as AwsDateTime;
use aws_sdk_eventbridge::types::{ReplayDestination, ReplayState};
use chrono::{DateTime, Utc};

use super::super::{aws_err, AwsCallError};
use super::{ArchiveReplayError, Plan};

/// A replay name (at most 64 of `[.\-_A-Za-z0-9]`): `callbacks-<client or all>-<utc time>`.
pub fn replay_name(client_id: Option<&str>, now: DateTime<Utc>) -> String {
    let who: String = client_id
        .unwrap_or("all")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(33)
        .collect();
    format!("callbacks-{who}-{}", now.format("%Y%m%dT%H%M%S%.3fZ"))
}

fn aws_time(t: DateTime<Utc>) -> AwsDateTime {
    AwsDateTime::from_millis(t.timestamp_millis())
}

/// Starts the replay; returns its ARN.
pub async fn start(
    events: &aws_sdk_eventbridge::Client,
    plan: &Plan,
    name: &str,
) -> Result<String, AwsCallError> {
    let destination = ReplayDestination::builder()
        .arn(&plan.bus_arn)
        .set_filter_arns(
            plan.filtered
                .then(|| plan.rules.iter().map(|r| r.arn.clone()).collect()),
        )
        .build()
        .map_err(|e| aws_err("EventBridge", "StartReplay", e))?;
    let out = events
        .start_replay()
        .replay_name(name)
        .description(format!(
            "callbacks replay of {}",
            plan.request.client_id.as_deref().unwrap_or("every client")
        ))
        .event_source_arn(&plan.archive_arn)
        .event_start_time(aws_time(plan.request.from))
        .event_end_time(aws_time(plan.request.to))
        .destination(destination)
        .send()
        .await
        .map_err(|e| aws_err("EventBridge", "StartReplay", e))?;
    Ok(out.replay_arn().unwrap_or_default().to_owned())
}

/// The state of a replay, as `DescribeReplay` tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub state: String,
    pub reason: Option<String>,
    /// Archived events up to this time have been replayed.
    pub last_replayed: Option<String>,
    pub ended: bool,
    pub succeeded: bool,
}

fn rfc3339(t: &AwsDateTime) -> Option<String> {
    t.to_millis()
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// One `DescribeReplay`.
pub async fn describe(
    events: &aws_sdk_eventbridge::Client,
    name: &str,
) -> Result<Progress, AwsCallError> {
    let out = events
        .describe_replay()
        .replay_name(name)
        .send()
        .await
        .map_err(|e| aws_err("EventBridge", "DescribeReplay", e))?;
    let state = out.state().cloned();
    Ok(Progress {
        state: state
            .as_ref()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_else(|| "UNKNOWN".into()),
        reason: out.state_reason().map(str::to_owned),
        last_replayed: out.event_last_replayed_time().and_then(rfc3339),
        ended: matches!(
            state,
            Some(ReplayState::Completed | ReplayState::Failed | ReplayState::Cancelled)
        ),
        succeeded: state == Some(ReplayState::Completed),
    })
}

/// Polls the replay every `interval` until it ends (at most `max_wait`), calling `progress`
/// after every poll.
pub async fn wait(
    events: &aws_sdk_eventbridge::Client,
    name: &str,
    interval: Duration,
    max_wait: Duration,
    mut progress: impl FnMut(&Progress),
) -> Result<Progress, ArchiveReplayError> {
    let started = tokio::time::Instant::now();
    loop {
        let p = describe(events, name).await?;
        progress(&p);
        if p.ended {
            return Ok(p);
        }
        if started.elapsed() + interval > max_wait {
            return Err(ArchiveReplayError::StillRunning {
                name: name.to_owned(),
                state: p.state,
                waited_secs: started.elapsed().as_secs(),
            });
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_names_fit_eventbridge_s_rules() {
        let now = DateTime::<Utc>::from_timestamp_millis(1_764_633_600_123).expect("time");
        let n = replay_name(
            Some("client/a with spaces and a very long name indeed"),
            now,
        );
        assert!(n.len() <= 64, "{n}");
        assert!(n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
        assert_eq!(replay_name(None, now), "callbacks-all-20251202T000000.123Z");
    }
}
