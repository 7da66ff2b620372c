//! The ICS-02 traits over an in-memory host: what ibc-rs's client handlers would call, in their order.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use basalt_consensus::light::fixture::{light_block, seed_of, set};
use basalt_consensus::light::{LightBlock, TrustLevel};
use basalt_consensus::types::{ChainId, CommitSig, Hash, ValidatorSet};
use ibc_core::client::context::client_state::ClientStateCommon;

use super::*;
use crate::client::wire;

const HOUR_MS: u64 = 3_600_000;
const GENESIS_MS: u64 = 1_700_000_000_000;

fn chain() -> ChainId {
    ChainId::new("counterparty-1").unwrap()
}

fn vals() -> ValidatorSet {
    set(&[(1, 10), (2, 10), (3, 10), (4, 10)])
}

fn block(height: u64, time_ms: u64, fork: u8) -> LightBlock {
    let vals = vals();
    let app_hash = Hash::digest(&[height.to_be_bytes().as_slice(), &[fork]].concat());
    let signers: Vec<u8> = (0..vals.len()).map(|i| seed_of(&vals, i)).collect();
    light_block(&chain(), height, time_ms, &vals, &vals, app_hash, &signers)
}

fn header(trusted: u64, height: u64, fork: u8) -> ClientHeader {
    ClientHeader {
        block: block(height, GENESIS_MS + height * 1_000, fork),
        trusted_height: Height(trusted),
        trusted_next_validators: vals(),
    }
}

fn id() -> ClientId {
    client_type().build_client_id(0)
}

fn at(height: u64) -> IbcHeight {
    IbcHeight::new(1, height).unwrap()
}

/// A host keeping its client stores in maps; `failing` makes every neighbour lookup a storage failure.
struct Host {
    now_ms: u64,
    height: u64,
    clients: BTreeMap<ClientId, BasaltClientState>,
    consensus: BTreeMap<(ClientId, u64), BasaltConsensusState>,
    meta: BTreeMap<(ClientId, u64), (Timestamp, IbcHeight)>,
    failing: bool,
}

impl Host {
    fn new() -> Host {
        Host {
            now_ms: GENESIS_MS + HOUR_MS,
            height: 100,
            clients: BTreeMap::new(),
            consensus: BTreeMap::new(),
            meta: BTreeMap::new(),
            failing: false,
        }
    }

    fn heights(&self, client_id: &ClientId) -> Vec<u64> {
        self.consensus
            .keys()
            .filter(|(id, _)| id == client_id)
            .map(|(_, h)| *h)
            .collect()
    }
}

impl ClientValidationContext for Host {
    type ClientStateRef = BasaltClientState;
    type ConsensusStateRef = BasaltConsensusState;

    fn client_state(&self, client_id: &ClientId) -> Result<BasaltClientState, HostError> {
        self.clients
            .get(client_id)
            .cloned()
            .ok_or_else(|| HostError::missing_state("client"))
    }

    fn consensus_state(
        &self,
        path: &ClientConsensusStatePath,
    ) -> Result<BasaltConsensusState, HostError> {
        self.consensus
            .get(&(path.client_id.clone(), path.revision_height))
            .cloned()
            .ok_or_else(|| HostError::missing_state("consensus state"))
    }

    fn client_update_meta(
        &self,
        client_id: &ClientId,
        height: &IbcHeight,
    ) -> Result<(Timestamp, IbcHeight), HostError> {
        self.meta
            .get(&(client_id.clone(), height.revision_height()))
            .cloned()
            .ok_or_else(|| HostError::missing_state("update meta"))
    }
}

impl ClientExecutionContext for Host {
    type ClientStateMut = BasaltClientState;

    fn store_client_state(
        &mut self,
        path: ClientStatePath,
        state: BasaltClientState,
    ) -> Result<(), HostError> {
        self.clients.insert(path.0, state);
        Ok(())
    }

    fn store_consensus_state(
        &mut self,
        path: ClientConsensusStatePath,
        state: BasaltConsensusState,
    ) -> Result<(), HostError> {
        self.consensus
            .insert((path.client_id, path.revision_height), state);
        Ok(())
    }

    fn delete_consensus_state(&mut self, path: ClientConsensusStatePath) -> Result<(), HostError> {
        self.consensus
            .remove(&(path.client_id, path.revision_height));
        Ok(())
    }

    fn store_update_meta(
        &mut self,
        client_id: ClientId,
        height: IbcHeight,
        time: Timestamp,
        host_height: IbcHeight,
    ) -> Result<(), HostError> {
        self.meta
            .insert((client_id, height.revision_height()), (time, host_height));
        Ok(())
    }

