//! The running node: consensus driver, executor, block sync, gossip wiring and clean shutdown.
