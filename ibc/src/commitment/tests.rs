//! Proofs of Basalt state as a counterparty checks them: every ICS-24 path stored in a real state tree
//! is provable present and, before it is written or after it is deleted, absent; forged proofs fail.
//! Packet and acknowledgement commitments match vectors computed independently (Python's hashlib, from
//! ICS-04's definition).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::str::FromStr;

use basalt_state::ics23::{self, commitment_proof::Proof, CommitmentProof, HashOp, InnerOp};
use basalt_state::merkle::spec::INNER_PREFIX;
use basalt_state::{StateStore, StoreConfig};
use ibc_core::channel::types::acknowledgement::Acknowledgement;
use ibc_core::channel::types::commitment::{compute_ack_commitment, compute_packet_commitment};
use ibc_core::channel::types::timeout::{TimeoutHeight, TimeoutTimestamp};
use ibc_core::client::types::Height;
use ibc_core::commitment_types::commitment::{
    CommitmentPrefix, CommitmentProofBytes, CommitmentRoot,
};
use ibc_core::commitment_types::merkle::MerkleProof;
use ibc_core::host::types::identifiers::{ChannelId, ClientId, ConnectionId, PortId, Sequence};
use ibc_core::host::types::path::*;

use super::*;

/// One path of every kind a chain stores, with a value.
fn stored_paths() -> Vec<(Path, Vec<u8>)> {
    let client = ClientId::from_str("99-basalt-0").unwrap();
    let connection = ConnectionId::new(0);
    let port = PortId::transfer();
    let channel = ChannelId::new(0);
    let seq = Sequence::from(1);
    vec![
        (Path::NextClientSequence(NextClientSequencePath), vec![1]),
        (
            Path::ClientState(ClientStatePath::new(client.clone())),
            b"client state".to_vec(),
        ),
        (
            Path::ClientConsensusState(ClientConsensusStatePath::new(client.clone(), 0, 12)),
            b"consensus state".to_vec(),
        ),
        (
            Path::ClientConnection(ClientConnectionPath::new(client)),
            b"connections".to_vec(),
        ),
        (
            Path::Connection(ConnectionPath::new(&connection)),
            b"connection end".to_vec(),
        ),
        (
            Path::ChannelEnd(ChannelEndPath::new(&port, &channel)),
            b"channel end".to_vec(),
        ),
        (Path::SeqSend(SeqSendPath::new(&port, &channel)), vec![2]),
        (Path::SeqRecv(SeqRecvPath::new(&port, &channel)), vec![3]),
        (Path::SeqAck(SeqAckPath::new(&port, &channel)), vec![4]),
        (
            Path::Commitment(CommitmentPath::new(&port, &channel, seq)),
            vec![5; 32],
        ),
        (Path::Ack(AckPath::new(&port, &channel, seq)), vec![6; 32]),
        (
            Path::Receipt(ReceiptPath::new(&port, &channel, seq)),
            vec![1],
        ),
    ]
}

/// A store at version 1 holding `paths` (and an unrelated bank-like key, so the tree has neighbours).
fn store_with(paths: &[(Path, Vec<u8>)]) -> (tempfile::TempDir, StateStore, CommitmentRoot) {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(dir.path(), StoreConfig::default()).unwrap();
    let mut writes: Vec<basalt_state::Write> = paths
        .iter()
        .map(|(p, v)| (path_key(p), Some(v.clone())))
        .collect();
    writes.push((b"acct/0000".to_vec(), Some(b"other".to_vec())));
    let root = store.apply_batch(1, writes).unwrap();
    (dir, store, CommitmentRoot::from_bytes(&root))
}

fn prove(store: &StateStore, path: &Path, version: u64) -> CommitmentProofBytes {
    let (_, proof) = store.get_with_proof(&path_key(path), version).unwrap();
    proof_bytes(proof)
}

fn path_bytes(path: &Path) -> PathBytes {
    PathBytes::from_bytes(path.to_string())
}

#[test]
fn keys_are_the_prefix_and_the_ics24_path() {
    let port = PortId::transfer();
    let channel = ChannelId::new(0);
    let path = Path::Commitment(CommitmentPath::new(&port, &channel, Sequence::from(7)));
    assert_eq!(
        path_key(&path),
        b"ibc/commitments/ports/transfer/channels/channel-0/sequences/7".to_vec()
    );
    assert_eq!(commitment_prefix().as_bytes(), b"ibc/");
}

