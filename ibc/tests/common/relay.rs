//! A relayer's work between two in-process chains: client updates, the connection and channel
//! handshakes, and packets with their acknowledgements — the messages a relayer builds, with the proofs
//! it reads from the source chain at the height the destination's client has just been updated to.

use basalt_consensus::types::Address;
use basalt_ibc::client::ClientState;
use basalt_ibc::commitment::commitment_prefix;
use basalt_ibc::relay;
use basalt_state::app::{TxResult, CODE_OK};
use ibc_core::channel::types::channel::{ChannelEnd, Order};
use ibc_core::channel::types::msgs::{
    MsgChannelOpenAck, MsgChannelOpenConfirm, MsgChannelOpenInit, MsgChannelOpenTry,
};
use ibc_core::channel::types::packet::Packet;
use ibc_core::channel::types::Version as ChannelVersion;
use ibc_core::client::types::Height as IbcHeight;
use ibc_core::commitment_types::commitment::CommitmentProofBytes;
use ibc_core::connection::types::msgs::{
    MsgConnectionOpenAck, MsgConnectionOpenConfirm, MsgConnectionOpenInit, MsgConnectionOpenTry,
};
use ibc_core::connection::types::version::Version;
use ibc_core::connection::types::{ConnectionEnd, Counterparty};
use ibc_core::host::types::identifiers::{ChannelId, ClientId, ConnectionId, PortId};
use ibc_core::host::types::path::{
    AckPath, ChannelEndPath, ClientConsensusStatePath, ClientStatePath, CommitmentPath,
    ConnectionPath, ReceiptPath,
};
use ibc_core::primitives::proto::{Any, Protobuf};
use ibc_core::primitives::ToProto;
use prost::Message;

use super::{first_client, relayer, signer, Chain};

/// The relayer's address.
pub fn me() -> Address {
    relayer().public_key().address()
}

/// Asserts a transaction succeeded.
pub fn ok(result: TxResult) -> TxResult {
    assert_eq!(result.code, CODE_OK, "{}", result.log);
    result
}

/// Two chains, each with a client of the other (its first); block `h` of one is followed by block `h`
/// of the other, so their clocks agree.
pub fn two_chains_with_clients() -> (Chain, Chain) {
    let mut a = Chain::new("basalt-a");
    let mut b = Chain::new("basalt-b");
    for _ in 0..3 {
        a.block(vec![]);
        b.block(vec![]);
    }
    ok(a.submit(&relayer(), vec![b.create_client_msg(b.latest(), &me())]));
    ok(b.submit(&relayer(), vec![a.create_client_msg(a.latest(), &me())]));
    (a, b)
}

/// The latest consensus height `client` (on `host`) holds of the counterparty.
pub fn client_height(host: &Chain, client: &ClientId) -> u64 {
    let bytes = host
        .get(ClientStatePath::new(client.clone()).into())
        .unwrap();
    let state = ClientState::from_any(&Any::decode(bytes.as_slice()).unwrap()).unwrap();
    state.latest_height.0
}

/// Brings `client` on `host` up to `source`'s latest block (trusting its latest consensus state).
pub fn update(host: &Chain, client: &ClientId, source: &Chain) -> Any {
    let trusted = client_height(host, client);
    source.update_client_msg(client, trusted, source.latest(), &me())
}

/// A connection end as stored.
pub fn connection(chain: &Chain, id: &ConnectionId) -> ConnectionEnd {
    ConnectionEnd::decode_vec(&chain.get(ConnectionPath::new(id).into()).unwrap()).unwrap()
}

/// A channel end as stored.
pub fn channel(chain: &Chain, port: &PortId, id: &ChannelId) -> ChannelEnd {
    ChannelEnd::decode_vec(&chain.get(ChannelEndPath::new(port, id).into()).unwrap()).unwrap()
}

