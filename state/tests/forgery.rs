//! Mutated and forged proofs must all be rejected by the `ics23` verifier under the published spec.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use basalt_state::ics23::commitment_proof::Proof;
use basalt_state::ics23::{CommitmentProof, ExistenceProof, InnerOp, NonExistenceProof};
use basalt_state::merkle::spec::{INNER_PREFIX, LEAF_PREFIX};
use basalt_state::{proof_spec, verify_membership, verify_non_membership, StateStore};

const KEYS: u8 = 64;

fn store() -> (tempfile::TempDir, StateStore, [u8; 32]) {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open(dir.path(), 0);
    let writes = (0..KEYS)
        .map(|i| (vec![b'k', i], Some(vec![b'v', i, i])))
        .collect();
    let root = store.apply_batch(1, writes).unwrap();
    (dir, store, root)
}

fn exist(proof: &CommitmentProof) -> ExistenceProof {
    match &proof.proof {
        Some(Proof::Exist(e)) => e.clone(),
        other => panic!("expected an existence proof, got {other:?}"),
    }
}

fn wrap(e: ExistenceProof) -> CommitmentProof {
    CommitmentProof {
        proof: Some(Proof::Exist(e)),
    }
}

/// Every single-field mutation of an existence proof is rejected.
fn existence_mutations(e: &ExistenceProof) -> Vec<(String, ExistenceProof)> {
    let mut out = Vec::new();
    for (i, step) in e.path.iter().enumerate() {
        for j in 0..step.prefix.len() {
            let mut m = e.clone();
            m.path[i].prefix[j] ^= 0x01;
            out.push((format!("flip prefix byte {j} of step {i}"), m));
        }
        for j in 0..step.suffix.len() {
            let mut m = e.clone();
            m.path[i].suffix[j] ^= 0x80;
            out.push((format!("flip suffix byte {j} of step {i}"), m));
        }
        // Swap the sibling to the other side.
        let mut m = e.clone();
        let sep = INNER_PREFIX.len();
        if step.suffix.is_empty() {
            m.path[i].suffix = step.prefix[sep..].to_vec();
            m.path[i].prefix.truncate(sep);
        } else {
            m.path[i].prefix.extend_from_slice(&step.suffix);
            m.path[i].suffix.clear();
        }
        out.push((format!("swap sibling side at step {i}"), m));
        // Inner node carrying the leaf prefix (Dragonberry).
        let mut m = e.clone();
        let mut prefix = LEAF_PREFIX.to_vec();
        prefix.extend_from_slice(&step.prefix[sep..]);
        m.path[i].prefix = prefix;
        out.push((format!("leaf prefix on inner step {i}"), m));
        // Prefix length outside the bounds.
        let mut m = e.clone();
        m.path[i].prefix.extend_from_slice(&[0u8; 33]);
        out.push((format!("overlong prefix at step {i}"), m));
        let mut m = e.clone();
        m.path[i].prefix.truncate(sep - 1);
        out.push((format!("short prefix at step {i}"), m));
    }
    if e.path.len() >= 2 {
        let mut m = e.clone();
        m.path.swap(0, 1);
        out.push(("swap steps 0 and 1".into(), m));
    }
    let mut m = e.clone();
    m.path.pop();
    out.push(("drop the top step".into(), m));
    let mut m = e.clone();
    m.path.remove(0);
    out.push(("drop the bottom step".into(), m));
    // Too deep: 300 steps.
    let mut m = e.clone();
    while m.path.len() < 300 {
        m.path.push(InnerOp {
            hash: e.path[0].hash,
            prefix: INNER_PREFIX.to_vec(),
            suffix: vec![0u8; 32],
        });
    }
    out.push(("300 steps".into(), m));
    // Leaf op tampering: inner prefix used as leaf prefix, hash ops changed.
    let mut m = e.clone();
    m.leaf.as_mut().unwrap().prefix = INNER_PREFIX.to_vec();
    out.push(("inner prefix on leaf".into(), m));
    let mut m = e.clone();
    m.leaf.as_mut().unwrap().prefix.push(0);
    out.push(("extended leaf prefix".into(), m));
    let mut m = e.clone();
    m.leaf.as_mut().unwrap().hash = basalt_state::ics23::HashOp::Sha256.into();
    out.push(("sha256 leaf".into(), m));
    let mut m = e.clone();
    m.path[0].hash = basalt_state::ics23::HashOp::Sha256.into();
    out.push(("sha256 inner".into(), m));
    let mut m = e.clone();
    m.leaf = None;
    out.push(("no leaf op".into(), m));
    out
}

