//! The request-response protocol for block sync and fetching a missed proposal, and its codec.
//!
//! Wire format of both directions: a `u32` little-endian length, then that many bytes of borsh. The length
//! is checked against the direction's limit ([`MAX_REQUEST_BYTES`], [`MAX_RESPONSE_BYTES`]) before anything
//! is read or allocated, and the body is read incrementally, so a peer's claim costs nothing until it sends
//! the bytes.

use std::io;

use basalt_consensus::types::{Block, Commit, ProposalMessage};
use borsh::{BorshDeserialize, BorshSerialize};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;

/// The sync protocol name.
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/basalt/sync/1");
/// Most blocks in one [`SyncRequest::Blocks`] or [`SyncResponse::Blocks`].
pub const MAX_SYNC_BLOCKS: u32 = 64;
/// Largest encoded request.
pub const MAX_REQUEST_BYTES: usize = 1024;
/// Largest encoded response.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// Longest [`SyncResponse::Error`] text sent (longer texts are cut).
pub const MAX_ERROR_TEXT: usize = 256;
/// Most snapshots offered in one [`SyncResponse::Snapshots`] (the newest).
pub const MAX_SNAPSHOT_OFFERS: usize = 4;
/// Largest snapshot manifest offered: the state's limit of 65,536 chunk hashes and its fixed fields.
pub const MAX_MANIFEST_BYTES: usize = 64 + 32 * 65_536;
/// Largest snapshot chunk served (the state's limit).
pub const MAX_SNAPSHOT_CHUNK_BYTES: usize = 16 << 20;

/// What one node asks another.
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug, PartialEq, Eq)]
pub enum SyncRequest {
    /// The range of heights the peer can serve.
    Status,
    /// Up to `count` (at most [`MAX_SYNC_BLOCKS`]) consecutive decided blocks from height `from`.
    Blocks {
        /// First height.
        from: u64,
        /// How many.
        count: u32,
    },
    /// The proposal (with its block) the peer holds for a height and round.
    Proposal {
        /// Height.
        height: u64,
        /// Round.
        round: u32,
    },
    /// The state snapshots the peer offers (state sync).
    Snapshots,
    /// Chunk `index` of the peer's snapshot of `height`.
    SnapshotChunk {
        /// The snapshot's height.
        height: u64,
        /// The chunk.
        index: u32,
    },
}

/// A state snapshot a peer offers: its height and its manifest (opaque here; the state crate's
/// `snapshot::Manifest` encoding, checked by whoever restores it).
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct SnapshotOffer {
    /// The snapshot's height (the state after that block).
    pub height: u64,
    /// The encoded manifest, at most [`MAX_MANIFEST_BYTES`].
    pub manifest: Vec<u8>,
}

impl SyncRequest {
    /// The request with `count` clamped to [`MAX_SYNC_BLOCKS`].
    pub fn clamped(self) -> SyncRequest {
        match self {
            SyncRequest::Blocks { from, count } => SyncRequest::Blocks {
                from,
                count: count.min(MAX_SYNC_BLOCKS),
            },
            other => other,
        }
    }
}

/// The answer to a [`SyncRequest`].
// The shape is the node's API; a response is moved once, so boxing the proposal buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug, PartialEq, Eq)]
pub enum SyncResponse {
    /// The lowest and highest heights the peer stores.
    Status {
        /// Lowest stored height.
        base: u64,
        /// Highest decided height.
        latest: u64,
    },
    /// Decided blocks with their commits, in height order (at most [`MAX_SYNC_BLOCKS`]).
    Blocks(Vec<(Block, Commit)>),
    /// The proposal, if the peer has it.
    Proposal(Option<ProposalMessage>),
    /// The snapshots the peer offers, newest first (at most [`MAX_SNAPSHOT_OFFERS`]).
    Snapshots(Vec<SnapshotOffer>),
    /// The chunk asked for, if the peer has it (at most [`MAX_SNAPSHOT_CHUNK_BYTES`]).
    SnapshotChunk(Option<Vec<u8>>),
    /// The peer could not answer (busy, pruned, ...).
    Error(String),
}

