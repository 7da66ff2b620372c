//! The CometBFT-compatible JSON-RPC server (HTTP POST, URI form, websocket subscriptions).
//!
//! - [`backend`]: the [`RpcBackend`] trait the running node implements, and its data types.
//! - [`server`]: [`serve`]: the axum router, connection/body/header/batch limits and timeouts.
//! - [`methods`]: one function per RPC method, producing CometBFT v0.38 JSON.
//! - [`shapes`]: Basalt values in CometBFT's JSON shapes; [`proof`]: ICS-23 proofs as protobuf.
//! - [`jsonrpc`]: envelopes, error codes, parameter decoding; [`query`]: event query strings.
//! - [`ws`]: `/websocket` subscriptions.
//!
//! `docs/RPC.md` lists the methods, the encodings and where Basalt's values differ from CometBFT's.

pub mod backend;
pub use basalt_jsonrpc as jsonrpc;
pub mod methods;
pub mod proof;
pub mod query;
pub mod server;
pub mod shapes;
pub mod ws;

use std::time::Duration;

pub use backend::{
    BackendError, BroadcastError, ConsensusEvent, ConsensusStateView, IndexedTx, NetInfo,
    NewBlockEvent, NodeEvent, NodeInfo, PeerInfo, RoundState, RoundStep, RpcBackend, SearchError,
    SyncInfo, UnconfirmedTxs, ValidatorInfo,
};
pub use query::{QueryError, QueryMatch, TxQuery};
pub use server::serve;

/// The server's limits (the `[rpc]` section of `config.toml`; defaults are CometBFT's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcLimits {
    /// Most simultaneous HTTP connections (websockets included); further ones are closed on accept.
    pub max_open_connections: usize,
    /// Largest request body in bytes (413 beyond it).
    pub max_body_bytes: usize,
    /// Largest total size of request header names and values in bytes (431 beyond it).
    pub max_header_bytes: usize,
    /// Most requests in one JSON-RPC batch.
    pub max_batch_requests: usize,
    /// How long `broadcast_tx_commit` waits for the transaction to be committed.
    pub timeout_broadcast_tx_commit: Duration,
    /// Most websocket clients at once (and most concurrent `broadcast_tx_commit` waits).
    pub max_subscription_clients: usize,
    /// Most subscriptions of one websocket client.
    pub max_subscriptions_per_client: usize,
    /// Longest time one request may take (other than `broadcast_tx_commit`).
    pub request_timeout: Duration,
    /// Messages queued for one websocket client before it is disconnected as too slow.
    pub ws_send_queue: usize,
    /// How often an idle websocket client is pinged (CometBFT: 27 s).
    pub ws_ping_interval: Duration,
    /// A websocket client from which nothing (not even a pong) arrived for this long is disconnected
    /// (CometBFT: 30 s), so dead peers do not hold a `max_subscription_clients` slot forever.
    pub ws_read_timeout: Duration,
}

pub use crate::config::DEFAULT_MAX_BATCH_REQUESTS;

impl Default for RpcLimits {
    fn default() -> Self {
        RpcLimits {
            max_open_connections: 900,
            max_body_bytes: 1_000_000,
            max_header_bytes: 1 << 20,
            max_batch_requests: DEFAULT_MAX_BATCH_REQUESTS,
            timeout_broadcast_tx_commit: Duration::from_secs(10),
            max_subscription_clients: 100,
            max_subscriptions_per_client: 5,
            request_timeout: Duration::from_secs(10),
            ws_send_queue: 100,
            ws_ping_interval: Duration::from_secs(27),
            ws_read_timeout: Duration::from_secs(30),
        }
    }
}

/// Why the server stopped.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// Reading the listener's address failed.
    #[error("rpc listener: {source}")]
    Listener {
        /// The I/O error.
        source: std::io::Error,
    },
    /// The HTTP server failed.
    #[error("rpc server on {addr}: {source}")]
    Serve {
        /// The address served.
        addr: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}
