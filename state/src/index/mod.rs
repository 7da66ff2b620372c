//! The block-hash index, the transaction index, per-block results and the event index.
//!
//! All of it is written by [`crate::StateStore::commit_block`] in the block's one synced `WriteBatch`
//! (so a crash leaves either all of a height's index or none of it) and deleted, height by height, by
//! [`crate::StateStore::prune_blocks`].
//!
//! # Key spaces
//!
//! | column family | key | value |
//! |---|---|---|
//! | `blocks` | `hash/` ‖ block hash (32) | height (u64 BE) |
//! | `tx_index` | `t` ‖ tx hash (32) | height (u64 BE) ‖ index (u32 BE) ‖ tx bytes |
//! | `tx_index` | `r` ‖ height (u64 BE) | block record: borsh `{ tx_count: u32, block_hash: Option<[u8; 32]> }` |
//! | `tx_index` | `r` ‖ height (u64 BE) ‖ index (u32 BE) | borsh `{ tx_hash: [u8; 32], result: TxResult }` |
//! | `tx_index` | `e` ‖ len u8 ‖ `kind.key` ‖ len u16 BE ‖ value ‖ height (u64 BE) ‖ index (u32 BE) | empty |
//! | `tx_index` | `v` ‖ evidence key (32) | height (u64 BE) of the block that committed it |
//! | `tx_index` | `w` ‖ height (u64 BE) | the evidence keys (32 bytes each) that height committed |
//!
//! A transaction included twice (a failed one may be included again) points at its latest inclusion,
//! as in CometBFT's indexer; pruning an older height leaves a pointer that moved on untouched.
//!
//! # Bounds
//!
//! Only attributes with `index: true` are indexed, at most [`MAX_INDEXED_ATTRIBUTES_PER_TX`] distinct
//! ones per transaction (in emission order), and only those whose `kind.key` fits in
//! [`MAX_INDEXED_KEY_BYTES`] and value in [`MAX_INDEXED_VALUE_BYTES`] (longer ones are skipped, not
//! truncated: a truncated value would match the wrong searches). Searches return at most
//! [`MAX_SEARCH_RESULTS`] entries per call. These are constants because pruning recomputes a height's
//! event keys from its stored results with the same rules.

pub(crate) mod keys;
mod read;

use std::collections::BTreeSet;

use borsh::{BorshDeserialize, BorshSerialize};
use rocksdb::WriteBatch;

use crate::app::TxResult;
use crate::error::{Result, StateError};
use crate::merkle::codec::hex;
use crate::storage::{Cf, Storage};

/// Longest indexed composite key (`event kind` + `.` + `attribute key`), in bytes.
pub const MAX_INDEXED_KEY_BYTES: usize = 128;
/// Longest indexed attribute value, in bytes.
pub const MAX_INDEXED_VALUE_BYTES: usize = 256;
/// Most distinct attributes indexed per transaction. Sized for the largest legitimate transaction: a
/// relayer's IBC transaction of 32 messages emits about 30 distinct attributes per packet (`recv_packet`,
/// `write_acknowledgement`, ICS-20's events), ~1,000 in all, and a relayer finds each packet by its own
/// sequence (`write_acknowledgement.packet_sequence='N'`), as Hermes does against CometBFT, which indexes
/// every attribute. At 64, packets after the first few of a batch were unfindable and the relayer
/// stalled. At most 1,024 × (128 + 256) bytes of keys per transaction, inside its 1 MiB size bound.
pub const MAX_INDEXED_ATTRIBUTES_PER_TX: usize = 1024;
/// Most `(height, index)` pairs one search returns.
pub const MAX_SEARCH_RESULTS: usize = 10_000;
/// The composite key that searches by inclusion height instead of by event (CometBFT's `tx.height`).
pub const TX_HEIGHT_KEY: &str = "tx.height";

/// One transaction of a block, handed to [`crate::StateStore::commit_block`] for indexing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedTx {
    /// Its hash (`Tx::hash`), the key of [`crate::StateStore::tx`].
    pub hash: [u8; 32],
    /// Its bytes.
    pub tx: Vec<u8>,
    /// Its execution result (events with `index: true` go into the event index).
    pub result: TxResult,
}

