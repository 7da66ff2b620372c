//! The host under ibc-rs's own handlers (`dispatch`), over a map of committed state.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use basalt_consensus::light::fixture::{header as fixture_header, light_block, seed_of, set};
use basalt_consensus::light::TrustLevel;
use basalt_consensus::types::{Hash, ValidatorSet};
use ibc_core::client::types::msgs::{ClientMsg, MsgCreateClient, MsgUpdateClient};
use ibc_core::connection::types::msgs::{ConnectionMsg, MsgConnectionOpenInit};
use ibc_core::connection::types::Counterparty;
use ibc_core::entrypoint::dispatch;
use ibc_core::handler::types::msgs::MsgEnvelope;
use ibc_core::host::types::identifiers::{ClientType, PortId};
use ibc_core::router::module::Module;
use ibc_core::router::router::Router;
use ibc_core::router::types::module::ModuleId;

use super::*;
use crate::client::ics02::client_type;
use crate::client::{ClientHeader, ClientState};

const GENESIS_MS: u64 = 1_700_000_000_000;
const HOUR_MS: u64 = 3_600_000;

fn here() -> ChainId {
    ChainId::new("basalt-1").unwrap()
}

fn counterparty() -> ChainId {
    ChainId::new("counterparty-1").unwrap()
}

fn vals() -> ValidatorSet {
    set(&[(1, 10), (2, 10), (3, 10)])
}

/// This chain's header at `height` (its app hash names the height).
fn own_header(height: u64) -> Header {
    fixture_header(
        &here(),
        height,
        GENESIS_MS + height * 1_000,
        &vals(),
        &vals(),
        Hash::digest(&height.to_be_bytes()),
    )
}

/// The chain's stored headers: every height below the current block.
struct Headers {
    below: u64,
}

impl HostHeaders for Headers {
    fn header(&self, height: Height) -> Result<Option<Header>, HostError> {
        Ok((height.0 >= 1 && height.0 < self.below).then(|| own_header(height.0)))
    }
}

/// No application modules: client and connection messages need none.
struct NoModules;

impl Router for NoModules {
    fn get_route(&self, _: &ModuleId) -> Option<&dyn Module> {
        None
    }
    fn get_route_mut(&mut self, _: &ModuleId) -> Option<&mut dyn Module> {
        None
    }
    fn lookup_module(&self, _: &PortId) -> Option<ModuleId> {
        None
    }
}

type Committed = BTreeMap<Vec<u8>, Vec<u8>>;

/// Blocks every second; evidence kept for 48 hours (the genesis default).
const PARAMS: HostParams = HostParams {
    max_expected_time_per_block: Duration::from_secs(1),
    max_client_trusting_period: Duration::from_secs(48 * 3_600),
};

fn host_at(committed: Committed, height: u64) -> IbcHost<Committed, Headers> {
    IbcHost::new(
        committed,
        Headers { below: height },
        BlockInfo {
            chain_id: here(),
            height: Height(height),
            time_ms: GENESIS_MS + height * 1_000,
            header: own_header(height),
        },
        PARAMS,
    )
}

/// The block's writes applied to `committed` (as the node commits them).
fn commit(mut committed: Committed, host: IbcHost<Committed, Headers>) -> Committed {
    for (key, value) in host.into_writes() {
        match value {
            Some(v) => committed.insert(key, v),
            None => committed.remove(&key),
        };
    }
    committed
}

fn signer() -> Address {
    Address([7; 20])
}

fn counterparty_block(height: u64) -> basalt_consensus::light::LightBlock {
    let vals = vals();
    let signers: Vec<u8> = (0..vals.len()).map(|i| seed_of(&vals, i)).collect();
    light_block(
        &counterparty(),
        height,
        GENESIS_MS + height * 1_000,
        &vals,
        &vals,
        Hash::digest(&[height as u8]),
        &signers,
    )
}

