//! A relayer's messages, built from what it reads off two chains (pure: no I/O; `basalt relay` and the
//! in-process tests feed it).
//!
//! Proof heights follow [`crate::commitment`]: a value of state version `v` is proved against the
//! consensus state of height `v + 1` (whose header's `app_hash` is that state's root), so the relayer
//! first updates the destination's client to `v + 1` — a [`Proven`] carries that height.

use basalt_consensus::light::{LightBlock, VerifiedBlock};
use basalt_consensus::types::{Address, ValidatorSet};
use basalt_consensus::Height;
use basalt_state::app::Event;
use ibc_core::channel::types::acknowledgement::Acknowledgement;
use ibc_core::channel::types::commitment::compute_ack_commitment;
use ibc_core::channel::types::msgs::{MsgAcknowledgement, MsgRecvPacket, MsgTimeout};
use ibc_core::channel::types::packet::Packet;
use ibc_core::channel::types::timeout::{TimeoutHeight, TimeoutTimestamp};
use ibc_core::client::types::msgs::MsgUpdateClient;
use ibc_core::client::types::Height as IbcHeight;
use ibc_core::commitment_types::commitment::CommitmentProofBytes;
use ibc_core::host::types::identifiers::{ChannelId, ClientId, PortId, Sequence};
use ibc_core::primitives::proto::Any;
use ibc_core::primitives::{Signer, Timestamp, ToProto};

use crate::client::wire::Misbehaviour;
use crate::client::ClientHeader;

/// Why a relayer cannot build a message.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// An event lacks an attribute or carries one that does not parse.
    #[error("event {kind}: attribute {key}: {reason}")]
    BadEvent {
        /// The event's type.
        kind: String,
        /// The attribute.
        key: &'static str,
        /// Why.
        reason: String,
    },
    /// The acknowledgement bytes are empty.
    #[error("empty acknowledgement")]
    EmptyAcknowledgement,
}

/// A proof read from a chain: the value (or its absence) and the height to check it at.
#[derive(Clone, Debug)]
pub struct Proven {
    /// The proof (ICS-23 inside ibc-rs's `MerkleProof`).
    pub proof: CommitmentProofBytes,
    /// The proof height (the state version read, plus one).
    pub height: IbcHeight,
}

/// `address` as a message signer.
pub fn signer(address: &Address) -> Signer {
    Signer::from(address.to_hex_upper())
}

/// `MsgUpdateClient` bringing `client_id` to `target`, trusting its consensus state of `trusted_height`
/// whose next validator set is `trusted_next`.
pub fn update_client(
    client_id: &ClientId,
    target: LightBlock,
    trusted_height: u64,
    trusted_next: ValidatorSet,
    by: &Address,
) -> Any {
    MsgUpdateClient {
        client_id: client_id.clone(),
        client_message: ClientHeader {
            block: target,
            trusted_height: Height(trusted_height),
            trusted_next_validators: trusted_next,
        }
        .to_any(),
        signer: signer(by),
    }
    .to_any()
}

/// The `MsgUpdateClient`s that bring `client_id` from its consensus state of `trusted_height` (whose
/// next validator set is `trusted_next`) through `steps`, the blocks a skipping verification
/// ([`basalt_consensus::light::Skipping`]) verified on the way to the target, the target last. Each
/// message trusts the consensus state the one before it stores, so a client crosses validator-set
/// changes that no single header could: executed in order (in one transaction or in nonce order),
/// every step passes the client's own trust-level rule.
pub fn update_client_steps(
    client_id: &ClientId,
    trusted_height: u64,
    trusted_next: ValidatorSet,
    steps: Vec<VerifiedBlock>,
    by: &Address,
) -> Vec<Any> {
    let mut from = (trusted_height, trusted_next);
    steps
        .into_iter()
        .map(|step| {
            let next = (step.block.header.height.0, step.next_validators);
            let (height, set) = std::mem::replace(&mut from, next);
            update_client(client_id, step.block, height, set, by)
        })
        .collect()
}

/// `MsgRecvPacket` for `packet`, with the proof of its commitment on the source.
pub fn recv_packet(packet: Packet, commitment: Proven, by: &Address) -> Any {
    MsgRecvPacket {
        packet,
        proof_commitment_on_a: commitment.proof,
        proof_height_on_a: commitment.height,
        signer: signer(by),
    }
    .to_any()
}