/// A transaction found in the index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexedTx {
    /// Its hash.
    pub hash: [u8; 32],
    /// Height of the block that included it.
    pub height: u64,
    /// Its position in that block.
    pub index: u32,
    /// Its bytes.
    pub tx: Vec<u8>,
    /// Its execution result.
    pub result: TxResult,
}

/// Per-height record: how many results follow it, and the block's hash (to unindex it when pruned).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
struct BlockRecord {
    tx_count: u32,
    block_hash: Option<[u8; 32]>,
}

/// The stored result of one transaction; the hash lets pruning find the location record.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
struct StoredResult {
    tx_hash: [u8; 32],
    result: TxResult,
}

/// [`StoredResult`] by reference: the same encoding, written without cloning the result.
#[derive(BorshSerialize)]
struct StoredResultRef<'a> {
    tx_hash: &'a [u8; 32],
    result: &'a TxResult,
}

fn encode<T: BorshSerialize>(cf: Cf, key: &[u8], value: &T) -> Result<Vec<u8>> {
    borsh::to_vec(value).map_err(|e| StateError::Corrupt {
        cf: cf.name(),
        key_hex: hex(key),
        reason: format!("cannot encode record: {e}"),
    })
}

fn decode<T: BorshDeserialize>(cf: Cf, key: &[u8], bytes: &[u8], what: &str) -> Result<T> {
    T::try_from_slice(bytes).map_err(|e| StateError::Corrupt {
        cf: cf.name(),
        key_hex: hex(key),
        reason: format!("undecodable {what}: {e}"),
    })
}

/// The distinct event-index prefixes of one result, in emission order, bounded (see the module docs).
fn event_prefixes(result: &TxResult) -> Vec<Vec<u8>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for event in &result.events {
        for attr in event.attributes.iter().filter(|a| a.index) {
            if out.len() >= MAX_INDEXED_ATTRIBUTES_PER_TX {
                return out;
            }
            let composite = format!("{}.{}", event.kind, attr.key);
            if let Some(prefix) = keys::event_prefix(&composite, &attr.value) {
                if seen.insert(prefix.clone()) {
                    out.push(prefix);
                }
            }
        }
    }
    out
}

/// Tx location record: `height ‖ index ‖ tx bytes`.
fn location_value(height: u64, index: u32, tx: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(12 + tx.len());
    v.extend_from_slice(&height.to_be_bytes());
    v.extend_from_slice(&index.to_be_bytes());
    v.extend_from_slice(tx);
    v
}

/// Splits a location record into `(height, index, tx bytes)`.
fn split_location<'a>(key: &[u8], value: &'a [u8]) -> Result<(u64, u32, &'a [u8])> {
    let corrupt = || StateError::Corrupt {
        cf: Cf::TxIndex.name(),
        key_hex: hex(key),
        reason: format!(
            "tx location record of {} bytes, expected at least 12",
            value.len()
        ),
    };
    if value.len() < 12 {
        return Err(corrupt());
    }
    let (h, rest) = value.split_at(8);
    let (i, tx) = rest.split_at(4);
    let height = u64::from_be_bytes(h.try_into().map_err(|_| corrupt())?);
    let index = u32::from_be_bytes(i.try_into().map_err(|_| corrupt())?);
    Ok((height, index, tx))
}