#[test]
fn every_stored_path_is_provable_present_with_its_value() {
    let paths = stored_paths();
    let (_dir, store, root) = store_with(&paths);
    let prefix = commitment_prefix();
    for (path, value) in &paths {
        let proof = prove(&store, path, 1);
        verify_membership(&prefix, &proof, &root, &path_bytes(path), value.clone())
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        // Not with another value, and absence of a present key cannot be shown.
        let mut other = value.clone();
        other[0] ^= 1;
        assert!(verify_membership(&prefix, &proof, &root, &path_bytes(path), other).is_err());
        assert!(verify_non_membership(&prefix, &proof, &root, &path_bytes(path)).is_err());
    }
}

#[test]
fn a_path_never_written_or_deleted_is_provable_absent() {
    let paths = stored_paths();
    let (_dir, store, root) = store_with(&paths);
    let prefix = commitment_prefix();
    let port = PortId::transfer();
    let channel = ChannelId::new(0);
    let missing = Path::Receipt(ReceiptPath::new(&port, &channel, Sequence::from(2)));
    let proof = prove(&store, &missing, 1);
    verify_non_membership(&prefix, &proof, &root, &path_bytes(&missing)).unwrap();
    assert!(verify_membership(&prefix, &proof, &root, &path_bytes(&missing), vec![1]).is_err());
    // A packet commitment deleted when its acknowledgement arrived: absent at the next version.
    let commitment = paths
        .iter()
        .find(|(p, _)| matches!(p, Path::Commitment(_)))
        .unwrap()
        .0
        .clone();
    let root2 = store
        .apply_batch(2, vec![(path_key(&commitment), None)])
        .unwrap();
    let root2 = CommitmentRoot::from_bytes(&root2);
    let proof = prove(&store, &commitment, 2);
    verify_non_membership(&prefix, &proof, &root2, &path_bytes(&commitment)).unwrap();
    // The proof of version 2 says nothing under version 1's root, nor version 1's under version 2's.
    assert!(verify_non_membership(&prefix, &proof, &root, &path_bytes(&commitment)).is_err());
    let old = prove(&store, &commitment, 1);
    assert!(
        verify_membership(&prefix, &old, &root2, &path_bytes(&commitment), vec![5; 32]).is_err()
    );
}

#[test]
fn a_proof_fails_under_another_prefix_path_or_root() {
    let paths = stored_paths();
    let (_dir, store, root) = store_with(&paths);
    let (path, value) = paths.last().unwrap().clone();
    let proof = prove(&store, &path, 1);
    let good = commitment_prefix();
    verify_membership(&good, &proof, &root, &path_bytes(&path), value.clone()).unwrap();
    for prefix in [
        CommitmentPrefix::from_bytes(b"ibc"),
        CommitmentPrefix::from_bytes(b"bank/"),
    ] {
        assert!(
            verify_membership(&prefix, &proof, &root, &path_bytes(&path), value.clone()).is_err()
        );
    }
    let (other_path, _) = paths.first().unwrap().clone();
    assert!(verify_membership(
        &good,
        &proof,
        &root,
        &path_bytes(&other_path),
        value.clone()
    )
    .is_err());
    let mut wrong = root.as_bytes().to_vec();
    wrong[31] ^= 1;
    let wrong = CommitmentRoot::from_bytes(&wrong);
    assert!(verify_membership(&good, &proof, &wrong, &path_bytes(&path), value.clone()).is_err());
    let short = CommitmentRoot::from_bytes(&[7; 20]);
    assert!(matches!(
        verify_membership(&good, &proof, &short, &path_bytes(&path), value),
        Err(ProofError::RootLength { bytes: 20 })
    ));
}

#[test]
fn every_single_byte_change_of_a_proof_is_refused() {
    let paths = stored_paths();
    let (_dir, store, root) = store_with(&paths);
    let prefix = commitment_prefix();
    for (path, value) in paths.iter().take(3) {
        let proof = prove(&store, path, 1);
        let bytes: Vec<u8> = proof.clone().into();
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x80] {
                let mut forged = bytes.clone();
                forged[i] ^= flip;
                let forged = CommitmentProofBytes::try_from(forged).unwrap();
                let verdict =
                    verify_membership(&prefix, &forged, &root, &path_bytes(path), value.clone());
                assert!(
                    verdict.is_err(),
                    "{path}: byte {i} ^ {flip:#x} still verifies"
                );
            }
        }
    }
}