fn create_msg(signed_by: Address) -> MsgEnvelope {
    let client = ClientState::new(
        counterparty(),
        Height(10),
        TrustLevel::ONE_THIRD,
        24 * HOUR_MS,
        10_000,
    )
    .unwrap();
    let consensus = ConsensusState::of(&counterparty_block(10).header);
    MsgEnvelope::Client(ClientMsg::CreateClient(MsgCreateClient {
        client_state: client.to_any(),
        consensus_state: consensus.to_any(),
        signer: Signer::from(signed_by.to_string()),
    }))
}

fn update_msg(trusted: u64, height: u64) -> MsgEnvelope {
    let header = ClientHeader {
        block: counterparty_block(height),
        trusted_height: Height(trusted),
        trusted_next_validators: vals(),
    };
    MsgEnvelope::Client(ClientMsg::UpdateClient(MsgUpdateClient {
        client_id: client_id(),
        client_message: header.to_any(),
        signer: Signer::from(signer().to_string()),
    }))
}

fn client_id() -> ClientId {
    client_type().build_client_id(0)
}

/// Runs `messages` as one transaction signed by `signer()`; returns whether it succeeded.
fn run_tx<R: StateRead>(
    host: &mut IbcHost<R, Headers>,
    messages: Vec<MsgEnvelope>,
) -> (bool, Vec<IbcEvent>) {
    host.begin_tx(signer());
    let ok = messages
        .into_iter()
        .all(|m| dispatch(host, &mut NoModules, m).is_ok());
    (ok, host.finish_tx(ok).0)
}

#[test]
fn ibc_rs_creates_and_updates_a_basalt_client_in_state() {
    let mut host = host_at(Committed::new(), 100);
    let (ok, events) = run_tx(&mut host, vec![create_msg(signer())]);
    assert!(ok);
    assert!(events
        .iter()
        .any(|e| matches!(e, IbcEvent::CreateClient(_))));
    let committed = commit(Committed::new(), host);

    // Every value sits at its ICS-24 key.
    let key = |p: Path| path_key(&p);
    assert_eq!(
        committed[&key(NextClientSequencePath.into())],
        1u64.to_be_bytes()
    );
    assert!(committed.contains_key(&key(ClientStatePath::new(client_id()).into())));
    assert!(committed.contains_key(&key(
        ClientConsensusStatePath::new(client_id(), 1, 10).into()
    )));
    assert!(committed.contains_key(&key(ClientUpdateTimePath::new(client_id(), 1, 10).into())));

    // The next block updates it; ibc-rs emits UpdateClient and the host records when.
    let mut host = host_at(committed, 101);
    let (ok, events) = run_tx(&mut host, vec![update_msg(10, 11)]);
    assert!(ok);
    assert!(events
        .iter()
        .any(|e| matches!(e, IbcEvent::UpdateClient(_))));
    let client = host.client_state(&client_id()).unwrap();
    assert_eq!(client.0.latest_height, Height(11));
    assert_eq!(
        host.client_update_meta(&client_id(), &IbcHeight::new(1, 11).unwrap())
            .unwrap(),
        (
            Timestamp::from_nanoseconds((GENESIS_MS + 101_000) * 1_000_000),
            IbcHeight::new(1, 101).unwrap()
        )
    );
    assert_eq!(
        host.consensus_state_heights(&client_id()).unwrap(),
        vec![
            IbcHeight::new(1, 10).unwrap(),
            IbcHeight::new(1, 11).unwrap()
        ]
    );
    let _ = ClientType::new("99-basalt").unwrap();
}

#[test]
fn a_failed_transaction_leaves_no_writes_and_no_events() {
    let mut host = host_at(Committed::new(), 100);
    // The create succeeds, the update after it in the same transaction does not (no trusted state 9).
    let (ok, events) = run_tx(&mut host, vec![create_msg(signer()), update_msg(9, 11)]);
    assert!(!ok);
    assert!(events.is_empty());
    assert!(host.into_writes().is_empty());
}

