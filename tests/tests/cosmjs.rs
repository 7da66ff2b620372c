//! CosmJS, the most used JavaScript client (`@cosmjs/tendermint-rpc` 0.39, pinned in
//! `tests/cosmjs/package-lock.json`, installed by `scripts/install-deps.sh`), against a real Basalt node,
//! used as a wallet or explorer uses it (issue 15), against a live 4-validator network: `connectComet`
//! must pick its CometBFT 0.38 client; `status`, `block`, `blockchain`, `commit`, `block_results`,
//! `validatorsAll`, `genesis`, `abci_query` (with a proof), `tx` (with a proof), `tx_search`,
//! `txSearchAll`, `broadcastTxSync` and `broadcastTxCommit` must parse and agree with each other
//! (block ids, app hashes, data hashes, heights); the SHA-256 hash CosmJS computes for a transaction must
//! be the one the node answers with and finds it by; a websocket client must get `NewBlockHeader`,
//! `NewBlock` and `Tx` events. The checks themselves are in `tests/cosmjs/check.mjs`; this test starts
//! the network and runs them with Node.js.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use basalt_consensus::types::Address;
use basalt_tests::testnet::{transfer_tx, Testnet};
use base64::Engine as _;
use serde_json::{json, Value};

/// Bound on the checks (Node.js start, a commit, a websocket event).
const CHECK_BUDGET: Duration = Duration::from_secs(90);
const WAIT: Duration = Duration::from_secs(30);

/// The CosmJS package directory (its `node_modules` installed by `scripts/install-deps.sh`).
fn cosmjs_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("cosmjs");
    assert!(
        dir.join("node_modules/@cosmjs/tendermint-rpc").is_dir(),
        "CosmJS is not installed in {}: run scripts/install-deps.sh (npm ci there)",
        dir.display()
    );
    dir
}

