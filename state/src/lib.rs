//! Basalt storage: RocksDB, versioned Merkle state with ICS-23 proofs, block store, application.
#![forbid(unsafe_code)]

pub use rocksdb;
