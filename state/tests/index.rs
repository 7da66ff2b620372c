//! The block-hash index, the tx index, block results, event search and block pruning against an
//! in-memory model, from a seeded rng: transactions repeat across heights (a hash points at its latest
//! inclusion), pruning runs in small bounded steps, and after every step every query agrees with the
//! model.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use basalt_consensus::types::Hash;
use basalt_state::app::{Event, EventAttribute, TxResult};
use basalt_state::index::{MAX_INDEXED_VALUE_BYTES, MAX_SEARCH_RESULTS, TX_HEIGHT_KEY};
use basalt_state::{BlockCommit, CommittedTx, IndexedTx, StateError, StateStore, StoreConfig};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

const POOLS: u32 = 4;

fn open(path: &std::path::Path, prune_batch_limit: usize) -> StateStore {
    let mut config = StoreConfig::default();
    config.storage.block_cache_bytes = 8 << 20;
    config.prune_batch_limit = prune_batch_limit;
    StateStore::open(path, config).unwrap()
}

fn block_hash(height: u64) -> [u8; 32] {
    Hash::digest(format!("block-{height}").as_bytes()).0
}

fn result(height: u64, index: u32, pool: u32) -> TxResult {
    let mut event = Event::new(
        "ev",
        &[("h", height.to_string()), ("pool", pool.to_string())],
    );
    // Neither of these may be indexed: one is marked so, the other is too long.
    event.attributes.push(EventAttribute {
        key: "secret".to_owned(),
        value: "s".to_owned(),
        index: false,
    });
    event.attributes.push(EventAttribute {
        key: "long".to_owned(),
        value: "v".repeat(MAX_INDEXED_VALUE_BYTES + 1),
        index: true,
    });
    TxResult {
        code: index % 3,
        log: format!("{height}/{index}"),
        gas_wanted: u64::from(pool),
        gas_used: 1,
        events: vec![event],
    }
}

/// One model transaction: its pool (event value) and its tx.
#[derive(Clone)]
struct ModelTx {
    pool: u32,
    tx: CommittedTx,
}

#[derive(Default)]
struct Model {
    blocks: BTreeMap<u64, Vec<ModelTx>>,
    /// Latest inclusion of each hash.
    location: BTreeMap<[u8; 32], (u64, u32)>,
    base: u64,
}

impl Model {
    fn retained(&self, height: u64) -> bool {
        height >= self.base && self.blocks.contains_key(&height)
    }

    fn search(&self, pool: u32, lo: u64, hi: u64, limit: usize, desc: bool) -> Vec<(u64, u32)> {
        let lo = lo.max(self.base);
        if lo > hi {
            return Vec::new();
        }
        let mut hits: Vec<(u64, u32)> = self
            .blocks
            .range(lo..=hi)
            .flat_map(|(h, txs)| {
                (0u32..)
                    .zip(txs)
                    .filter(|(_, t)| t.pool == pool)
                    .map(move |(i, _)| (*h, i))
            })
            .collect();
        if desc {
            hits.reverse();
        }
        hits.truncate(limit.min(MAX_SEARCH_RESULTS));
        hits
    }
}

fn random_block(rng: &mut ChaCha8Rng, height: u64) -> Vec<ModelTx> {
    let count = rng.next_u32() % 5;
    (0..count)
        .map(|i| {
            // A quarter of the transactions reuse one of a few shared byte strings.
            let bytes = if rng.next_u32().is_multiple_of(4) {
                format!("shared-{}", rng.next_u32() % 6).into_bytes()
            } else {
                format!("tx-{height}-{i}").into_bytes()
            };
            let pool = rng.next_u32() % POOLS;
            ModelTx {
                pool,
                tx: CommittedTx {
                    hash: Hash::digest(&bytes).0,
                    tx: bytes,
                    result: result(height, i, pool),
                },
            }
        })
        .collect()
}

