//! Pruning keeps the node count and disk use bounded under steady load, and retained versions intact.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use basalt_state::{verify_membership, StateError, StateStore};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

const KEYS: u32 = 1_000;
const WRITES_PER_BLOCK: usize = 100;

fn run(store: &StateStore, from: u64, to: u64, rng: &mut ChaCha8Rng) {
    for h in from..=to {
        let writes = (0..WRITES_PER_BLOCK)
            .map(|_| {
                let k = rng.next_u32() % KEYS;
                (
                    format!("key/{k}").into_bytes(),
                    Some(h.to_be_bytes().to_vec()),
                )
            })
            .collect();
        store.apply_batch(h, writes).unwrap();
        // Drain the prune backlog: the limit makes each call bounded, not the total.
        while store.prune().unwrap().more {}
    }
}

/// Bytes in SST files: the table data that pruning and compaction must keep bounded.
fn dir_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".sst"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

#[test]
fn node_count_and_disk_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open(dir.path(), 5);
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    run(&store, 1, 60, &mut rng);
    let nodes_early = store.node_count().unwrap();
    run(&store, 61, 180, &mut rng);
    let nodes_late = store.node_count().unwrap();
    // Live tree (~1000 leaves + inner nodes) plus 5 versions of churn: far below 180 versions' worth.
    assert!(
        nodes_late <= nodes_early + nodes_early / 5,
        "node count grew from {nodes_early} to {nodes_late}"
    );
    store.storage().flush().unwrap();
    for cf in basalt_state::storage::Cf::ALL {
        store.storage().compact_range(cf, None, None).unwrap();
    }
    let disk_early = dir_bytes(dir.path());
    run(&store, 181, 300, &mut rng);
    store.storage().flush().unwrap();
    for cf in basalt_state::storage::Cf::ALL {
        store.storage().compact_range(cf, None, None).unwrap();
    }
    let disk_late = dir_bytes(dir.path());
    assert!(
        disk_late <= disk_early + disk_early / 2,
        "disk grew from {disk_early} to {disk_late} bytes"
    );

    // Archive comparison: the same load without pruning keeps every version's nodes.
    let archive_dir = tempfile::tempdir().unwrap();
    let archive = common::open(archive_dir.path(), 0);
    run(&archive, 1, 180, &mut ChaCha8Rng::seed_from_u64(11));
    assert!(archive.node_count().unwrap() > 5 * nodes_late);

    // Retained versions answer with valid proofs; pruned ones are refused.
    assert_eq!(store.earliest_version().unwrap(), Some(296));
    for v in 296..=300 {
        let root = store.root(v).unwrap();
        for k in (0..KEYS).step_by(97) {
            let key = format!("key/{k}").into_bytes();
            let (value, proof) = store.get_with_proof(&key, v).unwrap();
            if let Some(value) = value {
                assert!(verify_membership(&proof, &root, &key, &value));
            }
        }
    }
    assert!(matches!(
        store.get(b"key/1", 295),
        Err(StateError::VersionUnavailable { .. })
    ));
}

#[test]
fn pruned_store_matches_archive_on_retained_versions() {
    let pruned_dir = tempfile::tempdir().unwrap();
    let archive_dir = tempfile::tempdir().unwrap();
    let pruned = common::open(pruned_dir.path(), 3);
    let archive = common::open(archive_dir.path(), 0);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for h in 1..=60u64 {
        // Small key space with deletes, so values and tombstones get trimmed.
        let writes: Vec<_> = (0..30)
            .map(|_| {
                let k = rng.next_u32() % 50;
                let v = (!rng.next_u32().is_multiple_of(3)).then(|| vec![h as u8, k as u8]);
                (format!("k{k}").into_bytes(), v)
            })
            .collect();
        let a = pruned.apply_batch(h, writes.clone()).unwrap();
        let b = archive.apply_batch(h, writes).unwrap();
        assert_eq!(a, b);
        pruned.prune().unwrap();
        let earliest = pruned.earliest_version().unwrap().unwrap();
        for v in earliest..=h {
            for k in 0..50 {
                let key = format!("k{k}").into_bytes();
                assert_eq!(pruned.get(&key, v).unwrap(), archive.get(&key, v).unwrap());
            }
        }
    }
}

/// Validator updates outlive their blocks and state versions: the set of any height is rebuilt from
/// them, so neither block retention nor state pruning may take them.
#[test]
fn validator_updates_survive_block_and_state_pruning() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open(dir.path(), 2);
    for h in 1..=20u64 {
        store
            .commit_block(basalt_state::BlockCommit {
                height: h,
                writes: vec![(b"k".to_vec(), Some(h.to_be_bytes().to_vec()))],
                block: format!("block-{h}").into_bytes(),
                commit: format!("commit-{h}").into_bytes(),
                validator_updates: if h.is_multiple_of(5) {
                    format!("updates-{h}").into_bytes()
                } else {
                    Vec::new()
                },
                ..Default::default()
            })
            .unwrap();
        while store.prune().unwrap().more {}
    }
    while store.prune_blocks(18).unwrap().more {}
    assert_eq!(store.base_height().unwrap(), Some(18));
    let all = store.validator_updates(0, 100).unwrap();
    let heights: Vec<u64> = all.iter().map(|(h, _)| *h).collect();
    assert_eq!(heights, vec![5, 10, 15, 20]);
    assert_eq!(all[1].1, b"updates-10".to_vec());
    // From a height on, and bounded.
    let later = store.validator_updates(11, 1).unwrap();
    assert_eq!(later, vec![(15, b"updates-15".to_vec())]);
    // Reopened: still there.
    drop(store);
    let store = common::open(dir.path(), 2);
    assert_eq!(store.validator_updates(0, 100).unwrap().len(), 4);
}
