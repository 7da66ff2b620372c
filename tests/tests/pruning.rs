//! `storage.retain_blocks` and `storage.pruning_keep_recent` prune (issue 14, item 9): on 9496b9c the node
//! read neither for anything but validation, so a node configured to keep 10 blocks kept every block and
//! every state version forever.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use basalt_tests::testnet::Testnet;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);
const KEEP: u64 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_blocks_and_state_versions_are_pruned() {
    let mut net = Testnet::generate(1, 0, 1).unwrap();
    net.set_config(0, "storage", "retain_blocks", &KEEP.to_string())
        .unwrap();
    net.set_config(0, "storage", "pruning_keep_recent", &KEEP.to_string())
        .unwrap();
    net.start(0, &[]).unwrap();
    net.wait_height(0, 6 * KEEP, WAIT).await.unwrap();

    // The oldest stored block follows the tip (pruning runs after each commit, off the consensus thread).
    let deadline = Instant::now() + WAIT;
    let (earliest, latest) = loop {
        let status = net.rpc(0, "status", json!({})).await.unwrap();
        let sync = &status["sync_info"];
        let number = |key: &str| sync[key].as_str().unwrap().parse::<u64>().unwrap();
        let (earliest, latest) = (
            number("earliest_block_height"),
            number("latest_block_height"),
        );
        if earliest + 2 * KEEP >= latest && earliest > KEEP {
            break (earliest, latest);
        }
        assert!(
            Instant::now() < deadline,
            "blocks are not pruned: earliest {earliest}, latest {latest}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(latest >= 6 * KEEP);

    // The first blocks are gone, and the state at an early height cannot be read any more.
    let first = net.rpc(0, "block", json!({"height": "1"})).await;
    assert!(first.is_err(), "block 1 is still served: {first:?}");
    let (address, _) = net.accounts().unwrap().remove(0);
    let balance_at = |height: u64| json!({"path": format!("/bank/balance/{address}"), "data": "", "height": height.to_string(), "prove": false});
    let recent = net.rpc(0, "abci_query", balance_at(latest)).await.unwrap();
    assert_eq!(recent["response"]["code"], json!(0), "{recent}");
    let old_state = net.rpc(0, "abci_query", balance_at(2)).await.unwrap();
    assert_ne!(
        old_state["response"]["code"],
        json!(0),
        "state version 2 is still readable: {old_state}"
    );
    // Blocks within the window are served.
    net.rpc(0, "block", json!({"height": (earliest + 1).to_string()}))
        .await
        .unwrap();
    assert!(net.is_running(0));
}
