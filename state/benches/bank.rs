//! Bank benchmarks: the store-free part of a block (decode + batch-verify 10k transfers), and a full block of 10k signed transfers through `finalize_block` + `commit` (batch
//! signature verification, execution, Merkle update previewed and committed, one synced write), over
//! 100k genesis accounts. Transactions are signed outside the timed section. Bounded: fixed seeds,
//! 10 samples.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use basalt_consensus::types::{verify_batch, Address, ChainId, PrivateKey, Tx};
use basalt_state::app::testkit::{transfer_tx, ChainBuilder};
use basalt_state::app::{Application, BankApp, BankAppConfig};
use basalt_state::bank::{BankTx, SignedTransfer};
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

/// The chain under test, built on first use (so a filtered run that skips the block benchmark does not
/// pay for, or need, the 100k-account genesis).
struct Bench {
    _dir: tempfile::TempDir,
    app: BankApp,
    chain: ChainBuilder,
    keys: Vec<PrivateKey>,
    addresses: Vec<Address>,
    nonces: Vec<u64>,
    next_sender: u32,
}

fn chain_id() -> ChainId {
    ChainId::new("basalt-bench").unwrap()
}

impl Bench {
    fn new() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(StateStore::open(dir.path(), StoreConfig::default()).unwrap());
        let mut app = BankApp::new(
            store,
            BankAppConfig {
                chain_id: chain_id(),
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
        Bench {
            _dir: dir,
            app,
            chain: ChainBuilder::new(chain_id(), 1, Address([0xee; 20])),
            keys,
            addresses,
            nonces: vec![0; ACCOUNTS as usize],
            next_sender: 0,
        }
    }

    /// 10k transfers from distinct senders to random recipients.
    fn txs(&mut self, rng: &mut ChaCha8Rng) -> Vec<Tx> {
        (0..BLOCK_TXS)
            .map(|_| {
                let from = self.next_sender as usize;
                self.next_sender = (self.next_sender + 1) % ACCOUNTS;
                let to = self.addresses[(rng.next_u32() % ACCOUNTS) as usize];
                let nonce = self.nonces[from];
                self.nonces[from] += 1;
                transfer_tx(&self.keys[from], &chain_id(), to, 10, 1, nonce).unwrap()
            })
            .collect()
    }
}

fn benches(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let mut group = c.benchmark_group("bank");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(30));
    group.throughput(Throughput::Elements(u64::from(BLOCK_TXS)));

    // The store-free part of executing a block: decode 10k transfers and batch-verify their signatures.
    let keys: Vec<PrivateKey> = (0..BLOCK_TXS).map(key).collect();
    let signed: Vec<Tx> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| transfer_tx(k, &chain_id(), Address([1; 20]), 10, 1, i as u64).unwrap())
        .collect();
    group.bench_function("decode_and_batch_verify_10k_transfers", |b| {
        b.iter(|| {
            let decoded: Vec<SignedTransfer> = signed
                .iter()
                .map(|t| BankTx::decode(t.as_bytes()).unwrap().transfer().clone())
                .collect();
            let messages: Vec<Vec<u8>> = decoded.iter().map(|t| t.body().sign_bytes()).collect();
            let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
            let sigs: Vec<_> = decoded.iter().map(|t| *t.signature()).collect();
            let pks: Vec<_> = decoded.iter().map(|t| t.body().from).collect();
            verify_batch(&refs, &sigs, &pks).unwrap();
        })
    });

    let mut state: Option<Bench> = None;
    group.bench_function("block_commit_10k_transfers", |b| {
        let bench = state.get_or_insert_with(Bench::new);
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let txs = bench.txs(&mut rng);
                let block = bench
                    .chain
                    .block(bench.app.info().unwrap().last_app_hash, txs)
                    .unwrap();
                let commit = ChainBuilder::commit_bytes(&block);
                let start = Instant::now();
                let result = bench.app.finalize_block(&block).unwrap();
                let finalized = start.elapsed();
                bench.app.commit(commit).unwrap();
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
