//! The crate's error type.
//!
//! Every variant carries enough context (column family, key, version, path) to find the broken record
//! on disk without a debugger: corruption is reported, never panicked on.

use std::path::PathBuf;

/// Errors returned by the storage layer and the Merkle state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// RocksDB could not open the database directory (missing files, bad options, lock held...).
    #[error("cannot open database at {path}: {source}")]
    Open {
        /// Directory that was opened.
        path: PathBuf,
        /// Underlying RocksDB error (names the corrupt or missing file when RocksDB knows it).
        source: rocksdb::Error,
    },
    /// A RocksDB read or write failed.
    #[error("database {op} failed in column family `{cf}`: {source}")]
    Db {
        /// Operation that failed (`get`, `write`, `iterate`, ...).
        op: &'static str,
        /// Column family involved.
        cf: &'static str,
        /// Underlying RocksDB error.
        source: rocksdb::Error,
    },
    /// A record exists but cannot be decoded: the on-disk data is corrupt or truncated.
    #[error("corrupt record in column family `{cf}` at key {key_hex}: {reason}")]
    Corrupt {
        /// Column family holding the record.
        cf: &'static str,
        /// Hex of the record's key.
        key_hex: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A record that must exist (given the metadata) is missing: the database is inconsistent.
    #[error("missing record in column family `{cf}` at key {key_hex}: {what}")]
    Missing {
        /// Column family that should hold the record.
        cf: &'static str,
        /// Hex of the missing key.
        key_hex: String,
        /// What was expected there.
        what: &'static str,
    },
    /// A version was requested that was never committed or has been pruned.
    #[error(
        "version {version} is not available (earliest retained {earliest:?}, latest {latest:?})"
    )]
    VersionUnavailable {
        /// Requested version.
        version: u64,
        /// Oldest version still queryable, if any.
        earliest: Option<u64>,
        /// Newest committed version, if any.
        latest: Option<u64>,
    },
    /// Versions must be committed one after another.
    #[error("cannot commit version {version}: the next version must be {expected}")]
    NonContiguousVersion {
        /// Version the caller tried to commit.
        version: u64,
        /// The only version that may be committed next.
        expected: u64,
    },
    /// Keys must be non-empty (ICS-23 non-existence proofs are unsound for the empty key) and must not
    /// use the reserved prefix.
    #[error("invalid key {key_hex}: {reason}")]
    InvalidKey {
        /// Hex of the rejected key.
        key_hex: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// Values must be non-empty: ICS-23 existence proofs cannot carry an empty value.
    #[error("empty value for key {key_hex}: delete the key instead")]
    EmptyValue {
        /// Hex of the key whose value was empty.
        key_hex: String,
    },
    /// A key or value is larger than the configured bound.
    #[error("{what} of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// `key` or `value`.
        what: &'static str,
        /// Actual length.
        len: usize,
        /// Configured maximum.
        max: usize,
    },
    /// The Merkle tree library reported an error (usually a storage error it propagated).
    #[error("merkle tree error at version {version}: {message}")]
    Tree {
        /// Version being read or written.
        version: u64,
        /// The library's error chain, flattened.
        message: String,
    },
    /// A [`crate::PreparedState`] was committed on another version than it was computed from (or with
    /// extra writes): it would produce a wrong tree, so it is refused.
    #[error("cannot commit the prepared state at height {height}: {reason}")]
    StalePreparedState {
        /// Height being committed.
        height: u64,
        /// What did not match.
        reason: String,
    },
    /// The database was written in a layout this binary does not read.
    #[error(
        "state database at {path} has format {found}, this binary reads format {expected}: \
         sync a fresh home with this binary, or run the binary that wrote it"
    )]
    UnsupportedFormat {
        /// Database directory.
        path: std::path::PathBuf,
        /// The recorded format ("unmarked" when a database with state has no marker).
        found: String,
        /// The format of this binary.
        expected: u64,
    },
    /// A lock protecting the single writer was poisoned by a panic in another thread.
    #[error("writer lock poisoned")]
    LockPoisoned,
}

/// Shorthand for results of this crate.
pub type Result<T, E = StateError> = std::result::Result<T, E>;
