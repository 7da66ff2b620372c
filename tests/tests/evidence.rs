//! Duplicate-vote evidence end to end (issue 4): a validator's key signs two conflicting prevotes (sent by a
//! rogue libp2p peer holding that key while the validator's own node is down); the honest validators turn them
//! into evidence, gossip it, and a proposer commits it in a block, visible over RPC.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use basalt_consensus::engine::ConsensusMessage;
use basalt_consensus::types::{BlockId, ChainId, Hash, PrivateKey, SignedVote, Vote};
use basalt_consensus::{Height, Round, VoteType};
use basalt_p2p::{GossipTopic, NetworkConfig, PeerAddr};
use basalt_tests::testnet::Testnet;
use base64::Engine as _;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

fn validator_key(net: &Testnet, i: usize) -> PrivateKey {
    let text = std::fs::read_to_string(net.home(i).join("config/priv_validator_key.json")).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value["priv_key"]["value"].as_str().unwrap())
        .unwrap();
    PrivateKey::from_seed(&bytes[..32].try_into().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equivocation_becomes_committed_evidence() {
    let mut net = Testnet::generate(4, 0, 10).unwrap();
    // Node 3 stays down: its key is used by the equivocator; 3 of 4 validators keep the chain live.
    for i in 0..3 {
        net.start(i, &[]).unwrap();
    }
    for i in 0..3 {
        net.wait_height(i, 2, WAIT).await.unwrap();
    }
    let status = net.rpc(0, "status", json!({})).await.unwrap();
    let chain_id = ChainId::new(status["node_info"]["network"].as_str().unwrap()).unwrap();
    let key = validator_key(&net, 3);
    let address = key.public_key().address();
    let validators = net
        .rpc(0, "validators", json!({"height": "1", "per_page": "10"}))
        .await
        .unwrap();
    let index = validators["validators"]
        .as_array()
        .unwrap()
        .iter()
        .position(|v| v["address"] == address.to_hex_upper())
        .unwrap();

    let target = PeerAddr {
        id: net.node_id(0).unwrap().parse().unwrap(),
        addr: net.p2p_addr(0),
    };
    let (rogue, _events) = basalt_p2p::spawn(NetworkConfig {
        node_key_seed: [77; 32],
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        persistent_peers: vec![target.clone()],
        ..NetworkConfig::default()
    })
    .await
    .unwrap();
    let deadline = Instant::now() + WAIT;
    while !rogue
        .topic_peers(GossipTopic::Consensus)
        .await
        .subscribed
        .contains(&target.id)
    {
        assert!(
            Instant::now() < deadline,
            "rogue never joined the consensus topic"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Two prevotes of the same height and round for different values, signed by validator 3's key, for the
    // height node 0 works on: a node keeps at most one vote per validator and slot of the next height, and
    // refuses later heights, so the pair must land while that height is current. Sent again each time the
    // chain moves on, until a block carries the evidence.
    let equivocate = |height: u64| {
        for block_id in [
            None,
            Some(BlockId {
                hash: Hash::digest(&height.to_be_bytes()),
            }),
        ] {
            let vote = Vote {
                vote_type: VoteType::Prevote,
                height: Height(height),
                round: Round(0),
                block_id,
                validator_index: basalt_consensus::ValidatorIndex(index as u32),
            };
            let signature = key.sign(&vote.sign_bytes(&chain_id));
            rogue.publish_consensus(&ConsensusMessage::Vote(SignedVote { vote, signature }));
        }
    };
    let start = net.height(0).await.unwrap();
    let deadline = Instant::now() + WAIT;
    let mut next = start + 1;
    let mut sent_for = 0;
    'found: loop {
        let latest = net.height(0).await.unwrap();
        if latest + 1 != sent_for {
            sent_for = latest + 1;
            equivocate(sent_for);
        }
        while next <= latest {
            let block = net
                .rpc(0, "block", json!({"height": next.to_string()}))
                .await
                .unwrap();
            let evidence = &block["block"]["evidence"]["evidence"];
            if evidence.as_array().is_some_and(|e| !e.is_empty()) {
                assert!(
                    evidence.to_string().contains(&address.to_hex_upper()),
                    "evidence names another validator: {evidence}"
                );
                break 'found;
            }
            next += 1;
        }
        assert!(Instant::now() < deadline, "no block committed the evidence");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rogue.shutdown().await;
}
