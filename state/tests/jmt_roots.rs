//! Basalt's tree keeps the hashing layout of penumbra-zone's Jellyfish Merkle Tree (its first tree), so
//! for the same contents its roots must be jmt's: random versions of inserts, updates and deletes are
//! applied to both and every root compared. This pins the canonical shape (lone leaves lifted, empty
//! placeholders, bit order) to an independent, maintained implementation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use basalt_state::merkle::{SENTINEL_KEYS, SENTINEL_VALUE};
use basalt_state::TreeHasher;
use jmt::storage::{LeafNode, Node, NodeKey, TreeReader, TreeUpdateBatch};
use jmt::{JellyfishMerkleTree, KeyHash, OwnedValue, Version};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// jmt over memory.
#[derive(Default)]
struct Mem {
    nodes: RefCell<HashMap<NodeKey, Node>>,
    values: RefCell<BTreeMap<(KeyHash, Version), Option<OwnedValue>>>,
}

impl TreeReader for Mem {
    fn get_node_option(&self, k: &NodeKey) -> anyhow::Result<Option<Node>> {
        Ok(self.nodes.borrow().get(k).cloned())
    }
    fn get_value_option(&self, max: Version, kh: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        Ok(self
            .values
            .borrow()
            .range((kh, 0)..=(kh, max))
            .next_back()
            .and_then(|(_, v)| v.clone()))
    }
    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        Err(anyhow::anyhow!("not used"))
    }
}

impl Mem {
    fn write(&self, b: TreeUpdateBatch) {
        for (k, n) in b.node_batch.nodes() {
            self.nodes.borrow_mut().insert(k.clone(), n.clone());
        }
        for ((v, kh), val) in b.node_batch.values() {
            self.values.borrow_mut().insert((*kh, *v), val.clone());
        }
    }
}

type Batch = Vec<(Vec<u8>, Option<Vec<u8>>)>;

fn batch() -> impl Strategy<Value = Batch> {
    proptest::collection::vec(
        (
            prop_oneof![
                (0u16..300).prop_map(|k| format!("k{k}").into_bytes()),
                proptest::collection::vec(any::<u8>(), 1..5),
            ],
            proptest::option::weighted(0.7, proptest::collection::vec(any::<u8>(), 1..8)),
        ),
        0..400,
    )
}

fn run_case(batches: Vec<Batch>) {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open(dir.path(), 0);
    let mem = Mem::default();
    for (i, batch) in batches.into_iter().enumerate() {
        let version = i as u64;
        // Last write of a key wins in both.
        let mut dedup: BTreeMap<Vec<u8>, Option<Vec<u8>>> = batch.iter().cloned().collect();
        if version == 0 {
            for key in SENTINEL_KEYS {
                dedup.insert(key.to_vec(), Some(SENTINEL_VALUE.to_vec()));
            }
        }
        let ours = store.apply_batch(version + 1, batch).unwrap();
        let set = dedup
            .into_iter()
            .map(|(k, v)| (KeyHash::with::<TreeHasher>(&k), v));
        let (theirs, update) = JellyfishMerkleTree::<_, TreeHasher>::new(&mem)
            .put_value_set(set, version)
            .unwrap();
        mem.write(update);
        assert_eq!(ours, theirs.0, "root of version {}", version + 1);
    }
}

#[test]
fn roots_equal_jmt_roots() {
    let config = Config {
        cases: 16,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[3u8; 32]);
    let mut runner = TestRunner::new_with_rng(config, rng);
    runner
        .run(&proptest::collection::vec(batch(), 1..10), |batches| {
            run_case(batches);
            Ok(())
        })
        .unwrap();
}

/// A batch big enough for the two-thread path, then deletions of most keys (lone leaves move up).
#[test]
fn large_batches_and_mass_deletions_match_jmt() {
    let insert: Batch = (0..5000u32)
        .map(|i| {
            (
                format!("acct/{i}").into_bytes(),
                Some(i.to_le_bytes().to_vec()),
            )
        })
        .collect();
    let update: Batch = (0..5000u32)
        .step_by(3)
        .map(|i| (format!("acct/{i}").into_bytes(), Some(vec![7])))
        .collect();
    let delete: Batch = (0..4990u32)
        .map(|i| (format!("acct/{i}").into_bytes(), None))
        .collect();
    run_case(vec![insert, update, delete]);
}