/// Adds the index of block `height` to `batch`: block hash → height, the block record, one result and
/// one location record per transaction, and the event entries.
pub(crate) fn add_block(
    st: &Storage,
    batch: &mut WriteBatch,
    height: u64,
    block_hash: Option<&[u8; 32]>,
    txs: &[CommittedTx],
    evidence: &[[u8; 32]],
) -> Result<()> {
    if !evidence.is_empty() {
        for key in evidence {
            st.batch_put(
                batch,
                Cf::TxIndex,
                &keys::evidence_key(key),
                &height.to_be_bytes(),
            )?;
        }
        st.batch_put(
            batch,
            Cf::TxIndex,
            &keys::evidence_list_key(height),
            &evidence.concat(),
        )?;
    }
    let tx_count = u32::try_from(txs.len()).map_err(|_| StateError::TooLarge {
        what: "transactions in one block",
        len: txs.len(),
        max: u32::MAX as usize,
    })?;
    if let Some(hash) = block_hash {
        st.batch_put(
            batch,
            Cf::Blocks,
            &keys::block_hash_key(hash),
            &height.to_be_bytes(),
        )?;
    }
    let before = tx_count_before(st, height)?;
    let through = before.saturating_add(u64::from(tx_count));
    st.batch_put(
        batch,
        Cf::TxIndex,
        &keys::tx_count_key(height),
        &keys::tx_counts_value(before, through),
    )?;
    if tx_count > 0 {
        st.batch_put(
            batch,
            Cf::TxIndex,
            &keys::tx_ordinal_key(before),
            &height.to_be_bytes(),
        )?;
    }
    let record_key = keys::block_record_key(height);
    let record = BlockRecord {
        tx_count,
        block_hash: block_hash.copied(),
    };
    st.batch_put(
        batch,
        Cf::TxIndex,
        &record_key,
        &encode(Cf::TxIndex, &record_key, &record)?,
    )?;
    for (index, tx) in (0u32..).zip(txs) {
        st.batch_put(
            batch,
            Cf::TxIndex,
            &keys::tx_key(&tx.hash),
            &location_value(height, index, &tx.tx),
        )?;
        let result_key = keys::result_key(height, index);
        let stored = StoredResultRef {
            tx_hash: &tx.hash,
            result: &tx.result,
        };
        st.batch_put(
            batch,
            Cf::TxIndex,
            &result_key,
            &encode(Cf::TxIndex, &result_key, &stored)?,
        )?;
        for prefix in event_prefixes(&tx.result) {
            st.batch_put(
                batch,
                Cf::TxIndex,
                &keys::event_key(&prefix, height, index),
                &[],
            )?;
        }
    }
    Ok(())
}

/// Transactions of the indexed blocks below `height` (blocks are indexed in height order; pruned ones
/// keep counting, because each block's counts are absolute).
fn tx_count_before(st: &Storage, height: u64) -> Result<u64> {
    let below = st.scan_rev(
        Cf::TxIndex,
        &keys::tx_count_key(0),
        &keys::tx_count_key(height),
        1,
    )?;
    match below.first() {
        Some((key, value)) => Ok(keys::split_tx_counts(key, value)?.1),
        None => Ok(0),
    }
}

/// Adds to `batch` the deletion of everything stored for block `height`: block, commit, hash index,
/// block record, results, location records still pointing at this height and event entries.
/// Returns the number of records deleted.
pub(crate) fn delete_block(st: &Storage, batch: &mut WriteBatch, height: u64) -> Result<usize> {
    let height_key = height.to_be_bytes();
    st.batch_delete(batch, Cf::Blocks, &height_key)?;
    st.batch_delete(batch, Cf::Commits, &height_key)?;
    let mut deleted = 2usize;
    let list_key = keys::evidence_list_key(height);
    if let Some(list) = st.get(Cf::TxIndex, &list_key)? {
        if list.len() % 32 != 0 {
            return Err(StateError::Corrupt {
                cf: Cf::TxIndex.name(),
                key_hex: hex(&list_key),
                reason: format!("evidence list of {} bytes is not whole keys", list.len()),
            });
        }
        for key in list.chunks_exact(32) {
            let mut evidence = [0u8; 32];
            evidence.copy_from_slice(key);
            st.batch_delete(batch, Cf::TxIndex, &keys::evidence_key(&evidence))?;
            deleted += 1;
        }
        st.batch_delete(batch, Cf::TxIndex, &list_key)?;
        deleted += 1;
    }
    let record_key = keys::block_record_key(height);
    let Some(raw) = st.get(Cf::TxIndex, &record_key)? else {
        // A block committed without an index (or before the index existed).
        return Ok(deleted);
    };
    let record: BlockRecord = decode(Cf::TxIndex, &record_key, &raw, "block record")?;
    let count_key = keys::tx_count_key(height);
    if let Some(counts) = st.get(Cf::TxIndex, &count_key)? {
        let (before, through) = keys::split_tx_counts(&count_key, &counts)?;
        if through > before {
            st.batch_delete(batch, Cf::TxIndex, &keys::tx_ordinal_key(before))?;
            deleted += 1;
        }
        st.batch_delete(batch, Cf::TxIndex, &count_key)?;
        deleted += 1;
    }
    if let Some(hash) = record.block_hash {
        let key = keys::block_hash_key(&hash);
        if let Some(v) = st.get(Cf::Blocks, &key)? {
            if keys::decode_u64(Cf::Blocks, &key, &v)? == height {
                st.batch_delete(batch, Cf::Blocks, &key)?;
                deleted += 1;
            }
        }
    }
    let results = st.scan(
        Cf::TxIndex,
        &keys::result_key(height, 0),
        &keys::block_record_key(height.saturating_add(1)),
        (record.tx_count as usize).saturating_add(1),
    )?;
    for (key, value) in &results {
        let stored: StoredResult = decode(Cf::TxIndex, key, value, "tx result")?;
        let index = result_index(key)?;
        let tx_key = keys::tx_key(&stored.tx_hash);
        if let Some(loc) = st.get(Cf::TxIndex, &tx_key)? {
            let (h, i, _) = split_location(&tx_key, &loc)?;
            if (h, i) == (height, index) {
                st.batch_delete(batch, Cf::TxIndex, &tx_key)?;
                deleted += 1;
            }
        }
        for prefix in event_prefixes(&stored.result) {
            st.batch_delete(batch, Cf::TxIndex, &keys::event_key(&prefix, height, index))?;
            deleted += 1;
        }
        st.batch_delete(batch, Cf::TxIndex, key)?;
        deleted += 1;
    }
    st.batch_delete(batch, Cf::TxIndex, &record_key)?;
    Ok(deleted + 1)
}

