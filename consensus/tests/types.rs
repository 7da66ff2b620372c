//! Chain types: canonical encoding round trips, decoding of garbage never panics, sign-bytes domain
//! separation, commit verification.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use basalt_consensus::types::encoding::{MAX_BLOCK_BYTES, MAX_VOTE_BYTES};
use basalt_consensus::types::*;
use basalt_consensus::{Height, Round, ValidatorIndex, VoteType};
use proptest::prelude::*;

fn chain() -> ChainId {
    ChainId::new("basalt-test").unwrap()
}

fn keys(n: usize) -> Vec<PrivateKey> {
    (0..n)
        .map(|i| PrivateKey::from_seed(&[i as u8 + 1; 32]))
        .collect()
}

/// Keys re-ordered to match the validator set's canonical order.
fn set_and_keys(powers: &[u64]) -> (ValidatorSet, Vec<PrivateKey>) {
    let ks = keys(powers.len());
    let set = ValidatorSet::new(
        ks.iter()
            .zip(powers)
            .map(|(k, p)| (k.public_key(), *p))
            .collect(),
    )
    .unwrap();
    let ordered = set
        .validators()
        .iter()
        .map(|v| {
            ks.iter()
                .find(|k| k.public_key() == v.public_key)
                .unwrap()
                .clone()
        })
        .collect();
    (set, ordered)
}

fn genesis_block(set: &ValidatorSet) -> Block {
    let txs = vec![
        Tx::new(b"tx-1".to_vec()).unwrap(),
        Tx::new(b"tx-2".to_vec()).unwrap(),
    ];
    let (data_hash, evidence_hash, last_commit_hash) = Block::content_hashes(&txs, &[], None);
    let header = Header {
        chain_id: chain(),
        height: Height(1),
        time_ms: 1_700_000_000_000,
        last_block_id: None,
        last_commit_hash,
        data_hash,
        validators_hash: set.hash(),
        next_validators_hash: set.next_height().hash(),
        app_hash: Hash::ZERO,
        last_results_hash: Hash::ZERO,
        evidence_hash,
        proposer_address: set.validators()[0].address,
    };
    Block::new(header, txs, vec![], None).unwrap()
}

fn precommit(key: &PrivateKey, index: u32, block_id: Option<BlockId>) -> SignedVote {
    let vote = Vote {
        vote_type: VoteType::Precommit,
        height: Height(1),
        round: Round(0),
        block_id,
        validator_index: ValidatorIndex(index),
    };
    let signature = key.sign(&vote.sign_bytes(&chain()));
    SignedVote { vote, signature }
}

#[test]
fn block_roundtrips_and_hash_commits_to_contents() {
    let (set, _) = set_and_keys(&[1, 1, 1, 1]);
    let block = genesis_block(&set);
    let bytes = encode(&block);
    let back: Block = decode("block", &bytes, MAX_BLOCK_BYTES).unwrap();
    assert_eq!(back, block);
    assert_eq!(back.id(), block.id());
    // Changing a transaction without fixing data_hash makes the block undecodable.
    let mut tampered = bytes.clone();
    let pos = tampered.windows(4).position(|w| w == b"tx-2").unwrap();
    tampered[pos + 3] = b'3';
    let err = decode::<Block>("block", &tampered, MAX_BLOCK_BYTES).unwrap_err();
    assert!(err.to_string().contains("data_hash"), "{err}");
    // Trailing bytes are not canonical.
    let mut trailing = bytes;
    trailing.push(0);
    assert!(decode::<Block>("block", &trailing, MAX_BLOCK_BYTES).is_err());
}

#[test]
fn sign_bytes_are_domain_separated() {
    let other = ChainId::new("other-chain").unwrap();
    let block_id = BlockId {
        hash: Hash::digest(b"b"),
    };
    let id = Some(block_id);
    let vote = |t, h, r| Vote {
        vote_type: t,
        height: Height(h),
        round: Round(r),
        block_id: id,
        validator_index: ValidatorIndex(0),
    };
    let base = vote(VoteType::Prevote, 1, 0).sign_bytes(&chain());
    assert_ne!(base, vote(VoteType::Prevote, 1, 0).sign_bytes(&other));
    assert_ne!(base, vote(VoteType::Precommit, 1, 0).sign_bytes(&chain()));
    assert_ne!(base, vote(VoteType::Prevote, 2, 0).sign_bytes(&chain()));
    assert_ne!(base, vote(VoteType::Prevote, 1, 1).sign_bytes(&chain()));
    let proposal = Proposal::new(Height(1), Round(0), None, block_id).unwrap();
    assert_ne!(base, proposal.sign_bytes(&chain()));
    // A signature over a vote does not verify as a proposal signature.
    let (set, ks) = set_and_keys(&[1]);
    let signature = ks[0].sign(&base);
    let msg = ProposalMessage {
        signed: SignedProposal {
            proposal,
            signature,
        },
        block: genesis_block(&set),
    };
    assert!(set.verify_proposal(&chain(), msg).is_err());
}

