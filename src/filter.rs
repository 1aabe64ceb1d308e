//! Subscription matching: which of a client's targets get a callback for an event.

use crate::config::{ClientSettings, CompiledSubscription};
use crate::event::{EventData, InboundEvent};

/// A target chosen for an event, with the subscriptions that chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route<'c> {
    /// Index into `ClientSettings::targets`.
    pub target: usize,
    pub subscription_ids: Vec<&'c str>,
}

fn changed<T: std::fmt::Display>(current: &T, previous: Option<&T>) -> bool {
    previous.is_none_or(|p| !eq_ignore_case(p, current))
}

fn eq_ignore_case(a: &impl std::fmt::Display, b: &impl std::fmt::Display) -> bool {
    a.to_string().eq_ignore_ascii_case(&b.to_string())
}

fn listed(values: &[String], value: &str) -> bool {
    values.iter().any(|v| v.eq_ignore_ascii_case(value))
}

/// Whether one subscription matches the event (case-insensitive on every value).
pub fn matches(sub: &CompiledSubscription, event: &InboundEvent) -> bool {
    match (sub, &event.data) {
        (CompiledSubscription::MessageStatus { statuses, .. }, EventData::MessageStatus(d)) => {
            changed(&d.message_status, d.previous_message_status.as_ref())
                && listed(statuses, &d.message_status.to_string())
        }
        (
            CompiledSubscription::ChannelStatus { channel_type, channel_statuses, supplier_statuses, .. },
            EventData::ChannelStatus(d),
        ) => {
            if !d.channel.to_string().eq_ignore_ascii_case(channel_type) {
                return false;
            }
            let supplier = changed(&d.supplier_status, d.previous_supplier_status.as_ref())
                && listed(supplier_statuses, &d.supplier_status.to_string());
            let channel = changed(&d.channel_status, d.previous_channel_status.as_ref())
                && listed(channel_statuses, &d.channel_status.to_string());
            supplier || channel
        }
        _ => false,
    }
}

/// The distinct targets that get a callback, in the order the client's subscriptions first name
/// them; each target once, with every matching subscription that named it.
pub fn route<'c>(client: &'c ClientSettings, event: &InboundEvent) -> Vec<Route<'c>> {
    let mut routes: Vec<Route<'c>> = Vec::new();
    for sub in &client.subscriptions {
        if !matches(sub, event) {
            continue;
        }
        for &t in sub.targets() {
            match routes.iter_mut().find(|r| r.target == t) {
                Some(r) => r.subscription_ids.push(sub.id()),
                None => routes.push(Route { target: t, subscription_ids: vec![sub.id()] }),
            }
        }
    }
    routes
}
