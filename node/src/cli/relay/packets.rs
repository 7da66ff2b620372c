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
//! not keep: the packet's data (read once per packet and kept, bounded, until it is done) and an
//! acknowledgement's bytes (only when its proved commitment is not one of the two a Basalt chain
//! writes). Each message is checked against the destination's state of the height it is proved at, so
//! the relayer does not pay for a redundant one (and if another relayer was faster in between, the
//! batch fails and the next pass sends the rest). The reads go in JSON-RPC batches: each step of
//! judging a window of packets is one request per [`super::remote::QUERIES_PER_REQUEST`] packets.

use std::collections::{BTreeMap, HashMap};

use basalt_ibc::relay;
use basalt_state::app::Event;
use ibc_core::channel::types::packet::Packet;
use ibc_core::channel::types::timeout::{TimeoutHeight, TimeoutTimestamp};
use ibc_core::host::types::identifiers::{ChannelId, ClientId, PortId, Sequence};
use ibc_core::host::types::path::{AckPath, CommitmentPath, Path, ReceiptPath, SeqSendPath};
use ibc_core::primitives::proto::Any;

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
    /// Packets of this direction already read from their `send_packet` events.
    pub sent: &'a SentPackets,
}

/// Most bytes of packets a [`SentPackets`] keeps (a packet's data plus [`PACKET_OVERHEAD`] each).
pub const MAX_SENT_PACKET_BYTES: usize = 32 * 1024 * 1024;
/// What a kept packet counts for besides its data (identifiers, timeouts, the map's own entry).
pub const PACKET_OVERHEAD: usize = 256;

/// The packets of one direction the relayer has read from their `send_packet` events, by sequence, with
/// the source height that sent each: a packet is needed twice (its receive, then its acknowledgement or
/// timeout) and the `tx_search` that finds it is a pass's costliest read. Bounded in bytes; a packet
/// done is dropped, and a miss only costs the search again.
#[derive(Debug, Default)]
pub struct SentPackets {
    inner: std::sync::Mutex<SentInner>,
}

#[derive(Debug, Default)]
struct SentInner {
    packets: BTreeMap<u64, (Packet, u64)>,
    bytes: usize,
}

fn packet_bytes(packet: &Packet) -> usize {
    packet.data.len().saturating_add(PACKET_OVERHEAD)
}

impl SentPackets {
    fn lock(&self) -> std::sync::MutexGuard<'_, SentInner> {
        // Nothing panics holding the lock; were something to, the map would still be consistent.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Packet `seq` and the height that sent it, if kept.
    pub fn get(&self, seq: u64) -> Option<(Packet, u64)> {
        self.lock().packets.get(&seq).cloned()
    }

    /// Keeps packet `seq`. When full, the latest-sent packets give way to earlier ones (those are
    /// acknowledged first, so needed again first); a packet later than every kept one is not kept.
    pub fn insert(&self, seq: u64, packet: Packet, sent_at: u64) {
        let size = packet_bytes(&packet);
        if size > MAX_SENT_PACKET_BYTES {
            return; // it would only empty the map
        }
        let mut inner = self.lock();
        while inner.bytes.saturating_add(size) > MAX_SENT_PACKET_BYTES {
            match inner.packets.last_key_value() {
                Some((&last, _)) if last > seq => {
                    if let Some((evicted, _)) = inner.packets.remove(&last) {
                        inner.bytes -= packet_bytes(&evicted);
                    }
                }
                _ => return,
            }
        }
        if let Some((old, _)) = inner.packets.insert(seq, (packet, sent_at)) {
            inner.bytes -= packet_bytes(&old);
        }
        inner.bytes += size;
    }

    /// Forgets every packet before `seq` (done: acknowledged or timed out).
    pub fn forget_before(&self, seq: u64) {
        let mut inner = self.lock();
        let kept = inner.packets.split_off(&seq);
        inner.packets = kept;
        inner.bytes = inner.packets.values().map(|(p, _)| packet_bytes(p)).sum();
    }