/// Replaces the one ICS-23 proof inside `bytes` with what `edit` makes of it.
fn edited(
    bytes: &CommitmentProofBytes,
    edit: impl Fn(&mut CommitmentProof),
) -> CommitmentProofBytes {
    let mut merkle = MerkleProof::try_from(bytes).unwrap();
    edit(&mut merkle.proofs[0]);
    CommitmentProofBytes::try_from(merkle).unwrap()
}

fn existence(proof: &mut CommitmentProof) -> &mut ics23::ExistenceProof {
    match proof.proof.as_mut() {
        Some(Proof::Exist(e)) => e,
        other => panic!("not an existence proof: {other:?}"),
    }
}

#[test]
fn dragonberry_and_other_forged_shapes_are_refused() {
    let paths = stored_paths();
    let (_dir, store, root) = store_with(&paths);
    let prefix = commitment_prefix();
    let (path, value) = paths[4].clone();
    let proof = prove(&store, &path, 1);
    let claim = |p: &CommitmentProofBytes, v: Vec<u8>| {
        verify_membership(&prefix, p, &root, &path_bytes(&path), v)
    };
    claim(&proof, value.clone()).unwrap();

    // Dragonberry: the first inner node presented as a leaf, claiming "its left child ↦ its right
    // child". The forged proof computes the true root (checked below), so only the spec's pinning of
    // the leaf operation (prefix, key and value hashing) stops it.
    let mut merkle = MerkleProof::try_from(&proof).unwrap();
    let genuine = existence(&mut merkle.proofs[0]).clone();
    let first = genuine.path[0].clone();
    let leaf_hash =
        ics23::calculate_existence_root::<HostFunctionsManager>(&ics23::ExistenceProof {
            path: Vec::new(),
            ..genuine.clone()
        })
        .unwrap();
    let mut preimage = first.prefix.clone();
    preimage.extend_from_slice(&leaf_hash);
    preimage.extend_from_slice(&first.suffix);
    let (separator, children) = preimage.split_at(INNER_PREFIX.len());
    let (left, right) = children.split_at(32);
    let forged = ics23::ExistenceProof {
        key: left.to_vec(),
        value: right.to_vec(),
        leaf: Some(ics23::LeafOp {
            hash: HashOp::Blake2s256.into(),
            prehash_key: HashOp::NoHash.into(),
            prehash_value: HashOp::NoHash.into(),
            length: ics23::LengthOp::NoPrefix.into(),
            prefix: separator.to_vec(),
        }),
        path: genuine.path[1..].to_vec(),
    };
    assert_eq!(
        ics23::calculate_existence_root::<HostFunctionsManager>(&forged).unwrap(),
        root.as_bytes(),
        "the forgery computes the real root"
    );
    let as_leaf = edited(&proof, |p| p.proof = Some(Proof::Exist(forged.clone())));
    let verdict = verify_membership(
        &CommitmentPrefix::from_bytes(b""),
        &as_leaf,
        &root,
        &PathBytes::from_bytes(left),
        right.to_vec(),
    );
    assert!(verdict.is_err());
    // An inner step whose prefix begins with the leaf prefix (a leaf presented as an inner node).
    let leaf_as_inner = edited(&proof, |p| {
        let e = existence(p);
        let leaf_prefix = e.leaf.as_ref().unwrap().prefix.clone();
        e.path.insert(
            0,
            InnerOp {
                hash: HashOp::Blake2s256.into(),
                prefix: leaf_prefix,
                suffix: vec![0; 32],
            },
        );
    });
    assert!(claim(&leaf_as_inner, value.clone()).is_err());
    // Another hash for the leaf, an unhashed key, an inner suffix of the wrong size, a path cut short.
    let sha_leaf = edited(&proof, |p| {
        existence(p).leaf.as_mut().unwrap().hash = HashOp::Sha256.into();
    });
    assert!(claim(&sha_leaf, value.clone()).is_err());
    let raw_key = edited(&proof, |p| {
        existence(p).leaf.as_mut().unwrap().prehash_key = HashOp::NoHash.into();
    });
    assert!(claim(&raw_key, value.clone()).is_err());
    let odd_suffix = edited(&proof, |p| {
        let e = existence(p);
        let step = e.path.last_mut().unwrap();
        step.suffix.push(0);
    });
    assert!(claim(&odd_suffix, value.clone()).is_err());
    let cut = edited(&proof, |p| {
        existence(p).path.pop();
    });
    assert!(claim(&cut, value.clone()).is_err());
    // Another key or value written into the proof itself.
    let other_key = edited(&proof, |p| existence(p).key.push(b'x'));
    assert!(claim(&other_key, value.clone()).is_err());
    let other_value = edited(&proof, |p| existence(p).value = b"forged".to_vec());
    assert!(claim(&other_value, b"forged".to_vec()).is_err());
}

