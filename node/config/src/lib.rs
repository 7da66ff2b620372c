//! The operator's files of a Basalt node, each read with an error that names the file and the field,
//! and written durably (temporary file, fsync, rename):
//!
//! - [`config`]: `config/config.toml` in CometBFT v0.38's layout (profiles, validation, defaults).
//! - [`genesis`]: `config/genesis.json` (CometBFT's shape, Basalt's app state).
//! - [`keys`]: the validator and node keys (`priv_validator_key.json`, `node_key.json`).
//! - [`home`]: the home directory's layout and the durable file writer the others use.
//!
//! Split from the node crate (issue 14): nothing here needs the node's runtime, and the node, its CLI
//! and its tests read these files through one crate.
#![forbid(unsafe_code)]

pub mod config;
pub mod genesis;
pub mod home;
pub mod keys;