    /// Forgets packet `seq` (done).
    pub fn forget(&self, seq: u64) {
        let mut inner = self.lock();
        if let Some((old, _)) = inner.packets.remove(&seq) {
            inner.bytes -= packet_bytes(&old);
        }
    }

    /// How many packets are kept, and their bytes as counted against [`MAX_SENT_PACKET_BYTES`].
    pub fn len_and_bytes(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.packets.len(), inner.bytes)
    }
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
    /// How long the oldest packet still in flight has been (source chain time from the block that sent
    /// it to the latest; 0 with none in flight), ms.
    pub oldest_pending_ms: u64,
    /// How long judging the packets took (the reads), ms.
    pub judge_ms: u64,
    /// How long submitting and awaiting the transactions took, ms.
    pub submit_ms: u64,
}

fn elapsed_ms(since: std::time::Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The two directions of `ids` between `a` and `b`, each with its packets kept in `sent`.
pub fn directions<'a>(
    a: &'a Remote,
    b: &'a Remote,
    ids: &'a PathIds,
    sent: &'a [SentPackets; 2],
) -> [Direction<'a>; 2] {
    [
        Direction {
            src: a,
            dst: b,
            client_on_dst: &ids.clients.1,
            client_on_src: &ids.clients.0,
            src_channel: &ids.channels.0,
            dst_channel: &ids.channels.1,
            sent: &sent[0],
        },
        Direction {
            src: b,
            dst: a,
            client_on_dst: &ids.clients.0,
            client_on_src: &ids.clients.1,
            src_channel: &ids.channels.1,
            dst_channel: &ids.channels.0,
            sent: &sent[1],
        },
    ]
}

/// Most packet messages in one relayer transaction besides its client update: a batch is one fee and
/// one header verification for many packets. With the update it must fit an IBC transaction's message
/// limit (at 32 packets plus the update, every full batch was refused and the relayer retried it for
/// ever: found by the ICS-20 load benchmark).
pub const MAX_BATCH: usize = basalt_ibc::tx::MAX_IBC_MESSAGES - 1;

/// Transactions one pass submits to a chain, nonce after nonce (all admitted at once: below the
/// mempool's nonce window), then waited for together: one pass, one block, up to
/// `MAX_TXS_PER_PASS * MAX_BATCH` packets — where one transaction per pass and a block's wait each
/// held the relayer to ~40 packets a second (the ICS-20 load benchmark).
pub const MAX_TXS_PER_PASS: usize = 16;

/// Packets judged together: each step of their judgement (commitments, receipts, proofs, events) is
/// one JSON-RPC batch per chain for all of them, so a window costs a few round trips, not a few per
/// packet — the nodes' cost of a small read is mostly its HTTP request (a node's profile under the
/// ICS-20 load benchmark).
pub const WINDOW: usize = 256;

/// Most packets one pass looks at, delivered or not: a pass over a long queue of packets that are all
/// still waiting (received in the latest block, say) ends and the next pass starts from the first of
/// them, instead of reading the whole queue each time.
pub const MAX_JUDGED_PER_PASS: usize = 4 * MAX_TXS_PER_PASS * MAX_BATCH;

/// The two chains' heights a pass works at.
#[derive(Clone, Copy, Debug)]
struct Heights {
    /// The source's latest height: its state of `src - 1` is proved at `src`.
    src: u64,
    /// The destination's latest height, likewise.
    dst: u64,
    /// The destination's block time at `dst`, ms.
    dst_time_ms: u64,
}

/// What one packet needs, as both chains' state says.
enum Judged {
    /// Acknowledged or timed out: nothing left to do.
    Done,
    /// In flight with nothing to send yet; sent at this source height, when known without a read
    /// (only the oldest packet in flight's is needed, see [`relay_pass`]).
    Waiting { sent_at: Option<u64> },
    /// A message for the destination (`MsgRecvPacket`).
    Receive { message: Any, sent_at: u64 },
    /// A message for the source: an acknowledgement or a timeout.
    Settle {
        message: Any,
        timed_out: bool,
        sent_at: u64,
    },
}

