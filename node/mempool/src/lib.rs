//! Pending transactions: bounded, deduplicated, checked once, rechecked after each commit.
//!
//! One [`Mempool`] is shared (`Arc<Mempool>`) by the RPC server, transaction gossip and the consensus
//! driver; a `std::sync::Mutex` guards its state, and the expensive parts (the application's `check_tx`
//! with its signature verification, and the recheck after a commit) run *outside* the lock.
//!
//! Limits: at most `max_txs` transactions and `max_bytes` bytes held, each at most `max_tx_bytes`; a cache
//! of at most `cache_size` recently seen hashes (admitted, committed or rejected) so a re-gossiped
//! transaction is neither checked nor stored twice; a gossip queue of at most about `2 * max_txs` entries.
//!
//! Costs: admission is O(log n) besides the check; [`Mempool::reap`] is O(n log n) in the pool size at
//! worst (one pass in arrival order plus ordered per-sender maps) and stops as soon as `max_txs` is reached;
//! [`Mempool::update`] is O(n log n) plus one `keep` call per remaining transaction.

use std::collections::{btree_map, BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use basalt_consensus::types::{Address, Hash, Tx};
use basalt_state::app::CheckTxResult;
use tokio::sync::Notify;

/// Limits of a mempool (from `[mempool]` in config.toml).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MempoolConfig {
    /// Most transactions held.
    pub max_txs: usize,
    /// Most bytes held (sum of transaction lengths).
    pub max_bytes: usize,
    /// Most recently seen transaction hashes remembered (0 disables the cache).
    pub cache_size: usize,
    /// Largest transaction accepted, in bytes.
    pub max_tx_bytes: usize,
}

/// Where a transaction came from: decides whether it is gossiped on (a peer's transaction already
/// spreads through the gossip mesh).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TxOrigin {
    /// Submitted to this node (RPC).
    Local,
    /// Received from a peer.
    Peer,
}

/// Why a transaction was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    /// The mempool holds its maximum number of transactions or bytes.
    #[error("mempool is full: number of txs {count} (max: {max_count}), total txs bytes {bytes} (max: {max_bytes})")]
    Full {
        /// Transactions held.
        count: usize,
        /// The count limit.
        max_count: usize,
        /// Bytes held.
        bytes: usize,
        /// The byte limit.
        max_bytes: usize,
    },
    /// The transaction is larger than `max_tx_bytes`.
    #[error("tx too large. Max size is {max}, but got {len}")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Seen recently (held, being checked, committed or rejected): not checked again. Carries what is
    /// known of it, read under the same lock as the refusal.
    #[error("tx already exists in cache")]
    InCache(Known),
    /// The application's check refused it.
    #[error("tx rejected by check_tx with code {code}: {log}")]
    Rejected {
        /// The application's code.
        code: u32,
        /// The application's reason.
        log: String,
    },
}

/// Counters for the metrics (monotonic since start, except `size` and `size_bytes`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MempoolStats {
    /// Transactions held.
    pub size: usize,
    /// Bytes held.
    pub size_bytes: u64,
    /// Refused by the application's check (CometBFT's `mempool_failed_txs`).
    pub failed_txs: u64,
    /// Refused because the mempool was full or the transaction too large (`mempool_rejected_txs`).
    pub rejected_txs: u64,
    /// Refused as recently seen.
    pub duplicate_txs: u64,
    /// Dropped as no longer valid: by the recheck after a commit, or (with `mempool.recheck = false`)
    /// when a proposal passed them over and a check against the latest state failed
    /// (`mempool_evicted_txs`).
    pub evicted_txs: u64,
    /// Rechecks run (one per commit with a non-empty mempool; `mempool_recheck_times`).
    pub recheck_times: u64,
    /// Removed because a block committed them.
    pub committed_txs: u64,
}

/// One held transaction.
#[derive(Debug)]
struct Entry {
    tx: Tx,
    result: CheckTxResult,
    /// Arrival number (unique, increasing).
    seq: u64,
    origin: TxOrigin,
}

/// What this node knows of a transaction it has seen: how a gossiped batch that repeats transactions is
/// judged without checking them again (see [`Mempool::known`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Known {
    /// Not seen recently (or its verdict was forgotten).
    Unknown,
    /// Its check is running now.
    Checking,
    /// It passed the application's check (held, or committed since).
    Valid,
    /// The application's check refused it with this code.
    Rejected(u32),
}

/// A bounded map of recently seen hashes to what is known of them, least recently seen evicted first.
/// `queue` may hold stale entries (hashes seen again later or removed); they are skipped on eviction and
/// compacted away, so it stays within about twice the capacity.
#[derive(Debug, Default)]
struct RecentCache {
    capacity: usize,
    map: HashMap<Hash, (u64, Known)>,
    queue: VecDeque<(Hash, u64)>,
    tick: u64,
}

