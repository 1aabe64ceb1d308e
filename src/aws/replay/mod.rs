//! Replaying callbacks on AWS (the `callbacks` binary with `--features aws`):
//!
//! - [`resign`]: a Callbacks-bus event made ready to be put on the bus again, its
//!   `detail.signature` recomputed with the API key in force (client configuration in S3);
//! - [`dead_letters`]: what EventBridge puts on an API-destination target's DLQ, and
//!   `callbacks dlq replay --sqs-queue-url` for it (`PutEvents` in batches of 10, a dead letter
//!   deleted only after its entry was accepted);
//! - [`archive`]: `callbacks replay`, an EventBridge replay of the Callbacks bus archive
//!   restricted to one client's (or target's) rules and a time window.

pub mod archive;
pub mod dead_letters;
pub mod resign;

use aws_sdk_eventbridge::error::DisplayErrorContext;

/// The `source` of every event on the Callbacks bus (docs/CONTRACTS.md).
pub const BUS_SOURCE: &str = "uk.nhs.notify.client-callbacks";
/// The `detail-type` of every event on the Callbacks bus.
pub const BUS_DETAIL_TYPE: &str = "ClientCallback";

/// An AWS call failed (the reason is the SDK's, which never holds an API key: none is sent).
#[derive(Debug, thiserror::Error)]
#[error("{service} {call} failed: {reason}")]
pub struct AwsCallError {
    pub service: &'static str,
    pub call: &'static str,
    pub reason: String,
}

pub(crate) fn aws_err(
    service: &'static str,
    call: &'static str,
    e: impl std::error::Error + 'static,
) -> AwsCallError {
    AwsCallError {
        service,
        call,
        reason: DisplayErrorContext(e).to_string(),
    }
}
