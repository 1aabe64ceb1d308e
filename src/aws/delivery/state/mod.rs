//! [`DeliveryState`](super::DeliveryState) implementations.
//!
//! - [`LocalState`]: per execution environment. The circuit breaker is the engine's own
//!   [`CircuitBreaker`](crate::deliver::CircuitBreaker); attempt histories are kept in memory
//!   (bounded), so a message retried in another execution environment reaches the DLQ with the
//!   attempts this one saw, and `attempts` from `ApproximateReceiveCount`.
//! - [`DynamoState`]: shared by every invocation through one DynamoDB table (`pk` string key,
//!   TTL attribute `expiresAt`). The circuit of a target is one item ([`SharedCircuit`]): the
//!   same breaker, loaded, stepped and stored back with a conditional write on its version
//!   (optimistic concurrency); a half-open probe is a lease (`probeUntil`) that one invocation
//!   wins. An attempt history is one item per SQS message id, appended with `list_append`.
//!   Store errors fail open: requests are let through, histories lose detail, nothing is
//!   blocked.

mod dynamo;
mod local;
mod shared_circuit;

pub use dynamo::DynamoState;
pub use local::LocalState;
pub use shared_circuit::SharedCircuit;
