//! Property tests: the store against an in-memory model (one `BTreeMap` per version), with every proof
//! checked by the `ics23` crate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use basalt_state::{verify_membership, verify_non_membership, StateStore};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;
type Batch = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// Keys from a small space so updates and deletes hit existing keys often.
fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (0u8..24).prop_map(|k| vec![b'k', k]),
        proptest::collection::vec(any::<u8>(), 1..6),
    ]
}

fn batch() -> impl Strategy<Value = Batch> {
    proptest::collection::vec(
        (
            key(),
            proptest::option::weighted(0.75, proptest::collection::vec(any::<u8>(), 1..10)),
        ),
        0..24,
    )
}

fn apply(model: &Model, batch: &Batch) -> Model {
    let mut next = model.clone();
    for (k, v) in batch {
        match v {
            Some(v) => next.insert(k.clone(), v.clone()),
            None => next.remove(k),
        };
    }
    next
}

/// Every key of the model must be provable present with its value, and every probe key absent from it
/// provable absent, under the version's root.
fn check_version(store: &StateStore, version: u64, model: &Model, probes: &[Vec<u8>]) {
    let root = store.root(version).unwrap();
    for (k, v) in model {
        assert_eq!(store.get(k, version).unwrap().as_ref(), Some(v));
        let (got, proof) = store.get_with_proof(k, version).unwrap();
        assert_eq!(got.as_ref(), Some(v));
        assert!(
            verify_membership(&proof, &root, k, v),
            "membership of {k:?} at {version}"
        );
        assert!(!verify_non_membership(&proof, &root, k));
    }
    for k in probes.iter().filter(|k| !model.contains_key(*k)) {
        assert_eq!(store.get(k, version).unwrap(), None);
        let (got, proof) = store.get_with_proof(k, version).unwrap();
        assert_eq!(got, None);
        assert!(
            verify_non_membership(&proof, &root, k),
            "absence of {k:?} at {version}"
        );
        assert!(!verify_membership(&proof, &root, k, b"x"));
    }
}

fn run_case(batches: Vec<Batch>, probes: Vec<Vec<u8>>) {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open(dir.path(), 0);
    let mut models: Vec<Model> = Vec::new();
    let mut roots = Vec::new();
    let mut current = Model::new();
    for (i, batch) in batches.iter().enumerate() {
        let version = i as u64 + 1;
        let next = apply(&current, batch);
        let root = store.apply_batch(version, batch.clone()).unwrap();
        if let Some(prev_root) = roots.last() {
            // Roots change iff content changes.
            assert_eq!(
                root == *prev_root,
                next == current,
                "root/content at {version}"
            );
        }
        check_version(&store, version, &next, &probes);
        roots.push(root);
        models.push(next.clone());
        current = next;
    }
    // Old versions stay intact after later writes.
    for (i, model) in models.iter().enumerate() {
        let version = i as u64 + 1;
        assert_eq!(store.root(version).unwrap(), roots[i]);
        check_version(&store, version, model, &probes);
    }
    // Equal contents give equal roots, whatever the history.
    for (i, a) in models.iter().enumerate() {
        for (j, b) in models.iter().enumerate() {
            assert_eq!(
                a == b,
                roots[i] == roots[j],
                "versions {} and {}",
                i + 1,
                j + 1
            );
        }
    }
}

#[test]
fn store_matches_model() {
    let config = Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    };
    // Seeded: the same cases on every run and machine.
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7u8; 32]);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let strategy = (
        proptest::collection::vec(batch(), 1..8),
        proptest::collection::vec(key(), 1..12),
    );
    runner
        .run(&strategy, |(batches, probes)| {
            run_case(batches, probes);
            Ok(())
        })
        .unwrap();
}

#[test]
fn reopen_keeps_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut roots = Vec::new();
    {
        let store = common::open(dir.path(), 0);
        for v in 1..=5u64 {
            let writes = vec![(format!("key{v}").into_bytes(), Some(vec![v as u8]))];
            roots.push(store.apply_batch(v, writes).unwrap());
        }
    }
    let store = common::open(dir.path(), 0);
    assert_eq!(store.latest_version().unwrap(), Some(5));
    for v in 1..=5u64 {
        assert_eq!(store.root(v).unwrap(), roots[v as usize - 1]);
        assert_eq!(store.get(b"key1", v).unwrap(), Some(vec![1]));
    }
    assert!(
        store.apply_batch(7, vec![]).is_err(),
        "versions must be contiguous"
    );
    assert!(
        store.apply_batch(6, vec![(vec![], Some(vec![1]))]).is_err(),
        "empty key"
    );
    assert!(
        store.apply_batch(6, vec![(vec![1], Some(vec![]))]).is_err(),
        "empty value"
    );
    assert!(store.root(9).is_err(), "future version");
}
