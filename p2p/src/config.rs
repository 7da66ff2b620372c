//! Network configuration, peer addresses and the node identity derived from the node key.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::time::Duration;

use libp2p::identity::{self, ed25519, Keypair};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

use crate::error::{NetworkError, PeerAddrError};

/// Default bound on the event channel to the node.
pub const DEFAULT_EVENT_QUEUE: usize = 10_000;
/// Default limit of one transaction batch on the txs topic.
pub const DEFAULT_MAX_TX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// Everything the network task needs to start.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// ed25519 secret seed of the node key (`config/node_key.json`); the peer id derives from it.
    pub node_key_seed: [u8; 32],
    /// Where to listen, e.g. `0.0.0.0:26656`; port 0 picks a free port (see [`crate::NetworkHandle::listen_addr`]).
    pub listen_addr: SocketAddr,
    /// Peers dialled at start and redialled forever with back-off (1 s doubling to 30 s), unless banned.
    pub persistent_peers: Vec<PeerAddr>,
    /// Most established inbound connections.
    pub max_inbound: u32,
    /// Most established outbound connections.
    pub max_outbound: u32,
    /// How long a misbehaving peer stays banned.
    pub ban_duration: Duration,
    /// Largest encoded transaction batch accepted on the txs topic (larger batches are split on publish
    /// and are a bannable offence on receipt).
    pub max_tx_batch_bytes: usize,
    /// Gossipsub heartbeat (mesh maintenance); short so small networks form their mesh quickly.
    pub gossip_heartbeat: Duration,
    /// Bound of the event channel to the node; gossip is dropped (ignored) when it is full.
    pub event_queue: usize,
    /// Bound of the command channel from [`crate::NetworkHandle`]s; publishes are dropped (with a warning)
    /// when it is full rather than blocking the caller.
    pub command_queue: usize,
    /// How long an outbound sync request waits for its response, and how long the node has to answer an
    /// inbound one.
    pub request_timeout: Duration,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            node_key_seed: [0u8; 32],
            listen_addr: SocketAddr::from(([0, 0, 0, 0], 26656)),
            persistent_peers: Vec::new(),
            max_inbound: 40,
            max_outbound: 10,
            ban_duration: Duration::from_secs(5 * 60),
            max_tx_batch_bytes: DEFAULT_MAX_TX_BATCH_BYTES,
            gossip_heartbeat: Duration::from_millis(200),
            event_queue: DEFAULT_EVENT_QUEUE,
            command_queue: 10_000,
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl NetworkConfig {
    /// Rejects values the swarm cannot run with (zero-sized queues, zero durations).
    pub(crate) fn validate(&self) -> Result<(), NetworkError> {
        let bad = |field, reason: &str| {
            Err(NetworkError::Config {
                field,
                reason: reason.to_string(),
            })
        };
        if self.event_queue == 0 {
            return bad("event_queue", "must be at least 1");
        }
        if self.command_queue == 0 {
            return bad("command_queue", "must be at least 1");
        }
        if self.gossip_heartbeat.is_zero() {
            return bad("gossip_heartbeat", "must be non-zero");
        }
        if self.request_timeout.is_zero() {
            return bad("request_timeout", "must be non-zero");
        }
        // A batch must at least hold one small transaction (u32 count + u32 length + 1 byte).
        if self.max_tx_batch_bytes < 9 {
            return bad("max_tx_batch_bytes", "must be at least 9 bytes");
        }
        Ok(())
    }
}

/// A peer's id and address, written `<peer id>@<host:port>` (CometBFT's `id@host:port` form).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerAddr {
    /// The peer's id.
    pub id: PeerId,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl PeerAddr {
    /// Parses a comma-separated list (CometBFT's `persistent_peers` form); blanks are skipped.
    pub fn parse_list(list: &str) -> Result<Vec<PeerAddr>, PeerAddrError> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(PeerAddr::from_str)
            .collect()
    }

    /// The libp2p address `/ip4/../tcp/../p2p/<id>`.
    pub fn to_multiaddr(&self) -> Multiaddr {
        socket_to_multiaddr(self.addr).with(Protocol::P2p(self.id))
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, self.addr)
    }
}

impl FromStr for PeerAddr {
    type Err = PeerAddrError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let input = input.trim();
        let Some((id_part, addr_part)) = input.split_once('@') else {
            return Err(PeerAddrError::MissingAt {
                input: input.to_string(),
            });
        };
        let id = PeerId::from_str(id_part).map_err(|e| PeerAddrError::BadPeerId {
            input: input.to_string(),
            id: id_part.to_string(),
            reason: e.to_string(),
        })?;
        let addr = parse_socket_addr(addr_part).map_err(|reason| PeerAddrError::BadSocketAddr {
            input: input.to_string(),
            addr: addr_part.to_string(),
            reason,
        })?;
        Ok(PeerAddr { id, addr })
    }
}

