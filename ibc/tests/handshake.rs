//! Two Basalt chains open an IBC connection to each other (issue 16): each runs a `99-basalt` client of
//! the other, and a relayer carries the four connection handshake messages with the proofs ibc-rs checks
//! — the counterparty's connection end, its client of us and that client's consensus state of us, each
//! proved against a header the receiving chain's client has verified (and our own header, rebuilt from
//! the block store, must match what the counterparty stored). Both chains execute the real application.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use basalt_consensus::types::Address;
use basalt_ibc::commitment::commitment_prefix;
use basalt_state::app::CODE_OK;
use common::{first_client, relayer, signer, Chain};
use ibc_core::client::types::Height as IbcHeight;
use ibc_core::commitment_types::commitment::CommitmentProofBytes;
use ibc_core::connection::types::msgs::{
    MsgConnectionOpenAck, MsgConnectionOpenConfirm, MsgConnectionOpenInit, MsgConnectionOpenTry,
};
use ibc_core::connection::types::version::Version;
use ibc_core::connection::types::{ConnectionEnd, Counterparty, State};
use ibc_core::host::types::identifiers::{ClientId, ConnectionId};
use ibc_core::host::types::path::{ClientConsensusStatePath, ClientStatePath, ConnectionPath};
use ibc_core::primitives::proto::{Any, Protobuf};
use ibc_core::primitives::ToProto;
use prost::Message;

fn me() -> Address {
    relayer().public_key().address()
}

/// Two chains, each with a client of the other (its first); block `h` of one is followed by block `h`
/// of the other, so their clocks agree.
fn two_chains_with_clients() -> (Chain, Chain) {
    let mut a = Chain::new("basalt-a");
    let mut b = Chain::new("basalt-b");
    for _ in 0..3 {
        a.block(vec![]);
        b.block(vec![]);
    }
    let r = a.submit(&relayer(), vec![b.create_client_msg(b.latest(), &me())]);
    assert_eq!(r.code, CODE_OK, "{}", r.log);
    let r = b.submit(&relayer(), vec![a.create_client_msg(a.latest(), &me())]);
    assert_eq!(r.code, CODE_OK, "{}", r.log);
    (a, b)
}

/// The latest consensus height `client` (on `host`) holds of the counterparty.
fn client_height(host: &Chain, client: &ClientId) -> u64 {
    let bytes = host
        .get(ClientStatePath::new(client.clone()).into())
        .unwrap();
    let state =
        basalt_ibc::client::ClientState::from_any(&Any::decode(bytes.as_slice()).unwrap()).unwrap();
    state.latest_height.0
}

/// Brings `client` on `host` up to `source`'s latest block (trusting its latest consensus state).
fn update(host: &Chain, client: &ClientId, source: &Chain) -> Any {
    let trusted = client_height(host, client);
    source.update_client_msg(client, trusted, source.latest(), &me())
}

/// What `source` proves about its connection `conn`, its client of the other chain and that client's
/// consensus state at `consensus_height`: (client state value, proofs, proof height).
struct HandshakeProofs {
    client_state: Any,
    conn: CommitmentProofBytes,
    client: CommitmentProofBytes,
    consensus: CommitmentProofBytes,
    height: IbcHeight,
    consensus_height: IbcHeight,
}

fn handshake_proofs(source: &Chain, conn: &ConnectionId, client: &ClientId) -> HandshakeProofs {
    let (_, conn_proof, height) = source.prove(ConnectionPath::new(conn).into());
    let (client_state, client_proof, _) = source.prove(ClientStatePath::new(client.clone()).into());
    let client_state = Any::decode(client_state.unwrap().as_slice()).unwrap();
    let state = basalt_ibc::client::ClientState::from_any(&client_state).unwrap();
    let consensus_height = state.latest_height.0;
    let (_, consensus, _) =
        source.prove(ClientConsensusStatePath::new(client.clone(), 0, consensus_height).into());
    HandshakeProofs {
        client_state,
        conn: conn_proof,
        client: client_proof,
        consensus,
        height,
        consensus_height: IbcHeight::new(0, consensus_height).unwrap(),
    }
}

fn connection(chain: &Chain, id: &ConnectionId) -> ConnectionEnd {
    ConnectionEnd::decode_vec(&chain.get(ConnectionPath::new(id).into()).unwrap()).unwrap()
}

