//! Any bytes as a consensus message (what every gossiped consensus payload goes through): never a
//! panic; what decodes is canonical (re-encodes to the very bytes, so one message has one gossip id) and
//! its counted length is its encoded length (buffers are bounded by that count).
#![no_main]

use basalt_consensus::engine::ConsensusMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = ConsensusMessage::from_bytes(data) {
        let bytes = message.to_bytes();
        assert_eq!(bytes, data, "non-canonical encoding accepted");
        assert_eq!(message.encoded_len(), bytes.len());
        let _ = message.height();
    }
});
