//! NHS Notify client callbacks: validate status CloudEvents against the schemas, match them
//! against each client's subscriptions, transform them into the legacy callback payload, sign
//! and deliver them.
//!
//! The core (`schema`, `event`, `config`, `filter`, `transform`, `sign`, `pipeline`) knows no
//! AWS and no HTTP server; adapters (`local`, `aws`, the binaries) call it.

pub mod alloc;
#[cfg(feature = "aws")]
pub mod aws;
pub mod config;
#[cfg(feature = "deliver")]
pub mod deliver;
pub mod event;
pub mod filter;
#[cfg(feature = "local")]
pub mod local;
pub mod pipeline;
pub mod schema;
pub mod secret;
pub mod sign;
pub mod stream;
pub mod transform;
