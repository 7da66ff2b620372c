//! Any bytes as a block-sync request or response frame: never a panic; what decodes is within the
//! protocol's limits and re-encodes to the same bytes.
#![no_main]

use basalt_p2p::{decode_request, decode_response, SyncRequest, MAX_SYNC_BLOCKS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = decode_request(data) {
        assert_eq!(borsh::to_vec(&request).ok().as_deref(), Some(data));
        if let SyncRequest::Blocks { count, .. } = request.clamped() {
            assert!(count <= MAX_SYNC_BLOCKS);
        }
    }
    if let Ok(response) = decode_response(data) {
        assert_eq!(borsh::to_vec(&response).ok().as_deref(), Some(data));
        if let basalt_p2p::SyncResponse::Blocks(blocks) = &response {
            assert!(blocks.len() <= MAX_SYNC_BLOCKS as usize);
        }
    }
});
