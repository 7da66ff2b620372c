#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use basalt_consensus::light::fixture::{light_block, set};

use super::*;

/// A named change that breaks one rule.
type Mutation<'a, T> = (&'a str, Box<dyn Fn(&mut T)>);

fn chain() -> ChainId {
    ChainId::new("counterparty-7").unwrap()
}

fn client_state() -> ClientState {
    ClientState::new(
        chain(),
        Height(42),
        TrustLevel::new(2, 3).unwrap(),
        86_400_000,
        10_000,
    )
    .unwrap()
}

fn header(height: u64, trusted: u64) -> ClientHeader {
    let vals = set(&[(1, 10), (2, 10), (3, 10)]);
    let next = set(&[(1, 10), (2, 10), (4, 10)]);
    ClientHeader {
        block: light_block(
            &chain(),
            height,
            1_700_000_000_000 + height,
            &vals,
            &next,
            Hash::digest(&height.to_be_bytes()),
            &[1, 2, 3],
        ),
        trusted_height: Height(trusted),
        trusted_next_validators: vals,
    }
}

fn raw_client_state() -> RawClientState {
    RawClientState::decode(client_state().to_any().value.as_slice()).unwrap()
}

fn client_any(raw: &RawClientState) -> Any {
    any(CLIENT_STATE_TYPE_URL, raw)
}

fn header_any(raw: &RawHeader) -> Any {
    any(HEADER_TYPE_URL, raw)
}

#[test]
fn every_value_comes_back_as_it_was_packed() {
    let state = client_state();
    assert_eq!(ClientState::from_any(&state.to_any()).unwrap(), state);
    let frozen = ClientState {
        frozen_height: Some(FROZEN_HEIGHT),
        ..state
    };
    assert_eq!(ClientState::from_any(&frozen.to_any()).unwrap(), frozen);

    let consensus = ConsensusState::of(&header(50, 42).block.header);
    assert_eq!(
        ConsensusState::from_any(&consensus.to_any()).unwrap(),
        consensus
    );

    let update = header(50, 42);
    assert_eq!(ClientHeader::from_any(&update.to_any()).unwrap(), update);

    let evidence = Misbehaviour {
        first: header(50, 42),
        second: header(51, 42),
    };
    assert_eq!(
        Misbehaviour::from_any(&evidence.to_any()).unwrap(),
        evidence
    );
}

#[test]
fn heights_carry_the_chain_ids_revision_number() {
    let raw = raw_client_state();
    assert_eq!(raw.latest_height.unwrap().revision_number, 7);
    assert_eq!(revision_number(&ChainId::new("basalt").unwrap()), 0);
    let height = ibc_height(&chain(), Height(9)).unwrap();
    assert_eq!((height.revision_number(), height.revision_height()), (7, 9));
}

#[test]
fn another_type_url_is_refused_before_decoding() {
    let mut packed = client_state().to_any();
    packed.type_url = "/ibc.lightclients.tendermint.v1.ClientState".to_owned();
    assert!(matches!(
        ClientState::from_any(&packed),
        Err(WireError::TypeUrl { .. })
    ));
    // A consensus state is not a client state, a header not misbehaviour.
    let consensus = ConsensusState::of(&header(50, 42).block.header).to_any();
    assert!(ClientState::from_any(&consensus).is_err());
    assert!(Misbehaviour::from_any(&header(50, 42).to_any()).is_err());
}

#[test]
fn oversized_values_are_refused_by_length() {
    let mut raw = raw_client_state();
    raw.chain_id = "c".repeat(MAX_STATE_BYTES);
    assert!(matches!(
        ClientState::from_any(&client_any(&raw)),
        Err(WireError::TooLarge { .. })
    ));
    let big = Any {
        type_url: HEADER_TYPE_URL.to_owned(),
        value: vec![0; MAX_CLIENT_MESSAGE_BYTES + 1],
    };
    assert!(matches!(
        ClientHeader::from_any(&big),
        Err(WireError::TooLarge { .. })
    ));
}

