//! `callbacks replay`: an EventBridge replay of the Callbacks bus archive, restricted to a
//! time window and to the per-target rules of one client (or one target).
//!
//! The rules are found on the bus itself (`ListRules`): a per-target rule is one whose pattern
//! names `detail.clientId` and `detail.targetId` (docs/CONTRACTS.md), whatever name the
//! Terraform gave it (long names are cut and hashed). `StartReplay` gets their ARNs as
//! `FilterArns`, so only those rules see the replayed events; `DescribeReplay` is polled until
//! the replay ends.
//!
//! Archived events carry the signature made when they were first put on the bus, and the API
//! destination sends it unchanged. When a client's configuration object (or the application id
//! map) changed after the window starts, its key may have been rotated, and every replayed
//! callback would fail the client's signature check: [`stale_configs`] finds those objects
//! and the command refuses unless `--force`.

use std::time::Duration;

use aws_sdk_eventbridge::primitives::DateTime as AwsDateTime;
use aws_sdk_eventbridge::types::{ReplayDestination, ReplayState};
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{aws_err, AwsCallError};
use crate::aws::s3_config::S3ConfigSettings;

/// What to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayRequest {
    pub bus_name: String,
    pub archive_name: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub client_id: Option<String>,
    pub target_id: Option<String>,
}

/// A per-target rule on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleChoice {
    pub name: String,
    pub arn: String,
    pub client_ids: Vec<String>,
    pub target_ids: Vec<String>,
}

/// The replay that would be started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub request: ReplayRequest,
    pub bus_arn: String,
    pub archive_arn: String,
    /// The rules the replay is restricted to (`FilterArns`), or every per-target rule of the
    /// bus when no client is given (no filter).
    pub rules: Vec<RuleChoice>,
    pub filtered: bool,
}

impl Plan {
    /// The clients whose callbacks the replay re-delivers.
    pub fn client_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .rules
            .iter()
            .flat_map(|r| r.client_ids.iter().cloned())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

/// A configuration object changed inside (or after the start of) the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleConfig {
    pub key: String,
    pub last_modified: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveReplayError {
    #[error(transparent)]
    Aws(#[from] AwsCallError),
    #[error("--from ({from}) must be before --to ({to})")]
    Window { from: String, to: String },
    #[error("archive {archive:?} does not archive bus {bus:?} (its source is {source_arn})")]
    ArchiveNotOfBus {
        archive: String,
        bus: String,
        source_arn: String,
    },
    #[error("no rule on bus {bus:?} routes callbacks of {selection}")]
    NoRules { bus: String, selection: String },
    #[error("replay {name} did not end within {waited_secs} s (still {state}); follow it with `aws events describe-replay --replay-name {name}`")]
    StillRunning {
        name: String,
        state: String,
        waited_secs: u64,
    },
    #[error("S3 HeadObject of {key} failed: {reason}")]
    S3 { key: String, reason: String },
}

/// The clientIds and targetIds a per-target rule pattern matches; `None` for other rules.
pub fn routes(pattern: &str) -> Option<(Vec<String>, Vec<String>)> {
    let v: Value = serde_json::from_str(pattern).ok()?;
    let strings = |field: &str| -> Option<Vec<String>> {
        let items = v.get("detail")?.get(field)?.as_array()?;
        Some(
            items
                .iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect(),
        )
    };
    Some((strings("clientId")?, strings("targetId")?))
}

/// The per-target rules among `rules` (name, ARN, pattern) for a client (and target).
pub fn choose(
    rules: &[(String, String, String)],
    client_id: Option<&str>,
    target_id: Option<&str>,
) -> Vec<RuleChoice> {
    rules
        .iter()
        .filter_map(|(name, arn, pattern)| {
            let (client_ids, target_ids) = routes(pattern)?;
            let wanted = client_id.is_none_or(|c| client_ids.iter().any(|x| x == c))
                && target_id.is_none_or(|t| target_ids.iter().any(|x| x == t));
            wanted.then(|| RuleChoice {
                name: name.clone(),
                arn: arn.clone(),
                client_ids,
                target_ids,
            })
        })
        .collect()
}

/// Every rule on the bus: (name, ARN, pattern).
async fn list_rules(
    events: &aws_sdk_eventbridge::Client,
    bus: &str,
) -> Result<Vec<(String, String, String)>, AwsCallError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    // At most 300 rules per bus by default, 100 per page.
    for _ in 0..1000 {
        let page = events
            .list_rules()
            .event_bus_name(bus)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| aws_err("EventBridge", "ListRules", e))?;
        for r in page.rules() {
            if let (Some(name), Some(arn), Some(pattern)) = (r.name(), r.arn(), r.event_pattern()) {
                out.push((name.to_owned(), arn.to_owned(), pattern.to_owned()));
            }
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => break,
        }
    }
    Ok(out)
}