fn check(store: &StateStore, model: &Model, rng: &mut ChaCha8Rng, latest: u64, step: &str) {
    let base = store.base_height().unwrap();
    assert_eq!(base, Some(model.base), "{step}: base height");
    for h in 0..=latest + 2 {
        let expected = model
            .blocks
            .get(&h)
            .filter(|_| model.retained(h))
            .map(|txs| txs.iter().map(|t| t.tx.result.clone()).collect::<Vec<_>>());
        assert_eq!(
            store.block_results(h).unwrap(),
            expected,
            "{step}: results {h}"
        );
        let retained = model.retained(h);
        assert_eq!(
            store.block_height_by_hash(&block_hash(h)).unwrap(),
            retained.then_some(h),
            "{step}: block hash {h}"
        );
        assert_eq!(
            store.block_hash(h).unwrap(),
            retained.then(|| block_hash(h)),
            "{step}: hash of {h}"
        );
        assert_eq!(
            store.block(h).unwrap().is_some(),
            retained,
            "{step}: block {h}"
        );
        assert_eq!(
            store.commit(h).unwrap().is_some(),
            retained,
            "{step}: commit {h}"
        );
        let by_height = store
            .search_txs(TX_HEIGHT_KEY, &h.to_string(), usize::MAX, true)
            .unwrap();
        let n = if retained {
            model.blocks[&h].len() as u32
        } else {
            0
        };
        assert_eq!(
            by_height,
            (0..n).rev().map(|i| (h, i)).collect::<Vec<_>>(),
            "{step}: tx.height={h}"
        );
        for i in 0..n {
            let t = &model.blocks[&h][i as usize].tx;
            let got = store.tx_at(h, i).unwrap().unwrap();
            assert_eq!((got.hash, &got.tx, &got.result), (t.hash, &t.tx, &t.result));
        }
        assert_eq!(store.tx_at(h, n).unwrap(), None, "{step}: tx_at {h}/{n}");
    }
    for (hash, &(h, i)) in &model.location {
        let expected = (h >= model.base).then(|| {
            let t = &model.blocks[&h][i as usize].tx;
            IndexedTx {
                hash: *hash,
                height: h,
                index: i,
                tx: t.tx.clone(),
                result: t.result.clone(),
            }
        });
        assert_eq!(store.tx(hash).unwrap(), expected, "{step}: tx at {h}/{i}");
    }
    for pool in 0..POOLS {
        let lo = u64::from(rng.next_u32()) % (latest + 2);
        let hi = lo + u64::from(rng.next_u32()) % (latest + 2);
        let limit = 1 + rng.next_u32() as usize % 20;
        let desc = rng.next_u32().is_multiple_of(2);
        let value = pool.to_string();
        assert_eq!(
            store
                .search_txs_in("ev.pool", &value, lo..=hi, limit, desc)
                .unwrap(),
            model.search(pool, lo, hi, limit, desc),
            "{step}: pool {pool} in {lo}..={hi} limit {limit} desc {desc}"
        );
        assert_eq!(
            store
                .search_txs("ev.pool", &value, usize::MAX, false)
                .unwrap(),
            model.search(pool, 0, u64::MAX, usize::MAX, false),
            "{step}: pool {pool}"
        );
        // Counted by keys and read a page at a time: the same set.
        let all = model.search(pool, lo, hi, usize::MAX, desc);
        assert_eq!(
            store
                .count_txs_in("ev.pool", &value, lo..=hi, usize::MAX)
                .unwrap(),
            all.len(),
            "{step}: count of pool {pool} in {lo}..={hi}"
        );
        assert_eq!(
            store.count_txs_in("ev.pool", &value, lo..=hi, 2).unwrap(),
            all.len().min(2),
            "{step}: bounded count"
        );
        let skip = rng.next_u32() as usize % (all.len() + 2);
        assert_eq!(
            store
                .page_txs_in("ev.pool", &value, lo..=hi, (skip, limit), desc)
                .unwrap(),
            all.iter()
                .copied()
                .skip(skip)
                .take(limit)
                .collect::<Vec<_>>(),
            "{step}: page of pool {pool} in {lo}..={hi} from {skip}"
        );
    }
    // The per-height counts: a height range's transactions are a contiguous run of ordinals, in
    // height-then-block order, whatever was pruned (issue 15, items 3 and 4: height-range searches page
    // by this index instead of scanning blocks, so they are complete at any chain length).
    for _ in 0..8 {
        let lo = u64::from(rng.next_u32()) % (latest + 2);
        let hi = lo + u64::from(rng.next_u32()) % (latest + 2);
        let expected: Vec<(u64, u32)> = model
            .blocks
            .iter()
            .filter(|(h, _)| (lo..=hi).contains(*h) && model.retained(**h))
            .flat_map(|(h, txs)| (0u32..txs.len() as u32).map(move |i| (*h, i)))
            .collect();
        let ordinals = store.tx_ordinals(lo..=hi).unwrap();
        assert_eq!(
            (ordinals.end - ordinals.start) as usize,
            expected.len(),
            "{step}: tx count in {lo}..={hi}"
        );
        let found: Vec<(u64, u32)> = ordinals
            .clone()
            .map(|o| store.tx_at_ordinal(o).unwrap().unwrap())
            .collect();
        assert_eq!(found, expected, "{step}: positions in {lo}..={hi}");
    }
    let all = store.tx_ordinals(0..=u64::MAX).unwrap();
    assert_eq!(
        store.tx_at_ordinal(all.end).unwrap(),
        None,
        "{step}: past the end"
    );
    if all.start > 0 {
        assert_eq!(
            store.tx_at_ordinal(all.start - 1).unwrap(),
            None,
            "{step}: pruned"
        );
    }
    assert!(store
        .search_txs("ev.secret", "s", 10, false)
        .unwrap()
        .is_empty());
    let long = "v".repeat(MAX_INDEXED_VALUE_BYTES + 1);
    assert!(store
        .search_txs("ev.long", &long, 10, false)
        .unwrap()
        .is_empty());
}

