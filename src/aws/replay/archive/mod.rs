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

//!
//! [`rules`]: the per-target rules found on the bus and the replay [`Plan`]; [`polling`]: the
//! replay started and followed until it ends; here: the types and the stale-configuration check.

mod polling;
mod rules;

use chrono::{DateTime, Utc};

use super::AwsCallError;
use crate::aws::s3_config::S3ConfigSettings;

pub use polling::{describe, replay_name, start, wait, Progress};
pub use rules::{choose, plan, routes};

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
