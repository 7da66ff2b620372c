//! The engine's rules for messages of other heights (issue 14, hole 2): nothing for a height it cannot
//! check is accepted (an `Ok` is what lets the node forward and log a message); next-height messages are
//! verified against the next validator set before they are kept, one per slot, within the round window
//! and a byte bound; a second decision of a decided height is refused, not silently accepted.
//!
//! On commit 9496b9c every `Ok` asserted to be an `Err` here was an `Ok(vec![])`: junk for any other height,
//! and forged next-height votes, were accepted and so forwarded, logged and buffered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use basalt_consensus::core::Validity;
use basalt_consensus::engine::{ConsensusMessage, Engine, EngineConfig, EngineError, EngineInput};
use basalt_consensus::types::*;
use basalt_consensus::{Height, Round, ValidatorIndex, VoteType};

use common::{chain, set_and_keys};

fn vote(
    key: &PrivateKey,
    index: u32,
    height: u64,
    round: u32,
    vote_type: VoteType,
    block_id: Option<BlockId>,
) -> ConsensusMessage {
    let vote = Vote {
        vote_type,
        height: Height(height),
        round: Round(round),
        block_id,
        validator_index: ValidatorIndex(index),
    };
    let signature = key.sign(&vote.sign_bytes(&chain()));
    ConsensusMessage::Vote(SignedVote { vote, signature })
}

fn some_block_id(byte: u8) -> BlockId {
    BlockId {
        hash: Hash([byte; 32]),
    }
}

/// An observer engine (no own key) at height 5 with the set of 5 and, if `next`, of 6.
fn engine(next: bool) -> (Engine, ValidatorSet, Vec<PrivateKey>) {
    let (set, keys) = set_and_keys();
    let next_set = set.next_height();
    let mut engine = Engine::new(
        chain(),
        EngineConfig::default(),
        None,
        Height(5),
        set.clone(),
        next.then_some(next_set),
    )
    .unwrap();
    engine.start().unwrap();
    (engine, set, keys)
}

fn handle(engine: &mut Engine, message: ConsensusMessage) -> Result<(), EngineError> {
    let mut valid = |_: &Block| Validity::Valid;
    engine
        .handle(EngineInput::Message(message), &mut valid)
        .map(|_| ())
}

#[test]
fn messages_of_far_heights_are_refused_without_blame() {
    let (mut engine, _, keys) = engine(true);
    for height in [1, 3, 7, 1_000, u64::MAX / 4] {
        let message = vote(&keys[0], 0, height, 0, VoteType::Prevote, None);
        let err = handle(&mut engine, message).unwrap_err();
        assert!(
            matches!(err, EngineError::OtherHeight { .. }),
            "height {height}: {err}"
        );
        assert!(!err.is_misbehaviour(), "a peer may be ahead or behind");
    }
    assert_eq!(engine.next_height_buffer(), (0, 0));
}

#[test]
fn next_height_votes_are_verified_before_they_are_kept() {
    let (mut engine, _, keys) = engine(true);
    // Signed by the wrong key: proof of misbehaviour, and not kept.
    let forged = vote(&keys[1], 0, 6, 0, VoteType::Prevote, Some(some_block_id(1)));
    let err = handle(&mut engine, forged).unwrap_err();
    assert!(err.is_misbehaviour(), "{err}");
    // An index outside the set: likewise.
    let unknown = vote(&keys[0], 9, 6, 0, VoteType::Prevote, None);
    assert!(handle(&mut engine, unknown).unwrap_err().is_misbehaviour());
    assert_eq!(engine.next_height_buffer().0, 0);
    // A genuine one is kept (Ok: the node may forward it).
    let genuine = vote(&keys[2], 2, 6, 0, VoteType::Prevote, Some(some_block_id(1)));
    handle(&mut engine, genuine.clone()).unwrap();
    let (count, bytes) = engine.next_height_buffer();
    assert_eq!(count, 1);
    assert_eq!(bytes, genuine.encoded_len());
    assert_eq!(bytes, genuine.to_bytes().len());
    // The same slot again (a re-send): not kept twice, not blamed.
    let err = handle(&mut engine, genuine).unwrap_err();
    assert!(!err.is_misbehaviour());
    assert_eq!(engine.next_height_buffer().0, 1);
    // A genuine vote beyond the round window: not kept, not blamed.
    let far_round = vote(&keys[3], 3, 6, 1_000, VoteType::Precommit, None);
    let err = handle(&mut engine, far_round).unwrap_err();
    assert!(matches!(
        err,
        EngineError::NextHeightRoundOutsideWindow { .. }
    ));
    assert!(!err.is_misbehaviour());
    assert_eq!(engine.next_height_buffer().0, 1);
}

#[test]
fn without_the_next_set_next_height_messages_are_refused() {
    let (mut engine, _, keys) = engine(false);
    let genuine = vote(&keys[2], 2, 6, 0, VoteType::Prevote, None);
    let err = handle(&mut engine, genuine).unwrap_err();
    assert!(matches!(err, EngineError::OtherHeight { .. }));
    assert!(!err.is_misbehaviour());
}

#[test]
fn the_next_height_buffer_is_bounded_in_bytes() {
    let (set, keys) = set_and_keys();
    let one = vote(&keys[0], 0, 6, 0, VoteType::Prevote, None).encoded_len();
    let config = EngineConfig {
        max_buffered_next_height_bytes: one * 3,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(
        chain(),
        config,
        None,
        Height(5),
        set.clone(),
        Some(set.next_height()),
    )
    .unwrap();
    engine.start().unwrap();
    let mut kept = 0;
    for round in 0..4 {
        for (i, key) in keys.iter().enumerate() {
            let m = vote(key, i as u32, 6, round, VoteType::Prevote, None);
            if handle(&mut engine, m).is_ok() {
                kept += 1;
            }
        }
    }
    assert_eq!(kept, 3);
    let (count, bytes) = engine.next_height_buffer();
    assert_eq!(count, 3);
    assert!(bytes <= one * 3);
}

#[test]
fn kept_next_height_votes_count_once_the_height_starts() {
    let (mut engine, set, keys) = engine(true);
    let id = some_block_id(7);
    for (i, key) in keys.iter().enumerate().take(3) {
        handle(
            &mut engine,
            vote(key, i as u32, 6, 0, VoteType::Prevote, Some(id)),
        )
        .unwrap();
    }
    assert_eq!(engine.next_height_buffer().0, 3);
    let next = set.next_height();
    let after = next.next_height();
    let mut valid = |_: &Block| Validity::Valid;
    engine
        .start_height(Height(6), next, Some(after), &mut valid)
        .unwrap();
    assert_eq!(engine.next_height_buffer(), (0, 0));
    // The replayed prevotes are a polka: the engine's vote book holds them.
    let held = engine
        .driver()
        .votes()
        .votes_for(Round(0), VoteType::Prevote, Some(&id));
    assert_eq!(held.len(), 3);
}