#[test]
fn index_and_block_pruning_match_the_model() {
    for seed in 0..3u64 {
        let dir = tempfile::tempdir().unwrap();
        // A small budget so pruning takes several bounded calls.
        let store = open(dir.path(), 7);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut model = Model::default();
        // The genesis version has no block: nothing indexed there.
        store
            .apply_batch(0, vec![(b"k".to_vec(), Some(vec![1]))])
            .unwrap();
        model.base = 1;
        for height in 1..=40u64 {
            let txs = random_block(&mut rng, height);
            store
                .commit_block(BlockCommit {
                    height,
                    writes: vec![(b"k".to_vec(), Some(height.to_be_bytes().to_vec()))],
                    block: format!("block-{height}").into_bytes(),
                    commit: format!("commit-{height}").into_bytes(),
                    block_hash: Some(block_hash(height)),
                    txs: txs.iter().map(|t| t.tx.clone()).collect(),
                    evidence: Vec::new(),
                    prepared: None,
                    validator_updates: Vec::new(),
                })
                .unwrap();
            for (i, t) in (0u32..).zip(&txs) {
                model.location.insert(t.tx.hash, (height, i));
            }
            model.blocks.insert(height, txs);
            if rng.next_u32().is_multiple_of(3) {
                let retain = u64::from(rng.next_u32()) % (height + 5);
                let target = retain.min(height).max(model.base);
                let mut calls = 0;
                loop {
                    let report = store.prune_blocks(retain).unwrap();
                    calls += 1;
                    let now = report.base_height.unwrap();
                    assert!(now <= target && now >= model.base);
                    assert_eq!(report.more, now < target, "seed {seed} height {height}");
                    // Each intermediate state is consistent too.
                    model.base = now;
                    check(
                        &store,
                        &model,
                        &mut rng,
                        height,
                        &format!("seed {seed} h {height}"),
                    );
                    if !report.more {
                        break;
                    }
                    assert!(calls < 1000);
                }
                assert_eq!(model.base, target);
            } else {
                check(
                    &store,
                    &model,
                    &mut rng,
                    height,
                    &format!("seed {seed} h {height}"),
                );
            }
        }
        // The latest block is never pruned.
        let report = store.prune_blocks(u64::MAX).unwrap();
        let mut base = report.base_height.unwrap();
        while store.prune_blocks(u64::MAX).unwrap().more {}
        base = base.max(store.base_height().unwrap().unwrap());
        assert_eq!(base, 40);
        assert!(store.block(40).unwrap().is_some());
        // Reopening keeps everything.
        drop(store);
        let store = open(dir.path(), 7);
        model.base = 40;
        check(&store, &model, &mut rng, 40, "reopened");
    }
}

#[test]
fn a_prepared_state_only_commits_on_the_version_it_was_built_on() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (open(da.path(), 100), open(db.path(), 100));
    let writes = |v: u8| vec![(b"key".to_vec(), Some(vec![v])), (b"gone".to_vec(), None)];
    a.apply_batch(1, writes(1)).unwrap();
    b.apply_batch(1, writes(1)).unwrap();
    let prepared = a.prepare_state(2, writes(2)).unwrap();
    assert_eq!(prepared.version(), 2);
    // Same root as computing it inside the commit.
    assert_eq!(b.apply_batch(2, writes(2)).unwrap(), prepared.root());
    let commit = |p, h, w| BlockCommit {
        height: h,
        writes: w,
        prepared: Some(p),
        ..BlockCommit::default()
    };
    let err = a
        .commit_block(commit(prepared.clone(), 3, Vec::new()))
        .unwrap_err();
    assert!(
        matches!(err, StateError::StalePreparedState { height: 3, .. }),
        "{err}"
    );
    let err = a
        .commit_block(commit(prepared.clone(), 2, writes(9)))
        .unwrap_err();
    assert!(
        matches!(err, StateError::StalePreparedState { .. }),
        "{err}"
    );
    a.apply_batch(2, writes(3)).unwrap();
    let err = a
        .commit_block(commit(prepared.clone(), 3, Vec::new()))
        .unwrap_err();
    assert!(
        matches!(err, StateError::StalePreparedState { .. }),
        "{err}"
    );
    assert!(matches!(
        a.prepare_state(5, writes(1)).unwrap_err(),
        StateError::NonContiguousVersion {
            version: 5,
            expected: 3
        }
    ));
    let fresh = a.prepare_state(3, writes(4)).unwrap();
    let root = fresh.root();
    assert_eq!(a.commit_block(commit(fresh, 3, Vec::new())).unwrap(), root);
    assert_eq!(a.get(b"key", 3).unwrap(), Some(vec![4]));
    // Proofs need the preimages the prepared state carried.
    let (value, _) = a.get_with_proof(b"key", 3).unwrap();
    assert_eq!(value, Some(vec![4]));
}