#[test]
fn client_states_breaking_a_rule_are_refused() {
    let cases: Vec<Mutation<RawClientState>> = vec![
        ("bad chain id", Box::new(|r| r.chain_id = String::new())),
        ("no trust level", Box::new(|r| r.trust_level = None)),
        (
            "trust level below 1/3",
            Box::new(|r| {
                r.trust_level = Some(RawFraction {
                    numerator: 1,
                    denominator: 4,
                })
            }),
        ),
        (
            "trust level above 1",
            Box::new(|r| {
                r.trust_level = Some(RawFraction {
                    numerator: 4,
                    denominator: 3,
                })
            }),
        ),
        (
            "zero denominator",
            Box::new(|r| {
                r.trust_level = Some(RawFraction {
                    numerator: 0,
                    denominator: 0,
                })
            }),
        ),
        (
            "zero trusting period",
            Box::new(|r| r.trusting_period_ms = 0),
        ),
        ("no latest height", Box::new(|r| r.latest_height = None)),
        (
            "latest height 0",
            Box::new(|r| r.latest_height = Some(raw_height(7, Height(0)))),
        ),
        (
            "another revision",
            Box::new(|r| r.latest_height = Some(raw_height(6, Height(42)))),
        ),
        (
            "frozen at another revision",
            Box::new(|r| r.frozen_height = Some(raw_height(3, Height(1)))),
        ),
    ];
    for (case, mutate) in cases {
        let mut raw = raw_client_state();
        mutate(&mut raw);
        assert!(
            ClientState::from_any(&client_any(&raw)).is_err(),
            "{case} was accepted"
        );
    }
    // A zero frozen height means not frozen (ICS-07's convention).
    let mut raw = raw_client_state();
    raw.frozen_height = Some(raw_height(0, Height(0)));
    assert!(!ClientState::from_any(&client_any(&raw))
        .unwrap()
        .is_frozen());
}

#[test]
fn consensus_states_need_32_byte_hashes() {
    let good = ConsensusState::of(&header(50, 42).block.header).to_any();
    let raw = RawConsensusState::decode(good.value.as_slice()).unwrap();
    for (root, next) in [(31, 32), (33, 32), (32, 0), (0, 32)] {
        let bad = RawConsensusState {
            root: vec![1; root],
            next_validators_hash: vec![2; next],
            ..raw.clone()
        };
        assert!(ConsensusState::from_any(&any(CONSENSUS_STATE_TYPE_URL, &bad)).is_err());
    }
}

#[test]
fn headers_breaking_a_rule_are_refused() {
    let good = header(50, 42).to_raw();
    let cases: Vec<Mutation<RawHeader>> = vec![
        ("no trusted height", Box::new(|r| r.trusted_height = None)),
        (
            "trusted height not below",
            Box::new(|r| r.trusted_height = Some(raw_height(7, Height(50)))),
        ),
        (
            "trusted height of another revision",
            Box::new(|r| r.trusted_height = Some(raw_height(0, Height(42)))),
        ),
        ("header bytes cut", Box::new(|r| r.header.truncate(10))),
        ("trailing header bytes", Box::new(|r| r.header.push(0))),
        (
            "commit bytes cut",
            Box::new(|r| r.commit.pop().map(|_| ()).unwrap()),
        ),
        (
            "empty validator set",
            Box::new(|r| r.validators = vec![0; 8]),
        ),
        (
            "trusted set garbage",
            Box::new(|r| r.trusted_next_validators = vec![0xff; 40]),
        ),
    ];
    for (case, mutate) in cases {
        let mut raw = good.clone();
        mutate(&mut raw);
        assert!(
            ClientHeader::from_any(&header_any(&raw)).is_err(),
            "{case} was accepted"
        );
    }
    // Not protobuf at all.
    let garbage = Any {
        type_url: HEADER_TYPE_URL.to_owned(),
        value: vec![0xff; 64],
    };
    assert!(matches!(
        ClientHeader::from_any(&garbage),
        Err(WireError::Protobuf { .. })
    ));
}

#[test]
fn misbehaviour_needs_two_headers_of_one_chain() {
    let first = header(50, 42).to_raw();
    let missing = RawMisbehaviour {
        header_1: Some(first.clone()),
        header_2: None,
    };
    assert!(Misbehaviour::from_any(&any(MISBEHAVIOUR_TYPE_URL, &missing)).is_err());

    let other_chain = ChainId::new("elsewhere-7").unwrap();
    let vals = set(&[(1, 10)]);
    let foreign = ClientHeader {
        block: light_block(&other_chain, 50, 1, &vals, &vals, Hash::ZERO, &[1]),
        trusted_height: Height(42),
        trusted_next_validators: vals,
    };
    let mixed = RawMisbehaviour {
        header_1: Some(first),
        header_2: Some(foreign.to_raw()),
    };
    assert!(Misbehaviour::from_any(&any(MISBEHAVIOUR_TYPE_URL, &mixed)).is_err());
}
