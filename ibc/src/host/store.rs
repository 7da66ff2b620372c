//! The IBC host's view of the state: one block's writes layered over the committed state, with one
//! transaction's writes on top that become the block's only if the whole transaction succeeds.
//!
//! IBC handlers write as they go (a client update stores three values, a packet receipt and an
//! acknowledgement two); a message that fails after some writes must leave nothing behind, and neither
//! may an earlier message of the same transaction. So every write goes to the transaction's layer, which
//! [`TxStore::commit_tx`] folds into the block's and [`TxStore::discard_tx`] drops. Reads see the
//! transaction, then the block, then the committed state.

use std::collections::BTreeMap;

use basalt_state::{StateStore, Write};

/// Where committed state is read from.
pub trait StateRead {
    /// The committed value of `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, basalt_state::StateError>;
}

/// A committed version of a [`StateStore`].
pub struct StoreAt<'a> {
    /// The store.
    pub store: &'a StateStore,
    /// The version read (the latest committed one while executing a block).
    pub version: u64,
}

impl StateRead for StoreAt<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, basalt_state::StateError> {
        self.store.get(key, self.version)
    }
}

/// Committed state in a map (tests and tools).
impl StateRead for BTreeMap<Vec<u8>, Vec<u8>> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, basalt_state::StateError> {
        Ok(BTreeMap::get(self, key).cloned())
    }
}

/// Committed state, the block's writes and the current transaction's.
pub struct TxStore<R> {
    base: R,
    block: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    tx: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl<R: StateRead> TxStore<R> {
    /// No writes yet over `base`.
    pub fn new(base: R) -> TxStore<R> {
        TxStore {
            base,
            block: BTreeMap::new(),
            tx: BTreeMap::new(),
        }
    }

    /// The value of `key` as the current transaction sees it.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, basalt_state::StateError> {
        match self.tx.get(key).or_else(|| self.block.get(key)) {
            Some(written) => Ok(written.clone()),
            None => self.base.get(key),
        }
    }

    /// Sets `key` in the current transaction.
    pub fn set(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.tx.insert(key, Some(value));
    }

    /// Deletes `key` in the current transaction.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.tx.insert(key, None);
    }

    /// The current transaction succeeded: its writes become the block's.
    pub fn commit_tx(&mut self) {
        let tx = std::mem::take(&mut self.tx);
        self.block.extend(tx);
    }

    /// The current transaction failed: its writes are dropped.
    pub fn discard_tx(&mut self) {
        self.tx.clear();
    }

    /// The bytes the current transaction's writes hold (keys and values), to bound it.
    pub fn tx_bytes(&self) -> usize {
        self.tx
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len))
            .sum()
    }

    /// The block's writes (a transaction still open is not included), in key order.
    pub fn into_writes(self) -> Vec<Write> {
        self.block.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn base() -> BTreeMap<Vec<u8>, Vec<u8>> {
        BTreeMap::from([
            (b"a".to_vec(), b"1".to_vec()),
            (b"b".to_vec(), b"2".to_vec()),
        ])
    }

    #[test]
    fn a_transaction_sees_its_own_writes_over_the_blocks_over_the_state() {
        let mut store = TxStore::new(base());
        store.set(b"a".to_vec(), b"tx1".to_vec());
        store.commit_tx();
        assert_eq!(store.get(b"a").unwrap(), Some(b"tx1".to_vec()));
        store.delete(b"a".to_vec());
        store.set(b"c".to_vec(), b"3".to_vec());
        assert_eq!(store.get(b"a").unwrap(), None);
        assert_eq!(store.get(b"b").unwrap(), Some(b"2".to_vec()));
        assert_eq!(store.get(b"c").unwrap(), Some(b"3".to_vec()));
        assert_eq!(store.tx_bytes(), 1 + 1 + 1);
    }

    #[test]
    fn a_failed_transaction_leaves_nothing_behind() {
        let mut store = TxStore::new(base());
        store.set(b"a".to_vec(), b"kept".to_vec());
        store.commit_tx();
        store.set(b"a".to_vec(), b"dropped".to_vec());
        store.delete(b"b".to_vec());
        store.discard_tx();
        assert_eq!(store.get(b"a").unwrap(), Some(b"kept".to_vec()));
        assert_eq!(store.get(b"b").unwrap(), Some(b"2".to_vec()));
        // An open transaction is not part of the block.
        store.set(b"z".to_vec(), b"open".to_vec());
        assert_eq!(
            store.into_writes(),
            vec![(b"a".to_vec(), Some(b"kept".to_vec()))]
        );
    }
}