#[test]
fn commit_needs_more_than_two_thirds_and_valid_signatures() {
    let (set, ks) = set_and_keys(&[1, 1, 1]);
    let block_id = genesis_block(&set).id();
    let verified: Vec<VerifiedVote> = (0..3)
        .map(|i| {
            set.verify_vote(&chain(), precommit(&ks[i], i as u32, Some(block_id)))
                .unwrap()
        })
        .collect();
    let full = Commit::from_precommits(Height(1), Round(0), block_id, 3, &verified);
    assert!(full.verify(&chain(), &set).is_ok());
    // Exactly 2/3 is not a quorum.
    let two = Commit::from_precommits(Height(1), Round(0), block_id, 3, &verified[..2]);
    assert!(matches!(
        two.verify(&chain(), &set),
        Err(CommitError::InsufficientPower { .. })
    ));
    // A swapped signature is caught and attributed.
    let mut bad = full.clone();
    bad.signatures.swap(0, 1);
    assert!(matches!(
        bad.verify(&chain(), &set),
        Err(CommitError::BadSignature { .. })
    ));
    // Wrong chain id: every signature fails.
    assert!(full.verify(&ChainId::new("x").unwrap(), &set).is_err());
    // Roundtrip.
    let back: Commit = decode("commit", &encode(&full), MAX_BLOCK_BYTES).unwrap();
    assert_eq!(back, full);
}

#[test]
fn evidence_is_canonical_and_verifiable() {
    let (set, ks) = set_and_keys(&[1, 1, 1, 1]);
    let a = precommit(
        &ks[2],
        2,
        Some(BlockId {
            hash: Hash::digest(b"a"),
        }),
    );
    let b = precommit(&ks[2], 2, None);
    let e1 = DuplicateVoteEvidence::new(a.clone(), b.clone()).unwrap();
    let e2 = DuplicateVoteEvidence::new(b.clone(), a.clone()).unwrap();
    assert_eq!(e1, e2);
    assert!(e1.verify(&chain(), &set).is_ok());
    assert!(matches!(
        DuplicateVoteEvidence::new(a.clone(), a.clone()),
        Err(EvidenceError::SameBlock)
    ));
    // Non-canonical order on the wire is rejected.
    let mut wire = encode(e1.vote_b());
    wire.extend(encode(e1.vote_a()));
    assert!(decode::<DuplicateVoteEvidence>("evidence", &wire, MAX_VOTE_BYTES * 2).is_err());
    // Evidence signed by the wrong key does not verify.
    let forged = precommit(&ks[1], 2, None);
    let e3 = DuplicateVoteEvidence::new(a, forged).unwrap();
    assert!(e3.verify(&chain(), &set).is_err());
}

#[test]
fn oversized_input_is_refused_before_decoding() {
    let err =
        decode::<SignedVote>("vote", &vec![0u8; MAX_VOTE_BYTES + 1], MAX_VOTE_BYTES).unwrap_err();
    assert!(matches!(err, DecodeError::TooLarge { .. }));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha, ..ProptestConfig::default() })]

    /// Garbage never panics any decoder, and whatever decodes re-encodes to the same bytes (canonical).
    #[test]
    fn garbage_never_panics_and_decoding_is_canonical(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(v) = decode::<SignedVote>("vote", &bytes, MAX_VOTE_BYTES) {
            prop_assert_eq!(encode(&v), bytes.clone());
        }
        if let Ok(p) = decode::<SignedProposal>("proposal", &bytes, MAX_VOTE_BYTES) {
            prop_assert_eq!(encode(&p), bytes.clone());
        }
        let _ = decode::<Block>("block", &bytes, MAX_BLOCK_BYTES);
        let _ = decode::<Commit>("commit", &bytes, MAX_BLOCK_BYTES);
        let _ = decode::<DuplicateVoteEvidence>("evidence", &bytes, MAX_BLOCK_BYTES);
        let _ = decode::<ValidatorSet>("validators", &bytes, MAX_BLOCK_BYTES);
        let _ = decode::<ProposalMessage>("proposal message", &bytes, MAX_BLOCK_BYTES);
    }

    /// Mutating any byte of a valid encoded vote gives an error or a different vote whose signature fails;
    /// it never panics.
    #[test]
    fn mutated_votes_never_verify(pos in 0usize..200, bit in 0u8..8) {
        let (set, ks) = set_and_keys(&[1, 2, 3]);
        let signed = precommit(&ks[1], 1, Some(BlockId { hash: Hash::digest(b"z") }));
        let mut bytes = encode(&signed);
        let pos = pos % bytes.len();
        bytes[pos] ^= 1 << bit;
        if let Ok(v) = decode::<SignedVote>("vote", &bytes, MAX_VOTE_BYTES) {
            prop_assert!(set.verify_vote(&chain(), v).is_err());
        }
    }
}

/// Issue 15, item 5: a transaction's hash is SHA-256 of its bytes, as CometBFT, CosmJS, explorers and
/// wallets compute it (FIPS 180-2 test vectors: "abc" and the empty string). It was BLAKE2s before, so
/// no client could find a transaction by the hash it computed.
#[test]
fn tx_hash_is_sha256_of_the_bytes() {
    let abc = Tx::new(b"abc".to_vec()).unwrap();
    assert_eq!(
        abc.hash().to_hex_upper(),
        "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"
    );
    assert_eq!(
        basalt_consensus::types::tx_hash(b"").to_hex_upper(),
        "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
    );
}
