//! Issue 14, holes 1–4, with real processes: a rogue libp2p peer (the basalt-p2p crate) attacks validator 0
//! of a 4-validator network, and the network keeps committing, validator 0 keeps its place in consensus, and
//! the rogue — never an honest node — is the one banned. Each attack failed on commit 9496b9c:
//!
//! 1. evidence of height 2^62 hung validator 0 (its validator set was computed one height at a time);
//! 2. a forged vote for the next height was buffered and forwarded unchecked (the rogue went unpunished,
//!    and the peers that checked it blamed validator 0);
//! 3. a transaction batch [new valid tx, tx validator 0 had refused for its signature] was forwarded by
//!    validator 0 (something in it was new), so its peers banned it;
//! 4. a Status claiming height `u64::MAX` put validator 0 in block sync for good: it stopped signing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use basalt_consensus::engine::ConsensusMessage;
use basalt_consensus::types::{
    Address, BlockId, ChainId, DuplicateVoteEvidence, Hash, PrivateKey, SignedVote, Tx, Vote,
};
use basalt_consensus::{Height, Round, ValidatorIndex, VoteType};
use basalt_p2p::{GossipTopic, NetworkHandle, PeerAddr, PeerId};
use basalt_tests::rogue::{connected_to, rogue};
use basalt_tests::testnet::{transfer_tx, Testnet};
use base64::Engine as _;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(45);