/// Checks the request against the bus and its archive and finds the rules to replay to.
pub async fn plan(
    events: &aws_sdk_eventbridge::Client,
    request: ReplayRequest,
) -> Result<Plan, ArchiveReplayError> {
    if request.from >= request.to {
        return Err(ArchiveReplayError::Window {
            from: request.from.to_rfc3339(),
            to: request.to.to_rfc3339(),
        });
    }
    let bus = events
        .describe_event_bus()
        .name(&request.bus_name)
        .send()
        .await
        .map_err(|e| aws_err("EventBridge", "DescribeEventBus", e))?;
    let bus_arn = bus.arn().unwrap_or_default().to_owned();
    let archive = events
        .describe_archive()
        .archive_name(&request.archive_name)
        .send()
        .await
        .map_err(|e| aws_err("EventBridge", "DescribeArchive", e))?;
    let source_arn = archive.event_source_arn().unwrap_or_default();
    if source_arn != bus_arn {
        return Err(ArchiveReplayError::ArchiveNotOfBus {
            archive: request.archive_name.clone(),
            bus: request.bus_name.clone(),
            source_arn: source_arn.to_owned(),
        });
    }
    let archive_arn = archive.archive_arn().unwrap_or_default().to_owned();
    let all = list_rules(events, &request.bus_name).await?;
    let rules = choose(
        &all,
        request.client_id.as_deref(),
        request.target_id.as_deref(),
    );
    if rules.is_empty() {
        let selection = match (&request.client_id, &request.target_id) {
            (Some(c), Some(t)) => format!("client {c:?}, target {t:?}"),
            (Some(c), None) => format!("client {c:?}"),
            _ => "any client".to_string(),
        };
        return Err(ArchiveReplayError::NoRules {
            bus: request.bus_name.clone(),
            selection,
        });
    }
    Ok(Plan {
        filtered: request.client_id.is_some(),
        request,
        bus_arn,
        archive_arn,
        rules,
    })
}

/// The configuration objects of `client_ids` (and the application id map, when there is one)
/// modified after `since` (or in the same second). A missing object is not stale (that client gets nothing anyway).
pub async fn stale_configs(
    s3: &aws_sdk_s3::Client,
    settings: &S3ConfigSettings,
    client_ids: &[String],
    since: DateTime<Utc>,
) -> Result<Vec<StaleConfig>, ArchiveReplayError> {
    let keys = client_ids
        .iter()
        .map(|c| format!("{}{c}.json", settings.prefix))
        .chain(settings.application_id_map_key.clone());
    let mut stale = Vec::new();
    for key in keys {
        let head = s3
            .head_object()
            .bucket(&settings.bucket)
            .key(&key)
            .send()
            .await;
        let modified = match head {
            Ok(h) => h.last_modified().map(|t| t.to_millis()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => continue,
            Err(e) => {
                return Err(ArchiveReplayError::S3 {
                    key,
                    reason: aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
                })
            }
        };
        let Some(at) = modified
            .transpose()
            .ok()
            .flatten()
            .and_then(DateTime::<Utc>::from_timestamp_millis)
        else {
            continue;
        };
        // LastModified has whole seconds: a change in the second `since` falls in counts.
        if at + chrono::Duration::seconds(1) > since {
            stale.push(StaleConfig {
                key,
                last_modified: at,
            });
        }
    }
    Ok(stale)
}

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

    fn rule(name: &str, client: &str, target: &str) -> (String, String, String) {
        (
            name.into(),
            format!("arn:aws:events:eu-west-2:1:rule/bus/{name}"),
            serde_json::json!({"source": ["uk.nhs.notify.client-callbacks"], "detail-type": ["ClientCallback"],
                "detail": {"clientId": [client], "targetId": [target]}})
            .to_string(),
        )
    }

    #[test]
    fn a_client_s_rules_are_the_per_target_rules_naming_it() {
        let rules = vec![
            rule("p-client-a-target-1", "client-a", "target-1"),
            rule("p-client-a-target-2-https", "client-a", "target-2"),
            rule("p-client-b-target-1", "client-b", "target-1"),
            (
                "Events-Archive-x".into(),
                "arn:aws:events:eu-west-2:1:rule/bus/Events-Archive-x".into(),
                r#"{"replay-name":[{"exists":false}]}"#.into(),
            ),
        ];
        let names = |c: Vec<RuleChoice>| c.into_iter().map(|r| r.name).collect::<Vec<_>>();
        assert_eq!(
            names(choose(&rules, Some("client-a"), None)),
            ["p-client-a-target-1", "p-client-a-target-2-https"]
        );
        assert_eq!(
            names(choose(&rules, Some("client-a"), Some("target-2"))),
            ["p-client-a-target-2-https"]
        );
        assert_eq!(names(choose(&rules, None, None)).len(), 3);
        assert!(choose(&rules, Some("client-c"), None).is_empty());
    }

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
