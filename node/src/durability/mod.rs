//! Crash safety of a validator: the consensus write-ahead log and the last-signed state that together make
//! `kill -9` at any instant safe (replay on restart, never sign anything conflicting).

pub mod fsutil;
pub mod privval;
pub mod wal;
