//! Basalt chain types and the pure Tendermint consensus core.
//!
//! This crate performs no I/O: no clock, no randomness, no network, no disk. Inputs go in, outputs come out;
//! everything else lives at the edges (the `node` crate, or the deterministic simulation in `tests`).
#![forbid(unsafe_code)]

pub mod core;
pub mod engine;
pub mod light;
pub mod primitives;
pub mod types;

pub use primitives::{
    Height, Round, Timeout, TimeoutKind, ValidatorIndex, VoteType, VotingPower,
    MAX_TOTAL_VOTING_POWER,
};