/// Makes a response fit the wire limits: at most [`MAX_SYNC_BLOCKS`] blocks, the longest prefix of them
/// that encodes within [`MAX_RESPONSE_BYTES`], and an error text of at most [`MAX_ERROR_TEXT`] bytes.
pub fn fit_response(response: SyncResponse) -> SyncResponse {
    match response {
        SyncResponse::Blocks(mut blocks) => {
            blocks.truncate(MAX_SYNC_BLOCKS as usize);
            let mut total: usize = 1 + 4; // enum tag + vector length
            let mut keep = 0;
            for (block, commit) in &blocks {
                let len = borsh::object_length(block)
                    .unwrap_or(usize::MAX)
                    .saturating_add(borsh::object_length(commit).unwrap_or(usize::MAX));
                if total.saturating_add(len) > MAX_RESPONSE_BYTES {
                    break;
                }
                total += len;
                keep += 1;
            }
            if keep == 0 && !blocks.is_empty() {
                return SyncResponse::Error("block too large for a sync response".to_string());
            }
            blocks.truncate(keep);
            SyncResponse::Blocks(blocks)
        }
        SyncResponse::Snapshots(mut offers) => {
            offers.retain(|o| o.manifest.len() <= MAX_MANIFEST_BYTES);
            offers.truncate(MAX_SNAPSHOT_OFFERS);
            SyncResponse::Snapshots(offers)
        }
        SyncResponse::SnapshotChunk(Some(chunk)) if chunk.len() > MAX_SNAPSHOT_CHUNK_BYTES => {
            SyncResponse::SnapshotChunk(None)
        }
        SyncResponse::Error(mut text) => {
            if text.len() > MAX_ERROR_TEXT {
                let mut cut = MAX_ERROR_TEXT;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
            }
            SyncResponse::Error(text)
        }
        other => other,
    }
}

/// Checks a decoded response keeps the protocol's bounds.
fn check_response(response: &SyncResponse) -> io::Result<()> {
    match response {
        SyncResponse::Blocks(blocks) if blocks.len() > MAX_SYNC_BLOCKS as usize => {
            Err(invalid(format!(
                "response holds {} blocks, more than {MAX_SYNC_BLOCKS}",
                blocks.len()
            )))
        }
        SyncResponse::Snapshots(offers) if offers.len() > MAX_SNAPSHOT_OFFERS => {
            Err(invalid(format!(
                "response offers {} snapshots, more than {MAX_SNAPSHOT_OFFERS}",
                offers.len()
            )))
        }
        SyncResponse::Snapshots(offers)
            if offers.iter().any(|o| o.manifest.len() > MAX_MANIFEST_BYTES) =>
        {
            Err(invalid(format!(
                "a snapshot manifest over {MAX_MANIFEST_BYTES} bytes"
            )))
        }
        SyncResponse::SnapshotChunk(Some(chunk)) if chunk.len() > MAX_SNAPSHOT_CHUNK_BYTES => {
            Err(invalid(format!(
                "a snapshot chunk of {} bytes, more than {MAX_SNAPSHOT_CHUNK_BYTES}",
                chunk.len()
            )))
        }
        _ => Ok(()),
    }
}

fn invalid(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason)
}

/// Reads one length-prefixed frame of at most `max` bytes.
pub async fn read_frame<T: AsyncRead + Unpin>(
    io: &mut T,
    max: usize,
    what: &str,
) -> io::Result<Vec<u8>> {
    let mut len_bytes = [0u8; 4];
    io.read_exact(&mut len_bytes).await?;
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len > max {
        return Err(invalid(format!(
            "{what} of {len} bytes exceeds the limit of {max}"
        )));
    }
    // Grow with the bytes actually received, never from the claimed length.
    let mut buf = Vec::with_capacity(len.min(64 * 1024));
    io.take(len as u64).read_to_end(&mut buf).await?;
    if buf.len() != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{what}: stream ended after {} of {len} bytes", buf.len()),
        ));
    }
    Ok(buf)
}

/// Writes one length-prefixed frame, refusing one over `max` bytes.
pub async fn write_frame<T: AsyncWrite + Unpin>(
    io: &mut T,
    bytes: &[u8],
    max: usize,
    what: &str,
) -> io::Result<()> {
    if bytes.len() > max {
        return Err(invalid(format!(
            "{what} of {} bytes exceeds the limit of {max}",
            bytes.len()
        )));
    }
    let len = u32::try_from(bytes.len()).map_err(|_| invalid(format!("{what} too long")))?;
    io.write_all(&len.to_le_bytes()).await?;
    io.write_all(bytes).await?;
    io.close().await
}

