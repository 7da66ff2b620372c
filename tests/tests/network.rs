//! End-to-end: real `basalt` processes on loopback (issue 4's "done means").
//!
//! 4 validators from `basalt testnet` commit the same blocks with the same app hashes while transfers are
//! submitted; one is `kill -9`ed, the others keep committing, it restarts, catches up by block sync and signs
//! again; a fifth node started late syncs from genesis.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use basalt_consensus::types::Address;
use basalt_tests::testnet::{transfer_tx, Testnet};
use base64::Engine as _;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

async fn chain_id(net: &Testnet) -> String {
    let status = net.rpc(0, "status", json!({})).await.unwrap();
    status["node_info"]["network"].as_str().unwrap().to_owned()
}

/// Every node in `nodes` has the same block and app hash at every height in `heights`.
async fn assert_same_chain(net: &Testnet, nodes: &[usize], heights: std::ops::RangeInclusive<u64>) {
    for h in heights {
        let reference = net.block_hashes(nodes[0], h).await.unwrap();
        assert!(
            !reference.0.is_empty(),
            "node {} has no block {h}",
            nodes[0]
        );
        for &i in &nodes[1..] {
            let other = net.block_hashes(i, h).await.unwrap();
            assert_eq!(
                other, reference,
                "node {i} differs from node {} at height {h}",
                nodes[0]
            );
        }
    }
}

/// Whether the commit of `height` (as node `i` serves it) carries a signature of `address`.
async fn signed_by(net: &Testnet, i: usize, height: u64, address: &str) -> bool {
    let Ok(commit) = net
        .rpc(i, "commit", json!({"height": height.to_string()}))
        .await
    else {
        return false;
    };
    commit["signed_header"]["commit"]["signatures"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| s["validator_address"] == address && s["block_id_flag"] == 2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_agree_survive_kill_and_sync_a_late_node() {
    let mut net = Testnet::generate(4, 1, 200).unwrap();
    for i in 0..4 {
        net.start(i, &[]).unwrap();
    }
    for i in 0..4 {
        net.wait_height(i, 3, WAIT).await.unwrap();
    }
    let chain_id = chain_id(&net).await;

    // Transfers from 50 accounts, 4 each (nonces 0..4), to a fresh address.
    let accounts = net.accounts().unwrap();
    assert!(accounts.len() >= 50);
    let sink = Address([0x42; 20]);
    let mut hashes = Vec::new();
    for (n, (_, seed)) in accounts.iter().take(50).enumerate() {
        for nonce in 0..4 {
            let tx = transfer_tx(&chain_id, seed, &sink, 10, nonce).unwrap();
            let b64 = base64::engine::general_purpose::STANDARD.encode(&tx);
            let node = n % 4;
            let res = net
                .rpc(node, "broadcast_tx_sync", json!({"tx": b64}))
                .await
                .unwrap();
            assert_eq!(res["code"], 0, "tx rejected: {res}");
            hashes.push(res["hash"].as_str().unwrap().to_owned());
        }
    }
    // All 200 committed: the sink's balance is 2000 on every node.
    let deadline = std::time::Instant::now() + WAIT;
    'outer: loop {
        let mut done = true;
        for i in 0..4 {
            let q = net
                .rpc(
                    i,
                    "abci_query",
                    json!({"path": "/bank/balance", "data": hex::encode(sink.0), "prove": false}),
                )
                .await
                .unwrap();
            let value = q["response"]["value"].as_str().unwrap_or_default();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value)
                .unwrap_or_default();
            // `/bank/balance` answers the balance as decimal ASCII.
            if bytes != b"2000" {
                done = false;
            }
        }
        if done {
            break 'outer;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "transfers not all committed in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for hash in hashes.iter().take(5) {
        // JSON-RPC bodies carry bytes as base64 (the URI form takes 0x-hex).
        let b64 = base64::engine::general_purpose::STANDARD.encode(hex::decode(hash).unwrap());
        let tx = net.rpc(1, "tx", json!({"hash": b64})).await.unwrap();
        assert_eq!(tx["tx_result"]["code"], 0);
    }
    let h = net.height(0).await.unwrap();
    for i in 0..4 {
        net.wait_height(i, h, WAIT).await.unwrap();
    }
    assert_same_chain(&net, &[0, 1, 2, 3], 1..=h).await;
    // Proposers complete the previous block's commit with the precommits that arrived after the decision:
    // on loopback the fourth one is usually in before the next proposal (before that change every
    // last_commit held exactly the first three). At least 25 blocks, so a loaded machine cannot miss all.
    let h = h.max(25);
    net.wait_height(0, h, WAIT).await.unwrap();
    let mut complete = 0;
    for height in 2..=h {
        let block = net
            .rpc(0, "block", json!({"height": height.to_string()}))
            .await
            .unwrap();
        let for_block = block["block"]["last_commit"]["signatures"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["block_id_flag"] == 2)
            .count();
        assert!(
            for_block >= 3,
            "block {height}: last_commit has {for_block} signatures"
        );
        complete += usize::from(for_block == 4);
    }
    assert!(
        complete > 0,
        "no block of 2..={h} has all four precommits in its last_commit"
    );

    // kill -9 one validator: the others (3 of 4 = 3/4 of the power) keep committing.
    let status3 = net.rpc(3, "status", json!({})).await.unwrap();
    let address3 = status3["validator_info"]["address"]
        .as_str()
        .unwrap()
        .to_owned();
    net.kill(3);
    let h_kill = net.height(0).await.unwrap();
    for i in 0..3 {
        net.wait_height(i, h_kill + 10, WAIT).await.unwrap();
    }
    // Restart: it catches up and signs again.
    net.start(3, &[]).unwrap();
    let target = net.height(0).await.unwrap() + 5;
    net.wait_height(3, target, WAIT).await.unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let h0 = net.height(0).await.unwrap();
        if signed_by(&net, 0, h0, &address3).await {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "restarted validator never signed again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A full node started late syncs from genesis.
    net.start(4, &[]).unwrap();
    let target = net.height(0).await.unwrap();
    net.wait_height(4, target, WAIT).await.unwrap();
    assert_same_chain(&net, &[0, 1, 2, 3, 4], 1..=target).await;
    for i in 0..5 {
        assert!(
            net.stop(i, Duration::from_secs(20)),
            "node {i} did not stop cleanly on SIGTERM"
        );
    }
}
