//! `mempool.recheck` is honoured (issue 14, item 9): on 9496b9c the node read the key only to validate it
//! and rechecked after every commit either way. With `true` a transaction a commit invalidated is dropped
//! by the recheck after that commit; with `false` nothing is rechecked, and the proposer drops it when its
//! proposal passes it over - it never stays in the pool for good.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use basalt_consensus::types::Address;
use basalt_tests::testnet::{transfer_tx, Testnet};
use base64::Engine as _;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

/// The value of the counter `name` in the node's Prometheus text.
async fn counter(net: &Testnet, name: &str) -> u64 {
    let text = reqwest::get(net.metrics_url(0))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // `name{chain_id="..."} value`
    text.lines()
        .find_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix('{')?;
            rest.split_once("} ").map(|(_, value)| value)
        })
        .unwrap_or_else(|| panic!("no {name} in the metrics:\n{text}"))
        .parse::<f64>()
        .unwrap() as u64
}

async fn mempool_size(net: &Testnet) -> u64 {
    let r = net.rpc(0, "num_unconfirmed_txs", json!({})).await.unwrap();
    r["n_txs"].as_str().unwrap().parse().unwrap()
}

/// One validator; two transfers spending nonce 1 of one account, both admitted (nonce 1 is within the
/// mempool's window and neither can execute yet), then the account's nonce 0: blocks take it and one of the
/// two; the other is then invalid for good and must leave the pool.
async fn run(recheck: bool) -> (u64, u64) {
    let mut net = Testnet::generate(1, 0, 1).unwrap();
    net.set_config(0, "mempool", "recheck", &recheck.to_string())
        .unwrap();
    net.start(0, &[]).unwrap();
    net.wait_height(0, 2, WAIT).await.unwrap();
    let chain_id = net.chain_id().await.unwrap();
    let (_, seed) = net.accounts().unwrap().remove(0);
    for (amount, sink, nonce) in [(10, 0x51, 1), (20, 0x52, 1), (30, 0x53, 0)] {
        let tx = transfer_tx(&chain_id, &seed, &Address([sink; 20]), amount, nonce).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&tx);
        let r = net
            .rpc(0, "broadcast_tx_sync", json!({"tx": b64}))
            .await
            .unwrap();
        assert_eq!(r["code"], 0, "{r}");
    }
    // One is committed, the other leaves the pool; blocks keep coming.
    let start = net.height(0).await.unwrap();
    let deadline = Instant::now() + WAIT;
    while mempool_size(&net).await > 0 {
        assert!(
            Instant::now() < deadline,
            "recheck={recheck}: the invalidated transaction stayed in the mempool"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    net.wait_height(0, start + 3, WAIT).await.unwrap();
    let rechecks = counter(&net, "cometbft_mempool_recheck_times").await;
    let evicted = counter(&net, "cometbft_mempool_evicted_txs").await;
    (rechecks, evicted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recheck_true_rechecks_after_commits_and_false_never_does_yet_nothing_invalid_stays() {
    let (rechecks, evicted) = run(true).await;
    assert!(rechecks >= 1, "recheck=true: no recheck ran");
    assert_eq!(
        evicted, 1,
        "recheck=true: the invalidated transaction was evicted"
    );
    let (rechecks, evicted) = run(false).await;
    assert_eq!(rechecks, 0, "recheck=false: the mempool was rechecked");
    assert_eq!(
        evicted, 1,
        "recheck=false: the proposer dropped the invalidated transaction"
    );
}