impl RecentCache {
    fn new(capacity: usize) -> RecentCache {
        RecentCache {
            capacity,
            ..RecentCache::default()
        }
    }

    fn contains(&self, hash: &Hash) -> bool {
        self.map.contains_key(hash)
    }

    fn known(&self, hash: &Hash) -> Known {
        self.map.get(hash).map_or(Known::Unknown, |(_, k)| *k)
    }

    /// Records `hash` as seen now, keeping what was known of it.
    fn touch(&mut self, hash: Hash) {
        let known = self.known(&hash);
        self.push(hash, known);
    }

    /// Records `hash` as seen now, with what is known of it.
    fn push(&mut self, hash: Hash, known: Known) {
        if self.capacity == 0 {
            return;
        }
        self.tick += 1;
        self.map.insert(hash, (self.tick, known));
        self.queue.push_back((hash, self.tick));
        while self.map.len() > self.capacity {
            let Some((old, tick)) = self.queue.pop_front() else {
                break;
            };
            if self.map.get(&old).is_some_and(|(t, _)| *t == tick) {
                self.map.remove(&old);
            }
        }
        if self.queue.len() > self.capacity.saturating_mul(2).saturating_add(16) {
            let map = &self.map;
            self.queue
                .retain(|(h, t)| map.get(h).is_some_and(|(tick, _)| tick == t));
        }
    }

    fn remove(&mut self, hash: &Hash) {
        self.map.remove(hash);
    }

    /// Sets what is known of a cached hash (no effect if it was evicted meanwhile).
    fn mark(&mut self, hash: &Hash, known: Known) {
        if let Some(entry) = self.map.get_mut(hash) {
            entry.1 = known;
        }
    }
}

/// Everything behind the lock.
#[derive(Debug)]
struct Inner {
    config: MempoolConfig,
    entries: HashMap<Hash, Entry>,
    /// Arrival order.
    order: BTreeMap<u64, Hash>,
    /// Each sender's transactions by (nonce, arrival).
    senders: HashMap<Address, BTreeMap<(u64, u64), Hash>>,
    bytes: usize,
    next_seq: u64,
    cache: RecentCache,
    /// Hashes whose check is running (so a concurrent duplicate is not checked twice).
    checking: HashSet<Hash>,
    /// Admitted since the last take, by (hash, arrival); stale entries are skipped.
    gossip: VecDeque<(Hash, u64)>,
    stats: MempoolStats,
}

impl Inner {
    fn is_full(&self, len: usize) -> Option<MempoolError> {
        let too_many = self.entries.len() >= self.config.max_txs;
        let too_big = self.bytes.saturating_add(len) > self.config.max_bytes;
        (too_many || too_big).then_some(MempoolError::Full {
            count: self.entries.len(),
            max_count: self.config.max_txs,
            bytes: self.bytes,
            max_bytes: self.config.max_bytes,
        })
    }

    fn known(&self, hash: &Hash) -> Known {
        if self.entries.contains_key(hash) {
            Known::Valid
        } else if self.checking.contains(hash) {
            Known::Checking
        } else {
            self.cache.known(hash)
        }
    }

    fn seen(&self, hash: &Hash) -> bool {
        self.entries.contains_key(hash) || self.checking.contains(hash) || self.cache.contains(hash)
    }

    fn add(&mut self, hash: Hash, tx: Tx, result: CheckTxResult, origin: TxOrigin) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.bytes += tx.as_bytes().len();
        self.order.insert(seq, hash);
        if let Some(sender) = result.sender {
            self.senders
                .entry(sender)
                .or_default()
                .insert((result.nonce, seq), hash);
        }
        self.gossip.push_back((hash, seq));
        if self.gossip.len() > self.config.max_txs.saturating_mul(2).saturating_add(16) {
            let entries = &self.entries;
            self.gossip
                .retain(|(h, s)| entries.get(h).is_some_and(|e| e.seq == *s));
        }
        self.entries.insert(
            hash,
            Entry {
                tx,
                result,
                seq,
                origin,
            },
        );
    }

    /// Removes committed transactions, keeping their hashes in the cache as valid so a re-gossiped copy
    /// is refused as already seen.
    fn remove_committed(&mut self, committed: &[Tx]) {
        for tx in committed {
            let hash = tx.hash();
            self.cache.push(hash, Known::Valid);
            if self.remove(&hash, None) {
                self.stats.committed_txs += 1;
            }
        }
    }

    /// Removes a held transaction (if it is held and, when given, has arrival number `seq`).
    fn remove(&mut self, hash: &Hash, seq: Option<u64>) -> bool {
        match self.entries.get(hash) {
            Some(entry) if seq.is_none_or(|s| s == entry.seq) => {}
            _ => return false,
        }
        let Some(entry) = self.entries.remove(hash) else {
            return false;
        };
        self.bytes -= entry.tx.as_bytes().len();
        self.order.remove(&entry.seq);
        if let Some(sender) = entry.result.sender {
            if let Some(txs) = self.senders.get_mut(&sender) {
                txs.remove(&(entry.result.nonce, entry.seq));
                if txs.is_empty() {
                    self.senders.remove(&sender);
                }
            }
        }
        true
    }
}

