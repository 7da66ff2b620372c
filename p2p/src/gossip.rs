//! Gossip topics, the envelope around every gossip payload, and the size-limited decoders.
//!
//! Envelope: `seq: u64 little-endian || payload`. `seq` is a per-node counter (started from the wall clock
//! in nanoseconds so a restarted node does not reuse recent values); it makes every publish a distinct
//! gossipsub message, so a deliberate re-broadcast of the same payload is not dropped as a duplicate.

use basalt_consensus::engine::{ConsensusMessage, MAX_CONSENSUS_MESSAGE_BYTES};
use basalt_consensus::types::Tx;
use blake2::{Blake2s256, Digest};
use libp2p::gossipsub::{IdentTopic, Message, MessageId};

use crate::handle::Misbehaviour;

/// Topic of consensus messages (proposals, votes, decisions, status).
pub const CONSENSUS_TOPIC: &str = "/basalt/consensus/1";
/// Topic of transaction batches.
pub const TXS_TOPIC: &str = "/basalt/txs/1";
/// Bytes the envelope adds to a payload.
pub const ENVELOPE_BYTES: usize = 8;

/// The two gossip topics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GossipTopic {
    /// [`CONSENSUS_TOPIC`].
    Consensus,
    /// [`TXS_TOPIC`].
    Txs,
}

impl GossipTopic {
    /// The topic's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            GossipTopic::Consensus => CONSENSUS_TOPIC,
            GossipTopic::Txs => TXS_TOPIC,
        }
    }

    /// The libp2p topic.
    pub(crate) fn ident(self) -> IdentTopic {
        IdentTopic::new(self.name())
    }

    /// Which of ours a topic hash string is.
    pub(crate) fn from_hash(hash: &str) -> Option<GossipTopic> {
        match hash {
            CONSENSUS_TOPIC => Some(GossipTopic::Consensus),
            TXS_TOPIC => Some(GossipTopic::Txs),
            _ => None,
        }
    }
}

/// The gossipsub message id: BLAKE2s-256 of the message data (envelope included).
pub(crate) fn message_id(message: &Message) -> MessageId {
    MessageId::new(Blake2s256::digest(&message.data).as_slice())
}

/// Wraps a payload in the envelope.
pub fn wrap(seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ENVELOPE_BYTES + payload.len());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Strips the envelope; data shorter than the envelope is undecodable.
fn unwrap_envelope(data: &[u8]) -> Result<&[u8], Misbehaviour> {
    data.get(ENVELOPE_BYTES..).ok_or(Misbehaviour::Undecodable)
}

/// Decodes the data of a message on the consensus topic.
pub fn decode_consensus(data: &[u8]) -> Result<ConsensusMessage, Misbehaviour> {
    let payload = unwrap_envelope(data)?;
    if payload.len() > MAX_CONSENSUS_MESSAGE_BYTES {
        return Err(Misbehaviour::Oversized);
    }
    ConsensusMessage::from_bytes(payload).map_err(|_| Misbehaviour::Undecodable)
}

/// Decodes the data of a message on the txs topic: a borsh `Vec<Tx>` of at most `max_batch_bytes`.
/// An empty batch is undecodable (nobody honest sends one).
pub fn decode_txs(data: &[u8], max_batch_bytes: usize) -> Result<Vec<Tx>, Misbehaviour> {
    let payload = unwrap_envelope(data)?;
    if payload.len() > max_batch_bytes {
        return Err(Misbehaviour::Oversized);
    }
    // The input is bounded above, and borsh never pre-allocates from an untrusted length beyond a small
    // cap, so a lying count costs at most the bounded input.
    let txs: Vec<Tx> = borsh::from_slice(payload).map_err(|_| Misbehaviour::Undecodable)?;
    if txs.is_empty() {
        return Err(Misbehaviour::Undecodable);
    }
    Ok(txs)
}

/// Encoded size of one transaction inside a batch (u32 length prefix + bytes).
fn encoded_tx_len(tx: &Tx) -> usize {
    4 + tx.as_bytes().len()
}

/// Splits transactions into encoded batches of at most `max_batch_bytes` each (borsh `Vec<Tx>`, no
/// envelope). A transaction too large for any batch is returned in `too_large` instead.
pub fn split_tx_batches(txs: Vec<Tx>, max_batch_bytes: usize) -> SplitBatches {
    let mut batches = Vec::new();
    let mut too_large = Vec::new();
    let mut current: Vec<Tx> = Vec::new();
    let mut current_len = 4; // the u32 count
    for tx in txs {
        let len = encoded_tx_len(&tx);
        if 4 + len > max_batch_bytes {
            too_large.push(tx);
            continue;
        }
        if current_len + len > max_batch_bytes {
            batches.push(basalt_consensus::types::encode(&current));
            current.clear();
            current_len = 4;
        }
        current_len += len;
        current.push(tx);
    }
    if !current.is_empty() {
        batches.push(basalt_consensus::types::encode(&current));
    }
    SplitBatches { batches, too_large }
}