    fn delete_update_meta(
        &mut self,
        client_id: ClientId,
        height: IbcHeight,
    ) -> Result<(), HostError> {
        self.meta.remove(&(client_id, height.revision_height()));
        Ok(())
    }
}

impl ExtClientValidationContext for Host {
    fn host_timestamp(&self) -> Result<Timestamp, HostError> {
        Ok(Timestamp::from_nanoseconds(self.now_ms * 1_000_000))
    }

    fn host_height(&self) -> Result<IbcHeight, HostError> {
        Ok(IbcHeight::new(0, self.height).unwrap())
    }

    fn consensus_state_heights(&self, client_id: &ClientId) -> Result<Vec<IbcHeight>, HostError> {
        Ok(self.heights(client_id).into_iter().map(at).collect())
    }

    fn next_consensus_state(
        &self,
        client_id: &ClientId,
        height: &IbcHeight,
    ) -> Result<Option<BasaltConsensusState>, HostError> {
        if self.failing {
            return Err(HostError::failed_to_retrieve("disk on fire"));
        }
        let next = self
            .heights(client_id)
            .into_iter()
            .find(|h| *h > height.revision_height());
        Ok(next.map(|h| self.consensus[&(client_id.clone(), h)].clone()))
    }

    fn prev_consensus_state(
        &self,
        client_id: &ClientId,
        height: &IbcHeight,
    ) -> Result<Option<BasaltConsensusState>, HostError> {
        if self.failing {
            return Err(HostError::failed_to_retrieve("disk on fire"));
        }
        let prev = self
            .heights(client_id)
            .into_iter()
            .rev()
            .find(|h| *h < height.revision_height());
        Ok(prev.map(|h| self.consensus[&(client_id.clone(), h)].clone()))
    }
}

/// A client of the counterparty created from its height 10 (as `MsgCreateClient` does it).
fn created(host: &mut Host) -> BasaltClientState {
    created_from(host, &block(10, GENESIS_MS + 10_000, 0).header)
}

/// A client of the counterparty created from `header` of its height 10.
fn created_from(host: &mut Host, header: &basalt_consensus::types::Header) -> BasaltClientState {
    let state = BasaltClientState(
        ClientState::new(
            chain(),
            Height(10),
            TrustLevel::ONE_THIRD,
            24 * HOUR_MS,
            10_000,
        )
        .unwrap(),
    );
    let consensus = ConsensusState::of(header);
    let now = host.host_timestamp().unwrap();
    assert_eq!(state.status(host, &id()).unwrap(), IbcStatus::Expired);
    state
        .verify_consensus_state(consensus.to_any(), &now)
        .unwrap();
    state.initialise(host, &id(), consensus.to_any()).unwrap();
    host.client_state(&id()).unwrap()
}

/// `MsgUpdateClient` as ibc-rs's handler runs it: verify, look for misbehaviour, then store.
fn update_client(host: &mut Host, message: Any) -> Result<Vec<IbcHeight>, IbcClientError> {
    let client = host.client_state(&id())?;
    client.verify_client_message(host, &id(), message.clone())?;
    assert!(!client.check_for_misbehaviour(host, &id(), message.clone())?);
    client.update_state(host, &id(), message)
}

#[test]
fn creating_stores_the_states_and_when_they_were_stored() {
    let mut host = Host::new();
    let client = created(&mut host);
    assert_eq!(client.latest_height(), at(10));
    assert_eq!(client.client_type().as_str(), "99-basalt");
    assert_eq!(client.status(&host, &id()).unwrap(), IbcStatus::Active);
    assert_eq!(
        host.client_update_meta(&id(), &at(10)).unwrap(),
        (
            host.host_timestamp().unwrap(),
            IbcHeight::new(0, 100).unwrap()
        )
    );
    // A consensus state already out of its trusting period cannot found a client.
    let stale = ConsensusState::of(&block(10, GENESIS_MS + 10_000, 0).header);
    let later = Timestamp::from_nanoseconds((GENESIS_MS + 48 * HOUR_MS) * 1_000_000);
    assert!(client
        .verify_consensus_state(stale.to_any(), &later)
        .is_err());
}

