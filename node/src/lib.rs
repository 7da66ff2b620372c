//! The basalt node library: CLI, config, wiring, mempool, JSON-RPC, metrics.
//!
//! Layout (each module has one job):
//! - [`cli`]: the `basalt` subcommands; [`config`], [`genesis`], [`keys`], [`home`]: the operator's files
//!   (crate `basalt-config`, re-exported).
//! - [`durability`]: the consensus WAL and the validator's last-signed state (crash safety; crate
//!   `basalt-durability`, re-exported).
//! - [`mempool`]: pending transactions (crate `basalt-mempool`, re-exported).
//! - [`runtime`]: the running node: consensus driver, executor, block sync, gossip wiring, shutdown.
//! - [`rpc`]: the CometBFT-compatible JSON-RPC server; [`metrics`]: the Prometheus endpoint.
#![forbid(unsafe_code)]

pub mod build_info;
pub mod cli;
pub use basalt_config::{config, genesis, home, keys};
pub use basalt_durability as durability;
pub use basalt_durability::failpoint;
pub use basalt_mempool as mempool;
pub mod metrics;
pub mod rpc;
pub mod runtime;