/// `MsgAcknowledgement` of `packet` with the destination's `ack` and the proof that it wrote it.
pub fn acknowledge(
    packet: Packet,
    ack: Vec<u8>,
    acked: Proven,
    by: &Address,
) -> Result<Any, RelayError> {
    Ok(MsgAcknowledgement {
        packet,
        acknowledgement: Acknowledgement::try_from(ack)
            .map_err(|_| RelayError::EmptyAcknowledgement)?,
        proof_acked_on_b: acked.proof,
        proof_height_on_b: acked.height,
        signer: signer(by),
    }
    .to_any())
}

/// `MsgTimeout` of `packet` (unordered channel) with the proof that the destination has no receipt.
pub fn timeout(packet: Packet, unreceived: Proven, by: &Address) -> Any {
    MsgTimeout {
        next_seq_recv_on_b: packet.seq_on_a,
        packet,
        proof_unreceived_on_b: unreceived.proof,
        proof_height_on_b: unreceived.height,
        signer: signer(by),
    }
    .to_any()
}

/// The packet a `send_packet` event (ibc-go's attributes, as Basalt emits them) announces.
pub fn packet_from_event(event: &Event) -> Result<Packet, RelayError> {
    let get = |key: &'static str| attribute(event, key);
    let bad = |key: &'static str, reason: String| RelayError::BadEvent {
        kind: event.kind.clone(),
        key,
        reason,
    };
    let port = |key: &'static str| -> Result<PortId, RelayError> {
        get(key)?.parse().map_err(|e| bad(key, format!("{e}")))
    };
    let channel = |key: &'static str| -> Result<ChannelId, RelayError> {
        get(key)?.parse().map_err(|e| bad(key, format!("{e}")))
    };
    let sequence: u64 = get("packet_sequence")?
        .parse()
        .map_err(|e| bad("packet_sequence", format!("{e}")))?;
    let data =
        hex::decode(get("packet_data_hex")?).map_err(|e| bad("packet_data_hex", e.to_string()))?;
    let timeout_height = match get("packet_timeout_height")? {
        "0-0" => TimeoutHeight::Never,
        text => TimeoutHeight::At(
            text.parse::<IbcHeight>()
                .map_err(|e| bad("packet_timeout_height", e.to_string()))?,
        ),
    };
    let timeout_ns: u64 = get("packet_timeout_timestamp")?
        .parse()
        .map_err(|e| bad("packet_timeout_timestamp", format!("{e}")))?;
    let timeout_timestamp = match timeout_ns {
        0 => TimeoutTimestamp::Never,
        ns => TimeoutTimestamp::At(Timestamp::from_nanoseconds(ns)),
    };
    Ok(Packet {
        seq_on_a: Sequence::from(sequence),
        port_id_on_a: port("packet_src_port")?,
        chan_id_on_a: channel("packet_src_channel")?,
        port_id_on_b: port("packet_dst_port")?,
        chan_id_on_b: channel("packet_dst_channel")?,
        data,
        timeout_height_on_b: timeout_height,
        timeout_timestamp_on_b: timeout_timestamp,
    })
}

/// The acknowledgement a `write_acknowledgement` event carries.
pub fn ack_from_event(event: &Event) -> Result<Vec<u8>, RelayError> {
    hex::decode(attribute(event, "packet_ack_hex")?).map_err(|e| RelayError::BadEvent {
        kind: event.kind.clone(),
        key: "packet_ack_hex",
        reason: e.to_string(),
    })
}

/// The acknowledgement whose commitment (as stored at its ICS-24 path) is `commitment`, when it is one
/// of the two a Basalt chain's ICS-20 writes ([`crate::transfer::success_ack`],
/// [`crate::transfer::ERROR_ACK`]): the relayer then needs no `write_acknowledgement` event to learn its
/// bytes — the proved commitment pins them. `None` for any other (another chain's error text).
pub fn known_ack(commitment: &[u8]) -> Option<Vec<u8>> {
    [
        crate::transfer::success_ack(),
        crate::transfer::ERROR_ACK.to_vec(),
    ]
    .into_iter()
    .find(|ack| {
        Acknowledgement::try_from(ack.clone())
            .is_ok_and(|a| compute_ack_commitment(&a).as_ref() == commitment)
    })
}

