//! Crash test: a child process commits blocks in a loop and is killed with SIGKILL at seeded random
//! moments; every restart must reopen at some height h with exactly the root a reference replay has
//! for h, and must never lose a height the child had acknowledged.
//!
//! The model check covers the indexes too: after each restart every transaction, result, block hash
//! and event entry of the retained heights `[base, latest]` is findable, and nothing of a pruned or
//! an uncommitted height is (the child also prunes blocks below `latest - RETAIN_BLOCKS`).
//!
//! The child is this same test binary re-executed with `BASALT_CRASH_CHILD_DIR` set, running only
//! `crash_child`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use basalt_consensus::types::Hash;
use basalt_state::app::{Event, TxResult};
use basalt_state::{BlockCommit, CommittedTx, IndexedTx, StateStore};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CHILD_ENV: &str = "BASALT_CRASH_CHILD_DIR";
/// Upper bound on the child's work if it is never killed.
const CHILD_MAX_HEIGHT: u64 = 100_000;
const RESTARTS: usize = 25;
/// The child keeps this many blocks below its latest one.
const RETAIN_BLOCKS: u64 = 30;
/// Transactions per block.
const TXS: u32 = 3;

fn tx_bytes(height: u64, index: u32) -> Vec<u8> {
    format!("tx-{height}-{index}").into_bytes()
}

fn tx_hash(height: u64, index: u32) -> [u8; 32] {
    Hash::digest(&tx_bytes(height, index)).0
}

fn block_hash(height: u64) -> [u8; 32] {
    Hash::digest(format!("block-{height}").as_bytes()).0
}

fn result(height: u64, index: u32) -> TxResult {
    TxResult {
        code: index % 2,
        log: format!("log {height}/{index}"),
        gas_wanted: 10,
        gas_used: u64::from(index),
        events: vec![Event::new(
            "blk",
            &[("h", height.to_string()), ("all", "x".to_owned())],
        )],
    }
}

/// The deterministic block of `height`: 40 writes (some deletes) over 300 keys.
fn block(height: u64) -> BlockCommit {
    let mut rng = ChaCha8Rng::seed_from_u64(height);
    let writes = (0..40)
        .map(|_| {
            let k = rng.next_u32() % 300;
            let value = if rng.next_u32().is_multiple_of(5) {
                None
            } else {
                Some(format!("v{height}-{}", rng.next_u32()).into_bytes())
            };
            (format!("acct/{k}").into_bytes(), value)
        })
        .collect();
    BlockCommit {
        height,
        writes,
        block: format!("block-{height}").into_bytes(),
        commit: format!("commit-{height}").into_bytes(),
        block_hash: Some(block_hash(height)),
        txs: (0..TXS)
            .map(|i| CommittedTx {
                hash: tx_hash(height, i),
                tx: tx_bytes(height, i),
                result: result(height, i),
            })
            .collect(),
        evidence: Vec::new(),
        prepared: None,
        validator_updates: validator_updates(height),
    }
}

/// Every third block changes validators (opaque bytes here).
fn validator_updates(height: u64) -> Vec<u8> {
    if height.is_multiple_of(3) {
        format!("updates-{height}").into_bytes()
    } else {
        Vec::new()
    }
}

/// Everything indexed for `height` is present (`present`) or absent.
fn check_height_index(store: &StateStore, height: u64, present: bool, when: &str) {
    let results: Vec<TxResult> = (0..TXS).map(|i| result(height, i)).collect();
    assert_eq!(
        store.block_results(height).unwrap(),
        present.then_some(results),
        "{when}: results of {height}"
    );
    assert_eq!(
        store.block_height_by_hash(&block_hash(height)).unwrap(),
        present.then_some(height),
        "{when}: block hash of {height}"
    );
    for i in 0..TXS {
        let expected = present.then(|| IndexedTx {
            hash: tx_hash(height, i),
            height,
            index: i,
            tx: tx_bytes(height, i),
            result: result(height, i),
        });
        assert_eq!(
            store.tx(&tx_hash(height, i)).unwrap(),
            expected,
            "{when}: tx {height}/{i}"
        );
    }
    let hits = store
        .search_txs("blk.h", &height.to_string(), 10, false)
        .unwrap();
    let expected: Vec<(u64, u32)> = if present {
        (0..TXS).map(|i| (height, i)).collect()
    } else {
        Vec::new()
    };
    assert_eq!(hits, expected, "{when}: event search for {height}");
}

