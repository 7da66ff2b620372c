//! Crash safety of a validator: the consensus write-ahead log and the last-signed state that together make
//! `kill -9` at any instant safe (replay on restart, never sign anything conflicting), the file-system
//! helpers they share, and the crash points the kill-in-the-middle tests arm.
//!
//! Its own crate so that the deterministic simulation runs this code (the WAL's framing and torn-tail
//! reading, the double-sign rule) without the rest of the node, and so its dependencies stay few.
#![forbid(unsafe_code)]

pub mod failpoint;
pub mod fsutil;
pub mod privval;
pub mod wal;