/// The client an `update_client` event updated and the header that did it: ibc-rs puts the whole client
/// message in its `header` attribute (hex of the encoded `Any`). A misbehaviour watcher compares that
/// header with the block the counterparty really committed at its height.
pub fn header_from_update_event(event: &Event) -> Result<(ClientId, ClientHeader), RelayError> {
    let bad = |key: &'static str, reason: String| RelayError::BadEvent {
        kind: event.kind.clone(),
        key,
        reason,
    };
    let client_id = attribute(event, "client_id")?
        .parse()
        .map_err(|e| bad("client_id", format!("{e}")))?;
    let bytes =
        hex::decode(attribute(event, "header")?).map_err(|e| bad("header", e.to_string()))?;
    let any = <Any as prost::Message>::decode(bytes.as_slice())
        .map_err(|e| bad("header", e.to_string()))?;
    let header = ClientHeader::from_any(&any).map_err(|e| bad("header", e.to_string()))?;
    Ok((client_id, header))
}

/// Misbehaviour evidence freezing `client_id`: two headers of one height naming different blocks, each
/// verifiable from a consensus state the client holds (the light client checks both). Sent as
/// `MsgUpdateClient` with the evidence as its client message, as ibc-go and ibc-rs now want it
/// (`MsgSubmitMisbehaviour` is deprecated in both; Basalt's client handles either).
pub fn submit_misbehaviour(
    client_id: &ClientId,
    first: ClientHeader,
    second: ClientHeader,
    by: &Address,
) -> Any {
    MsgUpdateClient {
        client_id: client_id.clone(),
        client_message: Misbehaviour { first, second }.to_any(),
        signer: signer(by),
    }
    .to_any()
}