#[test]
fn an_update_stores_a_consensus_state_and_meta_and_raises_the_latest_height() {
    let mut host = Host::new();
    created(&mut host);
    host.height = 101;
    let heights = update_client(&mut host, header(10, 11, 0).to_any()).unwrap();
    assert_eq!(heights, vec![at(11)]);
    let client = host.client_state(&id()).unwrap();
    assert_eq!(client.latest_height(), at(11));
    let stored = host
        .consensus_state(&ClientConsensusStatePath::new(id(), 1, 11))
        .unwrap();
    assert_eq!(
        stored.state(),
        &ConsensusState::of(&header(10, 11, 0).block.header)
    );
    assert_eq!(
        stored.timestamp().unwrap(),
        Timestamp::from_nanoseconds((GENESIS_MS + 11_000) * 1_000_000)
    );
    assert_eq!(
        host.client_update_meta(&id(), &at(11)).unwrap().1,
        IbcHeight::new(0, 101).unwrap()
    );
    // The same header again changes nothing and names its height.
    let before = (host.clients.clone(), host.consensus.clone());
    assert_eq!(
        update_client(&mut host, header(10, 11, 0).to_any()).unwrap(),
        vec![at(11)]
    );
    assert_eq!((host.clients.clone(), host.consensus.clone()), before);
}

#[test]
fn unverifiable_headers_are_refused_and_change_nothing() {
    let mut host = Host::new();
    created(&mut host);
    let client = host.client_state(&id()).unwrap();
    let mut forged = header(10, 11, 0);
    for sig in &mut forged.block.commit.signatures {
        if let CommitSig::ForBlock(s) = sig {
            let mut bytes = s.to_bytes();
            bytes[0] ^= 1;
            if let Ok(flipped) = basalt_consensus::types::Signature::from_bytes(&bytes) {
                *s = flipped;
            }
        }
    }
    let other_chain = {
        let vals = vals();
        let signers: Vec<u8> = (0..vals.len()).map(|i| seed_of(&vals, i)).collect();
        let elsewhere = ChainId::new("elsewhere-1").unwrap();
        ClientHeader {
            block: light_block(
                &elsewhere,
                11,
                GENESIS_MS + 11_000,
                &vals,
                &vals,
                Hash::ZERO,
                &signers,
            ),
            trusted_height: Height(10),
            trusted_next_validators: vals,
        }
    };
    let cases = [
        ("forged signatures", forged.to_any()),
        ("another chain", other_chain.to_any()),
        ("no trusted state", header(9, 11, 0).to_any()),
        ("a client state instead of a header", client.0.to_any()),
    ];
    let before = (host.clients.clone(), host.consensus.clone());
    for (case, message) in cases {
        assert!(
            client
                .verify_client_message(&host, &id(), message.clone())
                .is_err(),
            "{case} verified"
        );
        // As ibc-rs runs an update: refused by its validation step, before anything is stored.
        assert!(update_client(&mut host, message).is_err(), "{case} stored");
    }
    assert_eq!((host.clients.clone(), host.consensus.clone()), before);
}

#[test]
fn a_conflicting_header_or_misbehaviour_freezes_the_client() {
    for via_misbehaviour in [false, true] {
        let mut host = Host::new();
        created(&mut host);
        update_client(&mut host, header(10, 20, 0).to_any()).unwrap();
        let fork = header(10, 20, 1);
        let message = if via_misbehaviour {
            wire::Misbehaviour {
                first: header(10, 20, 0),
                second: fork,
            }
            .to_any()
        } else {
            fork.to_any()
        };
        let client = host.client_state(&id()).unwrap();
        client
            .verify_client_message(&host, &id(), message.clone())
            .unwrap();
        assert!(client
            .check_for_misbehaviour(&host, &id(), message.clone())
            .unwrap());
        // ibc-rs freezes instead of updating; update_state itself never stores a conflict.
        assert!(client
            .update_state(&mut host, &id(), message.clone())
            .is_err());
        client
            .update_state_on_misbehaviour(&mut host, &id(), message)
            .unwrap();
        let frozen = host.client_state(&id()).unwrap();
        assert_eq!(frozen.status(&host, &id()).unwrap(), IbcStatus::Frozen);
        // A frozen client verifies nothing more.
        assert!(frozen
            .verify_client_message(&host, &id(), header(20, 21, 0).to_any())
            .is_err());
    }
    // Two headers that agree are no misbehaviour.
    let mut host = Host::new();
    created(&mut host);
    let client = host.client_state(&id()).unwrap();
    let agreeing = wire::Misbehaviour {
        first: header(10, 20, 0),
        second: header(10, 20, 0),
    }
    .to_any();
    assert!(client
        .verify_client_message(&host, &id(), agreeing)
        .is_err());
}

#[test]
fn a_storage_failure_is_an_error_not_a_missing_state() {
    let mut host = Host::new();
    created(&mut host);
    host.failing = true;
    let client = host.client_state(&id()).unwrap();
    let refused = client.update_state(&mut host, &id(), header(10, 11, 0).to_any());
    assert!(
        matches!(refused, Err(IbcClientError::Host(_))),
        "{refused:?}"
    );
    assert_eq!(host.heights(&id()), vec![10]);
}

