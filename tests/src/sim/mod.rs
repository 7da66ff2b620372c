//! The deterministic whole-protocol simulation: N validators over a simulated network with seeded faults,
//! crash-restarts from persisted state, and byzantine validators. Honest validators run the node's own
//! driver core (`basalt_node::runtime::core::DriverCore`) around the real consensus engine.
//!
//! One seed determines everything (configuration, delays, drops, crashes, byzantine choices), and the run
//! hashes every event into a trace hash, so a failing seed replays exactly: `SIM_SEED=<n> cargo test -p
//! basalt-tests --test simulation replay -- --nocapture`.

pub mod app;
pub mod checker;
pub mod config;
pub mod network;
pub mod runner;
pub mod traffic;

pub use checker::Violation;
pub use config::{Behaviour, Family, SimConfig};
pub use runner::{Sim, SimReport};

/// Runs one configuration.
pub fn run(config: SimConfig) -> SimReport {
    Sim::new(config).run()
}