/// The mempool. See the module docs.
#[derive(Debug)]
pub struct Mempool {
    inner: Mutex<Inner>,
    notify: Arc<Notify>,
    /// Consensus's own wake-up (one permit, one consumer): see [`Mempool::txs_available_notify`].
    txs_available: Arc<Notify>,
}

/// Removes a hash from the "being checked" set however the check ends (even if it panics).
struct CheckingGuard<'a> {
    mempool: &'a Mempool,
    hash: Hash,
}

impl Drop for CheckingGuard<'_> {
    fn drop(&mut self) {
        self.mempool.lock().checking.remove(&self.hash);
    }
}

impl Mempool {
    /// An empty mempool with these limits.
    pub fn new(config: MempoolConfig) -> Mempool {
        Mempool {
            inner: Mutex::new(Inner {
                config,
                entries: HashMap::new(),
                order: BTreeMap::new(),
                senders: HashMap::new(),
                bytes: 0,
                next_seq: 0,
                cache: RecentCache::new(config.cache_size),
                checking: HashSet::new(),
                gossip: VecDeque::new(),
                stats: MempoolStats::default(),
            }),
            notify: Arc::new(Notify::new()),
            txs_available: Arc::new(Notify::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while holding the lock (checks run outside it), so a poisoned lock still holds
        // consistent state.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a locally submitted transaction: [`Mempool::insert_with_origin`] with [`TxOrigin::Local`].
    pub fn insert(
        &self,
        tx: Tx,
        check: impl FnOnce(&Tx) -> CheckTxResult,
    ) -> Result<CheckTxResult, MempoolError> {
        self.insert_with_origin(tx, TxOrigin::Local, check)
    }

    /// Admits a transaction: size limit, then duplicate check against held, in-check and recently seen
    /// hashes, then fullness, then `check` (the application's `check_tx`, run once per distinct
    /// transaction and outside the lock), then storage with its result. A rejected transaction stays in
    /// the cache so it is not checked again; a transaction refused because the mempool is full does not
    /// (it may be retried later).
    pub fn insert_with_origin(
        &self,
        tx: Tx,
        origin: TxOrigin,
        check: impl FnOnce(&Tx) -> CheckTxResult,
    ) -> Result<CheckTxResult, MempoolError> {
        let len = tx.as_bytes().len();
        let hash = tx.hash();
        let guard = {
            let mut inner = self.lock();
            if len > inner.config.max_tx_bytes {
                inner.stats.rejected_txs += 1;
                return Err(MempoolError::TooLarge {
                    len,
                    max: inner.config.max_tx_bytes,
                });
            }
            if inner.seen(&hash) {
                inner.stats.duplicate_txs += 1;
                let known = inner.known(&hash);
                inner.cache.touch(hash);
                return Err(MempoolError::InCache(known));
            }
            if let Some(full) = inner.is_full(len) {
                inner.stats.rejected_txs += 1;
                return Err(full);
            }
            inner.cache.push(hash, Known::Checking);
            inner.checking.insert(hash);
            CheckingGuard {
                mempool: self,
                hash,
            }
        };
        let result = check(&tx);
        let mut inner = self.lock();
        if !result.is_ok() {
            inner.stats.failed_txs += 1;
            inner.cache.mark(&hash, Known::Rejected(result.code));
            drop(inner);
            drop(guard);
            return Err(MempoolError::Rejected {
                code: result.code,
                log: result.log,
            });
        }
        // Others may have filled the mempool while the check ran.
        if let Some(full) = inner.is_full(len) {
            inner.stats.rejected_txs += 1;
            inner.cache.remove(&hash);
            drop(inner);
            drop(guard);
            return Err(full);
        }
        inner.cache.mark(&hash, Known::Valid);
        inner.add(hash, tx, result.clone(), origin);
        drop(inner);
        drop(guard);
        // Wake every current waiter, and leave a permit for one that is not waiting right now (a
        // wake-up is a hint: waiters look at the mempool after waking).
        self.notify.notify_waiters();
        self.notify.notify_one();
        self.txs_available.notify_one();
        Ok(result)
    }

    /// What is known of a transaction seen recently: held or committed ([`Known::Valid`]), refused by the
    /// check (with its code), being checked, or nothing.
    pub fn known(&self, hash: &Hash) -> Known {
        self.lock().known(hash)
    }

    /// Admits a batch (e.g. a gossip message), stopping at nothing: one result per transaction, in order.
    pub fn insert_batch(
        &self,
        txs: Vec<Tx>,
        origin: TxOrigin,
        mut check: impl FnMut(&Tx) -> CheckTxResult,
    ) -> Vec<Result<CheckTxResult, MempoolError>> {
        txs.into_iter()
            .map(|tx| self.insert_with_origin(tx, origin, &mut check))
            .collect()
    }

    /// Transactions for a proposal, within `max_bytes` (sum of transaction lengths) and `max_txs`: in
    /// arrival order, except that each sender's transactions come in nonce order (the sender's k-th slot
    /// in arrival order gets its k-th lowest nonce) and only while its nonces are contiguous: a gap, or
    /// a transaction that does not fit, ends that sender's run. Of two transactions with the same sender
    /// and nonce, the earlier arrival is used. Transactions without a sender keep arrival order.
    pub fn reap(&self, max_bytes: usize, max_txs: usize) -> Vec<Tx> {
        let inner = self.lock();
        let mut out = Vec::new();
        let mut used: usize = 0;
        let mut runs: HashMap<Address, SenderRun<'_>> = HashMap::new();
        for hash in inner.order.values() {
            if out.len() >= max_txs {
                break;
            }
            let Some(entry) = inner.entries.get(hash) else {
                continue;
            };
            let (chosen, run) = match entry.result.sender {
                None => (Some(entry), None),
                Some(sender) => {
                    let run = runs.entry(sender).or_insert_with(|| SenderRun {
                        txs: inner.senders.get(&sender).map(|m| m.iter()),
                        next_nonce: None,
                        done: false,
                    });
                    (run.next(&inner.entries), Some(run))
                }
            };
            let Some(chosen) = chosen else {
                continue;
            };
            let len = chosen.tx.as_bytes().len();
            if used.saturating_add(len) > max_bytes {
                if let Some(run) = run {
                    run.done = true;
                }
                continue;
            }
            used += len;
            out.push(chosen.tx.clone());
        }
        out
    }

    /// After a commit with `mempool.recheck = false`: removes the committed transactions only (their
    /// hashes stay in the cache so a re-gossiped copy is refused); nothing is rechecked.
    pub fn remove_committed(&self, committed: &[Tx]) {
        self.lock().remove_committed(committed);
    }

    /// Drops `txs` found no longer valid against the latest state (with `mempool.recheck = false` the
    /// proposer checks what its proposal passed over, so a commit that invalidated a transaction cannot
    /// leave it in the pool for good). Their hashes leave the cache, so each may be resubmitted once
    /// valid again. Returns how many were dropped.
    pub fn remove_invalid(&self, txs: &[Tx]) -> usize {
        let mut inner = self.lock();
        let mut dropped = 0;
        for tx in txs {
            let hash = tx.hash();
            if inner.remove(&hash, None) {
                inner.cache.remove(&hash);
                inner.stats.evicted_txs += 1;
                dropped += 1;
            }
        }
        dropped
    }

    /// After a commit: removes the committed transactions (keeping their hashes in the cache so a
    /// re-gossiped copy is refused), then rechecks every remaining one with `keep` (cheap: from its cached
    /// result, no signature verification) and drops those it refuses (their hashes leave the cache, so they
    /// may be resubmitted once valid). `keep` runs outside the lock, in arrival order.
    pub fn update(&self, committed: &[Tx], mut keep: impl FnMut(&Tx, &CheckTxResult) -> bool) {
        let snapshot: Vec<(Hash, u64, Tx, CheckTxResult)> = {
            let mut inner = self.lock();
            inner.remove_committed(committed);
            let inner = &*inner;
            inner
                .order
                .iter()
                .filter_map(|(seq, hash)| {
                    let e = inner.entries.get(hash)?;
                    Some((*hash, *seq, e.tx.clone(), e.result.clone()))
                })
                .collect()
        };
        if snapshot.is_empty() {
            return;
        }
        let dropped: Vec<(Hash, u64)> = snapshot
            .iter()
            .filter(|(_, _, tx, result)| !keep(tx, result))
            .map(|(hash, seq, _, _)| (*hash, *seq))
            .collect();
        let mut inner = self.lock();
        inner.stats.recheck_times += 1;
        for (hash, seq) in dropped {
            if inner.remove(&hash, Some(seq)) {
                inner.cache.remove(&hash);
                inner.stats.evicted_txs += 1;
            }
        }
    }

    /// Locally submitted transactions admitted since the last call, in arrival order, within `max_bytes`
    /// (a transaction larger than `max_bytes` on its own is skipped: it could never be sent). Peers'
    /// transactions are passed over (they spread through the gossip mesh already).
    pub fn take_new_for_gossip(&self, max_bytes: usize) -> Vec<Tx> {
        self.take_new(max_bytes, true)
            .into_iter()
            .map(|(tx, _)| tx)
            .collect()
    }

    /// Like [`Mempool::take_new_for_gossip`] but returns peers' transactions too, with their origin.
    pub fn take_new_with_origin(&self, max_bytes: usize) -> Vec<(Tx, TxOrigin)> {
        self.take_new(max_bytes, false)
    }

    fn take_new(&self, max_bytes: usize, local_only: bool) -> Vec<(Tx, TxOrigin)> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let mut out = Vec::new();
        let mut used: usize = 0;
        while let Some((hash, seq)) = inner.gossip.front().copied() {
            let entry = match inner.entries.get(&hash) {
                Some(e) if e.seq == seq => e,
                _ => {
                    inner.gossip.pop_front();
                    continue;
                }
            };
            let len = entry.tx.as_bytes().len();
            if (local_only && entry.origin != TxOrigin::Local) || len > max_bytes {
                inner.gossip.pop_front();
                continue;
            }
            if used.saturating_add(len) > max_bytes {
                break;
            }
            used += len;
            out.push((entry.tx.clone(), entry.origin));
            inner.gossip.pop_front();
        }
        out
    }

    /// Signalled on each admission. A wake-up is a hint: look at the mempool after waking (and expect
    /// the occasional spurious one).
    pub fn new_tx_notify(&self) -> Arc<Notify> {
        self.notify.clone()
    }

    /// Signalled on each admission, for a single consumer (consensus waiting for transactions, as
    /// CometBFT's `TxsAvailable`): a permit is kept while nobody waits, so an admission between a look
    /// at the mempool and the wait is not missed. A hint: look at the mempool after waking.
    pub fn txs_available_notify(&self) -> Arc<Notify> {
        self.txs_available.clone()
    }

    /// Transactions held.
    pub fn size(&self) -> usize {
        self.lock().entries.len()
    }

    /// Bytes held.
    pub fn size_bytes(&self) -> u64 {
        self.lock().bytes as u64
    }

    /// Whether a transaction with this hash is held.
    pub fn contains(&self, hash: &Hash) -> bool {
        self.lock().entries.contains_key(hash)
    }

    /// The first `limit` held transactions in arrival order (for `unconfirmed_txs`).
    pub fn txs(&self, limit: usize) -> Vec<Tx> {
        let inner = self.lock();
        inner
            .order
            .values()
            .filter_map(|hash| inner.entries.get(hash))
            .take(limit)
            .map(|e| e.tx.clone())
            .collect()
    }

    /// Sizes and counters for the metrics.
    pub fn stats(&self) -> MempoolStats {
        let inner = self.lock();
        MempoolStats {
            size: inner.entries.len(),
            size_bytes: inner.bytes as u64,
            ..inner.stats
        }
    }
}

/// One sender's run through its transactions in nonce order during a reap.
struct SenderRun<'a> {
    txs: Option<btree_map::Iter<'a, (u64, u64), Hash>>,
    /// The nonce the next transaction must have; `None` before the first.
    next_nonce: Option<u64>,
    done: bool,
}

impl<'a> SenderRun<'a> {
    /// The sender's next transaction if its nonce continues the run.
    fn next(&mut self, entries: &'a HashMap<Hash, Entry>) -> Option<&'a Entry> {
        if self.done {
            return None;
        }
        let txs = self.txs.as_mut()?;
        loop {
            let Some(((nonce, _), hash)) = txs.next() else {
                self.done = true;
                return None;
            };
            match self.next_nonce {
                // A second transaction with the nonce just used: passed over.
                Some(next) if nonce.checked_add(1) == Some(next) => continue,
                Some(next) if *nonce != next => {
                    self.done = true;
                    return None;
                }
                _ => {}
            }
            match nonce.checked_add(1) {
                Some(next) => self.next_nonce = Some(next),
                None => self.done = true,
            }
            return entries.get(hash);
        }
    }
}