#[test]
fn two_chains_open_a_connection_through_the_four_step_handshake() {
    let (mut a, mut b) = two_chains_with_clients();
    let client = first_client(); // each chain's first client is of the other
    let conn = ConnectionId::new(0);

    // 1. Init on a.
    let init = MsgConnectionOpenInit {
        client_id_on_a: client.clone(),
        counterparty: Counterparty::new(client.clone(), None, commitment_prefix()),
        version: None,
        delay_period: std::time::Duration::ZERO,
        signer: signer(&me()),
    };
    let r = a.submit(&relayer(), vec![init.to_any()]);
    assert_eq!(r.code, CODE_OK, "{}", r.log);
    assert_eq!(*connection(&a, &conn).state(), State::Init);
    a.block(vec![]); // the block whose header commits to the state with Init in it

    // 2. Try on b: its client of a is updated to a's latest header, then a's proofs checked against it.
    let proofs = handshake_proofs(&a, &conn, &client);
    let try_msg = MsgConnectionOpenTry {
        client_id_on_b: client.clone(),
        client_state_of_b_on_a: proofs.client_state,
        counterparty: Counterparty::new(client.clone(), Some(conn.clone()), commitment_prefix()),
        versions_on_a: Version::compatibles(),
        proof_conn_end_on_a: proofs.conn,
        proof_client_state_of_b_on_a: proofs.client,
        proof_consensus_state_of_b_on_a: proofs.consensus,
        proofs_height_on_a: proofs.height,
        consensus_height_of_b_on_a: proofs.consensus_height,
        delay_period: std::time::Duration::ZERO,
        signer: signer(&me()),
        proof_consensus_state_of_b: None,
        #[allow(deprecated)]
        previous_connection_id: String::new(),
    };
    let r = b.submit(&relayer(), vec![update(&b, &client, &a), try_msg.to_any()]);
    assert_eq!(r.code, CODE_OK, "{}", r.log);
    assert_eq!(*connection(&b, &conn).state(), State::TryOpen);
    b.block(vec![]);

    // 3. Ack on a.
    let proofs = handshake_proofs(&b, &conn, &client);
    let ack = MsgConnectionOpenAck {
        conn_id_on_a: conn.clone(),
        conn_id_on_b: conn.clone(),
        client_state_of_a_on_b: proofs.client_state,
        proof_conn_end_on_b: proofs.conn,
        proof_client_state_of_a_on_b: proofs.client,
        proof_consensus_state_of_a_on_b: proofs.consensus,
        proofs_height_on_b: proofs.height,
        consensus_height_of_a_on_b: proofs.consensus_height,
        version: Version::compatibles().remove(0),
        signer: signer(&me()),
        proof_consensus_state_of_a: None,
    };
    let r = a.submit(&relayer(), vec![update(&a, &client, &b), ack.to_any()]);
    assert_eq!(r.code, CODE_OK, "{}", r.log);
    assert_eq!(*connection(&a, &conn).state(), State::Open);
    a.block(vec![]);

    // 4. Confirm on b.
    let (_, proof, height) = a.prove(ConnectionPath::new(&conn).into());
    let confirm = MsgConnectionOpenConfirm {
        conn_id_on_b: conn.clone(),
        proof_conn_end_on_a: proof,
        proof_height_on_a: height,
        signer: signer(&me()),
    };
    let r = b.submit(&relayer(), vec![update(&b, &client, &a), confirm.to_any()]);
    assert_eq!(r.code, CODE_OK, "{}", r.log);
    let (on_a, on_b) = (connection(&a, &conn), connection(&b, &conn));
    assert!(on_a.is_open() && on_b.is_open());
    assert_eq!(on_a.counterparty().connection_id(), Some(&conn));
    assert_eq!(on_b.counterparty().connection_id(), Some(&conn));
}

#[test]
fn a_try_with_a_proof_of_another_state_fails_and_stores_nothing() {
    let (mut a, mut b) = two_chains_with_clients();
    let client = first_client();
    let conn = ConnectionId::new(0);
    let init = MsgConnectionOpenInit {
        client_id_on_a: client.clone(),
        counterparty: Counterparty::new(client.clone(), None, commitment_prefix()),
        version: None,
        delay_period: std::time::Duration::ZERO,
        signer: signer(&me()),
    };
    assert_eq!(a.submit(&relayer(), vec![init.to_any()]).code, CODE_OK);
    a.block(vec![]);
    let before = client_height(&b, &client);
    let proofs = handshake_proofs(&a, &conn, &client);
    // The connection proof of a's client state instead: it proves another key and value.
    let try_msg = MsgConnectionOpenTry {
        client_id_on_b: client.clone(),
        client_state_of_b_on_a: proofs.client_state,
        counterparty: Counterparty::new(client.clone(), Some(conn.clone()), commitment_prefix()),
        versions_on_a: Version::compatibles(),
        proof_conn_end_on_a: proofs.client.clone(),
        proof_client_state_of_b_on_a: proofs.client,
        proof_consensus_state_of_b_on_a: proofs.consensus,
        proofs_height_on_a: proofs.height,
        consensus_height_of_b_on_a: proofs.consensus_height,
        delay_period: std::time::Duration::ZERO,
        signer: signer(&me()),
        proof_consensus_state_of_b: None,
        #[allow(deprecated)]
        previous_connection_id: String::new(),
    };
    let r = b.submit(&relayer(), vec![update(&b, &client, &a), try_msg.to_any()]);
    assert_ne!(r.code, CODE_OK);
    assert!(
        r.log.contains("message 1") && r.log.contains("verif"),
        "{}",
        r.log
    );
    assert_eq!(b.get(ConnectionPath::new(&conn).into()), None);
    // The update in the same transaction is gone too.
    assert_eq!(client_height(&b, &client), before);
}
