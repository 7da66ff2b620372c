//! Re-sent messages: the engine answers a message it already verified and kept (a vote of this or the
//! previous height, a next-height vote, a proposal with its block) from what it holds, without checking
//! the signature again — so a peer replaying valid messages cannot make it repeat the work — and gives
//! the same answer it gave the first time. Only an exact copy is answered so: the same content under
//! another signature, or a kept proposal with another block, is checked and refused as before.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use basalt_consensus::core::Validity;
use basalt_consensus::engine::{ConsensusMessage, Engine, EngineConfig, EngineError, EngineInput};
use basalt_consensus::types::*;
use basalt_consensus::{Height, Round, ValidatorIndex, VoteType};

use common::{block, chain, set_and_keys};

fn signed_vote(
    key: &PrivateKey,
    index: u32,
    height: u64,
    vote_type: VoteType,
    block_id: Option<BlockId>,
) -> SignedVote {
    let vote = Vote {
        vote_type,
        height: Height(height),
        round: Round(0),
        block_id,
        validator_index: ValidatorIndex(index),
    };
    let signature = key.sign(&vote.sign_bytes(&chain()));
    SignedVote { vote, signature }
}

/// `vote` under the signature `key` makes over `other` (a valid signature, of other bytes).
fn resigned(vote: &SignedVote, key: &PrivateKey, other: &Vote) -> ConsensusMessage {
    ConsensusMessage::Vote(SignedVote {
        vote: vote.vote.clone(),
        signature: key.sign(&other.sign_bytes(&chain())),
    })
}

/// An observer engine at `height` with that height's set and the next one's.
fn engine_at(height: u64) -> (Engine, ValidatorSet, Vec<PrivateKey>) {
    let (set, keys) = set_and_keys();
    let mut engine = Engine::new(
        chain(),
        EngineConfig::default(),
        None,
        Height(height),
        set.clone(),
        Some(set.next_height()),
    )
    .unwrap();
    engine.start().unwrap();
    (engine, set, keys)
}

fn handle(engine: &mut Engine, message: &ConsensusMessage) -> Result<usize, EngineError> {
    let mut valid = |_: &Block| Validity::Valid;
    engine
        .handle(EngineInput::Message(message.clone()), &mut valid)
        .map(|outputs| outputs.len())
}

fn block_id(byte: u8) -> BlockId {
    BlockId {
        hash: Hash([byte; 32]),
    }
}

#[test]
fn a_re_sent_vote_changes_nothing_and_a_re_signed_copy_is_refused() {
    let (mut engine, _, keys) = engine_at(1);
    let vote = signed_vote(&keys[1], 1, 1, VoteType::Prevote, Some(block_id(1)));
    let message = ConsensusMessage::Vote(vote.clone());
    handle(&mut engine, &message).unwrap();
    for _ in 0..3 {
        assert_eq!(handle(&mut engine, &message).unwrap(), 0);
    }
    // The same vote under a valid signature of other bytes, and under another validator's signature.
    let precommit = signed_vote(&keys[1], 1, 1, VoteType::Precommit, Some(block_id(1)));
    for forged in [
        resigned(&vote, &keys[1], &precommit.vote),
        resigned(&vote, &keys[2], &vote.vote),
    ] {
        let err = handle(&mut engine, &forged).unwrap_err();
        assert!(err.is_misbehaviour(), "{err}");
    }
    let held = engine
        .driver()
        .votes()
        .votes_for(Round(0), VoteType::Prevote, Some(&block_id(1)));
    assert_eq!(held.len(), 1);
}

#[test]
fn a_re_sent_vote_of_the_previous_height_changes_nothing_and_a_forged_one_is_refused() {
    let (mut engine, set, keys) = engine_at(5);
    let vote = signed_vote(&keys[0], 0, 5, VoteType::Precommit, Some(block_id(2)));
    handle(&mut engine, &ConsensusMessage::Vote(vote.clone())).unwrap();
    let next = set.next_height();
    let after = next.next_height();
    let mut valid = |_: &Block| Validity::Valid;
    engine
        .start_height(Height(6), next, Some(after), &mut valid)
        .unwrap();
    let message = ConsensusMessage::Vote(vote.clone());
    assert_eq!(handle(&mut engine, &message).unwrap(), 0);
    let forged = resigned(&vote, &keys[3], &vote.vote);
    assert!(handle(&mut engine, &forged).unwrap_err().is_misbehaviour());
    // A conflicting vote of that height is still evidence: the kept vote was not disturbed.
    let conflicting = signed_vote(&keys[0], 0, 5, VoteType::Precommit, Some(block_id(3)));
    assert_eq!(
        handle(&mut engine, &ConsensusMessage::Vote(conflicting)).unwrap(),
        1
    );
}

#[test]
fn a_re_sent_next_height_vote_is_not_kept_twice_and_a_forged_copy_is_blamed() {
    let (mut engine, _, keys) = engine_at(5);
    let vote = signed_vote(&keys[2], 2, 6, VoteType::Prevote, Some(block_id(4)));
    let message = ConsensusMessage::Vote(vote.clone());
    handle(&mut engine, &message).unwrap();
    let err = handle(&mut engine, &message).unwrap_err();
    assert!(
        matches!(err, EngineError::NextHeightNotKept { .. }),
        "{err}"
    );
    assert!(!err.is_misbehaviour());
    // The verdict on a copy under a wrong signature does not depend on the genuine one being kept.
    let forged = resigned(&vote, &keys[1], &vote.vote);
    assert!(handle(&mut engine, &forged).unwrap_err().is_misbehaviour());
    assert_eq!(engine.next_height_buffer().0, 1);
}

#[test]
fn a_re_sent_proposal_changes_nothing_and_one_with_another_block_is_refused() {
    let (mut engine, set, keys) = engine_at(1);
    let block = block(&set, b"a");
    let proposal = Proposal::new(Height(1), Round(0), None, block.id()).unwrap();
    let signature = keys[set.proposer().0 as usize].sign(&proposal.sign_bytes(&chain()));
    let signed = SignedProposal {
        proposal,
        signature,
    };
    let message = ConsensusMessage::Proposal(ProposalMessage {
        signed: signed.clone(),
        block: block.clone(),
    });
    handle(&mut engine, &message).unwrap();
    for _ in 0..3 {
        assert_eq!(handle(&mut engine, &message).unwrap(), 0);
    }
    // The kept signed proposal carrying a block it does not name.
    let swapped = ConsensusMessage::Proposal(ProposalMessage {
        signed,
        block: common::block(&set, b"b"),
    });
    assert!(handle(&mut engine, &swapped).is_err());
    assert!(engine.driver().proposal_of(Round(0), &block.id()).is_some());
}