/// A running 4-validator network with `accounts` funded accounts, every node past height 2, and its
/// chain id.
async fn four_validators(accounts: usize) -> (Testnet, String) {
    let mut net = Testnet::generate(4, 0, accounts).unwrap();
    for i in 0..4 {
        net.start(i, &[]).unwrap();
    }
    for i in 0..4 {
        net.wait_height(i, 2, WAIT).await.unwrap();
    }
    let chain_id = net.chain_id().await.unwrap();
    (net, chain_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cosmjs_reads_the_node_and_finds_transactions_by_its_own_hash() {
    let dir = cosmjs_dir();
    let (net, chain_id) = four_validators(8).await;
    let accounts = net.accounts().unwrap();
    let recipient = Address([0x5c; 20]);
    let txs: Vec<String> = (0..3)
        .map(|nonce| {
            let tx = transfer_tx(&chain_id, &accounts[0].1, &recipient, 5, nonce).unwrap();
            base64::engine::general_purpose::STANDARD.encode(tx)
        })
        .collect();
    let sender = accounts[0].0.to_uppercase();
    let http = net.rpc_url(0);
    // CosmJS's WebsocketClient appends `/websocket` itself.
    let ws = http.replacen("http://", "ws://", 1);
    let run = tokio::process::Command::new("node")
        .arg(dir.join("check.mjs"))
        .arg(&http)
        .arg(&ws)
        .arg(&sender)
        .arg(recipient.to_hex_upper())
        .args(&txs)
        .current_dir(&dir)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(CHECK_BUDGET, run)
        .await
        .expect("the CosmJS checks exceeded their time budget")
        .expect("cannot run node (Node.js is installed by scripts/install-deps.sh)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "CosmJS checks failed:\n{stderr}\n{stdout}"
    );
    let seen: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert!(
        seen["version"].as_str().unwrap().starts_with("0.38."),
        "{seen}"
    );
    assert_eq!(seen["network"], chain_id.as_str());
    // The hash CosmJS computed and the node's, as the node itself reports it.
    let raw = net
        .rpc(
            0,
            "tx",
            json!({"hash": base64::engine::general_purpose::STANDARD
                .encode(hex::decode(seen["hash"].as_str().unwrap()).unwrap())}),
        )
        .await
        .unwrap();
    assert_eq!(raw["hash"], seen["hash"]);
    assert_eq!(raw["height"], seen["txHeight"].to_string());
    // The websocket part ran to its end: the third transaction's Tx event came after the first's block.
    assert!(seen["lastTxHeight"].as_u64().unwrap() > seen["txHeight"].as_u64().unwrap());
    assert_eq!(seen["validators"], 4);
}

/// Issue 15: CosmJS's `txSearchAll` over a chain longer than 10,000 blocks with transactions spread over
/// it returns every transaction, in order, with a true `totalCount` (on 9496b9c a height-range query was
/// cut to the newest 10,000 blocks without a word). Minutes long even with the release binary, so
/// `#[ignore]`d in `cargo test` and run by `.ci/run` through `scripts/long-tests.sh` with the release
/// binary the build-info check built: `BASALT_BIN=<release basalt> cargo test -p basalt-tests --test
/// cosmjs -- --ignored --nocapture` (`LONG_CHAIN_HEIGHT` changes the length). Timing in BENCHMARKS.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "builds a 10,000-block chain: minutes; CI runs it with the release binary (scripts/long-tests.sh)"]
async fn cosmjs_tx_search_all_is_complete_over_a_long_chain() {
    let dir = cosmjs_dir();
    let target: u64 = std::env::var("LONG_CHAIN_HEIGHT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_500);
    let (net, chain_id) = four_validators(40).await;
    let accounts = net.accounts().unwrap();
    let sink = Address([0x6b; 20]);
    // Four transfers from rotating accounts each second, from the start of the chain to its end.
    let mut nonces = vec![0u64; accounts.len()];
    let mut submitted = 0u64;
    let mut last_hash = String::new();
    let started = std::time::Instant::now();
    let deadline = Duration::from_secs(target / 5 + 300);
    let mut next = 0usize;
    while net.height(0).await.unwrap() < target {
        assert!(started.elapsed() < deadline, "the chain grew too slowly");
        for _ in 0..4 {
            let account = next % accounts.len();
            next += 1;
            let tx =
                transfer_tx(&chain_id, &accounts[account].1, &sink, 1, nonces[account]).unwrap();
            let r = net
                .rpc(
                    account % 4,
                    "broadcast_tx_sync",
                    json!({"tx": base64::engine::general_purpose::STANDARD.encode(&tx)}),
                )
                .await
                .unwrap();
            assert_eq!(r["code"], 0, "{r}");
            nonces[account] += 1;
            submitted += 1;
            last_hash = r["hash"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Everything submitted is committed once the last one is (each account's transfers go in nonce
    // order, and the last one is the highest nonce of its account) and the mempools are empty.
    let settle = std::time::Instant::now();
    loop {
        let found = net.rpc(0, "tx", json!({"hash": last_hash})).await.is_ok();
        let mut pending = 0;
        for i in 0..4 {
            let r = net.rpc(i, "num_unconfirmed_txs", json!({})).await.unwrap();
            pending += r["total"].as_str().unwrap().parse::<u64>().unwrap();
        }
        if found && pending == 0 {
            break;
        }
        assert!(
            settle.elapsed() < Duration::from_secs(120),
            "transactions did not settle"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let sender = accounts[0].0.to_uppercase();
    let run = tokio::process::Command::new("node")
        .arg(dir.join("long_chain.mjs"))
        .arg(net.rpc_url(0))
        .arg(submitted.to_string())
        .arg(&sender)
        .arg(nonces[0].to_string())
        .arg((target * 9 / 10).to_string())
        .current_dir(&dir)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(600), run)
        .await
        .expect("txSearchAll exceeded its time budget")
        .expect("cannot run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "CosmJS long-chain checks failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "{submitted} transfers over {target}+ blocks in {:?}: {stdout}",
        started.elapsed()
    );
}
