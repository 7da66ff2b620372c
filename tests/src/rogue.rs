//! Rogue peers for the process tests: real libp2p peers (the basalt-p2p crate) that dial a running node and
//! send it whatever a test wants, including what an honest node never would.

use basalt_p2p::{NetworkConfig, NetworkError, NetworkEvent, NetworkHandle, PeerAddr, PeerId};
use tokio::sync::mpsc;

/// A peer with node key `[seed; 32]`, listening on a free loopback port and dialling `target` (redialled
/// with back-off while it is refused). Keep the receiver: dropping it stops the peer's event delivery.
pub async fn rogue(
    seed: u8,
    target: PeerAddr,
) -> Result<(NetworkHandle, mpsc::Receiver<NetworkEvent>), NetworkError> {
    let config = NetworkConfig {
        node_key_seed: [seed; 32],
        listen_addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        persistent_peers: vec![target],
        ..NetworkConfig::default()
    };
    basalt_p2p::spawn(config).await
}

/// Whether `handle` has a connection to `peer`.
pub async fn connected_to(handle: &NetworkHandle, peer: &PeerId) -> bool {
    handle.peers().await.iter().any(|p| &p.id == peer)
}
