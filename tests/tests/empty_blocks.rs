//! `create_empty_blocks = false` on a live network of four validators (issue 18, item 3): while idle the
//! chain makes no blocks; a submitted transfer is committed in the very next block, the block after it
//! (which carries the new app hash) is made too, and then the chain waits again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use basalt_consensus::types::Address;
use basalt_tests::testnet::{transfer_tx, Testnet};
use base64::Engine as _;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);
/// How long an idle chain is watched to make no block. With empty blocks (fast-local: `timeout_commit` of
/// a few ms) this would be dozens of blocks.
const IDLE: Duration = Duration::from_secs(2);

/// Waits until node 0 has committed a block after which it waits for a transaction (one whose execution
/// left the app hash its own header carries, so no proof block is due, and the mempool is empty), checks
/// that no block follows for [`IDLE`], and returns that block's height. Known from the node's state, not
/// from how long the height stood still: a slow proof block must not pass for idleness.
async fn idle_height(net: &Testnet) -> u64 {
    match waiting_height(net).await {
        Ok(height) => height,
        Err((idle, now)) => panic!("a block was made while idle: {idle} -> {now}"),
    }
}

/// [`idle_height`], or (the height it waited at, the height reached) if a block came all the same.
async fn waiting_height(net: &Testnet) -> Result<u64, (u64, u64)> {
    let deadline = Instant::now() + WAIT;
    loop {
        let info = net.rpc(0, "abci_info", json!({})).await.unwrap();
        let height: u64 = info["response"]["last_block_height"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        if height >= 1 {
            let after = base64::engine::general_purpose::STANDARD
                .decode(info["response"]["last_block_app_hash"].as_str().unwrap())
                .unwrap();
            let (_, before) = net.block_hashes(0, height).await.unwrap();
            if hex::encode_upper(after) == before {
                tokio::time::sleep(IDLE).await;
                let now = net.height(0).await.unwrap();
                return if now == height {
                    Ok(height)
                } else {
                    Err((height, now))
                };
            }
        }
        assert!(
            Instant::now() < deadline,
            "the chain never came to wait: at {height} after {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_empty_blocks_the_chain_waits_for_a_transaction() {
    let mut net = Testnet::generate(4, 0, 4).unwrap();
    // Three validators (30 of 40 power) make the chain; the fourth comes later.
    for i in 0..4 {
        net.set_config(i, "consensus", "create_empty_blocks", "false")
            .unwrap();
    }
    for i in 0..3 {
        net.start(i, &[]).unwrap();
    }
    // The first block is made without transactions; then the chain waits.
    if let Err(e) = net.wait_height(0, 1, WAIT).await {
        let tail: String = net
            .log(0, 0)
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n");
        panic!("{e}; node 0's log, last lines first:\n{tail}");
    }
    let idle = idle_height(&net).await;
    assert!(
        idle <= 2,
        "empty blocks were made while idle: height {idle}"
    );

    // A validator that joins consensus at height 1 without block sync, while the others wait at the
    // next height, catches up: by the height-1 votes they relay to a peer in an earlier round, or — once
    // it has timed out past their decision round, as a slow node did in CI and then waited for ever —
    // by fetching the block their status now says they have (the status of a waiting node names the
    // height it waits to start). This run shows the first way; the second depends on timing.
    net.set_config(3, "blocksync", "enable", "false").unwrap();
    net.start(3, &[]).unwrap();
    net.wait_height(3, idle, WAIT).await.unwrap();
    // A late node still catching up when its commit timeout for the waiting height passes starts that
    // height at once (it cannot tell yet that the others wait there), and its vote starts it for all:
    // one empty block, often right after it caught up. After it, everyone waits again.
    let idle = match waiting_height(&net).await {
        Ok(height) => height,
        Err((waited, now)) => {
            assert_eq!(now, waited + 1, "the late node made more than one block");
            idle_height(&net).await
        }
    };
    net.wait_height(3, idle, WAIT).await.unwrap();

    // A transfer: committed in the next block, on every node.
    let chain_id = net.chain_id().await.unwrap();
    let (_, seed) = net.accounts().unwrap().remove(0);
    let tx = transfer_tx(&chain_id, &seed, &Address([0x42; 20]), 10, 0).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&tx);
    let sent = net
        .rpc(1, "broadcast_tx_sync", json!({"tx": b64}))
        .await
        .unwrap();
    assert_eq!(sent["code"], 0, "{sent}");
    let hash = sent["hash"].as_str().unwrap();
    for i in 0..4 {
        let found = net.wait_tx(i, hash, WAIT).await.unwrap();
        assert_eq!(found["height"], (idle + 1).to_string(), "{found}");
        assert_eq!(found["tx_result"]["code"], 0, "{found}");
    }

    // The block after it carries the new app hash; then the chain waits again.
    let idle_again = idle_height(&net).await;
    assert_eq!(idle_again, idle + 2);
    let (_, app_hash_before) = net.block_hashes(0, idle + 1).await.unwrap();
    let (_, app_hash_after) = net.block_hashes(0, idle + 2).await.unwrap();
    assert_ne!(app_hash_before, app_hash_after);
}
