//! The callback core: event bytes in, signed callback requests out
//! (validate → filter → transform → sign). No I/O; every adapter calls this.

use std::sync::Arc;

use crate::config::{ClientSettings, ConfigSet};
use crate::event::{self, InboundEvent, Rejected};
use crate::filter;
use crate::schema::types::Target;
use crate::sign::{self, SIGNATURE_HEADER};
use crate::transform::{self, Payload, TransformError};

/// The content type of every callback request.
pub const CONTENT_TYPE: &str = "application/vnd.api+json";

/// One signed callback request for one client target.
#[derive(Clone)]
pub struct Callback {
    pub client_id: String,
    pub target_id: String,
    pub subscription_ids: Vec<String>,
    pub url: String,
    pub method: &'static str,
    /// Request headers, names lower case. Includes the API key: never log these.
    pub headers: Vec<(String, String)>,
    /// The exact request body.
    pub body: Arc<[u8]>,
    pub signature: String,
    pub event_id: String,
    pub message_id: String,
    pub traceparent: Option<String>,
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callback")
            .field("client_id", &self.client_id)
            .field("target_id", &self.target_id)
            .field("url", &self.url)
            .field("event_id", &self.event_id)
            .field("message_id", &self.message_id)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// What happened to one event.
#[derive(Debug)]
pub enum Outcome {
    /// Valid; zero or more callbacks (zero when no subscription matched).
    Callbacks {
        event: Box<InboundEvent>,
        callbacks: Vec<Callback>,
    },
    /// Valid, but the client has no configuration (counted, not an error).
    NoClientConfig { event: Box<InboundEvent> },
}

/// Why an event produced nothing.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Rejected(#[from] Rejected),
    #[error("event {event_id}: {source}")]
    Transform {
        event_id: String,
        source: TransformError,
    },
}

impl ProcessError {
    pub fn event_id(&self) -> Option<&str> {
        match self {
            ProcessError::Rejected(r) => r.event_id.as_deref(),
            ProcessError::Transform { event_id, .. } => Some(event_id),
        }
    }
}

/// Options of the core.
#[derive(Debug, Clone)]
pub struct CoreOptions {
    /// Base URL of `links.message`.
    pub link_base: String,
}

impl Default for CoreOptions {
    fn default() -> Self {
        CoreOptions {
            link_base: transform::DEFAULT_LINK_BASE.to_string(),
        }
    }
}

/// Validates, filters, transforms and signs one event given as JSON bytes.
pub fn process(
    bytes: &[u8],
    configs: &ConfigSet,
    opts: &CoreOptions,
) -> Result<Outcome, ProcessError> {
    let event = event::parse_event(bytes)?;
    process_event(event, configs, opts)
}

/// As [`process`], for an event already parsed and validated.
pub fn process_event(
    event: InboundEvent,
    configs: &ConfigSet,
    opts: &CoreOptions,
) -> Result<Outcome, ProcessError> {
    let Some(client) = configs.get(event.client_id()) else {
        return Ok(Outcome::NoClientConfig {
            event: Box::new(event),
        });
    };
    let callbacks = callbacks_for(&event, client, opts)?;
    Ok(Outcome::Callbacks {
        event: Box::new(event),
        callbacks,
    })
}

/// The callbacks one client gets for one event.
pub fn callbacks_for(
    event: &InboundEvent,
    client: &ClientSettings,
    opts: &CoreOptions,
) -> Result<Vec<Callback>, ProcessError> {
    Ok(signed_callbacks(event, client, opts)?.map_or_else(Vec::new, |s| s.callbacks))
}

/// The callbacks of one event for one client, with the payload they all carry.
#[derive(Debug)]
pub struct SignedCallbacks {
    /// The payload; every callback's body is its compact serialization ([`transform::body`]).
    pub payload: Payload,
    /// At least one.
    pub callbacks: Vec<Callback>,
}

