//! `[mempool] min_gas_price` on a live network: the node that sets it refuses, at admission, a transfer
//! whose fee is below its price (code 9), while a node without a price admits the same transfer and the
//! network — the pricing node included — commits it: a price is admission policy, not a block rule.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use basalt_consensus::types::Address;
use basalt_tests::testnet::{transfer_tx, Testnet};
use base64::Engine as _;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nodes_gas_price_refuses_cheap_fees_at_admission_only() {
    let mut net = Testnet::generate(4, 0, 2).unwrap();
    // A transfer asks for 1,000 gas and the harness's pays a fee of 1: at 0.002 it must pay 2.
    net.set_config(0, "mempool", "min_gas_price", "\"0.002\"")
        .unwrap();
    for i in 0..4 {
        net.start(i, &[]).unwrap();
    }
    for i in 0..4 {
        net.wait_height(i, 2, WAIT).await.unwrap();
    }
    let chain_id = net.chain_id().await.unwrap();
    let (_, seed) = net.accounts().unwrap().remove(0);
    let tx = transfer_tx(&chain_id, &seed, &Address([0x42; 20]), 10, 0).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&tx);

    let refused = net
        .rpc(0, "broadcast_tx_sync", json!({"tx": b64}))
        .await
        .unwrap();
    assert_eq!(refused["code"], 9, "{refused}");
    assert!(
        refused["log"].as_str().unwrap().contains("0.002"),
        "{refused}"
    );

    let admitted = net
        .rpc(1, "broadcast_tx_sync", json!({"tx": b64}))
        .await
        .unwrap();
    assert_eq!(admitted["code"], 0, "{admitted}");
    let hash = admitted["hash"].as_str().unwrap();
    // Committed, and executed by the pricing node too.
    let committed = net.wait_tx(0, hash, WAIT).await.unwrap();
    assert_eq!(committed["tx_result"]["code"], 0, "{committed}");
}