/// The result of [`split_tx_batches`].
#[derive(Debug, Default)]
pub struct SplitBatches {
    /// Encoded batches, each within the limit.
    pub batches: Vec<Vec<u8>>,
    /// Transactions larger than a whole batch may be (not published).
    pub too_large: Vec<Tx>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use basalt_consensus::{Height, Round};
    use proptest::prelude::*;

    fn tx(len: usize, fill: u8) -> Tx {
        Tx::new(vec![fill; len]).unwrap()
    }

    #[test]
    fn consensus_round_trip_through_envelope() {
        let msg = ConsensusMessage::Status {
            height: Height(7),
            round: Round(2),
        };
        let data = wrap(99, &msg.to_bytes());
        assert_eq!(decode_consensus(&data).unwrap(), msg);
        // A different sequence number gives different data (hence a different message id) but the same
        // message.
        let again = wrap(100, &msg.to_bytes());
        assert_ne!(data, again);
        assert_eq!(decode_consensus(&again).unwrap(), msg);
    }

    #[test]
    fn short_or_garbage_consensus_data_is_undecodable() {
        assert_eq!(decode_consensus(&[1, 2, 3]), Err(Misbehaviour::Undecodable));
        assert_eq!(
            decode_consensus(&wrap(1, &[0xff; 40])),
            Err(Misbehaviour::Undecodable)
        );
    }

    #[test]
    fn oversized_consensus_payload_is_oversized() {
        let data = vec![0u8; ENVELOPE_BYTES + MAX_CONSENSUS_MESSAGE_BYTES + 1];
        assert_eq!(decode_consensus(&data), Err(Misbehaviour::Oversized));
    }

    #[test]
    fn split_respects_the_limit_and_keeps_order() {
        let txs: Vec<Tx> = (0..50u8).map(|i| tx(100 + i as usize, i)).collect();
        let limit = 1000;
        let split = split_tx_batches(txs.clone(), limit);
        assert!(split.too_large.is_empty());
        assert!(split.batches.len() > 1);
        let mut back = Vec::new();
        for batch in &split.batches {
            assert!(batch.len() <= limit, "batch of {} bytes", batch.len());
            back.extend(decode_txs(&wrap(0, batch), limit).unwrap());
        }
        assert_eq!(back, txs);
    }

    #[test]
    fn split_sets_aside_a_tx_larger_than_a_batch() {
        let split = split_tx_batches(vec![tx(10, 1), tx(2000, 2), tx(10, 3)], 1000);
        assert_eq!(split.too_large.len(), 1);
        assert_eq!(split.batches.len(), 1);
        assert_eq!(
            decode_txs(&wrap(0, &split.batches[0]), 1000).unwrap().len(),
            2
        );
    }

    #[test]
    fn oversized_and_empty_tx_batches_are_rejected() {
        let batch = basalt_consensus::types::encode(&vec![tx(600, 1), tx(600, 2)]);
        assert_eq!(
            decode_txs(&wrap(0, &batch), 1000),
            Err(Misbehaviour::Oversized)
        );
        let empty = basalt_consensus::types::encode(&Vec::<Tx>::new());
        assert_eq!(
            decode_txs(&wrap(0, &empty), 1000),
            Err(Misbehaviour::Undecodable)
        );
    }

    #[test]
    fn lying_length_prefix_is_undecodable_not_an_allocation() {
        // Count claims 4 billion transactions, the first claims 1 MiB: both lies.
        let mut payload = u32::MAX.to_le_bytes().to_vec();
        payload.extend_from_slice(&(1024u32 * 1024).to_le_bytes());
        payload.extend_from_slice(&[7; 16]);
        assert_eq!(
            decode_txs(&wrap(0, &payload), 1 << 20),
            Err(Misbehaviour::Undecodable)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, rng_seed: proptest::test_runner::RngSeed::Fixed(7), ..ProptestConfig::default() })]

        #[test]
        fn decoders_never_panic_on_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            // Random bytes almost never form a valid message; whatever the outcome, no panic.
            let _ = decode_consensus(&data);
            let _ = decode_txs(&data, 1024);
        }

        #[test]
        fn mutated_valid_batches_never_panic(
            lens in proptest::collection::vec(1usize..64, 1..8),
            flip in any::<usize>(),
            byte in any::<u8>(),
        ) {
            let txs: Vec<Tx> = lens.iter().map(|&l| tx(l, l as u8)).collect();
            let mut data = wrap(3, &basalt_consensus::types::encode(&txs));
            let i = flip % data.len();
            data[i] = byte;
            match decode_txs(&data, 4096) {
                Ok(decoded) => prop_assert!(!decoded.is_empty()),
                Err(e) => prop_assert!(matches!(e, Misbehaviour::Undecodable | Misbehaviour::Oversized)),
            }
        }
    }
}
