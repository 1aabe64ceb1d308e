//! The embedded pipeline (`callbacks serve`): HTTP ingest ([`server`]), a durable SQLite queue
//! ([`store`]), per-target delivery workers ([`worker`]) on the [`crate::deliver`] engine,
//! Prometheus [`metrics`], configuration [`reload`] and the dead-letter tools ([`dlq`]); and
//! [`receive`], a client endpoint that verifies callbacks (`callbacks receive`).
//!
//! Durability: an ingest request runs the core and commits the resulting callbacks, audit rows
//! and rejects in one transaction before it is answered `202`, so a crash after the answer
//! loses nothing. A callback leaves the queue only after a 2xx (or to the dead-letter queue).

pub mod admin;
pub mod attempts;
pub mod auth;
pub mod datadir;
pub mod demo;
pub mod dlq;
mod housekeeping;
pub mod limits;
pub mod listen;
pub mod metrics;
mod options;
pub mod process;
pub mod receive;
pub mod reload;
mod run;
pub mod server;
pub mod store;
pub mod tls;
pub mod worker;

pub use options::{ServeError, ServeOptions};
pub use run::{bind, serve, shutdown_signal, Bound};
