//! Helpers shared by the network tests: nodes on 127.0.0.1 port 0, consensus fixtures, and waiting for
//! events or conditions with a deadline (never sleeping as synchronisation).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::time::Duration;

use basalt_consensus::engine::ConsensusMessage;
use basalt_consensus::types::{
    Address, Block, BlockId, ChainId, Commit, CommitSig, Hash, Header, PrivateKey, Proposal,
    ProposalMessage, SignedProposal, SignedVote, Tx, Vote,
};
use basalt_consensus::{Height, Round, ValidatorIndex, VoteType};
use basalt_p2p::{GossipTopic, NetworkConfig, NetworkEvent, NetworkHandle, PeerAddr, PeerId};
use tokio::sync::mpsc::Receiver;

/// How long any single wait may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A running node: its handle and its event stream.
pub struct Node {
    pub handle: NetworkHandle,
    pub events: Receiver<NetworkEvent>,
}

impl Node {
    pub fn id(&self) -> PeerId {
        self.handle.local_peer_id()
    }

    /// Its address for others' `persistent_peers`.
    pub fn addr(&self) -> PeerAddr {
        PeerAddr {
            id: self.id(),
            addr: self.handle.listen_addr(),
        }
    }
}

/// A test config: key from `seed`, 127.0.0.1 port 0, fast heartbeat.
pub fn config(seed: u8, persistent_peers: Vec<PeerAddr>) -> NetworkConfig {
    NetworkConfig {
        node_key_seed: [seed; 32],
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        persistent_peers,
        gossip_heartbeat: Duration::from_millis(100),
        ..NetworkConfig::default()
    }
}

pub async fn start(config: NetworkConfig) -> Node {
    let (handle, events) = basalt_p2p::spawn(config).await.expect("network starts");
    Node { handle, events }
}

/// The next event `pick` accepts (others are dropped; a SyncRequest's reply is dropped, which the
/// network answers with an error), failing the test after [`DEADLINE`].
pub async fn wait_event<T>(
    events: &mut Receiver<NetworkEvent>,
    what: &str,
    mut pick: impl FnMut(NetworkEvent) -> Option<T>,
) -> T {
    let found = tokio::time::timeout(DEADLINE, async {
        loop {
            let event = events.recv().await.expect("event channel open");
            if let Some(found) = pick(event) {
                return found;
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Waits for `peer` to connect.
pub async fn wait_connected(node: &mut Node, peer: PeerId) {
    wait_event(&mut node.events, "peer connected", |e| match e {
        NetworkEvent::PeerConnected { peer: p, .. } if p == peer => Some(()),
        _ => None,
    })
    .await
}

/// Waits for `peer` to disconnect.
pub async fn wait_disconnected(node: &mut Node, peer: PeerId) {
    wait_event(&mut node.events, "peer disconnected", |e| match e {
        NetworkEvent::PeerDisconnected { peer: p } if p == peer => Some(()),
        _ => None,
    })
    .await
}

/// Re-checks `condition` every 20 ms until it holds, failing after [`DEADLINE`]. For state that has no
/// event (gossip mesh membership).
pub async fn wait_until<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let result = tokio::time::timeout(DEADLINE, async {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            tick.tick().await;
            if condition().await {
                return;
            }
        }
    })
    .await;
    result.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Waits until `node` has `peer` in its mesh for `topic` (so it forwards to it) and `peer` is known to
/// be subscribed.
pub async fn wait_mesh(node: &NetworkHandle, topic: GossipTopic, peer: PeerId) {
    wait_until("gossip mesh", || async {
        let peers = node.topic_peers(topic).await;
        peers.mesh.contains(&peer) && peers.subscribed.contains(&peer)
    })
    .await
}

/// Waits until `node` knows `peer` subscribes to `topic` (so a flood publish reaches it).
pub async fn wait_subscribed(node: &NetworkHandle, topic: GossipTopic, peer: PeerId) {
    wait_until("topic subscription", || async {
        node.topic_peers(topic).await.subscribed.contains(&peer)
    })
    .await
}

pub fn chain() -> ChainId {
    ChainId::new("basalt-p2p-test").unwrap()
}

pub fn key(seed: u8) -> PrivateKey {
    PrivateKey::from_seed(&[seed; 32])
}

/// A prevote signed by a real validator key.
pub fn signed_vote(height: u64, round: u32) -> SignedVote {
    let vote = Vote {
        vote_type: VoteType::Prevote,
        height: Height(height),
        round: Round(round),
        block_id: Some(BlockId {
            hash: Hash::digest(b"some block"),
        }),
        validator_index: ValidatorIndex(0),
    };
    let signature = key(42).sign(&vote.sign_bytes(&chain()));
    SignedVote { vote, signature }
}

pub fn vote_message(height: u64, round: u32) -> ConsensusMessage {
    ConsensusMessage::Vote(signed_vote(height, round))
}

pub fn txs(count: usize, len: usize, fill: u8) -> Vec<Tx> {
    (0..count)
        .map(|i| Tx::new(vec![fill.wrapping_add(i as u8); len]).unwrap())
        .collect()
}

/// A structurally valid block at `height` (no previous commit: as if it were the first).
pub fn block(height: u64, txs: Vec<Tx>) -> Block {
    let (data_hash, evidence_hash, last_commit_hash) = Block::content_hashes(&txs, &[], None);
    let header = Header {
        chain_id: chain(),
        height: Height(height),
        time_ms: 1_700_000_000_000 + height,
        last_block_id: None,
        last_commit_hash,
        data_hash,
        validators_hash: Hash::ZERO,
        next_validators_hash: Hash::ZERO,
        app_hash: Hash::ZERO,
        last_results_hash: Hash::ZERO,
        evidence_hash,
        proposer_address: Address::from_public_key(&key(42).public_key()),
    };
    Block::new(header, txs, vec![], None).unwrap()
}

/// A commit of one validator for `block`.
pub fn commit(block: &Block) -> Commit {
    let vote = Vote {
        vote_type: VoteType::Precommit,
        height: block.height(),
        round: Round(0),
        block_id: Some(block.id()),
        validator_index: ValidatorIndex(0),
    };
    Commit {
        height: block.height(),
        round: Round(0),
        block_id: block.id(),
        signatures: vec![CommitSig::ForBlock(
            key(42).sign(&vote.sign_bytes(&chain())),
        )],
    }
}

/// A signed proposal message for a fresh block.
pub fn proposal(height: u64, round: u32) -> ProposalMessage {
    let block = block(height, txs(2, 10, 1));
    let proposal = Proposal::new(Height(height), Round(round), None, block.id()).unwrap();
    let signature = key(42).sign(&proposal.sign_bytes(&chain()));
    ProposalMessage {
        signed: SignedProposal {
            proposal,
            signature,
        },
        block,
    }
}
