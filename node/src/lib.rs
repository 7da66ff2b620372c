//! The basalt node library: CLI, config, wiring, mempool, JSON-RPC, metrics.
#![forbid(unsafe_code)]

pub mod build_info;
pub mod cli;
