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
//! destination's state of the height it is proved at, so the relayer does not pay for a redundant one
//! (and if another relayer was faster in between, the batch fails and the next pass sends the rest).

use basalt_ibc::relay;
use basalt_state::app::Event;
use ibc_core::channel::types::packet::Packet;
use ibc_core::channel::types::timeout::{TimeoutHeight, TimeoutTimestamp};
use ibc_core::host::types::identifiers::{ChannelId, ClientId, PortId, Sequence};
use ibc_core::host::types::path::{AckPath, CommitmentPath, ReceiptPath, SeqSendPath};

use super::path::{update, PathIds};
use super::remote::{tx_events, tx_height, Remote};
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
    /// Transactions committed.
    pub transactions: u64,
    /// How long the oldest packet still in flight has been (source chain time from the block that sent
    /// it to the latest; 0 with none in flight), ms.
    pub oldest_pending_ms: u64,
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

/// Most packet messages in one pass (so in one relayer transaction, besides its client update): a batch
/// is one fee and one header verification for many packets. With the update it must fit an IBC
/// transaction's message limit (at 32 packets plus the update, every full batch was refused and the
/// relayer retried it for ever: found by the ICS-20 load benchmark).
pub const MAX_BATCH: usize = basalt_ibc::tx::MAX_IBC_MESSAGES - 1;

/// One pass over a direction's packets from `from` (earlier ones are known done); returns what it did
/// and the first sequence still in flight. Each chain's state is read at one height, proved at the
/// next (its latest block), and every message for a chain goes in one transaction with the client
/// update to that height, up to [`MAX_BATCH`] packets per pass.
pub async fn relay_pass(d: &Direction<'_>, from: u64) -> Result<(Pass, u64), RelayError> {
    let port = PortId::transfer();
    let next_send = d
        .src
        .counter(&SeqSendPath::new(&port, d.src_channel).into())
        .await?;
    let (src_height, dst_height) = (d.src.latest().await?, d.dst.latest().await?);
    let (dst_block, _) = d.dst.light_block(dst_height).await?;
    let mut pass = Pass::default();
    let mut first_pending = next_send.max(from);
    // The source height that sent the oldest packet still in flight (the first committed one met).
    let mut oldest_sent: Option<u64> = None;
    let (mut to_dst, mut to_src) = (Vec::new(), Vec::new());
    for seq in from.max(1)..next_send {
        if to_dst.len() + to_src.len() >= MAX_BATCH {
            first_pending = first_pending.min(seq);
            break;
        }
        let sequence = Sequence::from(seq);
        let commitment = CommitmentPath::new(&port, d.src_channel, sequence);
        // The latest state says whether anything is left to do (the proved state is a block older: a
        // packet acknowledged in the latest block still shows there, and re-sending it would be paid
        // for nothing).
        if d.src.get(&commitment.clone().into()).await?.is_none() {
            continue; // acknowledged or timed out
        }
        let (committed, commitment_proof) = d.src.prove(&commitment.into(), src_height).await?;
        if committed.is_none() {
            // Sent in the latest block: not provable yet, next pass.
            first_pending = first_pending.min(seq);
            oldest_sent.get_or_insert(src_height);
            pass.pending += 1;
            continue;
        }
        first_pending = first_pending.min(seq);
        let (packet, sent_at) = sent_packet(d, seq).await?;
        oldest_sent.get_or_insert(sent_at);
        let receipt = ReceiptPath::new(&port, d.dst_channel, sequence);
        let received_now = d.dst.get(&receipt.clone().into()).await?.is_some();
        let (received, receipt_proof) = d.dst.prove(&receipt.into(), dst_height).await?;
        if received.is_none() && received_now {
            pass.pending += 1; // received in the latest block: acknowledged in a later pass
            continue;
        }
        if received.is_none() {
            match fate(&packet, dst_height, dst_block.header.time_ms) {
                Fate::TimeOut => {
                    log(d, "timeout", seq);
                    to_src.push(relay::timeout(packet, receipt_proof, &d.src.address()));
                    pass.timed_out += 1;
                }
                Fate::Receive => {
                    log(d, "recv", seq);
                    to_dst.push(relay::recv_packet(
                        packet,
                        commitment_proof,
                        &d.dst.address(),
                    ));
                    pass.received += 1;
                }
                Fate::Wait => pass.pending += 1,
            }
            continue;
        }
        let ack_path = AckPath::new(&port, d.dst_channel, sequence);
        let (acked, ack_proof) = d.dst.prove(&ack_path.into(), dst_height).await?;
        if acked.is_some() {
            let ack = written_ack(d, seq).await?;
            log(d, "ack", seq);
            to_src.push(
                relay::acknowledge(packet, ack, ack_proof, &d.src.address())
                    .map_err(|e| RelayError::State(e.to_string()))?,
            );
            pass.acknowledged += 1;
        } else {
            pass.pending += 1;
        }
    }
    // Each side's messages with the update its proofs need, all or none (a message another relayer
    // delivered first fails the batch; the next pass reads the state again and sends the rest).
    if !to_dst.is_empty() {
        let mut msgs = update(d.dst, d.client_on_dst, d.src, src_height).await?;
        msgs.extend(to_dst);
        d.dst.submit(msgs).await?;
        pass.transactions += 1;
    }
    if !to_src.is_empty() {
        let mut msgs = update(d.src, d.client_on_src, d.dst, dst_height).await?;
        msgs.extend(to_src);
        d.src.submit(msgs).await?;
        pass.transactions += 1;
    }
    if let Some(sent_at) = oldest_sent {
        let (sent, _) = d.src.light_block(sent_at).await?;
        let (latest, _) = d.src.light_block(src_height).await?;
        pass.oldest_pending_ms = latest.header.time_ms.saturating_sub(sent.header.time_ms);
    }
    Ok((pass, first_pending))
}

