//! Tests of the pure core: table-driven state-machine rules, vote-keeper thresholds (plus a proptest),
//! and driver scenarios with signed messages.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod driver;
mod network;
mod state_machine;
mod votekeeper;
