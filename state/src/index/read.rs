//! Reads of the indexes: blocks by hash, transactions by hash or position, block results, searches.

use std::ops::{Range, RangeInclusive};

use super::{
    decode, keys, split_location, BlockRecord, IndexedTx, StoredResult, MAX_SEARCH_RESULTS,
    TX_HEIGHT_KEY,
};
use crate::app::TxResult;
use crate::error::{Result, StateError};
use crate::merkle::codec::hex;
use crate::storage::Cf;
use crate::store::StateStore;

impl StateStore {
    /// Height of the stored block whose id hash (`Block::id().hash`) is `hash`, if it is stored.
    pub fn block_height_by_hash(&self, hash: &[u8; 32]) -> Result<Option<u64>> {
        let key = keys::block_hash_key(hash);
        self.storage()
            .get(Cf::Blocks, &key)?
            .map(|v| keys::decode_u64(Cf::Blocks, &key, &v))
            .transpose()
    }

    /// The id hash of the block stored at `height`, if it was committed with one.
    pub fn block_hash(&self, height: u64) -> Result<Option<[u8; 32]>> {
        Ok(self.block_record(height)?.and_then(|r| r.block_hash))
    }

    /// The results of every transaction of block `height`, in block order; `None` if no block index
    /// is stored there (never committed, pruned, or committed without one).
    pub fn block_results(&self, height: u64) -> Result<Option<Vec<TxResult>>> {
        let Some(record) = self.block_record(height)? else {
            return Ok(None);
        };
        let entries = self.storage().scan(
            Cf::TxIndex,
            &keys::result_key(height, 0),
            &keys::block_record_key(height.saturating_add(1)),
            record.tx_count as usize,
        )?;
        if entries.len() != record.tx_count as usize {
            return Err(StateError::Missing {
                cf: Cf::TxIndex.name(),
                key_hex: hex(&keys::result_key(height, entries.len() as u32)),
                what: "tx result announced by the block record",
            });
        }
        entries
            .iter()
            .map(|(k, v)| decode::<StoredResult>(Cf::TxIndex, k, v, "tx result").map(|s| s.result))
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// The transaction with hash `hash` (its latest inclusion), if indexed.
    pub fn tx(&self, hash: &[u8; 32]) -> Result<Option<IndexedTx>> {
        let key = keys::tx_key(hash);
        let Some(loc) = self.storage().get(Cf::TxIndex, &key)? else {
            return Ok(None);
        };
        let (height, index, tx) = split_location(&key, &loc)?;
        let stored = self
            .stored_result(height, index)?
            .ok_or_else(|| StateError::Missing {
                cf: Cf::TxIndex.name(),
                key_hex: hex(&keys::result_key(height, index)),
                what: "tx result of an indexed transaction",
            })?;
        if stored.tx_hash != *hash {
            return Err(StateError::Corrupt {
                cf: Cf::TxIndex.name(),
                key_hex: hex(&keys::result_key(height, index)),
                reason: format!(
                    "result is for tx {} but the location record of {} points here",
                    hex(&stored.tx_hash),
                    hex(hash)
                ),
            });
        }
        Ok(Some(IndexedTx {
            hash: *hash,
            height,
            index,
            tx: tx.to_vec(),
            result: stored.result,
        }))
    }

    /// Transaction `index` of block `height`, if indexed.
    pub fn tx_at(&self, height: u64, index: u32) -> Result<Option<IndexedTx>> {
        let Some(stored) = self.stored_result(height, index)? else {
            return Ok(None);
        };
        let key = keys::tx_key(&stored.tx_hash);
        let loc = self
            .storage()
            .get(Cf::TxIndex, &key)?
            .ok_or_else(|| StateError::Missing {
                cf: Cf::TxIndex.name(),
                key_hex: hex(&key),
                what: "location record of an indexed transaction",
            })?;
        // The record may point at a later inclusion of the same bytes: same hash, same bytes.
        let (_, _, tx) = split_location(&key, &loc)?;
        Ok(Some(IndexedTx {
            hash: stored.tx_hash,
            height,
            index,
            tx: tx.to_vec(),
            result: stored.result,
        }))
    }

    /// Transactions with an indexed event attribute `key = value` (`key` is `event kind.attribute
    /// key`, e.g. `transfer.sender`), as `(height, index)` in ascending order (descending if `desc`),
    /// at most `limit` (capped at [`MAX_SEARCH_RESULTS`]). `key` [`TX_HEIGHT_KEY`] matches every
    /// transaction of the block at the decimal height `value`.
    pub fn search_txs(
        &self,
        key: &str,
        value: &str,
        limit: usize,
        desc: bool,
    ) -> Result<Vec<(u64, u32)>> {
        self.search_txs_in(key, value, 0..=u64::MAX, limit, desc)
    }

    /// [`StateStore::search_txs`] restricted to inclusion heights in `heights`.
    pub fn search_txs_in(
        &self,
        key: &str,
        value: &str,
        heights: RangeInclusive<u64>,
        limit: usize,
        desc: bool,
    ) -> Result<Vec<(u64, u32)>> {
        let limit = limit.min(MAX_SEARCH_RESULTS);
        if limit == 0 || heights.is_empty() {
            return Ok(Vec::new());
        }
        if key == TX_HEIGHT_KEY {
            return self.txs_at_height(value, heights, limit, desc);
        }
        let Some(prefix) = keys::event_prefix(key, value) else {
            return Ok(Vec::new()); // Too long to have been indexed.
        };
        let from = keys::event_key(&prefix, *heights.start(), 0);
        // Exclusive end just past (end height, u32::MAX).
        let mut to = keys::event_key(&prefix, *heights.end(), u32::MAX);
        to.push(0);
        let entries = if desc {
            self.storage().scan_rev(Cf::TxIndex, &from, &to, limit)?
        } else {
            self.storage().scan(Cf::TxIndex, &from, &to, limit)?
        };
        entries
            .iter()
            .map(|(k, _)| keys::split_event_key(k))
            .collect()
    }

    /// How many transactions have the indexed event attribute `key = value` with inclusion heights in
    /// `heights`, counting at most `limit` (index keys only; nothing is decoded).
    pub fn count_txs_in(
        &self,
        key: &str,
        value: &str,
        heights: RangeInclusive<u64>,
        limit: usize,
    ) -> Result<usize> {
        let Some((from, to)) = event_range(key, value, &heights) else {
            return Ok(0);
        };
        self.storage().count(Cf::TxIndex, &from, &to, limit)
    }

    /// The `(height, index)` of those transactions after skipping `skip`, at most `take`, ascending
    /// (descending if `desc`): one page of [`StateStore::count_txs_in`]'s set, read by stepping over the
    /// skipped index keys.
    pub fn page_txs_in(
        &self,
        key: &str,
        value: &str,
        heights: RangeInclusive<u64>,
        (skip, take): (usize, usize),
        desc: bool,
    ) -> Result<Vec<(u64, u32)>> {
        let Some((from, to)) = event_range(key, value, &heights) else {
            return Ok(Vec::new());
        };
        self.storage()
            .keys_page(Cf::TxIndex, (&from, &to), skip, take, desc)?
            .iter()
            .map(|k| keys::split_event_key(k))
            .collect()
    }

    fn txs_at_height(
        &self,
        value: &str,
        heights: RangeInclusive<u64>,
        limit: usize,
        desc: bool,
    ) -> Result<Vec<(u64, u32)>> {
        let Ok(height) = value.trim().parse::<u64>() else {
            return Ok(Vec::new());
        };
        if !heights.contains(&height) {
            return Ok(Vec::new());
        }
        let Some(record) = self.block_record(height)? else {
            return Ok(Vec::new());
        };
        let indices: Vec<u32> = if desc {
            (0..record.tx_count).rev().take(limit).collect()
        } else {
            (0..record.tx_count).take(limit).collect()
        };
        Ok(indices.into_iter().map(|i| (height, i)).collect())
    }

    /// The ordinals of the transactions of the indexed blocks at `heights` (every indexed transaction has
    /// one: its position in height, then block order), as a half-open range — two seeks, whatever the
    /// range's length. Empty when those blocks hold no transactions or are not stored.
    pub fn tx_ordinals(&self, heights: RangeInclusive<u64>) -> Result<Range<u64>> {
        if heights.is_empty() {
            return Ok(0..0);
        }
        let from = keys::tx_count_key(*heights.start());
        let to = match heights.end().checked_add(1) {
            Some(past) => keys::tx_count_key(past).to_vec(),
            None => vec![keys::TAG_TX_COUNT + 1],
        };
        let first = self.storage().scan(Cf::TxIndex, &from, &to, 1)?;
        let last = self.storage().scan_rev(Cf::TxIndex, &from, &to, 1)?;
        match (first.first(), last.first()) {
            (Some((fk, fv)), Some((lk, lv))) => {
                let (start, _) = keys::split_tx_counts(fk, fv)?;
                let (_, end) = keys::split_tx_counts(lk, lv)?;
                Ok(start..end.max(start))
            }
            _ => Ok(0..0),
        }
    }

    /// Where the transaction with `ordinal` is: `(height, index)`; `None` if no stored block holds it.
    pub fn tx_at_ordinal(&self, ordinal: u64) -> Result<Option<(u64, u32)>> {
        let to = match ordinal.checked_add(1) {
            Some(past) => keys::tx_ordinal_key(past).to_vec(),
            None => vec![keys::TAG_TX_ORDINAL + 1],
        };
        let found = self
            .storage()
            .scan_rev(Cf::TxIndex, &keys::tx_ordinal_key(0), &to, 1)?;
        let Some((key, value)) = found.first() else {
            return Ok(None);
        };
        let first = keys::tagged_u64(Cf::TxIndex, key)?;
        let height = keys::decode_u64(Cf::TxIndex, key, value)?;
        let count_key = keys::tx_count_key(height);
        let counts = self
            .storage()
            .get(Cf::TxIndex, &count_key)?
            .ok_or_else(|| StateError::Missing {
                cf: Cf::TxIndex.name(),
                key_hex: hex(&count_key),
                what: "transaction counts of a block named by the ordinal index",
            })?;
        let (before, through) = keys::split_tx_counts(&count_key, &counts)?;
        if before != first {
            return Err(StateError::Corrupt {
                cf: Cf::TxIndex.name(),
                key_hex: hex(key),
                reason: format!("ordinal {first} names height {height}, whose first is {before}"),
            });
        }
        if ordinal >= through {
            return Ok(None); // Past the last indexed transaction (or in a pruned gap).
        }
        let index = u32::try_from(ordinal - before).map_err(|_| StateError::Corrupt {
            cf: Cf::TxIndex.name(),
            key_hex: hex(&count_key),
            reason: "a block's transaction count exceeds u32".to_owned(),
        })?;
        Ok(Some((height, index)))
    }

    /// The height of the stored block that committed the evidence with `key` (see
    /// [`crate::BlockCommit::evidence`]), if one did and it is not pruned.
    pub fn evidence_height(&self, key: &[u8; 32]) -> Result<Option<u64>> {
        let key = keys::evidence_key(key);
        self.storage()
            .get(Cf::TxIndex, &key)?
            .map(|v| keys::decode_u64(Cf::TxIndex, &key, &v))
            .transpose()
    }

    /// Number of transactions of block `height`, from its index record (one small read; the block itself
    /// is not decoded); `None` if no block index is stored there.
    pub fn block_tx_count(&self, height: u64) -> Result<Option<u32>> {
        Ok(self.block_record(height)?.map(|r| r.tx_count))
    }

    fn block_record(&self, height: u64) -> Result<Option<BlockRecord>> {
        let key = keys::block_record_key(height);
        self.storage()
            .get(Cf::TxIndex, &key)?
            .map(|v| decode(Cf::TxIndex, &key, &v, "block record"))
            .transpose()
    }

    fn stored_result(&self, height: u64, index: u32) -> Result<Option<StoredResult>> {
        let key = keys::result_key(height, index);
        self.storage()
            .get(Cf::TxIndex, &key)?
            .map(|v| decode(Cf::TxIndex, &key, &v, "tx result"))
            .transpose()
    }
}

/// The index key range of the attribute `key = value` within `heights`; `None` if nothing can be there
/// (an empty range, or a key or value too long to have been indexed).
fn event_range(
    key: &str,
    value: &str,
    heights: &RangeInclusive<u64>,
) -> Option<(Vec<u8>, Vec<u8>)> {
    if heights.is_empty() || key == TX_HEIGHT_KEY {
        return None;
    }
    let prefix = keys::event_prefix(key, value)?;
    let from = keys::event_key(&prefix, *heights.start(), 0);
    let mut to = keys::event_key(&prefix, *heights.end(), u32::MAX);
    to.push(0); // Exclusive end just past (end height, u32::MAX).
    Some((from, to))
}
