//! offersync: mirror affiliate offers from paginated platform APIs into SQLite, with a change
//! history. See ARCHITECTURE.md for the bird's-eye view and the invariants.

pub mod cli;
pub mod config;
pub mod console;
pub mod daemon;
pub mod http;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod ops;
pub mod push;
pub mod sandbox;
pub mod sources;
pub mod store;
pub mod sync;
pub mod targets;
pub mod telemetry;
pub mod webhook;
