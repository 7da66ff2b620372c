//! `config/node_key.json` and `config/priv_validator_key.json` (CometBFT file formats).
