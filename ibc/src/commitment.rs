//! Where a Basalt chain keeps its IBC state, and how another chain checks a proof of it.
//!
//! Every ICS-24 path (client and consensus states, connections, channels, sequences, packet commitments,
//! receipts, acknowledgements) lives in the chain's one Merkle state tree under the key
//! `prefix ‖ path`, where the prefix is [`COMMITMENT_PREFIX`] and the path is ICS-24's string form
//! (`commitments/ports/transfer/channels/channel-0/sequences/1`). One tree means one proof: a Basalt
//! proof is an ibc-rs [`MerkleProof`] holding exactly one ICS-23 proof, checked under
//! [`proof_specs`] (Basalt's published `ProofSpec`, `basalt_state::proof_spec`) against the app hash
//! of the height it was taken at. Absence is proved the same way (a non-existence proof), so a
//! counterparty can prove a receipt missing (a timeout) as well as present.
//!
//! Verification is ibc-rs's (`MerkleProof::verify_membership` / `verify_non_membership`, which run the
//! `ics23` verifier); this module fixes the shape — one proof, one key, a bounded size — and gives typed
//! errors. The light client's `verify_membership_raw`/`verify_non_membership_raw` are these functions.

use basalt_state::ics23::{self, HostFunctionsManager};
use ibc_core::commitment_types::commitment::{
    CommitmentPrefix, CommitmentProofBytes, CommitmentRoot,
};
use ibc_core::commitment_types::error::CommitmentError;
use ibc_core::commitment_types::merkle::{MerklePath, MerkleProof};
use ibc_core::commitment_types::specs::ProofSpecs;
use ibc_core::host::types::path::{Path, PathBytes};

#[cfg(test)]
mod tests;

/// The prefix of every IBC key in a Basalt chain's state (its ICS-23 commitment prefix; the state's
/// `/store/ibc/key` query reads under the same one).
pub const COMMITMENT_PREFIX: &[u8] = basalt_state::app::IBC_STORE_PREFIX;

/// Largest proof accepted for decoding. A Basalt proof has at most 256 inner steps of 48 bytes (two
/// of them for a non-existence proof, one per neighbour) plus leaves: under 32 KiB. Anything bigger is
/// refused before it is decoded.
pub const MAX_PROOF_BYTES: usize = 64 * 1024;

/// Largest key (prefix and path) a proof is checked for. ICS-24 paths built from valid identifiers stay
/// far below this; a longer one cannot be a path this chain stores.
pub const MAX_KEY_BYTES: usize = 1024;

/// Why a proof was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// The proof bytes are larger than [`MAX_PROOF_BYTES`].
    #[error("proof of {bytes} bytes is larger than the {MAX_PROOF_BYTES}-byte limit")]
    TooLarge {
        /// Size of the proof.
        bytes: usize,
    },
    /// The key is empty or larger than [`MAX_KEY_BYTES`].
    #[error("key of {bytes} bytes: a stored key has 1 to {MAX_KEY_BYTES} bytes")]
    KeyLength {
        /// Size of the key (prefix and path).
        bytes: usize,
    },
    /// The proof bytes are not a `MerkleProof`.
    #[error("proof does not decode: {0}")]
    Undecodable(String),
    /// A Basalt proof is one ICS-23 proof (one tree).
    #[error("a Basalt proof holds exactly one ICS-23 proof, this one holds {proofs}")]
    WrongShape {
        /// How many it holds.
        proofs: usize,
    },
    /// The root is not a 32-byte hash.
    #[error("commitment root of {bytes} bytes, expected 32")]
    RootLength {
        /// Its length.
        bytes: usize,
    },
    /// The proof does not prove the claim under this root.
    #[error("proof does not verify: {0}")]
    Invalid(#[from] CommitmentError),
}

/// The commitment prefix a Basalt chain announces in its connection handshakes.
pub fn commitment_prefix() -> CommitmentPrefix {
    CommitmentPrefix::from_bytes(COMMITMENT_PREFIX)
}