#[test]
fn expired_states_are_pruned_a_few_per_update_never_the_latest() {
    let mut host = Host::new();
    created(&mut host);
    for height in 11..=20 {
        update_client(&mut host, header(height - 1, height, 0).to_any()).unwrap();
    }
    assert_eq!(host.heights(&id()).len(), 11);
    // A day later every state but those built on below has expired; a header trusted from 20 (still
    // within its period at that instant) is accepted and prunes the oldest expired states.
    host.now_ms = GENESIS_MS + 20_000 + 24 * HOUR_MS - 1;
    update_client(&mut host, header(20, 21, 0).to_any()).unwrap();
    let left = host.heights(&id());
    assert_eq!(left.len(), 12 - PRUNE_PER_UPDATE, "{left:?}");
    assert_eq!(left.first(), Some(&(10 + PRUNE_PER_UPDATE as u64)));
    assert!(left.contains(&20) && left.contains(&21));
    for pruned in 10..10 + PRUNE_PER_UPDATE as u64 {
        assert!(host.client_update_meta(&id(), &at(pruned)).is_err());
    }
}

#[test]
fn proof_heights_above_the_latest_are_refused() {
    let mut host = Host::new();
    let client = created(&mut host);
    assert!(client.validate_proof_height(at(10)).is_ok());
    assert!(client.validate_proof_height(at(9)).is_ok());
    assert!(client.validate_proof_height(at(11)).is_err());
    assert!(client
        .validate_proof_height(IbcHeight::new(2, 5).unwrap())
        .is_err());
}

/// A client crosses validator-set changes that no single header can: the relayer's skipping
/// verification finds the pivots and [`crate::relay::update_client_steps`] turns them into updates,
/// each trusting the consensus state the one before stored.
#[test]
fn a_client_crosses_complete_set_changes_by_the_relayers_steps() {
    use basalt_consensus::light::fixture::Chain;
    use basalt_consensus::light::{Options, Skipping};

    // A new, disjoint set of four every 100 heights: heights 10 and 450 share no validator.
    let rotating = |h: u64| -> Vec<(u8, basalt_consensus::primitives::VotingPower)> {
        let base = ((h - 1) / 100) as u8 * 4;
        (1..=4).map(|i| (base + i, 10)).collect()
    };
    let counterparty = Chain::build(&chain(), GENESIS_MS, 460, rotating);
    let mut host = Host::new();
    let (root, root_next) = counterparty.at(Height(10));
    created_from(&mut host, &root.header);
    let relayer = basalt_consensus::types::Address([7; 20]);
    // The header a `MsgUpdateClient` carries, as ibc-rs's handler hands it to the client.
    let header_of = |message: Any| -> Any {
        use ibc_core::primitives::proto::Protobuf;
        assert_eq!(message.type_url, "/ibc.core.client.v1.MsgUpdateClient");
        let msg =
            ibc_core::client::types::msgs::MsgUpdateClient::decode_vec(&message.value).unwrap();
        assert_eq!(msg.client_id, id());
        msg.client_message
    };

    // One header from 10 to 450 (what the relayer used to send) is refused: no trusted validator signed it.
    let (target, _) = counterparty.at(Height(450));
    let direct = crate::relay::update_client(&id(), target, 10, root_next.clone(), &relayer);
    let refused = update_client(&mut host, header_of(direct)).unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("trusted set with 0 of 40 power signed"),
        "{refused}"
    );
    assert_eq!(host.client_state(&id()).unwrap().latest_height(), at(10));

    let options = Options {
        trust_level: TrustLevel::ONE_THIRD,
        trusting_period_ms: 24 * HOUR_MS,
        max_clock_drift_ms: 10_000,
    };
    let mut skipping = Skipping::new(counterparty.root(10), Height(450), options).unwrap();
    let mut steps = Vec::new();
    while let Some(h) = skipping.wanted() {
        let (block, next) = counterparty.at(h);
        if let Some(v) = skipping.feed(block, next, host.now_ms).unwrap() {
            steps.push(v);
        }
    }
    assert!(steps.len() >= 5, "four set changes need a step each");
    let messages = crate::relay::update_client_steps(&id(), 10, root_next, steps, &relayer);
    for message in messages {
        update_client(&mut host, header_of(message)).unwrap();
    }
    assert_eq!(host.client_state(&id()).unwrap().latest_height(), at(450));
    assert!(host.consensus.contains_key(&(id(), 450)));
}