/// Child mode: commit from the store's latest height on, printing each committed height.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return; // Not running as the child: nothing to do.
    };
    let store = common::open(std::path::Path::new(&dir), 20);
    let mut height = store.latest_version().unwrap().map_or(1, |h| h + 1);
    while height < CHILD_MAX_HEIGHT {
        store.commit_block(block(height)).unwrap();
        println!("committed {height}");
        store.prune().unwrap();
        store
            .prune_blocks(height.saturating_sub(RETAIN_BLOCKS))
            .unwrap();
        height += 1;
    }
}

#[test]
fn sigkill_at_random_moments_never_tears_a_commit() {
    let dir = tempfile::tempdir().unwrap();
    let reference_dir = tempfile::tempdir().unwrap();
    let reference = common::open(reference_dir.path(), 0);
    let mut reference_roots = vec![[0u8; 32]]; // index 0 unused: heights start at 1
    let mut rng = ChaCha8Rng::seed_from_u64(0xba5a17);
    let exe = std::env::current_exe().unwrap();
    let mut acknowledged = 0u64;

    for restart in 0..RESTARTS {
        let mut child = Command::new(&exe)
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        // Let it commit a random number of blocks, then kill it a random number of microseconds
        // later, so the kill lands anywhere inside a commit or a prune.
        let blocks = 1 + rng.next_u32() % 12;
        let mut seen = 0;
        while seen < blocks {
            let line = lines.next().expect("child exited early").unwrap();
            if let Some(h) = line.strip_prefix("committed ") {
                acknowledged = h.parse().unwrap();
                seen += 1;
            }
        }
        let delay_us = u64::from(rng.next_u32() % 3_000);
        std::thread::sleep(std::time::Duration::from_micros(delay_us));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        drop(lines);

        let store = common::open(dir.path(), 20);
        let latest = store
            .latest_version()
            .unwrap()
            .expect("some height committed");
        assert!(
            latest >= acknowledged,
            "restart {restart}: lost acknowledged height {acknowledged}, reopened at {latest}"
        );
        while (reference_roots.len() as u64) <= latest {
            let h = reference_roots.len() as u64;
            reference_roots.push(reference.commit_block(block(h)).unwrap());
        }
        assert_eq!(
            store.root(latest).unwrap(),
            reference_roots[latest as usize],
            "restart {restart}: root at height {latest}"
        );
        assert_eq!(store.block(latest).unwrap(), Some(block(latest).block));
        // The index: retained heights complete, pruned and uncommitted ones absent.
        let base = store.base_height().unwrap().expect("a block is stored");
        assert!(
            base >= 1 && base <= latest && base + RETAIN_BLOCKS + 1 >= latest,
            "restart {restart}: base {base}, latest {latest}"
        );
        let when = format!("restart {restart}");
        for h in 1..base {
            assert_eq!(store.block(h).unwrap(), None, "{when}: pruned block {h}");
            check_height_index(&store, h, false, &when);
        }
        for h in base..=latest {
            assert_eq!(
                store.block(h).unwrap(),
                Some(block(h).block),
                "{when}: block {h}"
            );
            check_height_index(&store, h, true, &when);
        }
        // Validator updates are never pruned: exactly the committed heights' are there.
        let updates = store.validator_updates(0, usize::MAX).unwrap();
        let expected: Vec<(u64, Vec<u8>)> = (1..=latest)
            .filter(|h| h.is_multiple_of(3))
            .map(|h| (h, validator_updates(h)))
            .collect();
        assert_eq!(updates, expected, "{when}: validator updates");
        for h in latest + 1..=latest + 3 {
            check_height_index(&store, h, false, &when);
        }
        let all = store.search_txs("blk.all", "x", usize::MAX, false).unwrap();
        let expected: Vec<(u64, u32)> = (base..=latest)
            .flat_map(|h| (0..TXS).map(move |i| (h, i)))
            .collect();
        assert_eq!(all, expected, "{when}: every retained tx by event");
        let newest = store.search_txs("blk.all", "x", 2, true).unwrap();
        assert_eq!(newest, vec![(latest, TXS - 1), (latest, TXS - 2)], "{when}");
        assert_eq!(store.commit(latest).unwrap(), Some(block(latest).commit));
        // A sample of reads agrees with the reference.
        for k in (0..300).step_by(37) {
            let key = format!("acct/{k}").into_bytes();
            assert_eq!(
                store.get(&key, latest).unwrap(),
                reference.get(&key, latest).unwrap()
            );
        }
    }
}
