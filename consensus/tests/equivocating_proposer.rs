//! An equivocating proposer sends one proposal to some validators and a different one to others. The one
//! +2/3 back must still be decidable by a node that saw the other first: it keeps the block of every
//! proposal the core keeps, and relays the backed one (simulation seeds 1002047 and 1000389 on 053bb4c:
//! an honest node held +2/3 precommits for block A but had dropped A's block as "the equivocation", and
//! sat in the commit step for good).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use basalt_consensus::core::Validity;
use basalt_consensus::engine::{
    ConsensusMessage, Engine, EngineConfig, EngineInput, EngineOutput, PeerPositions,
};
use basalt_consensus::types::*;
use basalt_consensus::{Height, Round, ValidatorIndex, VoteType};

use common::{block, chain, set_and_keys};

/// The round-0 proposer's signed proposal of `block`.
fn proposal(set: &ValidatorSet, keys: &[PrivateKey], block: &Block) -> ConsensusMessage {
    let proposal = Proposal::new(Height(1), Round(0), None, block.id()).unwrap();
    let signature = keys[set.proposer().0 as usize].sign(&proposal.sign_bytes(&chain()));
    ConsensusMessage::Proposal(ProposalMessage {
        signed: SignedProposal {
            proposal,
            signature,
        },
        block: block.clone(),
    })
}

fn vote(keys: &[PrivateKey], index: u32, vote_type: VoteType, block: &Block) -> ConsensusMessage {
    let vote = Vote {
        vote_type,
        height: Height(1),
        round: Round(0),
        block_id: Some(block.id()),
        validator_index: ValidatorIndex(index),
    };
    let signature = keys[index as usize].sign(&vote.sign_bytes(&chain()));
    ConsensusMessage::Vote(SignedVote { vote, signature })
}

/// An observer engine (no own key) at height 1.
fn engine(set: &ValidatorSet) -> Engine {
    let mut engine = Engine::new(
        chain(),
        EngineConfig::default(),
        None,
        Height(1),
        set.clone(),
        None,
    )
    .unwrap();
    engine.start().unwrap();
    engine
}

fn feed(engine: &mut Engine, message: &ConsensusMessage) -> Vec<EngineOutput> {
    let mut valid = |_: &Block| Validity::Valid;
    engine
        .handle(EngineInput::Message(message.clone()), &mut valid)
        .unwrap()
}

#[test]
fn a_node_that_saw_the_other_proposal_first_decides_the_one_two_thirds_precommitted() {
    let (set, keys) = set_and_keys();
    let a = block(&set, b"block a");
    let b = block(&set, b"block b");
    let mut node = engine(&set);
    // B first: the node prevotes (as an observer, nothing) and keeps B's proposal.
    feed(&mut node, &proposal(&set, &keys, &b));
    // +2/3 precommit A (three of four): no decision without A's block.
    for index in 0..3 {
        let outputs = feed(&mut node, &vote(&keys, index, VoteType::Precommit, &a));
        assert!(!outputs
            .iter()
            .any(|o| matches!(o, EngineOutput::Decided { .. })));
    }
    assert!(node.decision().is_none());
    // A's proposal arrives (relayed by a node that has it): equivocation, and the decision.
    let outputs = feed(&mut node, &proposal(&set, &keys, &a));
    assert!(
        outputs
            .iter()
            .any(|o| matches!(o, EngineOutput::ProposerEquivocation { .. })),
        "{outputs:?}"
    );
    let decided = outputs.iter().find_map(|o| match o {
        EngineOutput::Decided { block, .. } => Some(block.id()),
        _ => None,
    });
    assert_eq!(decided, Some(a.id()));
}

#[test]
fn the_proposal_a_node_is_locked_on_is_the_one_it_relays() {
    let (set, keys) = set_and_keys();
    let a = block(&set, b"block a");
    let b = block(&set, b"block b");
    // Saw B first, then A, then a polka for A: it relays A's proposal (the lock's) and its prevotes.
    let mut node = engine(&set);
    feed(&mut node, &proposal(&set, &keys, &b));
    feed(&mut node, &proposal(&set, &keys, &a));
    for index in 0..3 {
        feed(&mut node, &vote(&keys, index, VoteType::Prevote, &a));
    }
    assert_eq!(
        node.driver().state().valid.as_ref().map(|v| v.value),
        Some(a.id())
    );
    let relayed = node.regossip_messages(&[], &PeerPositions::<u8>::new(4), true);
    let proposed: Vec<BlockId> = relayed
        .iter()
        .filter_map(|m| match m {
            ConsensusMessage::Proposal(p) => Some(p.block.id()),
            _ => None,
        })
        .collect();
    assert!(proposed.contains(&a.id()), "{proposed:?}");
    let prevotes_for_a = relayed
        .iter()
        .filter(|m| matches!(m, ConsensusMessage::Vote(v) if v.vote.block_id == Some(a.id())))
        .count();
    assert_eq!(prevotes_for_a, 3);
}