/// The proof specs of a Basalt client: one, the state tree's (built once: every proof check uses them).
pub fn proof_specs() -> &'static ProofSpecs {
    static SPECS: std::sync::OnceLock<ProofSpecs> = std::sync::OnceLock::new();
    SPECS.get_or_init(|| {
        // One spec with positive depth bounds (1 ≤ 256): the conversion cannot fail.
        ProofSpecs::try_from(vec![basalt_state::proof_spec()])
            .unwrap_or_else(|_| unreachable!("Basalt's proof spec has a valid depth range"))
    })
}

/// The state key of an ICS-24 path on this chain.
pub fn path_key(path: &Path) -> Vec<u8> {
    prefixed_key(COMMITMENT_PREFIX, path.to_string().as_bytes())
}

/// `prefix ‖ path`: how a chain with commitment prefix `prefix` keys `path`.
pub fn prefixed_key(prefix: &[u8], path: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + path.len());
    key.extend_from_slice(prefix);
    key.extend_from_slice(path);
    key
}

/// Wraps a state proof (`StateStore::get_with_proof`) in the bytes a counterparty's client verifies.
pub fn proof_bytes(proof: ics23::CommitmentProof) -> CommitmentProofBytes {
    let merkle = MerkleProof {
        proofs: vec![proof],
    };
    // Only an empty proof list fails to convert, and this one holds a proof.
    CommitmentProofBytes::try_from(merkle)
        .unwrap_or_else(|_| unreachable!("a one-proof MerkleProof encodes to non-empty bytes"))
}

/// Checks that `proof` shows `path ↦ value` in the state of a Basalt chain whose app hash is `root`.
pub fn verify_membership(
    prefix: &CommitmentPrefix,
    proof: &CommitmentProofBytes,
    root: &CommitmentRoot,
    path: &PathBytes,
    value: Vec<u8>,
) -> Result<(), ProofError> {
    let (merkle, key_path) = prepare(prefix, proof, root, path)?;
    merkle.verify_membership::<HostFunctionsManager>(
        proof_specs(),
        root.clone().into(),
        key_path,
        value,
        0,
    )?;
    Ok(())
}

/// Checks that `proof` shows `path` absent from the state of a Basalt chain whose app hash is `root`.
pub fn verify_non_membership(
    prefix: &CommitmentPrefix,
    proof: &CommitmentProofBytes,
    root: &CommitmentRoot,
    path: &PathBytes,
) -> Result<(), ProofError> {
    let (merkle, key_path) = prepare(prefix, proof, root, path)?;
    merkle.verify_non_membership::<HostFunctionsManager>(
        proof_specs(),
        root.clone().into(),
        key_path,
    )?;
    Ok(())
}

/// The checks every claim shares, cheapest first: sizes, then decoding, then shape.
fn prepare(
    prefix: &CommitmentPrefix,
    proof: &CommitmentProofBytes,
    root: &CommitmentRoot,
    path: &PathBytes,
) -> Result<(MerkleProof, MerklePath), ProofError> {
    let bytes: &[u8] = proof.as_ref();
    if bytes.len() > MAX_PROOF_BYTES {
        return Err(ProofError::TooLarge { bytes: bytes.len() });
    }
    let key = prefixed_key(prefix.as_bytes(), path.as_ref());
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(ProofError::KeyLength { bytes: key.len() });
    }
    if root.as_bytes().len() != 32 {
        return Err(ProofError::RootLength {
            bytes: root.as_bytes().len(),
        });
    }
    let merkle =
        MerkleProof::try_from(proof).map_err(|e| ProofError::Undecodable(e.to_string()))?;
    if merkle.proofs.len() != 1 {
        return Err(ProofError::WrongShape {
            proofs: merkle.proofs.len(),
        });
    }
    Ok((merkle, MerklePath::new(vec![PathBytes::from_bytes(key)])))
}
