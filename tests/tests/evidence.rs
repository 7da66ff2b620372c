//! Duplicate-vote evidence end to end (issue 4): a validator's key signs two conflicting prevotes (sent by a
//! rogue libp2p peer holding that key while the validator's own node is down); the honest validators turn them
//! into evidence, gossip it, and a proposer commits it in a block, visible over RPC. A websocket client of
//! node 0 meanwhile gets the consensus events (`NewRound`, `Vote`) and the committed evidence's
//! `NewEvidence` event, as CometBFT publishes them (issue 15, item 6).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use basalt_consensus::engine::ConsensusMessage;
use basalt_consensus::types::{BlockId, ChainId, Hash, PrivateKey, SignedVote, Vote};
use basalt_consensus::{Height, Round, VoteType};
use basalt_p2p::{GossipTopic, NetworkConfig, PeerAddr};
use basalt_tests::testnet::Testnet;
use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(30);

fn validator_key(net: &Testnet, i: usize) -> PrivateKey {
    let text = std::fs::read_to_string(net.home(i).join("config/priv_validator_key.json")).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value["priv_key"]["value"].as_str().unwrap())
        .unwrap();
    PrivateKey::from_seed(&bytes[..32].try_into().unwrap())
}

/// Subscribes to `queries` on node `url`'s websocket and forwards every event message (its `result`)
/// from then on, read as fast as the node sends them.
async fn subscribe(url: &str, queries: &[&str]) -> mpsc::UnboundedReceiver<Value> {
    let ws_url = format!("{}/websocket", url.replacen("http://", "ws://", 1));
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    for (id, query) in queries.iter().enumerate() {
        let request =
            json!({"jsonrpc": "2.0", "id": id, "method": "subscribe", "params": {"query": query}});
        ws.send(Message::Text(request.to_string().into()))
            .await
            .unwrap();
    }
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(message)) = ws.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            let value: Value = serde_json::from_str(text.as_str()).unwrap();
            assert!(value.get("error").is_none(), "websocket error: {value}");
            if value["result"].get("data").is_some() && tx.send(value["result"].clone()).is_err() {
                return;
            }
        }
    });
    rx
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
    let addresses: Vec<&str> = validators["validators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["address"].as_str().unwrap())
        .collect();
    let mut events = subscribe(
        &net.rpc_url(0),
        &[
            "tm.event='NewRound'",
            "tm.event='Vote'",
            "tm.event='NewEvidence'",
        ],
    )
    .await;

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
    let committed = 'found: loop {
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
                break 'found (next, evidence[0].clone());
            }
            next += 1;
        }
        assert!(Instant::now() < deadline, "no block committed the evidence");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    rogue.shutdown().await;

    // The websocket client saw rounds start, votes of several validators, and the evidence committed, as
    // the block shows it.
    let (height, evidence) = committed;
    let (mut rounds, mut voters) = (0, std::collections::BTreeSet::new());
    let deadline = tokio::time::Instant::now() + WAIT;
    let announced = loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("no NewEvidence event")
            .expect("websocket closed");
        match event["data"]["type"].as_str().unwrap() {
            "tendermint/event/NewRound" => {
                let value = &event["data"]["value"];
                assert_eq!(value["step"], "RoundStepNewRound");
                let proposer = value["proposer"]["address"].as_str().unwrap();
                assert!(addresses.contains(&proposer), "{event}");
                rounds += 1;
            }
            "tendermint/event/Vote" => {
                let vote = &event["data"]["value"]["Vote"];
                let voter = vote["validator_address"].as_str().unwrap().to_owned();
                let index = vote["validator_index"].as_u64().unwrap() as usize;
                assert_eq!(addresses[index], voter, "{event}");
                voters.insert(voter);
            }
            "tendermint/event/NewEvidence" => break event,
            other => panic!("unexpected event {other}: {event}"),
        }
    };
    assert!(rounds >= 1, "no NewRound event");
    assert!(voters.len() >= 2, "votes of {voters:?} only");
    assert_eq!(announced["events"], json!({"tm.event": ["NewEvidence"]}));
    assert_eq!(announced["data"]["value"]["height"], height.to_string());
    assert_eq!(announced["data"]["value"]["evidence"], evidence);
}
