//! The one integration-test binary (link time matters on small machines): real loopback HTTP
//! servers (the sandbox), real SQLite files, and the real `offersync` binary for CLI contracts.

mod browser;
mod catalogue;
mod cli;
mod config;
mod console;
mod controls;
mod crash;
mod daemon;
mod failures;
mod faults;
mod harness;
mod layers;
mod notify;
mod operations;
mod parsing;
mod platforms;
mod push;
mod rate_limits;
mod security;
mod seeds;
mod shared_db;
mod trackly_sync;
