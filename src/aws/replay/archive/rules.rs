//! Rule discovery: the per-target rules of the bus (`ListRules`, patterns naming
//! `detail.clientId` and `detail.targetId`) and the replay plan checked against the bus and
//! its archive.

use serde_json::Value;

use super::super::{aws_err, AwsCallError};
use super::{ArchiveReplayError, Plan, ReplayRequest, RuleChoice};

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
}
