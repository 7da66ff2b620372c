//! Any bytes as gossip data on either topic (the envelope, the size limits, then the payload): never a
//! panic; a decoded transaction batch is non-empty and within the batch limit.
#![no_main]

use basalt_consensus::types::encode;
use basalt_p2p::{decode_consensus, decode_txs, ENVELOPE_BYTES};
use libfuzzer_sys::fuzz_target;

/// A small batch limit, so the fuzzer reaches it.
const BATCH_LIMIT: usize = 4096;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = decode_consensus(data) {
        assert_eq!(message.to_bytes(), data[ENVELOPE_BYTES..]);
    }
    if let Ok(txs) = decode_txs(data, BATCH_LIMIT) {
        assert!(!txs.is_empty());
        let payload = encode(&txs);
        assert!(payload.len() <= BATCH_LIMIT);
        assert_eq!(payload, data[ENVELOPE_BYTES..]);
    }
});