/// The value of attribute `key` of `event`.
fn attribute<'e>(event: &'e Event, key: &'static str) -> Result<&'e str, RelayError> {
    event
        .attributes
        .iter()
        .find(|a| a.key == key)
        .map(|a| a.value.as_str())
        .ok_or_else(|| RelayError::BadEvent {
            kind: event.kind.clone(),
            key,
            reason: "missing".to_owned(),
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    fn send_packet(overrides: &[(&str, &str)]) -> Event {
        let mut attributes = vec![
            ("packet_sequence", "7"),
            ("packet_src_port", "transfer"),
            ("packet_src_channel", "channel-0"),
            ("packet_dst_port", "transfer"),
            ("packet_dst_channel", "channel-4"),
            ("packet_data_hex", "7b7d"),
            ("packet_timeout_height", "2-90"),
            ("packet_timeout_timestamp", "0"),
        ];
        for (key, value) in overrides {
            match attributes.iter_mut().find(|(k, _)| k == key) {
                Some(slot) => slot.1 = value,
                None => attributes.push((key, value)),
            }
        }
        attributes.retain(|(_, v)| *v != "<none>");
        let owned: Vec<(&str, String)> = attributes
            .iter()
            .map(|(k, v)| (*k, (*v).to_owned()))
            .collect();
        Event::new("send_packet", &owned)
    }

    #[test]
    fn a_send_packet_event_gives_back_the_packet() {
        let packet = packet_from_event(&send_packet(&[])).unwrap();
        assert_eq!(packet.seq_on_a, Sequence::from(7));
        assert_eq!(packet.chan_id_on_b, ChannelId::new(4));
        assert_eq!(packet.data, b"{}");
        assert_eq!(
            packet.timeout_height_on_b,
            TimeoutHeight::At(IbcHeight::new(2, 90).unwrap())
        );
        assert_eq!(packet.timeout_timestamp_on_b, TimeoutTimestamp::Never);
        let never = packet_from_event(&send_packet(&[
            ("packet_timeout_height", "0-0"),
            ("packet_timeout_timestamp", "5"),
        ]))
        .unwrap();
        assert_eq!(never.timeout_height_on_b, TimeoutHeight::Never);
        assert_eq!(
            never.timeout_timestamp_on_b,
            TimeoutTimestamp::At(Timestamp::from_nanoseconds(5))
        );
    }

    #[test]
    fn a_broken_send_packet_event_names_the_attribute() {
        for (key, value) in [
            ("packet_data_hex", "<none>"),
            ("packet_data_hex", "zz"),
            ("packet_sequence", "-1"),
            ("packet_timeout_height", "ninety"),
            ("packet_src_channel", "chan 0"),
        ] {
            match packet_from_event(&send_packet(&[(key, value)])) {
                Err(RelayError::BadEvent { key: got, .. }) => assert_eq!(got, key),
                other => panic!("{key}={value}: {other:?}"),
            }
        }
    }

    fn header(height: u64, app_hash: u8) -> ClientHeader {
        use basalt_consensus::light::fixture;
        let chain = basalt_consensus::types::ChainId::new("basalt-b").unwrap();
        let set = fixture::set(&[(1, 10), (2, 10)]);
        ClientHeader {
            block: fixture::light_block(
                &chain,
                height,
                1_000 * height,
                &set,
                &set,
                basalt_consensus::types::Hash([app_hash; 32]),
                &[1, 2],
            ),
            trusted_height: Height(3),
            trusted_next_validators: set,
        }
    }

    /// The event ibc-rs emits for an update (its `header` attribute: hex of the encoded `Any`).
    fn update_event(client: &str, header_hex: &str) -> Event {
        Event::new(
            "update_client",
            &[
                ("client_id", client.to_owned()),
                ("client_type", "99-basalt".to_owned()),
                ("consensus_height", "0-9".to_owned()),
                ("header", header_hex.to_owned()),
            ],
        )
    }

    #[test]
    fn an_update_client_event_gives_back_the_header_that_updated() {
        let header = header(9, 7);
        let hex = hex::encode(prost::Message::encode_to_vec(&header.to_any()));
        let (client, got) = header_from_update_event(&update_event("99-basalt-4", &hex)).unwrap();
        assert_eq!(client.as_str(), "99-basalt-4");
        assert_eq!(got, header);
        for (event, key) in [
            (update_event("99-basalt-4", "zz"), "header"),
            (update_event("99-basalt-4", "0a00"), "header"),
            (update_event("not a client", &hex), "client_id"),
            (
                Event::new("update_client", &[("header", hex.clone())]),
                "client_id",
            ),
        ] {
            match header_from_update_event(&event) {
                Err(RelayError::BadEvent { key: got, .. }) => assert_eq!(got, key),
                other => panic!("{key}: {other:?}"),
            }
        }
    }

    #[test]
    fn submitted_misbehaviour_carries_both_headers_for_the_client() {
        use ibc_core::client::types::msgs::ClientMsg;
        use ibc_core::handler::types::msgs::MsgEnvelope;
        let (first, second) = (header(9, 7), header(9, 8));
        let by = Address([0x11; 20]);
        let any = submit_misbehaviour(
            &"99-basalt-0".parse().unwrap(),
            first.clone(),
            second.clone(),
            &by,
        );
        let Ok(MsgEnvelope::Client(ClientMsg::UpdateClient(msg))) = MsgEnvelope::try_from(any)
        else {
            panic!("not a client update");
        };
        assert_eq!(msg.client_id.as_str(), "99-basalt-0");
        assert_eq!(msg.signer, signer(&by));
        let evidence = Misbehaviour::from_any(&msg.client_message).unwrap();
        assert_eq!((evidence.first, evidence.second), (first, second));
    }

    #[test]
    fn the_two_acknowledgements_a_basalt_chain_writes_are_known_by_their_commitment() {
        // ICS-20's success acknowledgement, `{"result":"AQ=="}`: the golden commitment of
        // `commitment/tests.rs`.
        let success =
            hex::decode("08f7557ed51826fe18d84512bf24ec75001edbaf2123a477df72a0a9f3640a7c")
                .unwrap();
        assert_eq!(known_ack(&success).unwrap(), br#"{"result":"AQ=="}"#);
        let error = Acknowledgement::try_from(crate::transfer::ERROR_ACK.to_vec()).unwrap();
        assert_eq!(
            known_ack(compute_ack_commitment(&error).as_ref()).unwrap(),
            crate::transfer::ERROR_ACK
        );
        // Anything else (another chain's error text, a wrong length) is left to the event.
        let other = Acknowledgement::try_from(br#"{"error":"other"}"#.to_vec()).unwrap();
        assert_eq!(known_ack(compute_ack_commitment(&other).as_ref()), None);
        assert_eq!(known_ack(&success[..31]), None);
        assert_eq!(known_ack(&[]), None);
    }
}