/// One line per packet message: what, which packet, from where to where.
fn log(d: &Direction<'_>, what: &str, seq: u64) {
    eprintln!(
        "{what} {} {} sequence {seq} -> {} {}",
        d.src.chain_id, d.src_channel, d.dst.chain_id, d.dst_channel
    );
}

/// The packet `seq` as its `send_packet` event on the source tells it, and the height that sent it.
async fn sent_packet(d: &Direction<'_>, seq: u64) -> Result<(Packet, u64), RelayError> {
    // The sequence first (see `written_ack`).
    let query = format!(
        "send_packet.packet_sequence='{seq}' AND send_packet.packet_src_channel='{}'",
        d.src_channel
    );
    let (event, height) = find_event(d.src, &query, "send_packet", |e| {
        attribute(e, "packet_src_channel") == Some(d.src_channel.as_str())
            && attribute(e, "packet_sequence") == Some(seq.to_string().as_str())
    })
    .await?;
    let packet = relay::packet_from_event(&event).map_err(|e| RelayError::State(e.to_string()))?;
    Ok((packet, height))
}

/// The acknowledgement of packet `seq` as its `write_acknowledgement` event on the destination tells it.
async fn written_ack(d: &Direction<'_>, seq: u64) -> Result<Vec<u8>, RelayError> {
    // The sequence first: the node's search reads candidates from the first attribute equality's index,
    // and a channel's every packet would be too many to check (found at 10,000 packets).
    let query = format!(
        "write_acknowledgement.packet_sequence='{seq}' AND write_acknowledgement.packet_dst_channel='{}'",
        d.dst_channel
    );
    let (event, _) = find_event(d.dst, &query, "write_acknowledgement", |e| {
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

/// The first event of `kind` satisfying `pick` in the transactions `query` finds, and the height of
/// its transaction.
async fn find_event(
    chain: &Remote,
    query: &str,
    kind: &str,
    pick: impl Fn(&Event) -> bool,
) -> Result<(Event, u64), RelayError> {
    for tx in chain.tx_search(query).await? {
        if let Some(event) = tx_events(&tx, kind).into_iter().find(&pick) {
            return Ok((event, tx_height(&tx)?));
        }
    }
    Err(RelayError::NotIndexed {
        chain: chain.chain_id.to_string(),
        query: query.to_owned(),
    })
}

/// What can be done with a packet not yet received, judged at the destination's latest `height` and
/// block time (the proof height of what the relayer sends).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// It lands in the next block, below its timeout height and before its timeout time (ICS-04's
    /// receive rule, which Basalt enforces).
    Receive,
    /// Its timeout is provable: the proof height (or its block's time) is past the timeout — ibc-rs
    /// checks "past", not "at".
    TimeOut,
    /// Neither yet (the next block would be at the timeout): wait a block.
    Wait,
}

fn fate(packet: &Packet, height: u64, time_ms: u64) -> Fate {
    let time_ns = time_ms.saturating_mul(1_000_000);
    let (past, next_blocked) = match packet.timeout_height_on_b {
        TimeoutHeight::Never => (false, false),
        TimeoutHeight::At(h) => (
            height > h.revision_height(),
            height.saturating_add(1) >= h.revision_height(),
        ),
    };
    let (past_time, at_time) = match packet.timeout_timestamp_on_b {
        TimeoutTimestamp::Never => (false, false),
        TimeoutTimestamp::At(t) => (time_ns > t.nanoseconds(), time_ns >= t.nanoseconds()),
    };
    if past || past_time {
        Fate::TimeOut
    } else if next_blocked || at_time {
        Fate::Wait
    } else {
        Fate::Receive
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use ibc_core::client::types::Height as IbcHeight;
    use ibc_core::primitives::Timestamp;

    use super::*;

    fn packet(height: Option<u64>, ns: Option<u64>) -> Packet {
        Packet {
            seq_on_a: Sequence::from(1),
            port_id_on_a: PortId::transfer(),
            chan_id_on_a: ChannelId::new(0),
            port_id_on_b: PortId::transfer(),
            chan_id_on_b: ChannelId::new(0),
            data: vec![1],
            timeout_height_on_b: height.map_or(TimeoutHeight::Never, |h| {
                TimeoutHeight::At(IbcHeight::new(0, h).unwrap())
            }),
            timeout_timestamp_on_b: ns.map_or(TimeoutTimestamp::Never, |t| {
                TimeoutTimestamp::At(Timestamp::from_nanoseconds(t))
            }),
        }
    }

    #[test]
    fn a_packet_is_received_below_its_timeout_and_timed_out_past_it() {
        // Timeout height 10: received while the next block is below 10; at latest 9 the next block
        // would be 10: wait; provable as timed out from proof height 11.
        let p = packet(Some(10), None);
        assert_eq!(fate(&p, 8, 0), Fate::Receive);
        assert_eq!(fate(&p, 9, 0), Fate::Wait);
        assert_eq!(fate(&p, 10, 0), Fate::Wait);
        assert_eq!(fate(&p, 11, 0), Fate::TimeOut);
        // Timeout time 5 ms: at a block time of 5 ms it can no longer be received, past it it times out.
        let p = packet(None, Some(5_000_000));
        assert_eq!(fate(&p, 100, 4), Fate::Receive);
        assert_eq!(fate(&p, 100, 5), Fate::Wait);
        assert_eq!(fate(&p, 100, 6), Fate::TimeOut);
        assert_eq!(fate(&packet(None, None), u64::MAX, u64::MAX), Fate::Receive);
    }
}
