//! Merkle state benchmarks: leaf updates at 1M keys (10k per version), proof generation and
//! verification. Bounded: short measurement times, fixed seeds.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use basalt_state::{verify_membership, StateStore, StoreConfig};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

const KEYS: u32 = 1_000_000;
const BATCH: u32 = 10_000;

fn key(i: u32) -> Vec<u8> {
    format!("bank/balance/{i:08}").into_bytes()
}

fn populated() -> (tempfile::TempDir, StateStore, u64) {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::default();
    let store = StateStore::open(dir.path(), config).unwrap();
    let start = Instant::now();
    let mut version = 0;
    for chunk in 0..KEYS / BATCH {
        version += 1;
        let writes = (chunk * BATCH..(chunk + 1) * BATCH)
            .map(|i| (key(i), Some(i.to_le_bytes().to_vec())))
            .collect();
        store.apply_batch(version, writes).unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "populate: {KEYS} inserts in {version} versions took {secs:.1} s ({:.0} inserts/s)",
        f64::from(KEYS) / secs
    );
    (dir, store, version)
}

fn benches(c: &mut Criterion) {
    let (_dir, store, mut version) = populated();
    let mut rng = ChaCha8Rng::seed_from_u64(42);

    let mut group = c.benchmark_group("merkle_1M");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(u64::from(BATCH)));
    group.bench_function("update_10k_keys_per_version", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let writes: Vec<_> = (0..BATCH)
                    .map(|_| {
                        let i = rng.next_u32() % KEYS;
                        (key(i), Some(rng.next_u64().to_le_bytes().to_vec()))
                    })
                    .collect();
                version += 1;
                let start = Instant::now();
                store.apply_batch(version, writes).unwrap();
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();

    // Proofs are measured on a settled database: right after ~1 GB of writes RocksDB compacts on both
    // cores for a minute, which a node at 1M keys committing a block a second never does.
    store.storage().flush().unwrap();
    for cf in basalt_state::storage::Cf::ALL {
        store.storage().compact_range(cf, None, None).unwrap();
    }
    let latest = store.latest_version().unwrap().unwrap();
    let root = store.root(latest).unwrap();
    let mut group = c.benchmark_group("proofs_1M");
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));
    group.bench_function("generate_existence", |b| {
        b.iter(|| {
            let k = key(rng.next_u32() % KEYS);
            store.get_with_proof(&k, latest).unwrap()
        })
    });
    group.bench_function("generate_non_existence", |b| {
        b.iter(|| {
            let k = key(KEYS + rng.next_u32() % KEYS);
            store.get_with_proof(&k, latest).unwrap()
        })
    });
    let proofs: Vec<_> = (0..1_000)
        .map(|_| {
            let k = key(rng.next_u32() % KEYS);
            let (v, p) = store.get_with_proof(&k, latest).unwrap();
            (k, v.unwrap(), p)
        })
        .collect();
    let mut i = 0;
    group.bench_function("verify_existence", |b| {
        b.iter(|| {
            let (k, v, p) = &proofs[i % proofs.len()];
            i += 1;
            assert!(verify_membership(p, &root, k, v));
        })
    });
    group.finish();

    // The targets are for the 2-core machine: the same work on both cores at once (proofs are read-only,
    // so RPC queries run them in parallel in the node too).
    let mut group = c.benchmark_group("proofs_1M_2_threads");
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));
    let store = &store;
    group.bench_function("generate_existence", |b| {
        b.iter_custom(|iters| {
            on_two_threads(iters, |seed, n| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                for _ in 0..n {
                    let k = key(rng.next_u32() % KEYS);
                    std::hint::black_box(store.get_with_proof(&k, latest).unwrap());
                }
            })
        })
    });
    let proofs = &proofs;
    group.bench_function("verify_existence", |b| {
        b.iter_custom(|iters| {
            on_two_threads(iters, |seed, n| {
                for i in 0..n {
                    let (k, v, p) = &proofs[(seed as usize * 500 + i as usize) % proofs.len()];
                    assert!(verify_membership(p, &root, k, v));
                }
            })
        })
    });
    group.finish();
}

/// Runs `work(thread, count)` on two threads splitting `iters` between them; returns the wall time.
fn on_two_threads(iters: u64, work: impl Fn(u64, u64) + Sync) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        let work = &work;
        s.spawn(move || work(1, iters / 2));
        work(2, iters - iters / 2);
    });
    start.elapsed()
}

criterion_group!(merkle, benches);
criterion_main!(merkle);
