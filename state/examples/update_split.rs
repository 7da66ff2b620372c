//! Where a version's update spends its time: tree computation (`prepare_state`) against the synced
//! commit, at 1M keys with 10k random updates per version. Bounded: 100 + 40 versions.
//! Env: `NODE_CACHE` (node cache entries), `WRITE_BUFFER_MB` (memtable size).
//!
//! Run: `cargo run --release -p basalt-state --example update_split`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use basalt_state::{BlockCommit, StateStore, StoreConfig};

const KEYS: u32 = 1_000_000;
const BATCH: u32 = 10_000;

fn key(i: u32) -> Vec<u8> {
    format!("bank/balance/{i:08}").into_bytes()
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::default();
    if let Some(n) = std::env::var("NODE_CACHE")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.node_cache_entries = n;
    }
    if let Some(n) = std::env::var("WRITE_BUFFER_MB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        config.storage.write_buffer_bytes = n << 20;
        config.storage.max_total_wal_bytes = (n as u64) << 23;
    }
    let store = StateStore::open(dir.path(), config).unwrap();
    let mut seed = 42u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut version = 0;
    let (mut prep, mut commit) = (Duration::ZERO, Duration::ZERO);
    for round in 0..(KEYS / BATCH + 40) {
        let writes: Vec<_> = (0..BATCH)
            .map(|i| {
                let k = if round < KEYS / BATCH {
                    round * BATCH + i
                } else {
                    (next() % u64::from(KEYS)) as u32
                };
                (key(k), Some(next().to_le_bytes().to_vec()))
            })
            .collect();
        version += 1;
        let t = Instant::now();
        let prepared = store.prepare_state(version, writes).unwrap();
        let t1 = Instant::now();
        store
            .commit_block(BlockCommit {
                height: version,
                prepared: Some(prepared),
                ..BlockCommit::default()
            })
            .unwrap();
        let t2 = Instant::now();
        if round == KEYS / BATCH - 1 {
            eprintln!("populate: prepare {prep:?} commit {commit:?}");
            (prep, commit) = (Duration::ZERO, Duration::ZERO);
        }
        prep += t1 - t;
        commit += t2 - t1;
    }
    eprintln!("40 update versions: prepare {prep:?} commit {commit:?}");
    if std::env::var("SETTLE").is_ok() {
        let t = Instant::now();
        store.storage().flush().unwrap();
        for cf in basalt_state::storage::Cf::ALL {
            store.storage().compact_range(cf, None, None).unwrap();
        }
        eprintln!("flush + compaction: {:?}", t.elapsed());
    }
    let t = Instant::now();
    for _ in 0..20_000 {
        let k = key((next() % u64::from(KEYS)) as u32);
        std::hint::black_box(store.get_with_proof(&k, version).unwrap());
    }
    eprintln!("20k proofs: {:?}", t.elapsed());
    let t = Instant::now();
    for _ in 0..20_000 {
        let k = key((next() % u64::from(KEYS)) as u32);
        std::hint::black_box(store.get(&k, version).unwrap());
    }
    eprintln!("20k gets: {:?}", t.elapsed());
    let t = Instant::now();
    for _ in 0..20_000 {
        let k = key((next() % u64::from(KEYS)) as u32);
        let h = basalt_state::merkle::hash::key_hash(&k);
        std::hint::black_box(
            store
                .storage()
                .get(basalt_state::storage::Cf::MerklePreimages, &h)
                .unwrap(),
        );
    }
    eprintln!("20k preimage gets: {:?}", t.elapsed());
    let t = Instant::now();
    for _ in 0..20_000 {
        std::hint::black_box(store.root(version).unwrap());
    }
    eprintln!("20k roots: {:?}", t.elapsed());
    let t = Instant::now();
    for _ in 0..20_000 {
        std::hint::black_box(store.latest_version().unwrap());
    }
    eprintln!("20k latest_version: {:?}", t.elapsed());
}
