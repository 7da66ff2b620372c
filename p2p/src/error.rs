//! The crate's errors: each variant says what failed and where.

use libp2p::PeerId;

/// Why the network could not start.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The node key seed was refused by libp2p (cannot happen for 32 bytes, kept to avoid a panic path).
    #[error("node key: {reason}")]
    NodeKey {
        /// libp2p's reason.
        reason: String,
    },
    /// The transport (tcp + noise + yamux) could not be built.
    #[error("building the transport: {reason}")]
    Transport {
        /// libp2p's reason.
        reason: String,
    },
    /// A behaviour (gossipsub, peer scoring) rejected its configuration.
    #[error("configuring {behaviour}: {reason}")]
    Behaviour {
        /// Which behaviour.
        behaviour: &'static str,
        /// Why.
        reason: String,
    },
    /// Subscribing to a gossip topic failed.
    #[error("subscribing to topic {topic}: {reason}")]
    Subscribe {
        /// The topic.
        topic: &'static str,
        /// Why.
        reason: String,
    },
    /// The listener could not be bound.
    #[error("listening on {addr}: {reason}")]
    Listen {
        /// The configured listen address.
        addr: std::net::SocketAddr,
        /// Why.
        reason: String,
    },
    /// A configuration value is unusable.
    #[error("network config field {field}: {reason}")]
    Config {
        /// The field name in [`crate::NetworkConfig`].
        field: &'static str,
        /// Why.
        reason: String,
    },
}

/// Why a sync request got no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The peer did not answer within the request timeout.
    #[error("request to {peer} timed out")]
    Timeout {
        /// The peer asked.
        peer: PeerId,
    },
    /// The peer could not be reached.
    #[error("could not dial {peer}")]
    DialFailure {
        /// The peer asked.
        peer: PeerId,
    },
    /// The connection closed before the response arrived.
    #[error("connection to {peer} closed before it answered")]
    ConnectionClosed {
        /// The peer asked.
        peer: PeerId,
    },
    /// The peer does not speak the sync protocol.
    #[error("{peer} does not support the sync protocol")]
    Unsupported {
        /// The peer asked.
        peer: PeerId,
    },
    /// Reading or writing the stream failed, or the response was malformed or too large.
    #[error("exchange with {peer} failed: {reason}")]
    Io {
        /// The peer asked.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// Too many requests are in flight; try again later.
    #[error("too many sync requests in flight (limit {limit})")]
    Busy {
        /// The limit on in-flight requests.
        limit: usize,
    },
    /// The network task has stopped.
    #[error("the network task has stopped")]
    Shutdown,
}

/// Why a `<peer id>@<host:port>` string is not a peer address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerAddrError {
    /// No `@` separates the peer id from the address.
    #[error("peer address {input:?}: expected <peer id>@<host:port>")]
    MissingAt {
        /// The input.
        input: String,
    },
    /// The part before `@` is not a peer id.
    #[error("peer address {input:?}: peer id {id:?} is invalid: {reason}")]
    BadPeerId {
        /// The input.
        input: String,
        /// The peer id part.
        id: String,
        /// Why.
        reason: String,
    },
    /// The part after `@` is not `ip:port`.
    #[error("peer address {input:?}: address {addr:?} is not <ip>:<port>: {reason}")]
    BadSocketAddr {
        /// The input.
        input: String,
        /// The address part.
        addr: String,
        /// Why.
        reason: String,
    },
}
