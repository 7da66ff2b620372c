//! `basalt relay start`: packets, acknowledgements and timeouts across an ICS-20 path, reconciled from
//! chain state on every pass — never from a local database, so a restarted relayer delivers nothing
//! twice and misses nothing. For each packet the source committed (`nextSequenceSend` bounds them):
//!
//! - commitment gone on the source: acknowledged or timed out, done;
//! - no receipt on the destination: past its timeout (destination height or time) → `MsgTimeout` on the
//!   source (the receipt's absence proved); otherwise → `MsgRecvPacket` on the destination;
//! - receipt and acknowledgement on the destination → `MsgAcknowledgement` on the source.
//!
//! Events (`send_packet`, `write_acknowledgement`, found with `tx_search`) only supply what state does
//! not keep: the packet's data and the acknowledgement's bytes. Each message is checked against the
//! destination's state right before it is sent, so the relayer never pays for a redundant one.

use basalt_ibc::relay::{self, Proven};
use basalt_state::app::{Event, EventAttribute};
use ibc_core::channel::types::packet::Packet;
use ibc_core::channel::types::timeout::{TimeoutHeight, TimeoutTimestamp};
use ibc_core::host::types::identifiers::{ChannelId, ClientId, PortId, Sequence};
use ibc_core::host::types::path::{AckPath, CommitmentPath, Path, ReceiptPath, SeqSendPath};
use serde_json::Value;

use super::path::{update, PathIds};
use super::remote::Remote;
use super::RelayError;

/// One direction of a path: packets sent on `src`'s channel to `dst`'s.
pub struct Direction<'a> {
    /// Where packets are sent.
    pub src: &'a Remote,
    /// Where they are received.
    pub dst: &'a Remote,
    /// The client of `src` on `dst`.
    pub client_on_dst: &'a ClientId,
    /// The client of `dst` on `src`.
    pub client_on_src: &'a ClientId,
    /// The channel on `src`.
    pub src_channel: &'a ChannelId,
    /// The channel on `dst`.
    pub dst_channel: &'a ChannelId,
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// Packets delivered.
    pub received: u64,
    /// Acknowledgements delivered.
    pub acknowledged: u64,
    /// Timeouts delivered.
    pub timed_out: u64,
    /// Packets still in flight after the pass.
    pub pending: u64,
}

/// The two directions of `ids` between `a` and `b`.
pub fn directions<'a>(a: &'a Remote, b: &'a Remote, ids: &'a PathIds) -> [Direction<'a>; 2] {
    [
        Direction {
            src: a,
            dst: b,
            client_on_dst: &ids.clients.1,
            client_on_src: &ids.clients.0,
            src_channel: &ids.channels.0,
            dst_channel: &ids.channels.1,
        },
        Direction {
            src: b,
            dst: a,
            client_on_dst: &ids.clients.0,
            client_on_src: &ids.clients.1,
            src_channel: &ids.channels.1,
            dst_channel: &ids.channels.0,
        },
    ]
}

/// One pass over a direction's packets from `from` (earlier ones are known done); returns what it did
/// and the first sequence still in flight.
pub async fn relay_pass(d: &Direction<'_>, from: u64) -> Result<(Pass, u64), RelayError> {
    let port = PortId::transfer();
    let next_send = d
        .src
        .counter(&SeqSendPath::new(&port, d.src_channel).into())
        .await?;
    let mut pass = Pass::default();
    let mut first_pending = next_send.max(from);
    for seq in from.max(1)..next_send {
        let sequence = Sequence::from(seq);
        let commitment = CommitmentPath::new(&port, d.src_channel, sequence);
        if d.src.get(&commitment.into()).await?.is_none() {
            continue; // acknowledged or timed out
        }
        first_pending = first_pending.min(seq);
        let packet = sent_packet(d, seq).await?;
        let receipt = ReceiptPath::new(&port, d.dst_channel, sequence);
        if d.dst.get(&receipt.into()).await?.is_none() {
            if timed_out(d, &packet).await? {
                pass.timed_out += u64::from(deliver_timeout(d, packet).await?);
            } else {
                pass.received += u64::from(deliver_packet(d, packet).await?);
            }
            continue;
        }
        let ack_path = AckPath::new(&port, d.dst_channel, sequence);
        if d.dst.get(&ack_path.into()).await?.is_some() {
            let ack = written_ack(d, seq).await?;
            pass.acknowledged += u64::from(deliver_ack(d, packet, ack).await?);
        } else {
            pass.pending += 1;
        }
    }
    Ok((pass, first_pending))
}

/// The packet `seq` as its `send_packet` event on the source tells it.
async fn sent_packet(d: &Direction<'_>, seq: u64) -> Result<Packet, RelayError> {
    let query = format!(
        "send_packet.packet_src_channel='{}' AND send_packet.packet_sequence='{seq}'",
        d.src_channel
    );
    let event = find_event(d.src, &query, "send_packet", |e| {
        attribute(e, "packet_src_channel") == Some(d.src_channel.as_str())
            && attribute(e, "packet_sequence") == Some(seq.to_string().as_str())
    })
    .await?;
    relay::packet_from_event(&event).map_err(|e| RelayError::State(e.to_string()))
}