/// The transaction index at the end of a result key.
fn result_index(key: &[u8]) -> Result<u32> {
    key.get(9..13)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| StateError::Corrupt {
            cf: Cf::TxIndex.name(),
            key_hex: hex(key),
            reason: "tx result key is not 13 bytes".to_owned(),
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::app::Event;
    use crate::{BlockCommit, StateStore, StoreConfig};

    fn put_raw(store: &StateStore, key: &[u8], value: &[u8]) {
        let mut batch = WriteBatch::default();
        store
            .storage()
            .batch_put(&mut batch, Cf::TxIndex, key, value)
            .unwrap();
        store.storage().write_synced(batch).unwrap();
    }

    #[test]
    fn corrupt_index_records_are_reported_with_their_column_family_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path(), StoreConfig::default()).unwrap();
        let result = TxResult {
            code: 0,
            log: String::new(),
            gas_wanted: 1,
            gas_used: 1,
            events: vec![Event::new("a", &[("b", "c".to_owned())])],
        };
        store
            .commit_block(BlockCommit {
                height: 1,
                block: b"block".to_vec(),
                txs: vec![CommittedTx {
                    hash: [7; 32],
                    tx: b"tx".to_vec(),
                    result,
                }],
                ..BlockCommit::default()
            })
            .unwrap();
        store
            .commit_block(BlockCommit {
                height: 2,
                block: b"block 2".to_vec(),
                ..BlockCommit::default()
            })
            .unwrap();
        assert_eq!(
            store.search_txs("a.b", "c", 10, false).unwrap(),
            vec![(1, 0)]
        );
        let result_key = keys::result_key(1, 0);
        put_raw(&store, &result_key, &[0xff]);
        let corrupt_result = |e: StateError| {
            matches!(e, StateError::Corrupt { cf: "tx_index", ref key_hex, .. }
                if *key_hex == hex(&result_key))
        };
        assert!(corrupt_result(store.tx(&[7; 32]).unwrap_err()));
        assert!(corrupt_result(store.block_results(1).unwrap_err()));
        assert!(corrupt_result(store.prune_blocks(2).unwrap_err()));
        put_raw(&store, &keys::tx_key(&[7; 32]), &[1, 2, 3]);
        let err = store.tx(&[7; 32]).unwrap_err();
        assert!(
            matches!(err, StateError::Corrupt { cf: "tx_index", .. }),
            "{err}"
        );
        // A block record announcing more results than stored.
        let record = BlockRecord {
            tx_count: 2,
            block_hash: None,
        };
        put_raw(
            &store,
            &keys::block_record_key(1),
            &borsh::to_vec(&record).unwrap(),
        );
        put_raw(
            &store,
            &result_key,
            &borsh::to_vec(&StoredResult {
                tx_hash: [7; 32],
                result: TxResult {
                    code: 0,
                    log: String::new(),
                    gas_wanted: 0,
                    gas_used: 0,
                    events: Vec::new(),
                },
            })
            .unwrap(),
        );
        let err = store.block_results(1).unwrap_err();
        assert!(
            matches!(err, StateError::Missing { cf: "tx_index", .. }),
            "{err}"
        );
    }
}