/// What `source` proves about its connection `conn`, its client of the other chain and that client's
/// latest consensus state.
pub struct HandshakeProofs {
    pub client_state: Any,
    pub conn: CommitmentProofBytes,
    pub client: CommitmentProofBytes,
    pub consensus: CommitmentProofBytes,
    pub height: IbcHeight,
    pub consensus_height: IbcHeight,
}

pub fn handshake_proofs(source: &Chain, conn: &ConnectionId, client: &ClientId) -> HandshakeProofs {
    let (_, conn_proof, height) = source.prove(ConnectionPath::new(conn).into());
    let (client_state, client_proof, _) = source.prove(ClientStatePath::new(client.clone()).into());
    let client_state = Any::decode(client_state.unwrap().as_slice()).unwrap();
    let state = ClientState::from_any(&client_state).unwrap();
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

/// ConnOpenInit of a connection on `client` to the counterparty's `client`.
pub fn conn_init(client: &ClientId) -> Any {
    MsgConnectionOpenInit {
        client_id_on_a: client.clone(),
        counterparty: Counterparty::new(client.clone(), None, commitment_prefix()),
        version: None,
        delay_period: std::time::Duration::ZERO,
        signer: signer(&me()),
    }
    .to_any()
}

/// ConnOpenTry answering `a`'s connection `conn` (a's state proved at a's latest height).
pub fn conn_try(a: &Chain, conn: &ConnectionId, client: &ClientId) -> MsgConnectionOpenTry {
    let proofs = handshake_proofs(a, conn, client);
    MsgConnectionOpenTry {
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
    }
}

/// ConnOpenAck on `a` of `b`'s connection `conn`.
pub fn conn_ack(b: &Chain, conn: &ConnectionId, client: &ClientId) -> Any {
    let proofs = handshake_proofs(b, conn, client);
    MsgConnectionOpenAck {
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
    }
    .to_any()
}

/// ConnOpenConfirm on `b` of `a`'s open connection `conn`.
pub fn conn_confirm(a: &Chain, conn: &ConnectionId) -> Any {
    let (_, proof, height) = a.prove(ConnectionPath::new(conn).into());
    MsgConnectionOpenConfirm {
        conn_id_on_b: conn.clone(),
        proof_conn_end_on_a: proof,
        proof_height_on_a: height,
        signer: signer(&me()),
    }
    .to_any()
}

/// Runs the four-step connection handshake from `a` (both chains' first client and connection).
pub fn open_connection(a: &mut Chain, b: &mut Chain) -> ConnectionId {
    let client = first_client();
    let conn = ConnectionId::new(0);
    ok(a.submit(&relayer(), vec![conn_init(&client)]));
    a.block(vec![]);
    let try_msg = conn_try(a, &conn, &client).to_any();
    ok(b.submit(&relayer(), vec![update(b, &client, a), try_msg]));
    b.block(vec![]);
    let ack = conn_ack(b, &conn, &client);
    ok(a.submit(&relayer(), vec![update(a, &client, b), ack]));
    a.block(vec![]);
    let confirm = conn_confirm(a, &conn);
    ok(b.submit(&relayer(), vec![update(b, &client, a), confirm]));
    conn
}

/// Opens an unordered ICS-20 channel (`transfer` to `transfer`, version `ics20-1`) on `conn` from `a`;
/// returns its id, the same on both chains (each chain's first).
pub fn open_transfer_channel(a: &mut Chain, b: &mut Chain, conn: &ConnectionId) -> ChannelId {
    let client = first_client();
    let port = PortId::transfer();
    let chan = ChannelId::new(0);
    let version = ChannelVersion::new("ics20-1".to_owned());
    let init = MsgChannelOpenInit {
        port_id_on_a: port.clone(),
        connection_hops_on_a: vec![conn.clone()],
        port_id_on_b: port.clone(),
        ordering: Order::Unordered,
        signer: signer(&me()),
        version_proposal: version.clone(),
    };
    ok(a.submit(&relayer(), vec![init.to_any()]));
    a.block(vec![]);
    let (_, proof, height) = a.prove(ChannelEndPath::new(&port, &chan).into());
    #[allow(deprecated)]
    let try_msg = MsgChannelOpenTry {
        port_id_on_b: port.clone(),
        connection_hops_on_b: vec![conn.clone()],
        port_id_on_a: port.clone(),
        chan_id_on_a: chan.clone(),
        version_supported_on_a: version.clone(),
        proof_chan_end_on_a: proof,
        proof_height_on_a: height,
        ordering: Order::Unordered,
        signer: signer(&me()),
        version_proposal: ChannelVersion::empty(),
    };
    ok(b.submit(&relayer(), vec![update(b, &client, a), try_msg.to_any()]));
    b.block(vec![]);
    let (_, proof, height) = b.prove(ChannelEndPath::new(&port, &chan).into());
    let ack = MsgChannelOpenAck {
        port_id_on_a: port.clone(),
        chan_id_on_a: chan.clone(),
        chan_id_on_b: chan.clone(),
        version_on_b: version,
        proof_chan_end_on_b: proof,
        proof_height_on_b: height,
        signer: signer(&me()),
    };
    ok(a.submit(&relayer(), vec![update(a, &client, b), ack.to_any()]));
    a.block(vec![]);
    let (_, proof, height) = a.prove(ChannelEndPath::new(&port, &chan).into());
    let confirm = MsgChannelOpenConfirm {
        port_id_on_b: port,
        chan_id_on_b: chan.clone(),
        proof_chan_end_on_a: proof,
        proof_height_on_a: height,
        signer: signer(&me()),
    };
    ok(b.submit(&relayer(), vec![update(b, &client, a), confirm.to_any()]));
    chan
}

/// Delivers `packet` (sent by `from`) to `to`, with the proof of its commitment; returns the result.
pub fn recv(to: &mut Chain, from: &mut Chain, packet: &Packet) -> TxResult {
    from.block(vec![]);
    let path = CommitmentPath::new(&packet.port_id_on_a, &packet.chan_id_on_a, packet.seq_on_a);
    let (stored, proven) = from.proven(path.into());
    assert!(stored.is_some(), "the packet is committed on its source");
    let update = update(to, &first_client(), from);
    to.submit(
        &relayer(),
        vec![update, relay::recv_packet(packet.clone(), proven, &me())],
    )
}

/// Delivers `to`'s acknowledgement `ack` of `packet` back to its sender `from`.
pub fn acknowledge(from: &mut Chain, to: &mut Chain, packet: &Packet, ack: Vec<u8>) -> TxResult {
    to.block(vec![]);
    let path = AckPath::new(&packet.port_id_on_b, &packet.chan_id_on_b, packet.seq_on_a);
    let (stored, proven) = to.proven(path.into());
    assert!(
        stored.is_some(),
        "the acknowledgement is written on the destination"
    );
    let msg = relay::acknowledge(packet.clone(), ack, proven, &me()).unwrap();
    let update = update(from, &first_client(), to);
    from.submit(&relayer(), vec![update, msg])
}

/// Tells `from` that `to` never received `packet` (proved absent at `to`'s latest state).
pub fn time_out(from: &mut Chain, to: &mut Chain, packet: &Packet) -> TxResult {
    to.block(vec![]);
    let path = ReceiptPath::new(&packet.port_id_on_b, &packet.chan_id_on_b, packet.seq_on_a);
    let (stored, proven) = to.proven(path.into());
    assert!(stored.is_none(), "no receipt on the destination");
    let update = update(from, &first_client(), to);
    from.submit(
        &relayer(),
        vec![update, relay::timeout(packet.clone(), proven, &me())],
    )
}

/// The value of attribute `key` of the first event of `kind` in `result`.
pub fn attribute<'r>(result: &'r TxResult, kind: &str, key: &str) -> &'r str {
    result
        .events
        .iter()
        .find(|e| e.kind == kind)
        .and_then(|e| e.attributes.iter().find(|a| a.key == key))
        .map(|a| a.value.as_str())
        .unwrap_or_else(|| panic!("no {kind}.{key} in {:?}", result.events))
}