/// Waits until the rogue is connected to the validator and subscribed with it on `topic` (bounded).
async fn wait_connected(handle: &NetworkHandle, peer: &PeerId, topic: GossipTopic) {
    let deadline = Instant::now() + WAIT;
    while !connected_to(handle, peer).await
        || !handle.topic_peers(topic).await.subscribed.contains(peer)
    {
        assert!(Instant::now() < deadline, "rogue never connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The node ids (as `net_info` lists them) of node `i`'s peers.
async fn peer_ids(net: &Testnet, i: usize) -> Vec<String> {
    let info = net.rpc(i, "net_info", json!({})).await.unwrap();
    info["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["node_info"]["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Every honest node still has validator 0 as a peer (none banned it).
async fn assert_validator0_not_banned(net: &Testnet, what: &str) {
    let id0 = basalt_node::rpc::methods::node_id_hex(&net.node_id(0).unwrap());
    for i in 1..4 {
        let peers = peer_ids(net, i).await;
        assert!(
            peers.contains(&id0),
            "{what}: node {i} dropped validator 0 (peers {peers:?})"
        );
    }
}

async fn chain_id(net: &Testnet) -> ChainId {
    let status = net.rpc(0, "status", json!({})).await.unwrap();
    ChainId::new(status["node_info"]["network"].as_str().unwrap()).unwrap()
}

/// Validator 0 is in consensus and signing: not catching up, and its precommit is in a recent commit.
async fn assert_validator0_signing(net: &Testnet, what: &str) {
    let status = net.rpc(0, "status", json!({})).await.unwrap();
    assert_eq!(
        status["sync_info"]["catching_up"],
        Value::Bool(false),
        "{what}: validator 0 left consensus"
    );
    let address = status["validator_info"]["address"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = Instant::now() + WAIT;
    loop {
        let h = net.height(1).await.unwrap();
        let commit = net
            .rpc(1, "commit", json!({"height": h.to_string()}))
            .await
            .unwrap();
        let signed = commit["signed_header"]["commit"]["signatures"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["validator_address"] == Value::String(address.clone()));
        if signed {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: validator 0 signs no commits"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_all_past(net: &Testnet, heights: u64) {
    let now = net.height(1).await.unwrap();
    for i in 0..4 {
        net.wait_height(i, now + heights, WAIT).await.unwrap();
    }
}

fn vote(key: &PrivateKey, chain: &ChainId, height: u64, byte: Option<u8>) -> SignedVote {
    let vote = Vote {
        vote_type: VoteType::Prevote,
        height: Height(height),
        round: Round(0),
        block_id: byte.map(|b| BlockId {
            hash: Hash([b; 32]),
        }),
        validator_index: ValidatorIndex(0),
    };
    let signature = key.sign(&vote.sign_bytes(chain));
    SignedVote { vote, signature }
}

/// A running 4-validator network, its chain id and validator 0's address for the rogues.
async fn network() -> (Testnet, ChainId, PeerAddr) {
    let mut net = Testnet::generate(4, 0, 4).unwrap();
    for i in 0..4 {
        net.start(i, &[]).unwrap();
    }
    for i in 0..4 {
        net.wait_height(i, 3, WAIT).await.unwrap();
    }
    let chain = chain_id(&net).await;
    let target = PeerAddr {
        id: net.node_id(0).unwrap().parse().unwrap(),
        addr: net.p2p_addr(0),
    };
    (net, chain, target)
}

/// The key of no validator.
fn stranger() -> PrivateKey {
    PrivateKey::from_seed(&[77; 32])
}

/// The network went on, validator 0 is in consensus and signing, and no honest node dropped it.
async fn assert_network_whole(net: &Testnet, what: &str) {
    wait_all_past(net, 10).await;
    assert_validator0_signing(net, what).await;
    assert_validator0_not_banned(net, what).await;
}

/// Hole 1: evidence of height 2^62 (two conflicting votes; their signatures do not matter: the height alone
/// must end the check). On 9496b9c validator 0 hung computing validator sets up to that height.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_of_a_far_height_does_not_hang_the_node() {
    let (net, chain, target) = network().await;
    let (sender, _events) = rogue(211, target.clone()).await.unwrap();
    wait_connected(&sender, &target.id, GossipTopic::Consensus).await;
    let far = 1u64 << 62;
    let key = stranger();
    let evidence = DuplicateVoteEvidence::new(
        vote(&key, &chain, far, Some(1)),
        vote(&key, &chain, far, Some(2)),
    )
    .unwrap();
    sender.publish_consensus(&ConsensusMessage::Evidence(evidence));
    // Junk votes for far heights: dropped (not forwarded, not punished).
    sender.publish_consensus(&ConsensusMessage::Vote(vote(&key, &chain, far, None)));
    wait_all_past(&net, 10).await;
    // The node answers a validators query at once (it was hung holding the set history's lock).
    let started = Instant::now();
    net.rpc(0, "validators", json!({})).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_network_whole(&net, "far evidence").await;
    sender.shutdown().await;
}

/// Hole 4: a Status claiming height `u64::MAX`, repeated, from a peer that serves nothing. On 9496b9c
/// validator 0 went to block sync for good and stopped signing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimed_height_does_not_take_a_validator_out_of_consensus() {
    let (net, _, target) = network().await;
    let (liar, _events) = rogue(212, target.clone()).await.unwrap();
    wait_connected(&liar, &target.id, GossipTopic::Consensus).await;
    let claim = ConsensusMessage::Status {
        height: Height(u64::MAX),
        round: Round(0),
    };
    let claims = {
        let liar = liar.clone();
        tokio::spawn(async move {
            for _ in 0..600 {
                liar.publish_consensus(&claim);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    // Long enough for the node to have asked the liar and given up on it (request timeout 10 s).
    let until = Instant::now() + Duration::from_secs(12);
    while Instant::now() < until {
        assert_validator0_signing(&net, "claimed height").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_network_whole(&net, "claimed height").await;
    claims.abort();
    liar.shutdown().await;
}

/// Hole 2: a forged vote for the next height is refused by validator 0 (bad signature: the rogue is banned)
/// and never forwarded (no honest node drops validator 0). On 9496b9c it was kept and forwarded unchecked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_next_height_vote_gets_its_sender_banned_not_the_forwarder() {
    let (net, chain, target) = network().await;
    let (forger, _events) = rogue(213, target.clone()).await.unwrap();
    wait_connected(&forger, &target.id, GossipTopic::Consensus).await;
    let key = stranger();
    let deadline = Instant::now() + WAIT;
    while connected_to(&forger, &target.id).await {
        assert!(
            Instant::now() < deadline,
            "forged next-height vote: the rogue was not banned"
        );
        // Committed height + 2 = the height after the one validator 0 works on.
        let next = net.height(0).await.unwrap() + 2;
        forger.publish_consensus(&ConsensusMessage::Vote(vote(&key, &chain, next, None)));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_network_whole(&net, "forged next-height vote").await;
    forger.shutdown().await;
}

/// Hole 3: validator 0 refused a transaction for its signature (over RPC); a gossiped batch [new valid tx,
/// that tx] gets the sender banned and is not forwarded. On 9496b9c validator 0 forwarded it (something in
/// it was new) and its peers banned validator 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_repeating_a_refused_tx_gets_its_sender_banned_not_the_forwarder() {
    let (net, chain, target) = network().await;
    let accounts = net.accounts().unwrap();
    let sink = Address([0x42; 20]);
    let mut forged = transfer_tx(chain.as_str(), &accounts[0].1, &sink, 5, 0).unwrap();
    // The signature (R ‖ S) ends the encoding: a flipped bit of R keeps it well-formed but wrong.
    let r_start = forged.len() - 64;
    forged[r_start] ^= 0x01;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&forged);
    let refused = net
        .rpc(0, "broadcast_tx_sync", json!({"tx": b64}))
        .await
        .unwrap();
    assert_eq!(
        refused["code"],
        json!(basalt_state::bank::TxCode::BadSignature.as_u32()),
        "the forged tx was not refused for its signature: {refused}"
    );
    let valid = transfer_tx(chain.as_str(), &accounts[1].1, &sink, 5, 0).unwrap();
    let (batcher, _events) = rogue(214, target.clone()).await.unwrap();
    wait_connected(&batcher, &target.id, GossipTopic::Txs).await;
    batcher.publish_txs(vec![Tx::new(valid).unwrap(), Tx::new(forged).unwrap()]);
    let deadline = Instant::now() + WAIT;
    while connected_to(&batcher, &target.id).await {
        assert!(
            Instant::now() < deadline,
            "batch with a refused tx: the rogue was not banned"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_network_whole(&net, "batch with a refused tx").await;
    batcher.shutdown().await;
}
