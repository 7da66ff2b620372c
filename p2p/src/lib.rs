//! Basalt libp2p networking: gossip for consensus messages and transactions, request-response for block
//! sync, persistent peers and a ban list. The swarm runs in its own tokio task; the node talks to it
//! through a [`NetworkHandle`] and receives [`NetworkEvent`]s.
//!
//! # Protocol
//! - **Transport**: TCP + noise + yamux; the node id is the libp2p [`PeerId`] of the node's ed25519 key.
//!   Identify (`/basalt/id/1`) and ping run on every connection. At most 2 connections per peer, and
//!   configurable inbound/outbound limits.
//! - **Gossip** (gossipsub, no libp2p message signatures: [`MessageAuthenticity::Anonymous`]
//!   — authenticity comes from our own consensus signatures, verified by the engine):
//!   [`CONSENSUS_TOPIC`] carries a [`basalt_consensus::engine::ConsensusMessage`], [`TXS_TOPIC`] a borsh
//!   `Vec<Tx>` batch. Every payload is wrapped in an envelope `seq: u64 LE || payload`, `seq` a fresh
//!   per-node counter, so re-publishing the same message is never dropped as a duplicate. Message id =
//!   BLAKE2s-256 of the data. Nothing is forwarded before the node reports [`Verdict::Accept`].
//! - **Limits**: consensus payloads ≤ `MAX_CONSENSUS_MESSAGE_BYTES`, transaction batches ≤
//!   `max_tx_batch_bytes` (publishing splits larger batches), sync requests ≤ 1 KiB, sync responses
//!   ≤ 64 MiB and ≤ [`MAX_SYNC_BLOCKS`] blocks; frames are length-checked before anything is read.
//!   Event queue to the node bounded: gossip is ignored when it is full, sync requests answered "busy".
//! - **Sync** (`/basalt/sync/1`, request-response): [`SyncRequest`] → [`SyncResponse`], each a `u32` LE
//!   length then borsh.
//! - **Bans**: an undecodable or oversized gossip message bans its forwarder at once, without involving
//!   the node. [`NetworkHandle::report_peer`] bans on one provable offence (bad signature, invalid block,
//!   lying about height, undecodable, oversized) or [`MAX_MINOR_OFFENCES`] of [`Misbehaviour::Other`].
//!   A ban disconnects the peer and refuses its connections for `ban_duration`; persistent peers are
//!   redialled (1 s back-off doubling to 30 s) once it ends.
//!
//! [`MessageAuthenticity::Anonymous`]: libp2p::gossipsub::MessageAuthenticity::Anonymous
#![forbid(unsafe_code)]

mod config;
mod error;
mod gossip;
mod handle;
mod peers;
mod runtime;
mod sync;

pub use config::{
    peer_id_from_seed, NetworkConfig, PeerAddr, DEFAULT_EVENT_QUEUE, DEFAULT_MAX_TX_BATCH_BYTES,
};
pub use error::{NetworkError, PeerAddrError, RequestError};
pub use gossip::{
    decode_consensus, decode_txs, GossipTopic, CONSENSUS_TOPIC, ENVELOPE_BYTES, TXS_TOPIC,
};
pub use handle::{
    GossipId, Misbehaviour, NetworkEvent, NetworkHandle, PeerInfo, TopicPeers, Verdict,
};
pub use libp2p::PeerId;
pub use peers::{MAX_BANNED, REDIAL_INITIAL, REDIAL_MAX};
pub use runtime::{
    spawn, IDENTIFY_PROTOCOL, MAX_CONNECTIONS_PER_PEER, MAX_MINOR_OFFENCES, MAX_PENDING_INBOUND,
    MAX_PENDING_OUTBOUND,
};
pub use sync::{
    decode_request, decode_response, SnapshotOffer, SyncCodec, SyncRequest, SyncResponse,
    MAX_ERROR_TEXT, MAX_MANIFEST_BYTES, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES,
    MAX_SNAPSHOT_CHUNK_BYTES, MAX_SNAPSHOT_OFFERS, MAX_SYNC_BLOCKS, SYNC_PROTOCOL,
};