/// Decodes a request frame.
pub fn decode_request(bytes: &[u8]) -> io::Result<SyncRequest> {
    if bytes.len() > MAX_REQUEST_BYTES {
        return Err(invalid(format!(
            "request of {} bytes is too large",
            bytes.len()
        )));
    }
    borsh::from_slice(bytes)
}

/// Decodes a response frame.
pub fn decode_response(bytes: &[u8]) -> io::Result<SyncResponse> {
    if bytes.len() > MAX_RESPONSE_BYTES {
        return Err(invalid(format!(
            "response of {} bytes is too large",
            bytes.len()
        )));
    }
    let response: SyncResponse = borsh::from_slice(bytes)?;
    check_response(&response)?;
    Ok(response)
}

/// The libp2p request-response codec for [`SYNC_PROTOCOL`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SyncCodec;

impl libp2p::request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = SyncRequest;
    type Response = SyncResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = read_frame(io, MAX_REQUEST_BYTES, "sync request").await?;
        decode_request(&bytes)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = read_frame(io, MAX_RESPONSE_BYTES, "sync response").await?;
        decode_response(&bytes)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: SyncRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let bytes = borsh::to_vec(&request)?;
        write_frame(io, &bytes, MAX_REQUEST_BYTES, "sync request").await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: SyncResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let bytes = borsh::to_vec(&fit_response(response))?;
        write_frame(io, &bytes, MAX_RESPONSE_BYTES, "sync response").await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use proptest::prelude::*;

    fn frame(bytes: &[u8]) -> Vec<u8> {
        let mut out = (bytes.len() as u32).to_le_bytes().to_vec();
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn request_frames_round_trip() {
        for request in [
            SyncRequest::Status,
            SyncRequest::Blocks { from: 5, count: 64 },
            SyncRequest::Proposal {
                height: 9,
                round: 1,
            },
            SyncRequest::Snapshots,
            SyncRequest::SnapshotChunk {
                height: u64::MAX,
                index: u32::MAX,
            },
        ] {
            let mut wire = Vec::new();
            block_on(write_frame(
                &mut wire,
                &borsh::to_vec(&request).unwrap(),
                MAX_REQUEST_BYTES,
                "r",
            ))
            .unwrap();
            let bytes = block_on(read_frame(&mut wire.as_slice(), MAX_REQUEST_BYTES, "r")).unwrap();
            assert_eq!(decode_request(&bytes).unwrap(), request);
        }
    }

    #[test]
    fn a_claimed_length_over_the_limit_is_refused_before_reading() {
        let wire = (u32::MAX).to_le_bytes().to_vec();
        let err =
            block_on(read_frame(&mut wire.as_slice(), MAX_RESPONSE_BYTES, "resp")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_short_body_is_an_error() {
        let mut wire = 100u32.to_le_bytes().to_vec();
        wire.extend_from_slice(&[0; 10]);
        let err = block_on(read_frame(&mut wire.as_slice(), 1024, "req")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn too_many_blocks_in_a_response_is_invalid() {
        // A Blocks response with a lying count: 65 entries claimed but none present is undecodable; the
        // count check is exercised through check_response directly.
        let response = SyncResponse::Blocks(Vec::new());
        assert!(check_response(&response).is_ok());
        let bytes = [&[1u8][..], &65u32.to_le_bytes()].concat();
        assert!(decode_response(&bytes).is_err());
    }

    #[test]
    fn snapshot_answers_keep_the_protocol_bounds() {
        let offer = |height: u64, len: usize| SnapshotOffer {
            height,
            manifest: vec![7; len],
        };
        // A server cuts what it sends to the bounds...
        let many = SyncResponse::Snapshots((0..10).map(|h| offer(h, 100)).collect());
        let SyncResponse::Snapshots(kept) = fit_response(many) else {
            panic!("not snapshots");
        };
        assert_eq!(kept.len(), MAX_SNAPSHOT_OFFERS);
        let oversized =
            SyncResponse::Snapshots(vec![offer(1, MAX_MANIFEST_BYTES + 1), offer(2, 10)]);
        assert_eq!(
            fit_response(oversized),
            SyncResponse::Snapshots(vec![offer(2, 10)])
        );
        let chunk = SyncResponse::SnapshotChunk(Some(vec![0; MAX_SNAPSHOT_CHUNK_BYTES + 1]));
        assert_eq!(fit_response(chunk), SyncResponse::SnapshotChunk(None));
        // ...and a client refuses answers past them, whatever a peer sends.
        for bad in [
            SyncResponse::Snapshots((0..5).map(|h| offer(h, 1)).collect()),
            SyncResponse::Snapshots(vec![offer(1, MAX_MANIFEST_BYTES + 1)]),
            SyncResponse::SnapshotChunk(Some(vec![0; MAX_SNAPSHOT_CHUNK_BYTES + 1])),
        ] {
            let bytes = borsh::to_vec(&bad).unwrap();
            assert!(decode_response(&bytes).is_err());
        }
        for good in [
            SyncResponse::Snapshots(vec![offer(5, 100), offer(0, 0)]),
            SyncResponse::SnapshotChunk(Some(vec![1, 2, 3])),
            SyncResponse::SnapshotChunk(None),
        ] {
            let bytes = borsh::to_vec(&good).unwrap();
            assert_eq!(decode_response(&bytes).unwrap(), good);
        }
    }

    #[test]
    fn error_text_is_cut_on_a_char_boundary() {
        let long = "é".repeat(MAX_ERROR_TEXT);
        match fit_response(SyncResponse::Error(long)) {
            SyncResponse::Error(text) => assert!(text.len() <= MAX_ERROR_TEXT && !text.is_empty()),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_blocks_response_is_cut_to_the_protocol_maximum() {
        use basalt_consensus::types::{Address, BlockId, Hash, Header};
        use basalt_consensus::{Height, Round};
        let (data_hash, evidence_hash, last_commit_hash) = Block::content_hashes(&[], &[], None);
        let header = Header {
            chain_id: basalt_consensus::types::ChainId::new("c").unwrap(),
            height: Height(1),
            time_ms: 1,
            last_block_id: None,
            last_commit_hash,
            data_hash,
            validators_hash: Hash::ZERO,
            next_validators_hash: Hash::ZERO,
            app_hash: Hash::ZERO,
            last_results_hash: Hash::ZERO,
            evidence_hash,
            proposer_address: Address([0; 20]),
        };
        let block = Block::new(header, vec![], vec![], None).unwrap();
        let commit = Commit {
            height: Height(1),
            round: Round(0),
            block_id: BlockId { hash: Hash::ZERO },
            signatures: vec![],
        };
        let many = vec![(block, commit); MAX_SYNC_BLOCKS as usize + 6];
        let fitted = fit_response(SyncResponse::Blocks(many));
        let SyncResponse::Blocks(kept) = &fitted else {
            panic!("unexpected {fitted:?}");
        };
        assert_eq!(kept.len(), MAX_SYNC_BLOCKS as usize);
        // What we send, we accept.
        assert_eq!(
            decode_response(&borsh::to_vec(&fitted).unwrap()).unwrap(),
            fitted
        );
    }

    #[test]
    fn blocks_requests_are_clamped() {
        assert_eq!(
            SyncRequest::Blocks {
                from: 1,
                count: 1000
            }
            .clamped(),
            SyncRequest::Blocks {
                from: 1,
                count: MAX_SYNC_BLOCKS
            }
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, rng_seed: proptest::test_runner::RngSeed::Fixed(11), ..ProptestConfig::default() })]

        #[test]
        fn codec_never_panics_on_random_frames(body in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = decode_request(&body);
            let _ = decode_response(&body);
            let wire = frame(&body);
            let _ = block_on(read_frame(&mut wire.as_slice(), MAX_REQUEST_BYTES, "req"))
                .and_then(|b| decode_request(&b));
            let _ = block_on(read_frame(&mut wire.as_slice(), MAX_RESPONSE_BYTES, "resp"))
                .and_then(|b| decode_response(&b));
            // Raw bytes as a whole stream (random length prefix).
            let _ = block_on(read_frame(&mut body.as_slice(), MAX_RESPONSE_BYTES, "resp"));
        }

        #[test]
        fn valid_requests_decode_back(from in any::<u64>(), count in any::<u32>(), round in any::<u32>()) {
            for request in [SyncRequest::Blocks { from, count }, SyncRequest::Proposal { height: from, round }] {
                let bytes = borsh::to_vec(&request).unwrap();
                prop_assert_eq!(decode_request(&bytes).unwrap(), request);
            }
        }
    }
}