#[test]
fn genuine_proofs_verify() {
    let (_dir, store, root) = store();
    for i in 0..KEYS {
        let (value, proof) = store.get_with_proof(&[b'k', i], 1).unwrap();
        assert!(verify_membership(
            &proof,
            &root,
            &[b'k', i],
            &value.unwrap()
        ));
    }
    assert_eq!(proof_spec().min_depth, 1);
}

#[test]
fn mutated_existence_proofs_are_rejected() {
    let (_dir, store, root) = store();
    for i in [0u8, 17, 63] {
        let key = [b'k', i];
        let (value, proof) = store.get_with_proof(&key, 1).unwrap();
        let value = value.unwrap();
        let e = exist(&proof);
        for (what, m) in existence_mutations(&e) {
            assert!(
                !verify_membership(&wrap(m), &root, &key, &value),
                "accepted mutation: {what}"
            );
        }
        // Wrong key, wrong value, wrong root, key/value swapped inside the proof.
        assert!(!verify_membership(&proof, &root, &[b'k', i ^ 1], &value));
        assert!(!verify_membership(&proof, &root, &key, b"other"));
        let mut bad_root = root;
        bad_root[0] ^= 1;
        assert!(!verify_membership(&proof, &bad_root, &key, &value));
        let mut m = e.clone();
        m.key = vec![b'k', i ^ 1];
        assert!(!verify_membership(&wrap(m), &root, &[b'k', i ^ 1], &value));
        let mut m = e.clone();
        m.value = b"forged".to_vec();
        assert!(!verify_membership(&wrap(m), &root, &key, b"forged"));
        // A membership proof is no non-membership proof.
        assert!(!verify_non_membership(&proof, &root, &key));
    }
}

#[test]
fn mutated_non_existence_proofs_are_rejected() {
    let (_dir, store, root) = store();
    for absent in [&b"absent-1"[..], b"zz", b"k"] {
        let (value, proof) = store.get_with_proof(absent, 1).unwrap();
        assert_eq!(value, None);
        assert!(verify_non_membership(&proof, &root, absent));
        let Some(Proof::Nonexist(non)) = &proof.proof else {
            panic!("expected a non-existence proof")
        };
        let wrap_non = |n: NonExistenceProof| CommitmentProof {
            proof: Some(Proof::Nonexist(n)),
        };
        // Wrong root; a present key; the neighbours' own keys.
        let mut bad_root = root;
        bad_root[31] ^= 1;
        assert!(!verify_non_membership(&proof, &bad_root, absent));
        assert!(!verify_non_membership(&proof, &root, &[b'k', 3]));
        for side in [&non.left, &non.right].into_iter().flatten() {
            assert!(!verify_non_membership(&proof, &root, &side.key));
        }
        // Mutate each neighbour.
        for left in [true, false] {
            let Some(e) = (if left { &non.left } else { &non.right }) else {
                continue;
            };
            for (what, m) in existence_mutations(e) {
                let mut n = non.clone();
                if left {
                    n.left = Some(m);
                } else {
                    n.right = Some(m);
                }
                assert!(
                    !verify_non_membership(&wrap_non(n), &root, absent),
                    "accepted mutation of {} neighbour: {what}",
                    if left { "left" } else { "right" }
                );
            }
            // Dropping a neighbour leaves a gap the verifier must notice.
            let mut n = non.clone();
            if left {
                n.left = None;
            } else {
                n.right = None;
            }
            if n.left.is_some() || n.right.is_some() {
                assert!(!verify_non_membership(&wrap_non(n), &root, absent));
            }
        }
        // Swapped neighbours.
        let mut n = non.clone();
        std::mem::swap(&mut n.left, &mut n.right);
        assert!(!verify_non_membership(&wrap_non(n), &root, absent));
        // An existence proof of a neighbour passed off as a non-existence proof for another key.
        if let Some(l) = &non.left {
            let mut n = non.clone();
            n.right = Some(l.clone());
            assert!(!verify_non_membership(&wrap_non(n), &root, absent));
        }
    }
}