#[test]
fn a_message_signed_for_someone_else_is_refused() {
    let mut host = host_at(Committed::new(), 100);
    let (ok, _) = run_tx(&mut host, vec![create_msg(Address([8; 20]))]);
    assert!(!ok);
    assert!(host.into_writes().is_empty());
    // The signer's own address in lower case is its address.
    let mut host = host_at(Committed::new(), 100);
    host.begin_tx(signer());
    let lower = Signer::from(signer().to_string().to_lowercase());
    assert!(host.validate_message_signer(&lower).is_ok());
    assert!(host
        .validate_message_signer(&Signer::from("not an address".to_owned()))
        .is_err());
    host.finish_tx(false);
    // Outside a transaction nobody may sign.
    assert!(host
        .validate_message_signer(&Signer::from(signer().to_string()))
        .is_err());
}

#[test]
fn a_connection_opens_on_a_client_and_is_listed_under_it() {
    let mut host = host_at(Committed::new(), 100);
    assert!(run_tx(&mut host, vec![create_msg(signer())]).0);
    let committed = commit(Committed::new(), host);
    let mut host = host_at(committed, 101);
    let open = MsgEnvelope::Connection(ConnectionMsg::OpenInit(MsgConnectionOpenInit {
        client_id_on_a: client_id(),
        counterparty: Counterparty::new(
            ClientId::new("99-basalt", 0).unwrap(),
            None,
            commitment_prefix(),
        ),
        version: None,
        delay_period: Duration::ZERO,
        signer: Signer::from(signer().to_string()),
    }));
    let (ok, events) = run_tx(&mut host, vec![open]);
    assert!(ok);
    assert!(events
        .iter()
        .any(|e| matches!(e, IbcEvent::OpenInitConnection(_))));
    let connection = ConnectionId::new(0);
    let end = host.connection_end(&connection).unwrap();
    assert_eq!(end.client_id(), &client_id());
    assert_eq!(host.connection_counter().unwrap(), 1);
    let listed = host
        .get(ClientConnectionPath::new(client_id()))
        .unwrap()
        .unwrap();
    assert_eq!(
        RawClientPaths::decode(listed.as_slice()).unwrap().paths,
        vec!["connection-0".to_owned()]
    );
}

#[test]
fn the_hosts_consensus_states_come_from_its_headers_and_the_current_block() {
    let host = host_at(Committed::new(), 100);
    for height in [1, 50, 99, 100] {
        let state = host
            .host_consensus_state(&IbcHeight::new(1, height).unwrap())
            .unwrap();
        assert_eq!(state.state(), &ConsensusState::of(&own_header(height)));
    }
    assert!(host
        .host_consensus_state(&IbcHeight::new(1, 101).unwrap())
        .is_err());
    assert!(host
        .host_consensus_state(&IbcHeight::new(2, 50).unwrap())
        .is_err());
    assert_eq!(
        ValidationContext::host_timestamp(&host).unwrap(),
        Timestamp::from_nanoseconds((GENESIS_MS + 100_000) * 1_000_000)
    );
}

#[test]
fn a_counterpartys_client_of_this_chain_must_follow_it() {
    let host = host_at(Committed::new(), 100);
    let of = |chain: ChainId, height: u64| {
        BasaltClientState(
            ClientState::new(chain, Height(height), TrustLevel::ONE_THIRD, HOUR_MS, 1_000).unwrap(),
        )
    };
    assert!(host.validate_self_client(of(here(), 99)).is_ok());
    assert!(host.validate_self_client(of(here(), 100)).is_err());
    assert!(host.validate_self_client(of(counterparty(), 50)).is_err());
    let mut frozen = of(here(), 50);
    frozen.0.frozen_height = Some(crate::client::FROZEN_HEIGHT);
    assert!(host.validate_self_client(frozen).is_err());
}

