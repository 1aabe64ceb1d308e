//! Subscription matching: which of a client's targets get a callback for an event.

use crate::config::{ClientSettings, CompiledSubscription};
use crate::event::{EventData, InboundEvent};
use crate::schema::Wire;

/// A target chosen for an event, with the subscriptions that chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route<'c> {
    /// Index into `ClientSettings::targets`.
    pub target: usize,
    pub subscription_ids: Vec<&'c str>,
}

/// The event's values that subscriptions look at, as wire strings (computed once per event).
struct Facts {
    kind_message: bool,
    /// message status, or channel status
    status: &'static str,
    status_changed: bool,
    channel: &'static str,
    supplier: &'static str,
    supplier_changed: bool,
}

fn changed(current: &str, previous: Option<&impl Wire>) -> bool {
    previous.is_none_or(|p| !p.wire().eq_ignore_ascii_case(current))
}

fn facts(event: &InboundEvent) -> Facts {
    match &event.data {
        EventData::MessageStatus(d) => {
            let status = d.message_status.wire();
            Facts {
                kind_message: true,
                status_changed: changed(status, d.previous_message_status.as_ref()),
                status,
                channel: "",
                supplier: "",
                supplier_changed: false,
            }
        }
        EventData::ChannelStatus(d) => {
            let status = d.channel_status.wire();
            let supplier = d.supplier_status.wire();
            Facts {
                kind_message: false,
                status_changed: changed(status, d.previous_channel_status.as_ref()),
                supplier_changed: changed(supplier, d.previous_supplier_status.as_ref()),
                status,
                channel: d.channel.wire(),
                supplier,
            }
        }
    }
}

fn listed(values: &[String], value: &str) -> bool {
    values.iter().any(|v| v.eq_ignore_ascii_case(value))
}

fn matches_facts(sub: &CompiledSubscription, f: &Facts) -> bool {
    match sub {
        CompiledSubscription::MessageStatus { statuses, .. } => {
            f.kind_message && f.status_changed && listed(statuses, f.status)
        }
        CompiledSubscription::ChannelStatus {
            channel_type,
            channel_statuses,
            supplier_statuses,
            ..
        } => {
            !f.kind_message
                && f.channel.eq_ignore_ascii_case(channel_type)
                && ((f.supplier_changed && listed(supplier_statuses, f.supplier))
                    || (f.status_changed && listed(channel_statuses, f.status)))
        }
    }
}

