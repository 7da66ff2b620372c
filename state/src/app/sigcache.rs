//! Hashes of transactions whose signature this node already verified, shared by every [`super::BankApp`]
//! instance of one node (mempool admission, RPC checks, block execution), so each signature is verified
//! once per node: a block's transactions that went through this node's mempool are not verified again.
//!
//! Sound because a transaction hash covers the whole encoded transaction, signature included: a hash in the
//! cache means exactly these bytes carried a valid signature. Skipping the check cannot change a block's
//! outcome, only its cost. Bounded: the oldest entries are evicted first.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use basalt_consensus::types::Hash;

/// Default capacity: a few full blocks of transactions.
pub const DEFAULT_SIGNATURE_CACHE: usize = 200_000;

/// The cache (thread-safe).
#[derive(Debug)]
pub struct SignatureCache {
    inner: Mutex<Inner>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Inner {
    set: HashSet<Hash>,
    order: VecDeque<Hash>,
}

impl SignatureCache {
    /// An empty cache holding at most `capacity` hashes.
    pub fn new(capacity: usize) -> SignatureCache {
        SignatureCache {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Records that the transaction with `hash` has a valid signature.
    pub fn insert(&self, hash: Hash) {
        let mut inner = self.lock();
        if inner.set.insert(hash) {
            inner.order.push_back(hash);
            while inner.order.len() > self.capacity {
                if let Some(old) = inner.order.pop_front() {
                    inner.set.remove(&old);
                }
            }
        }
    }

    /// Whether the transaction with `hash` is known to carry a valid signature.
    pub fn contains(&self, hash: &Hash) -> bool {
        self.lock().set.contains(hash)
    }

    /// Number of hashes held.
    pub fn len(&self) -> usize {
        self.lock().set.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for SignatureCache {
    fn default() -> Self {
        SignatureCache::new(DEFAULT_SIGNATURE_CACHE)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn evicts_oldest_first_and_stays_bounded() {
        let cache = SignatureCache::new(2);
        let h = |n: u8| Hash::digest(&[n]);
        cache.insert(h(1));
        cache.insert(h(2));
        cache.insert(h(1));
        cache.insert(h(3));
        assert_eq!(cache.len(), 2);
        assert!(!cache.contains(&h(1)));
        assert!(cache.contains(&h(2)) && cache.contains(&h(3)));
    }
}
