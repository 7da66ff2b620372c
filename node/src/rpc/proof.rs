//! Protobuf encoding of ICS-23 `CommitmentProof`s for `abci_query`'s `proofOps`.
//!
//! The `ics23` crate's types are prost messages, but `prost` is not a dependency the node may name, so
//! this module writes the (small, stable) wire format of `cosmos.ics23.v1` by hand: proto3 rules, default
//! scalars omitted, oneof members and present sub-messages always written. Compressed batch proofs are
//! decompressed first (Basalt never produces them).

use basalt_state::ics23::{
    self, batch_entry, commitment_proof, BatchEntry, CommitmentProof, ExistenceProof, InnerOp,
    LeafOp, NonExistenceProof,
};

/// The `type` of Basalt's proof op in `proofOps`.
pub const PROOF_OP_TYPE: &str = "ics23:basalt";

/// Encodes a proof as protobuf bytes.
pub fn encode_commitment_proof(proof: &CommitmentProof) -> Vec<u8> {
    let proof = ics23::decompress(proof).unwrap_or_else(|_| proof.clone());
    let mut out = Vec::new();
    match &proof.proof {
        None => {}
        Some(commitment_proof::Proof::Exist(e)) => message(&mut out, 1, &existence(e)),
        Some(commitment_proof::Proof::Nonexist(n)) => message(&mut out, 2, &non_existence(n)),
        Some(commitment_proof::Proof::Batch(b)) => {
            let mut batch = Vec::new();
            for entry in &b.entries {
                message(&mut batch, 1, &batch_entry_bytes(entry));
            }
            message(&mut out, 3, &batch);
        }
        // `decompress` turned any compressed proof into a batch; an undecodable one encodes as empty.
        Some(commitment_proof::Proof::Compressed(_)) => {}
    }
    out
}

fn batch_entry_bytes(entry: &BatchEntry) -> Vec<u8> {
    let mut out = Vec::new();
    match &entry.proof {
        None => {}
        Some(batch_entry::Proof::Exist(e)) => message(&mut out, 1, &existence(e)),
        Some(batch_entry::Proof::Nonexist(n)) => message(&mut out, 2, &non_existence(n)),
    }
    out
}

fn existence(e: &ExistenceProof) -> Vec<u8> {
    let mut out = Vec::new();
    bytes(&mut out, 1, &e.key);
    bytes(&mut out, 2, &e.value);
    if let Some(leaf) = &e.leaf {
        message(&mut out, 3, &leaf_op(leaf));
    }
    for inner in &e.path {
        message(&mut out, 4, &inner_op(inner));
    }
    out
}

fn non_existence(n: &NonExistenceProof) -> Vec<u8> {
    let mut out = Vec::new();
    bytes(&mut out, 1, &n.key);
    if let Some(left) = &n.left {
        message(&mut out, 2, &existence(left));
    }
    if let Some(right) = &n.right {
        message(&mut out, 3, &existence(right));
    }
    out
}

fn leaf_op(l: &LeafOp) -> Vec<u8> {
    let mut out = Vec::new();
    enumeration(&mut out, 1, l.hash);
    enumeration(&mut out, 2, l.prehash_key);
    enumeration(&mut out, 3, l.prehash_value);
    enumeration(&mut out, 4, l.length);
    bytes(&mut out, 5, &l.prefix);
    out
}

fn inner_op(i: &InnerOp) -> Vec<u8> {
    let mut out = Vec::new();
    enumeration(&mut out, 1, i.hash);
    bytes(&mut out, 2, &i.prefix);
    bytes(&mut out, 3, &i.suffix);
    out
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// An enum (int32) field; negative values are sign-extended to 64 bits as protobuf requires.
fn enumeration(out: &mut Vec<u8>, tag: u32, v: i32) {
    if v != 0 {
        varint(out, u64::from(tag) << 3);
        varint(out, i64::from(v) as u64);
    }
}

/// A length-delimited field, omitted when empty (proto3 default).
fn bytes(out: &mut Vec<u8>, tag: u32, v: &[u8]) {
    if !v.is_empty() {
        message(out, tag, v);
    }
}

/// A length-delimited field, always written (sub-messages and oneof members).
fn message(out: &mut Vec<u8>, tag: u32, v: &[u8]) {
    varint(out, (u64::from(tag) << 3) | 2);
    varint(out, v.len() as u64);
    out.extend_from_slice(v);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn existence_proof_bytes_by_hand() {
        let proof = CommitmentProof {
            proof: Some(commitment_proof::Proof::Exist(ExistenceProof {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                leaf: Some(LeafOp {
                    hash: 7, // BLAKE2S_256
                    prehash_key: 0,
                    prehash_value: 7,
                    length: 1, // VAR_PROTO
                    prefix: vec![0],
                }),
                path: vec![InnerOp {
                    hash: 7,
                    prefix: vec![1],
                    suffix: Vec::new(),
                }],
            })),
        };
        let leaf = [0x08, 7, 0x18, 7, 0x20, 1, 0x2a, 1, 0];
        let inner = [0x08, 7, 0x12, 1, 1];
        let mut exist = vec![0x0a, 1, b'k', 0x12, 1, b'v', 0x1a, leaf.len() as u8];
        exist.extend_from_slice(&leaf);
        exist.extend_from_slice(&[0x22, inner.len() as u8]);
        exist.extend_from_slice(&inner);
        let mut expected = vec![0x0a, exist.len() as u8];
        expected.extend_from_slice(&exist);
        assert_eq!(encode_commitment_proof(&proof), expected);
    }

    #[test]
    fn non_existence_and_empty() {
        let proof = CommitmentProof {
            proof: Some(commitment_proof::Proof::Nonexist(NonExistenceProof {
                key: b"a".to_vec(),
                left: None,
                right: Some(ExistenceProof {
                    key: b"b".to_vec(),
                    value: Vec::new(),
                    leaf: None,
                    path: Vec::new(),
                }),
            })),
        };
        let right = [0x0a, 1, b'b'];
        let mut non = vec![0x0a, 1, b'a', 0x1a, right.len() as u8];
        non.extend_from_slice(&right);
        let mut expected = vec![0x12, non.len() as u8];
        expected.extend_from_slice(&non);
        assert_eq!(encode_commitment_proof(&proof), expected);
        assert!(encode_commitment_proof(&CommitmentProof { proof: None }).is_empty());
    }

    #[test]
    fn long_varints() {
        let mut out = Vec::new();
        varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        let mut out = Vec::new();
        enumeration(&mut out, 1, -1);
        assert_eq!(out.len(), 1 + 10);
    }
}
