#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use basalt_consensus::light::fixture::{light_block, seed_of, set};
use basalt_consensus::types::CommitSig;

use super::*;

const HOUR_MS: u64 = 3_600_000;
const GENESIS_MS: u64 = 1_700_000_000_000;

fn chain() -> ChainId {
    ChainId::new("counterparty-1").unwrap()
}

fn four() -> ValidatorSet {
    set(&[(1, 10), (2, 10), (3, 10), (4, 10)])
}

/// A header of the counterparty signed by every member of `vals`; `fork` changes its app hash (another
/// block at the same height).
fn block(
    height: u64,
    time_ms: u64,
    vals: &ValidatorSet,
    next: &ValidatorSet,
    fork: u8,
) -> LightBlock {
    let app_hash = Hash::digest(&[height.to_be_bytes().as_slice(), &[fork]].concat());
    let signers: Vec<u8> = (0..vals.len()).map(|i| seed_of(vals, i)).collect();
    light_block(&chain(), height, time_ms, vals, next, app_hash, &signers)
}

/// The client's store of consensus states.
#[derive(Default)]
struct Store(BTreeMap<u64, ConsensusState>);

impl ConsensusStates for Store {
    fn get(&self, height: Height) -> Option<ConsensusState> {
        self.0.get(&height.0).cloned()
    }
    fn below(&self, height: Height) -> Option<ConsensusState> {
        self.0.range(..height.0).next_back().map(|(_, c)| c.clone())
    }
    fn above(&self, height: Height) -> Option<ConsensusState> {
        self.0
            .range(height.0.saturating_add(1)..)
            .next()
            .map(|(_, c)| c.clone())
    }
}

/// A client created from the counterparty's height 10 (time GENESIS + 10 s).
fn created() -> (ClientState, Store) {
    let vals = four();
    let first = block(10, GENESIS_MS + 10_000, &vals, &vals, 0);
    let client = ClientState::new(
        chain(),
        Height(10),
        TrustLevel::ONE_THIRD,
        24 * HOUR_MS,
        10_000,
    )
    .unwrap();
    let mut store = Store::default();
    store.0.insert(10, ConsensusState::of(&first.header));
    (client, store)
}

fn from(trusted: u64, block: LightBlock, trusted_next: &ValidatorSet) -> ClientHeader {
    ClientHeader {
        block,
        trusted_height: Height(trusted),
        trusted_next_validators: trusted_next.clone(),
    }
}

const NOW: u64 = GENESIS_MS + HOUR_MS;

fn apply(client: &mut ClientState, store: &mut Store, update: Update) {
    match update {
        Update::Store {
            client: c,
            height,
            consensus,
        } => {
            *client = c;
            store.0.insert(height.0, consensus);
        }
        Update::Known => {}
        Update::Freeze { client: c } => *client = c,
    }
}

#[test]
fn creation_refuses_a_zero_period_or_height() {
    let make = |height, period| {
        ClientState::new(chain(), Height(height), TrustLevel::ONE_THIRD, period, 0)
    };
    assert_eq!(make(10, 0), Err(ClientStateError::ZeroTrustingPeriod));
    assert_eq!(make(0, 1), Err(ClientStateError::ZeroHeight));
    assert!(CLIENT_TYPE.len() >= 7);
}

#[test]
fn updates_move_the_latest_height_and_fill_in_older_ones() {
    let (mut client, mut store) = created();
    let vals = four();
    // Adjacent, then skipping to 50.
    for (trusted, height) in [(10, 11), (11, 50)] {
        let header = from(
            trusted,
            block(height, GENESIS_MS + height * 1_000, &vals, &vals, 0),
            &vals,
        );
        let update = update(&client, &store, &header, NOW).unwrap();
        assert!(matches!(update, Update::Store { height: h, .. } if h == Height(height)));
        apply(&mut client, &mut store, update);
        assert_eq!(client.latest_height, Height(height));
    }
    // A header between stored ones (30, from 11) is stored; the latest height stays 50.
    let header = from(11, block(30, GENESIS_MS + 30_000, &vals, &vals, 0), &vals);
    let u = update(&client, &store, &header, NOW).unwrap();
    apply(&mut client, &mut store, u);
    assert_eq!(client.latest_height, Height(50));
    assert!(store.0.contains_key(&30));
    // The same header again changes nothing.
    assert_eq!(update(&client, &store, &header, NOW), Ok(Update::Known));
    assert_eq!(client.status(&store.0[&50], NOW), Status::Active);
}

#[test]
fn a_changed_validator_set_is_followed_by_skipping_verification() {
    let (mut client, mut store) = created();
    let old = four();
    let new = set(&[(1, 10), (2, 10), (5, 10), (6, 10)]);
    // Height 20 is signed by the new set; half the trusted power is in it.
    let header = from(10, block(20, GENESIS_MS + 20_000, &new, &new, 0), &old);
    let u = update(&client, &store, &header, NOW).unwrap();
    apply(&mut client, &mut store, u);
    assert_eq!(client.latest_height, Height(20));
    // A set with only one of the trusted validators cannot be reached from height 10 directly.
    let strangers = set(&[(1, 10), (6, 10), (7, 10), (8, 10)]);
    let far = from(
        10,
        block(40, GENESIS_MS + 40_000, &strangers, &strangers, 0),
        &old,
    );
    assert!(matches!(
        update(&client, &store, &far, NOW),
        Err(ClientError::Verify {
            source: VerifyError::NotEnoughTrust { .. },
            ..
        })
    ));
    // From height 20 (trusting the new set: 1 and 6 hold half of it) it can.
    let near = from(
        20,
        block(40, GENESIS_MS + 40_000, &strangers, &strangers, 0),
        &new,
    );
    assert!(matches!(
        update(&client, &store, &near, NOW),
        Ok(Update::Store { .. })
    ));
}

