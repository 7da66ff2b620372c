//! Catch-up relay: a node relays the votes it holds for an earlier round that a peer reports being in
//! (issue 14, liveness: simulation seed 1000280, where one honest node waited in round 0 for a precommit
//! only the other honest node, already in round 1, held).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use basalt_consensus::core::Validity;
use basalt_consensus::engine::{
    ConsensusMessage, Engine, EngineConfig, EngineInput, EngineOutput, PeerPositions,
};
use basalt_consensus::types::*;
use basalt_consensus::{Height, Round, Timeout, TimeoutKind, ValidatorIndex, VoteType};

use common::{chain, set_and_keys};

fn vote(
    keys: &[PrivateKey],
    index: u32,
    round: u32,
    vote_type: VoteType,
    block: Option<u8>,
) -> ConsensusMessage {
    let vote = Vote {
        vote_type,
        height: Height(5),
        round: Round(round),
        block_id: block.map(|b| BlockId {
            hash: Hash([b; 32]),
        }),
        validator_index: ValidatorIndex(index),
    };
    let signature = keys[index as usize].sign(&vote.sign_bytes(&chain()));
    ConsensusMessage::Vote(SignedVote { vote, signature })
}

/// An observer engine (no own key) at height 5.
fn engine(set: &ValidatorSet) -> Engine {
    let mut engine = Engine::new(
        chain(),
        EngineConfig::default(),
        None,
        Height(5),
        set.clone(),
        None,
    )
    .unwrap();
    engine.start().unwrap();
    engine
}

fn feed(engine: &mut Engine, message: &ConsensusMessage) {
    let mut valid = |_: &Block| Validity::Valid;
    engine
        .handle(EngineInput::Message(message.clone()), &mut valid)
        .unwrap();
}

#[test]
fn round_votes_are_every_counted_vote_of_the_round_prevotes_first() {
    let (set, keys) = set_and_keys();
    let mut engine = engine(&set);
    let round0 = [
        vote(&keys, 2, 0, VoteType::Precommit, None),
        vote(&keys, 0, 0, VoteType::Prevote, Some(7)),
        vote(&keys, 1, 0, VoteType::Precommit, Some(7)),
        vote(&keys, 3, 0, VoteType::Prevote, None),
    ];
    for message in &round0 {
        feed(&mut engine, message);
    }
    // Prevotes in validator order (0 for the block, 3 nil), then precommits (1 for the block, 2 nil).
    let expected = vec![
        round0[1].clone(),
        round0[3].clone(),
        round0[2].clone(),
        round0[0].clone(),
    ];
    assert_eq!(engine.round_votes(&[Round(0)]), expected);
    // Rounds the node holds nothing for relay nothing.
    assert!(engine.round_votes(&[Round(1), Round(40)]).is_empty());
    assert!(engine.round_votes(&[]).is_empty());
}

#[test]
fn a_node_in_an_earlier_round_gets_the_precommit_it_lacks_and_moves_on() {
    let (set, keys) = set_and_keys();
    // Ahead: saw precommits of round 0 from validators 0, 1 and 2 (any +2/3: it timed out into round 1).
    let mut ahead = engine(&set);
    // Behind: saw only 0 and 1, so it waits in round 0 for a third precommit that will never be re-sent by
    // its signer.
    let mut behind = engine(&set);
    let precommits = [
        vote(&keys, 0, 0, VoteType::Precommit, Some(7)),
        vote(&keys, 1, 0, VoteType::Precommit, None),
        vote(&keys, 2, 0, VoteType::Precommit, Some(7)),
    ];
    for message in &precommits {
        feed(&mut ahead, message);
    }
    for message in &precommits[..2] {
        feed(&mut behind, message);
    }
    let any_precommits = |e: &Engine| e.driver().votes().power_any(Round(0), VoteType::Precommit);
    assert_eq!(any_precommits(&behind), 20);

    // The behind node's Status says where it is; the node ahead relays that round's votes.
    let mut peers = PeerPositions::new(8);
    peers.record("behind", behind.height(), behind.round());
    peers.record("ahead-peer", Height(5), Round(0));
    peers.record("elsewhere", Height(9), Round(0));
    // +2/3 precommits of any kind: the node ahead times out of round 0.
    let mut valid = |_: &Block| Validity::Valid;
    let timeout = Timeout {
        kind: TimeoutKind::Precommit,
        round: Round(0),
    };
    ahead
        .handle(
            EngineInput::TimeoutElapsed {
                height: Height(5),
                timeout,
            },
            &mut valid,
        )
        .unwrap();
    assert_eq!(ahead.round(), Round(1));
    let lagging = peers.lagging_rounds(ahead.height(), ahead.round());
    assert_eq!(lagging, vec![Round(0)]);
    let mut outputs = Vec::new();
    for message in ahead.round_votes(&lagging) {
        let mut valid = |_: &Block| Validity::Valid;
        // Votes it already has are refused as duplicates; only the missing one counts.
        if let Ok(out) = behind.handle(EngineInput::Message(message), &mut valid) {
            outputs.extend(out);
        }
    }
    // With +2/3 precommits of round 0 it can now time out of the round like the others.
    assert!(
        outputs.iter().any(|o| matches!(
            o,
            EngineOutput::ScheduleTimeout { timeout, .. }
                if *timeout == Timeout { kind: TimeoutKind::Precommit, round: Round(0) }
        )),
        "{outputs:?}"
    );
    assert_eq!(any_precommits(&behind), 30, "the missing precommit arrived");
}

#[test]
fn regossip_is_own_recent_messages_relays_and_the_rounds_peers_lag_in() {
    let (set, keys) = set_and_keys();
    let mut engine = engine(&set);
    // A precommit of round 3 held, then f+1 prevotes of round 5 move the engine to round 5.
    let held = vote(&keys, 2, 3, VoteType::Precommit, None);
    feed(&mut engine, &held);
    for index in [0, 1] {
        feed(&mut engine, &vote(&keys, index, 5, VoteType::Prevote, None));
    }
    assert_eq!(engine.round(), Round(5));
    // "Own" messages of rounds 2, 4 and 5 (validator 3's): round 2 is too old to matter.
    let own: Vec<ConsensusMessage> = [2, 4, 5]
        .iter()
        .map(|&r| vote(&keys, 3, r, VoteType::Prevote, None))
        .collect();
    let mut peers = PeerPositions::new(8);
    let none = engine.regossip_messages(&own, &peers, true);
    assert_eq!(
        none,
        own[1..].to_vec(),
        "own rounds 4 and 5, no relay, no lag"
    );
    // A peer still in round 3 gets the round-3 votes we hold.
    peers.record(9u8, Height(5), Round(3));
    let with_lag = engine.regossip_messages(&own, &peers, false);
    assert_eq!(with_lag, vec![own[1].clone(), own[2].clone(), held]);
}
