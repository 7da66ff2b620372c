//! Basalt cross-crate integration tests and the deterministic simulation.
#![forbid(unsafe_code)]

pub mod relayer;
pub mod rogue;
pub mod sim;
pub mod testnet;