/// As [`callbacks_for`], keeping the payload (for an adapter that wants it as typed values);
/// `None` when no subscription matched. The payload is built and serialized once.
pub fn signed_callbacks(
    event: &InboundEvent,
    client: &ClientSettings,
    opts: &CoreOptions,
) -> Result<Option<SignedCallbacks>, ProcessError> {
    let Some(Routed {
        payload,
        body,
        routes,
    }) = route_event(event, client, opts)?
    else {
        return Ok(None);
    };
    let body: Arc<[u8]> = body.into_bytes().into();
    let callbacks = routes
        .into_iter()
        .map(|route| {
            let target = &client.targets[route.target];
            let signature = sign::signature(&body, &client.application_id, target_api_key(target));
            let mut headers: Vec<(String, String)> = fixed_headers(target)
                .into_iter()
                .map(|(name, value)| (name, value.to_string()))
                .collect();
            headers.push((SIGNATURE_HEADER.to_string(), signature.clone()));
            Callback {
                client_id: client.client_id.clone(),
                target_id: target.target_id.to_string(),
                subscription_ids: route
                    .subscription_ids
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                url: target.invocation_endpoint.to_string(),
                method: "POST",
                headers,
                body: body.clone(),
                signature,
                event_id: event.id().to_string(),
                message_id: event.message_id().to_string(),
                traceparent: event.traceparent().map(str::to_owned),
            }
        })
        .collect();
    Ok(Some(SignedCallbacks { payload, callbacks }))
}

/// The routes of one event for one client and the payload they all carry.
#[derive(Debug)]
pub struct Routed<'c> {
    pub payload: Payload,
    /// The payload's compact serialization ([`transform::body`]): every request's exact body.
    pub body: String,
    /// At least one.
    pub routes: Vec<filter::Route<'c>>,
}

/// The routes an event takes for one client, with the payload built and serialized once;
/// `None` when no subscription matched. Each route is signed over `body` with its target's key
/// ([`sign::SigningKey`] of `application_id` and [`target_api_key`]).
pub fn route_event<'c>(
    event: &InboundEvent,
    client: &'c ClientSettings,
    opts: &CoreOptions,
) -> Result<Option<Routed<'c>>, ProcessError> {
    let Some((payload, routes)) = route_payload(event, client, opts)? else {
        return Ok(None);
    };
    let body = transform::body_text(&payload);
    Ok(Some(Routed {
        payload,
        body,
        routes,
    }))
}

/// As [`route_event`], the payload not yet serialized (for an adapter that writes the body into
/// a buffer of its own, `callbacks transform`; the bytes must be [`transform::body`]'s).
pub fn route_payload<'c>(
    event: &InboundEvent,
    client: &'c ClientSettings,
    opts: &CoreOptions,
) -> Result<Option<(Payload, Vec<filter::Route<'c>>)>, ProcessError> {
    let routes = filter::route(client, event);
    if routes.is_empty() {
        return Ok(None);
    }
    let payload =
        transform::payload(event, &opts.link_base).map_err(|source| ProcessError::Transform {
            event_id: event.id().to_string(),
            source,
        })?;
    Ok(Some((payload, routes)))
}

/// The API key a target's requests carry (and half of its signing key).
pub fn target_api_key(target: &Target) -> &str {
    target.api_key.header_value.expose()
}

/// The request headers of a target other than the signature (names lower case): the content
/// type and the API key. Includes the API key: never log these.
pub fn fixed_headers(target: &Target) -> [(String, &str); 2] {
    [
        ("content-type".to_string(), CONTENT_TYPE),
        (
            target.api_key.header_name.to_ascii_lowercase(),
            target_api_key(target),
        ),
    ]
}

/// The payload of an event, as typed values (the transform-filter Lambda carries the serialized
/// body instead, through [`route_event`]).
pub fn payload_of(event: &InboundEvent, opts: &CoreOptions) -> Result<Payload, TransformError> {
    transform::payload(event, &opts.link_base)
}