#[test]
fn oversized_garbled_and_multi_proof_inputs_are_typed_errors() {
    let paths = stored_paths();
    let (_dir, store, root) = store_with(&paths);
    let prefix = commitment_prefix();
    let (path, value) = paths[1].clone();
    let pb = path_bytes(&path);
    let huge = CommitmentProofBytes::try_from(vec![0x0a; MAX_PROOF_BYTES + 1]).unwrap();
    assert!(matches!(
        verify_membership(&prefix, &huge, &root, &pb, value.clone()),
        Err(ProofError::TooLarge { .. })
    ));
    let garbled = CommitmentProofBytes::try_from(vec![0xff; 40]).unwrap();
    assert!(matches!(
        verify_membership(&prefix, &garbled, &root, &pb, value.clone()),
        Err(ProofError::Undecodable(_))
    ));
    // Two proofs (the shape of a Cosmos SDK chain's multistore proof) is not a Basalt proof.
    let proof = prove(&store, &path, 1);
    let mut merkle = MerkleProof::try_from(&proof).unwrap();
    merkle.proofs.push(merkle.proofs[0].clone());
    let doubled = CommitmentProofBytes::try_from(merkle).unwrap();
    assert!(matches!(
        verify_membership(&prefix, &doubled, &root, &pb, value.clone()),
        Err(ProofError::WrongShape { proofs: 2 })
    ));
    let long_path = PathBytes::from_bytes(vec![b'a'; MAX_KEY_BYTES]);
    assert!(matches!(
        verify_non_membership(&prefix, &proof, &root, &long_path),
        Err(ProofError::KeyLength { .. })
    ));
    let empty = CommitmentPrefix::from_bytes(b"");
    assert!(matches!(
        verify_non_membership(&empty, &proof, &root, &PathBytes::from_bytes(b"")),
        Err(ProofError::KeyLength { bytes: 0 })
    ));
    // An empty value is refused by ibc-rs (absence is proved with a non-existence proof instead).
    assert!(verify_membership(&prefix, &proof, &root, &pb, Vec::new()).is_err());
}

#[test]
fn packet_and_ack_commitments_match_ics04_vectors() {
    let data = br#"{"amount":"100","denom":"stake","receiver":"B","sender":"A"}"#;
    let commitment = compute_packet_commitment(
        data,
        &TimeoutHeight::At(Height::new(1, 100).unwrap()),
        &TimeoutTimestamp::from(1_700_000_000_000_000_000),
    );
    assert_eq!(
        hex(commitment.as_ref()),
        "18ba6ced07a4affdfc5573000c61c3f0ccb6d1e9f5c99e1b8623746208af6bbb"
    );
    // No timeout height and no timeout time commit as zeros.
    let never = compute_packet_commitment(b"x", &TimeoutHeight::Never, &TimeoutTimestamp::Never);
    assert_eq!(
        hex(never.as_ref()),
        "4643caa91924c413a7556142be91a29a0c0e4bc5abf56999bee5f3b4c43942a4"
    );
    // ICS-20's success acknowledgement.
    let ack = Acknowledgement::try_from(br#"{"result":"AQ=="}"#.to_vec()).unwrap();
    assert_eq!(
        hex(compute_ack_commitment(&ack).as_ref()),
        "08f7557ed51826fe18d84512bf24ec75001edbaf2123a477df72a0a9f3640a7c"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
