//! Basalt IBC: light client, handshakes, packets, ICS-20 transfer, relayer.
//!
//! Built so far: [`client`], the rules of the Basalt light client (`99-basalt`) over the reusable
//! verifier in `basalt_consensus::light`, and [`commitment`], where IBC state lives in a Basalt chain's
//! state tree and how a counterparty verifies proofs of it. The ibc-rs host, handshakes, packets, ICS-20
//! and the relayer are still to come (issue 16).
#![forbid(unsafe_code)]

pub mod client;
pub mod commitment;