/// The distinct targets that get a callback, in the order the client's subscriptions first name
/// them; each target once, with every matching subscription that named it.
pub fn route<'c>(client: &'c ClientSettings, event: &InboundEvent) -> Vec<Route<'c>> {
    let f = facts(event);
    let mut routes: Vec<Route<'c>> = Vec::new();
    for sub in &client.subscriptions {
        if !matches_facts(sub, &f) {
            continue;
        }
        for &t in sub.targets() {
            match routes.iter_mut().find(|r| r.target == t) {
                Some(r) => r.subscription_ids.push(sub.id()),
                None => routes.push(Route {
                    target: t,
                    subscription_ids: vec![sub.id()],
                }),
            }
        }
    }
    routes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_client;
    use serde_json::json;

    fn client() -> ClientSettings {
        let doc = json!({
            "clientId": "c", "applicationId": "a",
            "subscriptions": [
                {"subscriptionId": "m", "subscriptionType": "MessageStatus", "messageStatuses": ["delivered"], "targetIds": ["t1", "t2"]},
                {"subscriptionId": "ch", "subscriptionType": "ChannelStatus", "channelType": "sms", "channelStatuses": ["FAILED"], "supplierStatuses": ["permanent_failure"], "targetIds": ["t2"]},
                {"subscriptionId": "m2", "subscriptionType": "MessageStatus", "messageStatuses": ["DELIVERED"], "targetIds": ["t2"]}
            ],
            "targets": [
                {"targetId": "t1", "type": "API", "invocationEndpoint": "https://x/1", "invocationMethod": "POST", "invocationRateLimit": 1, "apiKey": {"headerName": "x-api-key", "headerValue": "k"}},
                {"targetId": "t2", "type": "API", "invocationEndpoint": "https://x/2", "invocationMethod": "POST", "invocationRateLimit": 1, "apiKey": {"headerName": "x-api-key", "headerValue": "k"}}
            ]
        });
        parse_client("c.json", doc.to_string().as_bytes(), &Default::default()).expect("valid")
    }

    fn event(data: serde_json::Value, ty: &str) -> InboundEvent {
        crate::event::from_value(json!({
            "specversion": "1.0", "id": "e", "source": "/s", "type": ty, "time": "2025-01-01T00:00:00Z", "data": data
        }))
        .expect("valid event")
    }

    fn message(status: &str, previous: Option<&str>) -> InboundEvent {
        let mut d = json!({"clientId": "c", "messageId": "2WL3qFTEFM0qMY8xjRbt1LIKCzM", "messageReference": "r",
            "messageStatus": status, "channels": [], "timestamp": "2025-01-01T00:00:00Z",
            "routingPlan": {"id": "", "name": "", "version": "", "createdDate": ""}});
        if let Some(p) = previous {
            d["previousMessageStatus"] = json!(p);
        }
        event(d, "uk.nhs.notify.message.status.PUBLISHED.v1")
    }

    fn channel(
        ch: &str,
        status: &str,
        prev: &str,
        supplier: &str,
        prev_supplier: &str,
    ) -> InboundEvent {
        event(
            json!({"clientId": "c", "messageId": "2WL3qFTEFM0qMY8xjRbt1LIKCzM", "messageReference": "r",
                "channel": ch, "channelStatus": status, "previousChannelStatus": prev,
                "supplierStatus": supplier, "previousSupplierStatus": prev_supplier,
                "cascadeType": "primary", "cascadeOrder": 1, "timestamp": "2025-01-01T00:00:00Z", "retryCount": 0}),
            "uk.nhs.notify.channel.status.PUBLISHED.v1",
        )
    }

    #[test]
    fn each_target_once_with_every_subscription_that_named_it() {
        let c = client();
        let routes = route(&c, &message("DELIVERED", Some("SENDING")));
        assert_eq!(
            routes,
            vec![
                Route {
                    target: 0,
                    subscription_ids: vec!["m"]
                },
                Route {
                    target: 1,
                    subscription_ids: vec!["m", "m2"]
                }
            ]
        );
    }

    #[test]
    fn message_status_must_change() {
        let c = client();
        assert!(route(&c, &message("DELIVERED", Some("DELIVERED"))).is_empty());
        assert_eq!(route(&c, &message("DELIVERED", None)).len(), 2);
        assert!(route(&c, &message("FAILED", Some("SENDING"))).is_empty());
    }

    #[test]
    fn channel_matches_on_type_and_a_changed_subscribed_status_case_insensitively() {
        let c = client();
        // supplier status changed and subscribed (config lower, event upper)
        assert_eq!(
            route(
                &c,
                &channel("SMS", "SENDING", "SENDING", "PERMANENT_FAILURE", "received")
            )
            .len(),
            1
        );
        // channel status changed and subscribed (config upper, event upper)
        assert_eq!(
            route(
                &c,
                &channel("SMS", "FAILED", "SENDING", "unknown", "unknown")
            )
            .len(),
            1
        );
        // neither changed
        assert!(route(
            &c,
            &channel(
                "SMS",
                "FAILED",
                "FAILED",
                "permanent_failure",
                "PERMANENT_FAILURE"
            )
        )
        .is_empty());
        // wrong channel type
        assert!(route(
            &c,
            &channel(
                "EMAIL",
                "FAILED",
                "SENDING",
                "permanent_failure",
                "received"
            )
        )
        .is_empty());
        // changed but not subscribed
        assert!(route(
            &c,
            &channel("SMS", "DELIVERED", "SENDING", "delivered", "received")
        )
        .is_empty());
    }
}
