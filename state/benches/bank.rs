//! Bank benchmark: a full block of 10k signed transfers through `finalize_block` + `commit` (batch
//! signature verification, execution, Merkle update previewed and committed, one synced write), over
//! 100k genesis accounts. Transactions are signed outside the timed section. Bounded: fixed seeds,
//! 10 samples.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use basalt_consensus::types::{Address, ChainId, PrivateKey, Tx};
use basalt_state::app::testkit::{transfer_tx, ChainBuilder};
use basalt_state::app::{Application, BankApp, BankAppConfig};
use basalt_state::{StateStore, StoreConfig};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ACCOUNTS: u32 = 100_000;
const BLOCK_TXS: u32 = 10_000;

fn key(i: u32) -> PrivateKey {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&i.to_le_bytes());
    seed[31] = 0xbe;
    PrivateKey::from_seed(&seed)
}

fn benches(c: &mut Criterion) {
    let chain_id = ChainId::new("basalt-bench").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(StateStore::open(dir.path(), StoreConfig::default()).unwrap());
    let mut app = BankApp::new(
        store,
        BankAppConfig {
            chain_id: chain_id.clone(),
        },
    );
    let started = Instant::now();
    let keys: Vec<PrivateKey> = (0..ACCOUNTS).map(key).collect();
    let addresses: Vec<Address> = keys.iter().map(|k| k.public_key().address()).collect();
    let accounts: Vec<_> = addresses
        .iter()
        .map(|a| serde_json::json!({"address": a.to_hex_upper(), "balance": "1000000000"}))
        .collect();
    app.init_chain(1, &serde_json::json!({ "accounts": accounts }))
        .unwrap();
    eprintln!(
        "genesis of {ACCOUNTS} accounts: {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut chain = ChainBuilder::new(chain_id.clone(), 1, Address([0xee; 20]));
    let mut nonces = vec![0u64; ACCOUNTS as usize];
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let mut next_sender: u32 = 0;

    let mut group = c.benchmark_group("bank");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(30));
    group.throughput(Throughput::Elements(u64::from(BLOCK_TXS)));
    group.bench_function("block_commit_10k_transfers", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // 10k distinct senders per block, to random recipients.
                let txs: Vec<Tx> = (0..BLOCK_TXS)
                    .map(|_| {
                        let from = next_sender;
                        next_sender = (next_sender + 1) % ACCOUNTS;
                        let to = addresses[(rng.next_u32() % ACCOUNTS) as usize];
                        let nonce = nonces[from as usize];
                        nonces[from as usize] += 1;
                        transfer_tx(&keys[from as usize], &chain_id, to, 10, 1, nonce).unwrap()
                    })
                    .collect();
                let block = chain.block(app.info().unwrap().last_app_hash, txs).unwrap();
                let commit = ChainBuilder::commit_bytes(&block);
                let start = Instant::now();
                let result = app.finalize_block(&block).unwrap();
                let finalized = start.elapsed();
                app.commit(commit).unwrap();
                let elapsed = start.elapsed();
                total += elapsed;
                assert!(result.tx_results.iter().all(|r| r.code == 0));
                eprintln!(
                    "block {}: finalize {:.0} ms, commit {:.0} ms",
                    block.height().0,
                    finalized.as_secs_f64() * 1e3,
                    (elapsed - finalized).as_secs_f64() * 1e3
                );
            }
            total
        })
    });
    group.finish();
}

criterion_group!(bank, benches);
criterion_main!(bank);