/// ibc-go's trusting period < unbonding period, with the evidence max age in the unbonding period's
/// place: a client that would still trust a header after its signers' misbehaviour stops being
/// evidence here is refused, at the boundary too.
#[test]
fn a_counterpartys_client_of_this_chain_stops_trusting_before_evidence_expires() {
    let host = host_at(Committed::new(), 100);
    let max_ms = PARAMS.max_client_trusting_period.as_millis() as u64;
    let with_period = |period_ms: u64| {
        BasaltClientState(
            ClientState::new(here(), Height(99), TrustLevel::ONE_THIRD, period_ms, 1_000).unwrap(),
        )
    };
    assert!(host.validate_self_client(with_period(max_ms - 1)).is_ok());
    let refused = host
        .validate_self_client(with_period(max_ms))
        .unwrap_err()
        .to_string();
    assert!(refused.contains("evidence max age"), "{refused}");
    assert!(host.validate_self_client(with_period(u64::MAX)).is_err());
}

#[test]
fn packet_values_are_stored_as_ibc_go_stores_them() {
    use ibc_core::host::types::identifiers::ChannelId;
    let mut host = host_at(Committed::new(), 100);
    host.begin_tx(signer());
    let (port, channel) = (PortId::transfer(), ChannelId::new(0));
    let seq = Sequence::from(5);
    let receipt = ReceiptPath::new(&port, &channel, seq);
    assert!(host.get_packet_receipt(&receipt).unwrap().is_none());
    host.store_packet_receipt(&receipt, Receipt::Ok).unwrap();
    assert!(host.get_packet_receipt(&receipt).unwrap().is_ok());
    let send = SeqSendPath::new(&port, &channel);
    assert!(host.get_next_sequence_send(&send).is_err());
    host.store_next_sequence_send(&send, seq).unwrap();
    assert_eq!(host.get_next_sequence_send(&send).unwrap(), seq);
    let commitment = CommitmentPath::new(&port, &channel, seq);
    host.store_packet_commitment(&commitment, vec![9; 32].into())
        .unwrap();
    assert_eq!(
        host.get_packet_commitment(&commitment).unwrap().into_vec(),
        vec![9; 32]
    );
    host.delete_packet_commitment(&commitment).unwrap();
    assert!(host.get_packet_commitment(&commitment).is_err());
    host.finish_tx(true);
    let writes: BTreeMap<_, _> = host.into_writes().into_iter().collect();
    assert_eq!(writes[&path_key(&receipt.into())], Some(vec![1]));
    assert_eq!(
        writes[&path_key(&send.into())],
        Some(5u64.to_be_bytes().to_vec())
    );
    assert_eq!(writes[&path_key(&commitment.into())], None);
}

#[test]
fn a_client_keeps_at_most_its_cap_of_consensus_states_oldest_dropped() {
    const CAP: usize = 64;
    let mut host = host_at(Committed::new(), 100);
    host.max_consensus_states = CAP;
    assert!(run_tx(&mut host, vec![create_msg(signer())]).0);
    host.begin_tx(signer());
    let state = BasaltConsensusState::new(ConsensusState::of(&counterparty_block(10).header));
    for height in 11..=(10 + CAP as u64) {
        let path = ClientConsensusStatePath::new(client_id(), 1, height);
        host.store_consensus_state(path, state.clone()).unwrap();
    }
    let heights = host.heights(&client_id()).unwrap();
    assert_eq!(heights.len(), CAP);
    assert_eq!(heights.first(), Some(&11));
    assert!(host
        .consensus_state(&ClientConsensusStatePath::new(client_id(), 1, 10))
        .is_err());
    // Neighbours are found through the index.
    let at = |h| IbcHeight::new(1, h).unwrap();
    assert!(host
        .prev_consensus_state(&client_id(), &at(11))
        .unwrap()
        .is_none());
    assert!(host
        .prev_consensus_state(&client_id(), &at(12))
        .unwrap()
        .is_some());
    let last = 10 + CAP as u64;
    assert!(host
        .next_consensus_state(&client_id(), &at(last))
        .unwrap()
        .is_none());
    // A state older than all of a full client's is refused, not stored unindexed.
    let older = ClientConsensusStatePath::new(client_id(), 1, 10);
    assert!(host.store_consensus_state(older, state.clone()).is_err());
    assert!(host
        .consensus_state(&ClientConsensusStatePath::new(client_id(), 1, 10))
        .is_err());
    // Deleting keeps the index in step.
    host.delete_consensus_state(ClientConsensusStatePath::new(client_id(), 1, 11))
        .unwrap();
    assert_eq!(host.heights(&client_id()).unwrap().first(), Some(&12));
}

