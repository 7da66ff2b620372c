//! Basalt chain types and the pure Tendermint consensus core (no I/O).
#![forbid(unsafe_code)]
