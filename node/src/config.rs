//! `config/config.toml`: the node configuration (CometBFT section layout), defaults, profiles and validation.