/// What the host writes is what a counterparty can prove: a client created by ibc-rs over a real state
/// store, committed, then read with the application's `/store/ibc/key` query — its value with an ICS-23
/// proof that ibc-rs's verifier accepts against the version's root, and an unwritten path's absence.
#[test]
fn ibc_state_written_by_the_host_is_provable_through_the_apps_store_query() {
    use basalt_state::app::{Application, BankApp, BankAppConfig};
    use basalt_state::{StateStore, StoreConfig};
    use ibc_core::commitment_types::commitment::CommitmentRoot;
    use ibc_core::host::types::path::PathBytes;

    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(StateStore::open(dir.path(), StoreConfig::default()).unwrap());
    store
        .apply_batch(1, vec![(b"acct/0".to_vec(), Some(b"x".to_vec()))])
        .unwrap();
    let mut host = IbcHost::new(
        store::StoreAt {
            store: &store,
            version: 1,
        },
        Headers { below: 2 },
        BlockInfo {
            chain_id: here(),
            height: Height(2),
            time_ms: GENESIS_MS + 2_000,
            header: own_header(2),
        },
        PARAMS,
    );
    assert!(run_tx(&mut host, vec![create_msg(signer())]).0);
    let root = store.apply_batch(2, host.into_writes()).unwrap();
    let root = CommitmentRoot::from_bytes(&root);

    let app = BankApp::new(store.clone(), BankAppConfig { chain_id: here() });
    let path = ClientStatePath::new(client_id()).to_string();
    let q = app.query("/store/ibc/key", path.as_bytes(), 2, true);
    assert_eq!((q.code, q.height), (0, 2), "{}", q.log);
    assert_eq!(q.key, path_key(&ClientStatePath::new(client_id()).into()));
    let stored = BasaltClientState::try_from(Any::decode(q.value.as_slice()).unwrap()).unwrap();
    assert_eq!(stored.0.latest_height, Height(10));
    let proof = crate::commitment::proof_bytes(q.proof.unwrap());
    let prefix = commitment_prefix();
    crate::commitment::verify_membership(
        &prefix,
        &proof,
        &root,
        &PathBytes::from_bytes(&path),
        q.value.clone(),
    )
    .unwrap();
    // Another value at that path does not verify.
    assert!(crate::commitment::verify_membership(
        &prefix,
        &proof,
        &root,
        &PathBytes::from_bytes(&path),
        b"forged".to_vec()
    )
    .is_err());

    // A connection never opened: empty value, proof of absence.
    let absent = ConnectionPath::new(&ConnectionId::new(0)).to_string();
    let q = app.query("store/ibc/key", absent.as_bytes(), 2, true);
    assert_eq!(q.code, 0);
    assert!(q.value.is_empty());
    crate::commitment::verify_non_membership(
        &prefix,
        &crate::commitment::proof_bytes(q.proof.unwrap()),
        &root,
        &PathBytes::from_bytes(&absent),
    )
    .unwrap();

    // No key, or one longer than any path: refused with the query's error code.
    let code = |data: &[u8]| app.query("/store/ibc/key", data, 2, false).code;
    assert_eq!(code(&[]), basalt_state::app::bank_app::QUERY_CODE_BAD_KEY);
    assert_eq!(
        code(&vec![b'a'; 2000]),
        basalt_state::app::bank_app::QUERY_CODE_BAD_KEY
    );
}
