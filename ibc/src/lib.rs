//! Basalt IBC: light client, handshakes, packets, ICS-20 transfer, relayer.
//!
//! Built so far: [`client`], the rules of the Basalt light client (`99-basalt`) over the reusable
//! verifier in `basalt_consensus::light`. The ibc-rs host, handshakes, packets, ICS-20 and the relayer
//! are still to come (issue 16).
#![forbid(unsafe_code)]

pub mod client;