/// The acknowledgement of packet `seq` as its `write_acknowledgement` event on the destination tells it.
async fn written_ack(d: &Direction<'_>, seq: u64) -> Result<Vec<u8>, RelayError> {
    let query = format!(
        "write_acknowledgement.packet_dst_channel='{}' AND write_acknowledgement.packet_sequence='{seq}'",
        d.dst_channel
    );
    let event = find_event(d.dst, &query, "write_acknowledgement", |e| {
        attribute(e, "packet_dst_channel") == Some(d.dst_channel.as_str())
            && attribute(e, "packet_sequence") == Some(seq.to_string().as_str())
    })
    .await?;
    relay::ack_from_event(&event).map_err(|e| RelayError::State(e.to_string()))
}

fn attribute<'e>(event: &'e Event, key: &str) -> Option<&'e str> {
    event
        .attributes
        .iter()
        .find(|a| a.key == key)
        .map(|a| a.value.as_str())
}

/// The first event of `kind` satisfying `pick` in the transactions `query` finds.
async fn find_event(
    chain: &Remote,
    query: &str,
    kind: &str,
    pick: impl Fn(&Event) -> bool,
) -> Result<Event, RelayError> {
    for tx in chain.tx_search(query).await? {
        let events = tx
            .pointer("/tx_result/events")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for raw in events {
            if raw["type"] != kind {
                continue;
            }
            let event = Event {
                kind: kind.to_owned(),
                attributes: raw["attributes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| EventAttribute {
                        key: a["key"].as_str().unwrap_or_default().to_owned(),
                        value: a["value"].as_str().unwrap_or_default().to_owned(),
                        index: true,
                    })
                    .collect(),
            };
            if pick(&event) {
                return Ok(event);
            }
        }
    }
    Err(RelayError::State(format!(
        "no {kind} event on {} for {query}",
        chain.chain_id
    )))
}

/// Whether `packet` can no longer be received: the destination's latest height or block time is at
/// or past its timeout.
async fn timed_out(d: &Direction<'_>, packet: &Packet) -> Result<bool, RelayError> {
    let latest = d.dst.latest().await?;
    let (block, _) = d.dst.light_block(latest).await?;
    let by_height = match packet.timeout_height_on_b {
        TimeoutHeight::Never => false,
        TimeoutHeight::At(h) => latest >= h.revision_height(),
    };
    let by_time = match packet.timeout_timestamp_on_b {
        TimeoutTimestamp::Never => false,
        TimeoutTimestamp::At(t) => {
            block.header.time_ms.saturating_mul(1_000_000) >= t.nanoseconds()
        }
    };
    Ok(by_height || by_time)
}

/// The value at `path` on `chain` proved at its latest height (after waiting for one more block, so the
/// state read is committed under a header).
async fn proven(chain: &Remote, path: Path) -> Result<(Option<Vec<u8>>, Proven, u64), RelayError> {
    let latest = chain.latest().await?;
    let (value, proof) = chain.prove(&path, latest).await?;
    Ok((value, proof, latest))
}

/// Sends `packet` to the destination; whether a transaction went out (`false`: nothing to do now).
async fn deliver_packet(d: &Direction<'_>, packet: Packet) -> Result<bool, RelayError> {
    let path = CommitmentPath::new(&packet.port_id_on_a, &packet.chan_id_on_a, packet.seq_on_a);
    let (value, proof, height) = proven(d.src, path.into()).await?;
    if value.is_none() {
        return Ok(false); // acknowledged or timed out meanwhile
    }
    let receipt = ReceiptPath::new(&packet.port_id_on_b, &packet.chan_id_on_b, packet.seq_on_a);
    if d.dst.get(&receipt.into()).await?.is_some() {
        return Ok(false); // another relayer was faster
    }
    let mut msgs = update(d.dst, d.client_on_dst, d.src, height).await?;
    msgs.push(relay::recv_packet(packet, proof, &d.dst.address()));
    d.dst.submit(msgs).await.map(|_| true)
}

/// Sends the acknowledgement back to the source; whether a transaction went out.
async fn deliver_ack(d: &Direction<'_>, packet: Packet, ack: Vec<u8>) -> Result<bool, RelayError> {
    let path = AckPath::new(&packet.port_id_on_b, &packet.chan_id_on_b, packet.seq_on_a);
    let (value, proof, height) = proven(d.dst, path.into()).await?;
    if value.is_none() {
        return Ok(false); // not yet under a header the proof can use
    }
    let commitment =
        CommitmentPath::new(&packet.port_id_on_a, &packet.chan_id_on_a, packet.seq_on_a);
    if d.src.get(&commitment.into()).await?.is_none() {
        return Ok(false); // already acknowledged
    }
    let mut msgs = update(d.src, d.client_on_src, d.dst, height).await?;
    msgs.push(
        relay::acknowledge(packet, ack, proof, &d.src.address())
            .map_err(|e| RelayError::State(e.to_string()))?,
    );
    d.src.submit(msgs).await.map(|_| true)
}

/// Sends the timeout to the source; whether a transaction went out.
async fn deliver_timeout(d: &Direction<'_>, packet: Packet) -> Result<bool, RelayError> {
    let path = ReceiptPath::new(&packet.port_id_on_b, &packet.chan_id_on_b, packet.seq_on_a);
    let (value, proof, height) = proven(d.dst, path.into()).await?;
    if value.is_some() {
        return Ok(false); // received after all
    }
    let mut msgs = update(d.src, d.client_on_src, d.dst, height).await?;
    msgs.push(relay::timeout(packet, proof, &d.src.address()));
    d.src.submit(msgs).await.map(|_| true)
}
