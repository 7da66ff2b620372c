//! Peers that send undecodable, oversized or wrongly-signed data are banned while honest traffic continues
//! (issue 4). The rogues are real libp2p peers (the basalt-p2p crate) dialling a running validator.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use basalt_consensus::engine::ConsensusMessage;
use basalt_consensus::types::{PrivateKey, SignedVote, Vote};
use basalt_consensus::{Height, Round, ValidatorIndex, VoteType};
use basalt_p2p::{GossipTopic, NetworkHandle, PeerAddr, PeerId};
use basalt_tests::rogue::{connected_to, rogue};
use basalt_tests::testnet::Testnet;

const WAIT: Duration = Duration::from_secs(30);

/// Waits until the rogue is connected to and subscribed with the validator (bounded).
async fn wait_connected(handle: &NetworkHandle, peer: &PeerId) {
    let deadline = Instant::now() + WAIT;
    while !connected_to(handle, peer).await {
        assert!(Instant::now() < deadline, "rogue never connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Gossipsub needs the subscription exchange before a publish reaches the peer.
    while !handle
        .topic_peers(GossipTopic::Consensus)
        .await
        .subscribed
        .contains(peer)
    {
        assert!(
            Instant::now() < deadline,
            "rogue never saw the validator's subscription"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Number of peers validator 0 reports (`net_info`).
async fn validator_peers(net: &Testnet) -> usize {
    let info = net.rpc(0, "net_info", serde_json::json!({})).await.unwrap();
    info["n_peers"]
        .as_str()
        .and_then(|n| n.parse().ok())
        .or_else(|| info["n_peers"].as_u64().map(|n| n as usize))
        .unwrap()
}

/// Waits until the validator dropped the rogue, then checks it stays out for a while (banned). Judged from
/// the validator's side: the rogue keeps redialling (persistent peer with back-off) and may briefly see its
/// own half of a connection the validator refuses.
async fn assert_banned(net: &Testnet, handle: &NetworkHandle, peer: &PeerId, what: &str) {
    let deadline = Instant::now() + WAIT;
    while connected_to(handle, peer).await || validator_peers(net).await > 3 {
        assert!(
            Instant::now() < deadline,
            "{what}: rogue was not disconnected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert!(
            validator_peers(net).await <= 3,
            "{what}: the validator accepted the rogue again while it is banned"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_oversized_and_forged_messages_get_the_sender_banned() {
    let mut net = Testnet::generate(4, 0, 10).unwrap();
    for i in 0..4 {
        net.start(i, &[]).unwrap();
    }
    for i in 0..4 {
        net.wait_height(i, 2, WAIT).await.unwrap();
    }
    let target = PeerAddr {
        id: net.node_id(0).unwrap().parse().unwrap(),
        addr: net.p2p_addr(0),
    };

    // 1. A vote whose signature is well-formed but made with a key that is not the validator's.
    let (forger, _events1) = rogue(201, target.clone()).await.unwrap();
    wait_connected(&forger, &target.id).await;
    let chain_id = basalt_consensus::types::ChainId::new(
        net.rpc(0, "status", serde_json::json!({})).await.unwrap()["node_info"]["network"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let wrong_key = PrivateKey::from_seed(&[9; 32]);
    // Blocks are ~50 ms apart: a vote aimed at the current height can arrive after the node moved on (older
    // heights are ignored unverified), so keep sending forgeries for the then-current height until the
    // validator drops the sender. Every message sent is a forgery.
    let deadline = Instant::now() + WAIT;
    while connected_to(&forger, &target.id).await {
        assert!(
            Instant::now() < deadline,
            "forged vote: rogue was not disconnected"
        );
        let vote = Vote {
            vote_type: VoteType::Prevote,
            height: Height(net.height(0).await.unwrap() + 1),
            round: Round(0),
            block_id: None,
            validator_index: ValidatorIndex(0),
        };
        let signature = wrong_key.sign(&vote.sign_bytes(&chain_id));
        forger.publish_consensus(&ConsensusMessage::Vote(SignedVote { vote, signature }));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_banned(&net, &forger, &target.id, "forged vote").await;

    // 2. Undecodable bytes on the consensus topic.
    let (garbler, _events2) = rogue(202, target.clone()).await.unwrap();
    wait_connected(&garbler, &target.id).await;
    garbler.publish_raw_for_tests(GossipTopic::Consensus, vec![0xff; 300]);
    assert_banned(&net, &garbler, &target.id, "garbage").await;

    // 3. A transaction batch above the limit.
    let (flooder, _events3) = rogue(203, target.clone()).await.unwrap();
    wait_connected(&flooder, &target.id).await;
    flooder.publish_raw_for_tests(GossipTopic::Txs, vec![0u8; 5 << 20]);
    assert_banned(&net, &flooder, &target.id, "oversized batch").await;

    // The validator stayed up and the network kept committing.
    assert!(net.is_running(0));
    let now = net.height(0).await.unwrap();
    for i in 0..4 {
        net.wait_height(i, now + 5, WAIT).await.unwrap();
    }
    forger.shutdown().await;
    garbler.shutdown().await;
    flooder.shutdown().await;
}
