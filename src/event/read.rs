//! The one-pass read of an event: the bytes parsed, checked against the plan of the event's
//! type ([`crate::schema::plan`]) and read into the typed event in one walk
//! ([`crate::schema::checked`]). It answers only for events its plan certainly admits;
//! [`super::parse_fast`] leaves everything else to the validating paths.

use std::sync::OnceLock;

use memchr::memmem::Finder;

use super::{Envelope, EventData, InboundEvent};
use crate::schema::plan::{event_plan, Plan};
use crate::schema::types::{ChannelStatusData, MessageStatusData};
use crate::schema::{checked, registry, EventKind, PatternsProven};

/// One accepted event type's plan.
struct TypePlan {
    /// The type as a JSON string, to guess an event's type before reading it ([`guess`]; the
    /// plan then checks the `type` member itself, so a wrong guess only costs the fast path).
    quoted: Finder<'static>,
    kind: EventKind,
    plan: Plan,
}

/// The plans of every registry entry whose schemas compile into one (all of them, as a test
/// checks; an entry without one is still validated, by the other paths only).
fn plans() -> &'static [TypePlan] {
    static PLANS: OnceLock<Vec<TypePlan>> = OnceLock::new();
    PLANS.get_or_init(|| {
        registry()
            .into_iter()
            .filter_map(|entry| {
                let plan = event_plan(&entry.event_type, &entry.data_schema).ok()?;
                let quoted = serde_json::to_vec(&entry.event_type).ok()?;
                Some(TypePlan {
                    quoted: Finder::new(&quoted).into_owned(),
                    kind: entry.kind,
                    plan,
                })
            })
            .collect()
    })
}

/// The event types that have a plan. The first call compiles the plans (a few milliseconds):
/// a process may make it early, on a thread of its own, so that the first event does not wait.
pub fn planned_types() -> usize {
    plans().len()
}

/// The plan for the event in `bytes`, guessed: the value of the first `"type":"` in the text
/// (producers write the envelope's `type` before `data`), else the first type found anywhere.
fn guess(bytes: &[u8]) -> Option<&'static TypePlan> {
    static TYPE: OnceLock<Finder<'static>> = OnceLock::new();
    let key = TYPE.get_or_init(|| Finder::new(b"\"type\":\"").into_owned());
    let plans = plans();
    if let Some(at) = key.find(bytes) {
        let value = &bytes[at + key.needle().len() - 1..];
        if let Some(plan) = plans.iter().find(|p| value.starts_with(p.quoted.needle())) {
            return Some(plan);
        }
    }
    plans.iter().find(|p| p.quoted.find(bytes).is_some())
}

/// The event, if the plan of its type certainly admits it; `None` otherwise (which says nothing
/// about its validity).
pub fn read_one_pass(bytes: &[u8]) -> Option<InboundEvent> {
    let plan = guess(bytes)?;
    // Every patterned value is matched against its schema pattern as it is read, before the
    // generated type that carries the same pattern is made from it.
    let _proven = PatternsProven::new();
    match plan.kind {
        EventKind::MessageStatus => checked::read::<Envelope<MessageStatusData>>(&plan.plan, bytes)
            .map(|e| e.into_event(EventData::MessageStatus)),
        EventKind::ChannelStatus => checked::read::<Envelope<ChannelStatusData>>(&plan.plan, bytes)
            .map(|e| e.into_event(EventData::ChannelStatus)),
    }
}
