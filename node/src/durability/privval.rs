//! The validator signer with double-sign protection backed by `data/priv_validator_state.json`.