/// One pass over a direction's packets from `from` (earlier ones are known done); returns what it did
/// and the first sequence still in flight. Each chain's state is read at one height, proved at the
/// next (its latest block); the packets are judged [`WINDOW`] at a time, and every message
/// for a chain goes out in up to [`MAX_TXS_PER_PASS`] transactions, the first with the client update
/// their proofs need.
pub async fn relay_pass(d: &Direction<'_>, from: u64) -> Result<(Pass, u64), RelayError> {
    let port = PortId::transfer();
    let next_send = d
        .src
        .counter(&SeqSendPath::new(&port, d.src_channel).into())
        .await?;
    let (src_height, dst_height) = (d.src.latest().await?, d.dst.latest().await?);
    let (dst_block, _) = d.dst.light_block(dst_height).await?;
    let heights = Heights {
        src: src_height,
        dst: dst_height,
        dst_time_ms: dst_block.header.time_ms,
    };
    let mut pass = Pass::default();
    let mut first_pending = next_send.max(from);
    // The oldest packet still in flight (the first met) and the source height that sent it, if known.
    let mut oldest: Option<(u64, Option<u64>)> = None;
    let (mut to_dst, mut to_src) = (Vec::new(), Vec::new());
    let most = MAX_TXS_PER_PASS * MAX_BATCH;
    d.sent.forget_before(from);
    let first = from.max(1);
    let last = next_send.min(first.saturating_add(MAX_JUDGED_PER_PASS as u64));
    let mut looked_at = 0;
    let judging = std::time::Instant::now();
    let mut window_start = first;
    'windows: while window_start < last {
        let window_end = last.min(window_start.saturating_add(WINDOW as u64));
        let seqs: Vec<u64> = (window_start..window_end).collect();
        window_start = window_end;
        for (seq, judgement) in judge_window(d, heights, &seqs).await? {
            looked_at += 1;
            // Both chains' transactions are full: the rest wait for the next pass.
            if to_dst.len() >= most && to_src.len() >= most {
                first_pending = first_pending.min(seq);
                break 'windows;
            }
            let sent_at = match judgement {
                Judged::Done => continue,
                Judged::Waiting { sent_at } => {
                    pass.pending += 1;
                    sent_at
                }
                // One chain's transactions are full: its messages wait, the other's still fill up.
                Judged::Receive { sent_at, .. } if to_dst.len() >= most => {
                    pass.pending += 1;
                    Some(sent_at)
                }
                Judged::Settle { sent_at, .. } if to_src.len() >= most => {
                    pass.pending += 1;
                    Some(sent_at)
                }
                Judged::Receive { message, sent_at } => {
                    log(d, "recv", seq);
                    to_dst.push(message);
                    pass.received += 1;
                    Some(sent_at)
                }
                Judged::Settle {
                    message,
                    timed_out,
                    sent_at,
                } => {
                    log(d, if timed_out { "timeout" } else { "ack" }, seq);
                    to_src.push(message);
                    if timed_out {
                        pass.timed_out += 1;
                    } else {
                        pass.acknowledged += 1;
                    }
                    Some(sent_at)
                }
            };
            first_pending = first_pending.min(seq);
            oldest.get_or_insert((seq, sent_at));
        }
    }
    if looked_at == MAX_JUDGED_PER_PASS {
        // The rest were not looked at: the next pass starts with them at the latest.
        first_pending = first_pending.min(last);
    }
    // Each side's messages with the update its proofs need, all or none per transaction (a message
    // another relayer delivered first fails its transaction; the next pass reads the state again and
    // sends the rest). The two chains' transactions are independent (their own nonces, their own
    // blocks), so both are submitted and awaited at once.
    pass.judge_ms = elapsed_ms(judging);
    let submitting = std::time::Instant::now();
    let (to_dst_sent, to_src_sent) = futures::future::join(
        deliver(d.dst, d.client_on_dst, d.src, src_height, to_dst),
        deliver(d.src, d.client_on_src, d.dst, dst_height, to_src),
    )
    .await;
    to_dst_sent?;
    to_src_sent?;
    pass.submit_ms = elapsed_ms(submitting);
    if let Some((seq, sent_at)) = oldest {
        let sent_at = match sent_at {
            Some(height) => height,
            None => sent_packet(d, seq).await?.1,
        };
        let (sent, _) = d.src.light_block(sent_at).await?;
        let (latest, _) = d.src.light_block(src_height).await?;
        pass.oldest_pending_ms = latest.header.time_ms.saturating_sub(sent.header.time_ms);
    }
    Ok((pass, first_pending))
}

