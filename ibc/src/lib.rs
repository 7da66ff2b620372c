//! Basalt IBC: light client, handshakes, packets, ICS-20 transfer, relayer.
//!
//! Built so far: [`client`], the Basalt light client (`99-basalt`): its rules over the reusable verifier
//! in `basalt_consensus::light`, its protobuf `Any` encodings and the ibc-rs ICS-02 client traits;
//! [`commitment`], where IBC state lives in a Basalt chain's state tree and how a counterparty verifies
//! proofs of it; and [`host`], ibc-rs's host contexts over that state, one transaction's writes and events
//! at a time; [`tx`], the IBC transaction format (kind `1`); and [`module`], which executes IBC
//! transactions in the application (client and connection messages; channels and packets find no
//! application yet). ICS-20 and the relayer are still to come (issue 16; docs/IBC.md).
#![forbid(unsafe_code)]

pub mod client;
pub mod commitment;
pub mod host;
pub mod module;
pub mod relay;
pub mod transfer;
pub mod tx;
