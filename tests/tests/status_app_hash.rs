//! `/status` reports app hashes as CometBFT does (issue 15, item 2): `latest_app_hash` is the app hash in
//! the latest block's header — the state *before* that block — not the state after it (9496b9c reported
//! the state after, one block ahead of every client's expectation). Only a block that changes the state
//! tells the two apart, so the test commits a transfer and reads `/status` while that block is the latest
//! (blocks are 2 s apart here).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use basalt_consensus::types::Address;
use basalt_tests::testnet::{transfer_tx, Testnet};
use base64::Engine as _;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);
const ATTEMPTS: u64 = 5;

fn text<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .fold(v, |v, key| &v[*key])
        .as_str()
        .unwrap_or_else(|| panic!("no string at {path:?} in {v}"))
}

fn b64_to_hex(b64: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    hex::encode_upper(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_app_hash_is_the_latest_headers() {
    let mut net = Testnet::generate(1, 0, 1).unwrap();
    net.set_config(0, "consensus", "timeout_commit", "\"2s\"")
        .unwrap();
    net.start(0, &[]).unwrap();
    net.wait_height(0, 2, WAIT).await.unwrap();
    let status = net.rpc(0, "status", json!({})).await.unwrap();
    let chain_id = text(&status, &["node_info", "network"]).to_owned();
    // The earliest block's header app hash, too (the genesis state for block 1).
    let first = net.rpc(0, "block", json!({"height": "1"})).await.unwrap();
    assert_eq!(
        text(&status, &["sync_info", "earliest_app_hash"]),
        text(&first, &["block", "header", "app_hash"])
    );
    let (_, seed) = net.accounts().unwrap().remove(0);
    let mut seen = Vec::new();
    for nonce in 0..ATTEMPTS {
        let tx = transfer_tx(&chain_id, &seed, &Address([0x5a; 20]), 5, nonce).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&tx);
        let committed = net
            .rpc(0, "broadcast_tx_commit", json!({"tx": b64}))
            .await
            .unwrap();
        assert_eq!(committed["tx_result"]["code"], 0, "{committed}");
        let height: u64 = text(&committed, &["height"]).parse().unwrap();
        let status = net.rpc(0, "status", json!({})).await.unwrap();
        let info = net.rpc(0, "abci_info", json!({})).await.unwrap();
        let latest: u64 = text(&status, &["sync_info", "latest_block_height"])
            .parse()
            .unwrap();
        let info_height: u64 = text(&info, &["response", "last_block_height"])
            .parse()
            .unwrap();
        if latest != height || info_height != height {
            // The chain moved on before we looked: try again with the next transfer.
            seen.push((height, latest, info_height));
            continue;
        }
        let block = net
            .rpc(0, "block", json!({"height": height.to_string()}))
            .await
            .unwrap();
        let header_app_hash = text(&block, &["block", "header", "app_hash"]);
        let after = b64_to_hex(text(&info, &["response", "last_block_app_hash"]));
        assert_ne!(header_app_hash, after, "the transfer changed the state");
        assert_eq!(
            text(&status, &["sync_info", "latest_app_hash"]),
            header_app_hash,
            "latest_app_hash must be the latest header's (the state before block {height})"
        );
        return;
    }
    panic!(
        "the chain never paused on a block with our transfer in {ATTEMPTS} attempts \
         (committed height, status latest height, abci_info height): {seen:?}"
    );
}