/// An `ip:port` literal, or `host:port` resolved once now (config is read at start-up).
fn parse_socket_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = SocketAddr::from_str(s) {
        return Ok(addr);
    }
    let mut resolved = s.to_socket_addrs().map_err(|e| e.to_string())?;
    resolved
        .next()
        .ok_or_else(|| "host resolves to no address".to_string())
}

/// `/ip4/<ip>/tcp/<port>` or `/ip6/<ip>/tcp/<port>`.
pub(crate) fn socket_to_multiaddr(addr: SocketAddr) -> Multiaddr {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(v4) => Protocol::Ip4(v4),
        std::net::IpAddr::V6(v6) => Protocol::Ip6(v6),
    };
    Multiaddr::empty().with(ip).with(Protocol::Tcp(addr.port()))
}

/// The `ip:port` of a `/ip4|ip6/../tcp/..` multiaddr, if it is one.
pub(crate) fn multiaddr_to_socket(addr: &Multiaddr) -> Option<SocketAddr> {
    let mut ip = None;
    for protocol in addr.iter() {
        match protocol {
            Protocol::Ip4(v4) => ip = Some(std::net::IpAddr::V4(v4)),
            Protocol::Ip6(v6) => ip = Some(std::net::IpAddr::V6(v6)),
            Protocol::Tcp(port) => return ip.map(|ip| SocketAddr::new(ip, port)),
            _ => {}
        }
    }
    None
}

/// The libp2p keypair for an ed25519 seed.
pub(crate) fn keypair_from_seed(seed: &[u8; 32]) -> Result<Keypair, NetworkError> {
    // `try_from_bytes` copies and zeroizes its argument, so hand it a copy.
    let mut copy = *seed;
    let secret =
        ed25519::SecretKey::try_from_bytes(&mut copy).map_err(|e| NetworkError::NodeKey {
            reason: e.to_string(),
        })?;
    Ok(Keypair::from(ed25519::Keypair::from(secret)))
}

/// The peer id (`12D3KooW...`) of the node whose key has this ed25519 seed.
pub fn peer_id_from_seed(seed: &[u8; 32]) -> PeerId {
    match keypair_from_seed(seed) {
        Ok(keypair) => keypair.public().to_peer_id(),
        // Unreachable: every 32-byte string is a valid ed25519 seed (libp2p checks only the length).
        // Rather than panic, return the id of a fresh random key, which matches no node.
        Err(_) => fallback_peer_id(),
    }
}

fn fallback_peer_id() -> PeerId {
    identity::Keypair::generate_ed25519().public().to_peer_id()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn peer_addr_round_trips_through_text() {
        let id = peer_id_from_seed(&[9; 32]);
        let text = format!("{id}@127.0.0.1:26656");
        let addr: PeerAddr = text.parse().unwrap();
        assert_eq!(addr.id, id);
        assert_eq!(addr.addr, "127.0.0.1:26656".parse().unwrap());
        assert_eq!(addr.to_string(), text);
        assert!(id.to_string().starts_with("12D3KooW"));
        assert_eq!(
            addr.to_multiaddr().to_string(),
            format!("/ip4/127.0.0.1/tcp/26656/p2p/{id}")
        );
    }

    #[test]
    fn peer_addr_errors_name_the_bad_part() {
        assert!(matches!(
            "127.0.0.1:1".parse::<PeerAddr>(),
            Err(PeerAddrError::MissingAt { .. })
        ));
        assert!(matches!(
            "nope@127.0.0.1:1".parse::<PeerAddr>(),
            Err(PeerAddrError::BadPeerId { id, .. }) if id == "nope"
        ));
        let id = peer_id_from_seed(&[9; 32]);
        assert!(matches!(
            format!("{id}@no-port").parse::<PeerAddr>(),
            Err(PeerAddrError::BadSocketAddr { addr, .. }) if addr == "no-port"
        ));
    }

    #[test]
    fn peer_lists_parse_and_skip_blanks() {
        let a = peer_id_from_seed(&[1; 32]);
        let b = peer_id_from_seed(&[2; 32]);
        let list = format!(" {a}@127.0.0.1:1, ,{b}@[::1]:2 ");
        let peers = PeerAddr::parse_list(&list).unwrap();
        assert_eq!(peers.len(), 2);
        assert_eq!(peers[1].addr, "[::1]:2".parse().unwrap());
        assert!(PeerAddr::parse_list("").unwrap().is_empty());
    }

    #[test]
    fn peer_id_is_deterministic_per_seed() {
        assert_eq!(peer_id_from_seed(&[5; 32]), peer_id_from_seed(&[5; 32]));
        assert_ne!(peer_id_from_seed(&[5; 32]), peer_id_from_seed(&[6; 32]));
    }

    #[test]
    fn validate_rejects_zero_queues() {
        let config = NetworkConfig {
            event_queue: 0,
            ..NetworkConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(NetworkError::Config {
                field: "event_queue",
                ..
            })
        ));
        assert!(NetworkConfig::default().validate().is_ok());
    }
}
