//! `config/genesis.json` (CometBFT v0.38 shape) and its validation into chain types.