/// Submits `messages` to `host` behind the update of its client of `source` to `height` (nothing when
/// there are none); returns the transactions committed.
async fn deliver(
    host: &Remote,
    client: &ClientId,
    source: &Remote,
    height: u64,
    messages: Vec<Any>,
) -> Result<u64, RelayError> {
    if messages.is_empty() {
        return Ok(0);
    }
    let update = update(host, client, source, height).await?;
    host.submit_all(batches(update, messages)).await
}

/// Most bytes of messages the relayer puts in one transaction: an IBC transaction's cap less room for
/// its envelope (signer, nonce, fee, signature, the `Any` framing of each message).
const MAX_BATCH_BYTES: usize = basalt_ibc::tx::MAX_IBC_TX_BYTES - 64 * 1024;

/// `update` then `messages`, in order, in transactions of at most an IBC transaction's message count
/// and [`MAX_BATCH_BYTES`]; the update's steps lead (the later transactions, committed after it in
/// nonce order, rely on the consensus states they store).
pub(super) fn batches(update: Vec<Any>, messages: Vec<Any>) -> Vec<Vec<Any>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0usize;
    for message in update.into_iter().chain(messages) {
        let size = prost::Message::encoded_len(&message);
        if !current.is_empty()
            && (current.len() >= basalt_ibc::tx::MAX_IBC_MESSAGES
                || bytes.saturating_add(size) > MAX_BATCH_BYTES)
        {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes = bytes.saturating_add(size);
        current.push(message);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Judges the packets `seqs` of `d` at `heights` (returned in sequence order): the reads they need,
/// step by step, each step one batch per chain for the whole window, cheapest first and only the proofs
/// their messages carry (a receive is proved by the commitment alone, an acknowledgement by the
/// acknowledgement alone, a timeout by the receipt's absence alone). A packet's data comes from its
/// `send_packet` event once ([`SentPackets`]); an acknowledgement's bytes from its proved commitment
/// when it is one a Basalt chain writes ([`relay::known_ack`]), else its event.
async fn judge_window(
    d: &Direction<'_>,
    heights: Heights,
    seqs: &[u64],
) -> Result<Vec<(u64, Judged)>, RelayError> {
    let port = PortId::transfer();
    let commitment = |seq: u64| -> Path {
        CommitmentPath::new(&port, d.src_channel, Sequence::from(seq)).into()
    };
    let receipt =
        |seq: u64| -> Path { ReceiptPath::new(&port, d.dst_channel, Sequence::from(seq)).into() };
    let ack = |seq: u64| -> Path { AckPath::new(&port, d.dst_channel, Sequence::from(seq)).into() };
    let mut judged = BTreeMap::new();
    // The latest state says whether anything is left to do (the proved state is a block older: a
    // packet acknowledged in the latest block still shows there, and re-sending it would be paid
    // for nothing).
    let live = d
        .src
        .get_many(&seqs.iter().map(|&seq| commitment(seq)).collect::<Vec<_>>())
        .await?;
    let mut open = Vec::new();
    for (&seq, value) in seqs.iter().zip(live) {
        if value.is_some() {
            open.push(seq);
        } else {
            d.sent.forget(seq);
            judged.insert(seq, Judged::Done); // acknowledged or timed out
        }
    }
    let receipts = d
        .dst
        .get_many(&open.iter().map(|&seq| receipt(seq)).collect::<Vec<_>>())
        .await?;
    let (mut received, mut unreceived) = (Vec::new(), Vec::new());
    for (seq, value) in open.into_iter().zip(receipts) {
        if value.is_some() {
            received.push(seq);
        } else {
            unreceived.push(seq);
        }
    }
    // Received: acknowledged in the proved state, or waiting (the receipt or the acknowledgement is in
    // the latest block only). Not received in the latest state, so not in the proved one either: the
    // commitment's proof, absent only when sent in the latest block.
    let ack_paths: Vec<Path> = received.iter().map(|&seq| ack(seq)).collect();
    let commitment_paths: Vec<Path> = unreceived.iter().map(|&seq| commitment(seq)).collect();
    let (acks, commitments) = futures::future::try_join(
        d.dst.prove_many(&ack_paths, heights.dst),
        d.src.prove_many(&commitment_paths, heights.src),
    )
    .await?;
    let mut acked = Vec::new();
    for (seq, (value, proof)) in received.into_iter().zip(acks) {
        match value {
            Some(ack_commitment) => acked.push((seq, ack_commitment, proof)),
            None => {
                judged.insert(seq, Judged::Waiting { sent_at: None });
            }
        }
    }
    let mut provable = Vec::new();
    for (seq, (value, proof)) in unreceived.into_iter().zip(commitments) {
        if value.is_some() {
            provable.push((seq, proof));
        } else {
            let sent_at = Some(heights.src);
            judged.insert(seq, Judged::Waiting { sent_at });
        }
    }
    let needed: Vec<u64> = acked
        .iter()
        .map(|(seq, _, _)| *seq)
        .chain(provable.iter().map(|(seq, _)| *seq))
        .collect();
    let mut packets = sent_packets(d, &needed).await?;
    let mut take = |seq: u64| {
        packets.remove(&seq).ok_or_else(|| {
            RelayError::State(format!(
                "packet {seq} was found and then lost (a relayer bug)"
            ))
        })
    };
    for (seq, ack_commitment, proof) in acked {
        let (packet, sent_at) = take(seq)?;
        let ack = match relay::known_ack(&ack_commitment) {
            Some(ack) => ack,
            None => written_ack(d, seq).await?,
        };
        let message = relay::acknowledge(packet, ack, proof, &d.src.address())
            .map_err(|e| RelayError::State(e.to_string()))?;
        judged.insert(
            seq,
            Judged::Settle {
                message,
                timed_out: false,
                sent_at,
            },
        );
    }
    let mut timing_out = Vec::new();
    for (seq, proof) in provable {
        let (packet, sent_at) = take(seq)?;
        let judgement = match fate(&packet, heights.dst, heights.dst_time_ms) {
            Fate::Receive => Judged::Receive {
                message: relay::recv_packet(packet, proof, &d.dst.address()),
                sent_at,
            },
            Fate::Wait => Judged::Waiting {
                sent_at: Some(sent_at),
            },
            Fate::TimeOut => {
                timing_out.push((seq, packet, sent_at));
                continue;
            }
        };
        judged.insert(seq, judgement);
    }
    // Past its timeout: the receipt's absence proved at the destination.
    let receipt_paths: Vec<Path> = timing_out.iter().map(|(seq, _, _)| receipt(*seq)).collect();
    let absences = d.dst.prove_many(&receipt_paths, heights.dst).await?;
    for ((seq, packet, sent_at), (received, proof)) in timing_out.into_iter().zip(absences) {
        let judgement = if received.is_some() {
            // Received just now after all.
            Judged::Waiting {
                sent_at: Some(sent_at),
            }
        } else {
            Judged::Settle {
                message: relay::timeout(packet, proof, &d.src.address()),
                timed_out: true,
                sent_at,
            }
        };
        judged.insert(seq, judgement);
    }
    Ok(judged.into_iter().collect())
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
    sent_packets(d, &[seq])
        .await?
        .remove(&seq)
        .ok_or_else(|| RelayError::State(format!("packet {seq} was found and then lost")))
}

/// The packets `seqs` as their `send_packet` events on the source tell them, and the heights that
/// sent them: those kept in the direction's [`SentPackets`], the others searched for (one batch) and
/// kept for the next time.
async fn sent_packets(
    d: &Direction<'_>,
    seqs: &[u64],
) -> Result<HashMap<u64, (Packet, u64)>, RelayError> {
    let mut found = HashMap::with_capacity(seqs.len());
    let mut missing = Vec::new();
    for &seq in seqs {
        match d.sent.get(seq) {
            Some(kept) => {
                found.insert(seq, kept);
            }
            None => missing.push(seq),
        }
    }
    // The sequence first (see `written_ack`).
    let queries: Vec<String> = missing
        .iter()
        .map(|seq| {
            format!(
                "send_packet.packet_sequence='{seq}' AND send_packet.packet_src_channel='{}'",
                d.src_channel
            )
        })
        .collect();
    let answers = d.src.tx_search_many(&queries).await?;
    for ((seq, query), txs) in missing.into_iter().zip(&queries).zip(answers) {
        let (event, height) = pick_event(&txs, "send_packet", |e| {
            attribute(e, "packet_src_channel") == Some(d.src_channel.as_str())
                && attribute(e, "packet_sequence") == Some(seq.to_string().as_str())
        })?
        .ok_or_else(|| RelayError::NotIndexed {
            chain: d.src.chain_id.to_string(),
            query: query.clone(),
        })?;
        let packet =
            relay::packet_from_event(&event).map_err(|e| RelayError::State(e.to_string()))?;
        d.sent.insert(seq, packet.clone(), height);
        found.insert(seq, (packet, height));
    }
    Ok(found)
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
    pick_event(&chain.tx_search(query).await?, kind, pick)?.ok_or_else(|| RelayError::NotIndexed {
        chain: chain.chain_id.to_string(),
        query: query.to_owned(),
    })
}

/// The first event of `kind` satisfying `pick` in `txs` (as `tx_search` gives them), and the height
/// of its transaction.
fn pick_event(
    txs: &[serde_json::Value],
    kind: &str,
    pick: impl Fn(&Event) -> bool,
) -> Result<Option<(Event, u64)>, RelayError> {
    for tx in txs {
        if let Some(event) = tx_events(tx, kind).into_iter().find(&pick) {
            return Ok(Some((event, tx_height(tx)?)));
        }
    }
    Ok(None)
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

    fn any(n: usize) -> Any {
        Any {
            type_url: format!("/m{n}"),
            value: Vec::new(),
        }
    }

    #[test]
    fn batches_fill_transactions_to_the_message_limit_with_the_update_first() {
        let limit = basalt_ibc::tx::MAX_IBC_MESSAGES;
        let messages = |n: usize| (0..n).map(any).collect::<Vec<_>>();
        // With an update: it leads the first transaction, which then holds limit - 1 packets.
        let out = batches(vec![any(999)], messages(2 * limit + 1));
        let sizes: Vec<usize> = out.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![limit, limit, 2]);
        assert_eq!(out[0][0].type_url, "/m999");
        assert_eq!(out[0][1].type_url, "/m0");
        // Every message once, in order.
        let urls: Vec<&str> = out
            .iter()
            .flatten()
            .skip(1)
            .map(|m| m.type_url.as_str())
            .collect();
        let expected: Vec<String> = (0..2 * limit + 1).map(|n| format!("/m{n}")).collect();
        assert_eq!(
            urls,
            expected.iter().map(String::as_str).collect::<Vec<_>>()
        );
        // Without one (the client is already at the proof height): full transactions of packets.
        let sizes: Vec<usize> = batches(Vec::new(), messages(limit))
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, vec![limit]);
        assert!(batches(Vec::new(), Vec::new()).is_empty());
        // A full pass fits the transactions a pass may send.
        assert_eq!(
            batches(vec![any(999)], messages(MAX_TXS_PER_PASS * MAX_BATCH)).len(),
            MAX_TXS_PER_PASS
        );
        // More update steps than one transaction holds: they fill the first transactions, in order.
        let steps: Vec<Any> = (1_000..1_000 + limit + 3).map(any).collect();
        let out = batches(steps, messages(2));
        let sizes: Vec<usize> = out.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![limit, 5]);
        assert_eq!(out[1][2].type_url, format!("/m{}", 1_000 + limit + 2));
        assert_eq!(out[1][3].type_url, "/m0");
    }

    #[test]
    fn batches_stay_under_the_transaction_size_cap() {
        // Updates carrying large validator sets: a transaction closes before it would pass the cap.
        let big = |n: usize| Any {
            type_url: format!("/big{n}"),
            value: vec![0; MAX_BATCH_BYTES / 3],
        };
        let out = batches((0..4).map(big).collect(), vec![any(0)]);
        let sizes: Vec<usize> = out.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![2, 3]);
        for tx in &out {
            let bytes: usize = tx.iter().map(prost::Message::encoded_len).sum();
            assert!(bytes <= MAX_BATCH_BYTES, "{bytes}");
        }
        // One message above the cap still goes (alone): the chain's refusal names it.
        let huge = Any {
            type_url: "/huge".to_owned(),
            value: vec![0; MAX_BATCH_BYTES + 1],
        };
        let out = batches(vec![huge], vec![any(0)]);
        assert_eq!(out.iter().map(Vec::len).collect::<Vec<_>>(), vec![1, 1]);
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

    #[test]
    fn kept_packets_stay_within_their_byte_bound_and_earlier_ones_win() {
        let sent = SentPackets::default();
        let big = |seq: u64| {
            let mut p = packet(Some(10), None);
            p.seq_on_a = Sequence::from(seq);
            p.data = vec![0; 4 * 1024 * 1024 - PACKET_OVERHEAD];
            p
        };
        // Eight 4-MiB packets fill the 32 MiB.
        for seq in 10..18 {
            sent.insert(seq, big(seq), seq * 2);
        }
        assert_eq!(sent.len_and_bytes(), (8, MAX_SENT_PACKET_BYTES));
        assert_eq!(sent.get(12).unwrap().1, 24);
        // A later one is not kept; an earlier one takes the latest's place.
        sent.insert(18, big(18), 36);
        assert!(sent.get(18).is_none());
        sent.insert(5, big(5), 10);
        assert_eq!(sent.get(5).unwrap().0.seq_on_a, Sequence::from(5));
        assert!(sent.get(17).is_none());
        assert_eq!(sent.len_and_bytes(), (8, MAX_SENT_PACKET_BYTES));
        // A packet larger than the whole bound is never kept.
        let mut huge = big(1);
        huge.data = vec![0; MAX_SENT_PACKET_BYTES];
        sent.insert(1, huge, 2);
        assert!(sent.get(1).is_none());
        assert_eq!(sent.len_and_bytes(), (8, MAX_SENT_PACKET_BYTES));
        // Done packets are forgotten, one or all before a sequence; the count of bytes follows.
        sent.forget(5);
        sent.forget(5);
        assert_eq!(sent.len_and_bytes().0, 7);
        sent.forget_before(13);
        assert_eq!(sent.len_and_bytes(), (4, 4 * 4 * 1024 * 1024));
        assert!(sent.get(12).is_none() && sent.get(13).is_some());
        // Re-inserting a kept one replaces it without counting it twice.
        sent.insert(13, big(13), 26);
        assert_eq!(sent.len_and_bytes(), (4, 4 * 4 * 1024 * 1024));
    }
}
