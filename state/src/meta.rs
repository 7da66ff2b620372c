//! Small records in the `metadata` column family.

use crate::error::{Result, StateError};
use crate::merkle::codec::hex;
use crate::storage::{Cf, Storage};

/// Newest committed version: the "height h is done" marker.
pub(crate) const LATEST_VERSION: &[u8] = b"latest_version";
/// Oldest version still queryable (raised by pruning before anything is deleted).
pub(crate) const EARLIEST_VERSION: &[u8] = b"earliest_version";

/// Oldest height whose block is still stored (set with the first stored block, raised by
/// [`crate::StateStore::prune_blocks`] in the same batch as its deletions).
pub(crate) const BLOCKS_BASE: &[u8] = b"blocks_base";

/// The on-disk format of the state (u64 BE), so a binary never misreads a database another layout
/// wrote. Format 1 was jmt's; format 2 (Basalt's tree, node keys depth first) never shipped with a
/// marker; format 3 keys nodes version first (see [`crate::storage`]); format 4 keys the tx index by
/// SHA-256 tx hashes (CometBFT's; format 3 used BLAKE2s, so its entries would never be found again) and
/// adds the per-height transaction counts that height-range searches page by.
pub(crate) const FORMAT: &[u8] = b"format";
/// The format this binary reads and writes.
pub(crate) const CURRENT_FORMAT: u64 = 4;

/// Key of the recorded root of `version`.
pub(crate) fn root_key(version: u64) -> [u8; 13] {
    let mut key = *b"root/\0\0\0\0\0\0\0\0";
    key[5..].copy_from_slice(&version.to_be_bytes());
    key
}

/// Key of the root slot (empty, a lone leaf, or the root inner node's version and hash) of `version`.
pub(crate) fn tree_root_key(version: u64) -> [u8; 13] {
    let mut key = *b"tree/\0\0\0\0\0\0\0\0";
    key[5..].copy_from_slice(&version.to_be_bytes());
    key
}

/// Key of the validator-set changes of the block of `height` (see
/// [`crate::BlockCommit::validator_updates`]).
pub(crate) fn validator_updates_key(height: u64) -> [u8; 15] {
    let mut key = *b"valupd/\0\0\0\0\0\0\0\0";
    key[7..].copy_from_slice(&height.to_be_bytes());
    key
}

/// The height of a [`validator_updates_key`].
pub(crate) fn validator_updates_height(key: &[u8]) -> Result<u64> {
    key.strip_prefix(b"valupd/")
        .and_then(|h| <[u8; 8]>::try_from(h).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StateError::Corrupt {
            cf: Cf::Metadata.name(),
            key_hex: hex(key),
            reason: "not a validator updates key".to_owned(),
        })
}

/// Reads a big-endian u64 record.
pub(crate) fn get_u64(storage: &Storage, key: &[u8]) -> Result<Option<u64>> {
    match storage.get(Cf::Metadata, key)? {
        None => Ok(None),
        Some(bytes) => {
            let arr: [u8; 8] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| StateError::Corrupt {
                    cf: Cf::Metadata.name(),
                    key_hex: hex(key),
                    reason: format!("expected an 8-byte integer, found {} bytes", bytes.len()),
                })?;
            Ok(Some(u64::from_be_bytes(arr)))
        }
    }
}