#[test]
fn a_conflicting_header_freezes_the_client_and_a_frozen_client_accepts_nothing() {
    let (mut client, mut store) = created();
    let vals = four();
    let header = from(10, block(20, GENESIS_MS + 20_000, &vals, &vals, 0), &vals);
    let u = update(&client, &store, &header, NOW).unwrap();
    apply(&mut client, &mut store, u);
    // The validators signed another block at height 20 (a fork): verified, and it conflicts.
    let fork = from(10, block(20, GENESIS_MS + 20_000, &vals, &vals, 1), &vals);
    let u = update(&client, &store, &fork, NOW).unwrap();
    assert!(matches!(&u, Update::Freeze { client } if client.frozen_height == Some(FROZEN_HEIGHT)));
    apply(&mut client, &mut store, u);
    assert_eq!(client.status(&store.0[&20], NOW), Status::Frozen);
    let later = from(20, block(21, GENESIS_MS + 21_000, &vals, &vals, 0), &vals);
    assert_eq!(
        update(&client, &store, &later, NOW),
        Err(ClientError::Frozen)
    );
    // The stored state of height 20 is the first one: freezing overwrote nothing.
    assert_eq!(store.0[&20], ConsensusState::of(&header.block.header));
}

#[test]
fn a_time_out_of_order_freezes_the_client() {
    for (height, time_ms) in [
        (15, GENESIS_MS + 30_000), // after the state above it (20 at +20 s)
        (15, GENESIS_MS + 10_000), // not after the state below it (10 at +10 s)
        (25, GENESIS_MS + 20_000), // a higher height at the same time as 20
    ] {
        let (mut client, mut store) = created();
        let vals = four();
        let header = from(10, block(20, GENESIS_MS + 20_000, &vals, &vals, 0), &vals);
        let u = update(&client, &store, &header, NOW).unwrap();
        apply(&mut client, &mut store, u);
        let odd = from(10, block(height, time_ms, &vals, &vals, 0), &vals);
        let result = update(&client, &store, &odd, NOW);
        // A time not after the trusted state's is refused by verification; the others freeze.
        match result {
            Ok(Update::Freeze { .. }) => {}
            Err(ClientError::Verify {
                source: VerifyError::NonIncreasingTime { .. },
                ..
            }) if time_ms <= GENESIS_MS + 10_000 => {}
            other => panic!("height {height} at {time_ms}: {other:?}"),
        }
    }
}

#[test]
fn misbehaviour_needs_two_verified_conflicting_headers() {
    let (client, store) = created();
    let vals = four();
    let a = from(10, block(20, GENESIS_MS + 20_000, &vals, &vals, 0), &vals);
    let b = from(10, block(20, GENESIS_MS + 20_000, &vals, &vals, 1), &vals);
    let frozen = misbehaviour(&client, &store, &a, &b, NOW).unwrap();
    assert_eq!(frozen.frozen_height, Some(FROZEN_HEIGHT));
    // The same header twice is no misbehaviour; nor are two consistent heights.
    assert_eq!(
        misbehaviour(&client, &store, &a, &a, NOW),
        Err(ClientError::NotMisbehaviour)
    );
    let c = from(10, block(30, GENESIS_MS + 30_000, &vals, &vals, 0), &vals);
    assert_eq!(
        misbehaviour(&client, &store, &a, &c, NOW),
        Err(ClientError::NotMisbehaviour)
    );
    // A higher height at an earlier time is.
    let d = from(10, block(30, GENESIS_MS + 15_000, &vals, &vals, 0), &vals);
    assert!(misbehaviour(&client, &store, &a, &d, NOW).is_ok());
    // An unsigned (forged) second header proves nothing.
    let mut forged = b.clone();
    forged.block.commit.signatures = vec![CommitSig::Absent; 4];
    assert!(matches!(
        misbehaviour(&client, &store, &a, &forged, NOW),
        Err(ClientError::Verify { .. })
    ));
    // Nor does a header of another chain.
    let mut other = b;
    other.block.header.chain_id = ChainId::new("elsewhere-1").unwrap();
    assert!(matches!(
        misbehaviour(&client, &store, &a, &other, NOW),
        Err(ClientError::Verify {
            source: VerifyError::WrongChainId { .. },
            ..
        })
    ));
}

#[test]
fn an_expired_client_verifies_nothing() {
    let (client, store) = created();
    let vals = four();
    let later = GENESIS_MS + 10_000 + 24 * HOUR_MS;
    assert_eq!(client.status(&store.0[&10], later), Status::Expired);
    let header = from(10, block(11, GENESIS_MS + 11_000, &vals, &vals, 0), &vals);
    assert!(matches!(
        update(&client, &store, &header, later),
        Err(ClientError::Verify {
            source: VerifyError::Expired { .. },
            ..
        })
    ));
    // A trusted height the client never stored.
    let header = from(9, block(11, GENESIS_MS + 11_000, &vals, &vals, 0), &vals);
    assert_eq!(
        update(&client, &store, &header, NOW),
        Err(ClientError::MissingTrustedState(Height(9)))
    );
}
