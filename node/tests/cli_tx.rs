//! `basalt tx transfer` against a scripted JSON-RPC server on 127.0.0.1 (no node is started): the chain id
//! and nonce are taken from the node, the submitted bytes are the signed transfer, and the output and exit
//! status follow the node's answer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Output;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use basalt_consensus::types::{Hash, PrivateKey};
use basalt_node::cli::testnet::AccountEntry;
use basalt_state::bank::{Account, BankTx};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha2::Digest as _;

/// A transaction's hash as CometBFT and its clients compute it (SHA-256, upper-case hex), computed here
/// independently of Basalt's own `tx_hash`.
fn sha256_hex(tx: &[u8]) -> String {
    Hash(sha2::Sha256::digest(tx).into()).to_hex_upper()
}

/// What the fake node answers and what it saw.
#[derive(Default)]
struct Fake {
    /// Code returned by broadcast_tx_sync.
    check_code: u32,
    /// Methods called, in order.
    calls: Vec<String>,
    /// Transactions submitted.
    txs: Vec<Vec<u8>>,
}

type Shared = Arc<Mutex<Fake>>;

async fn handle(
    State(fake): State<Shared>,
    Json(request): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    let method = request["method"].as_str().unwrap_or("").to_owned();
    let mut fake = fake.lock().unwrap();
    fake.calls.push(method.clone());
    let result = match method.as_str() {
        "status" => serde_json::json!({"node_info": {"network": "fake-chain"}}),
        "abci_query" => {
            assert!(request["params"]["path"]
                .as_str()
                .unwrap()
                .starts_with("/bank/account/"));
            let account = Account {
                balance: 100,
                nonce: 7,
            };
            serde_json::json!({"response": {"code": 0, "log": "", "value": BASE64.encode(account.to_bytes())}})
        }
        "broadcast_tx_sync" => {
            let tx = BASE64
                .decode(request["params"]["tx"].as_str().unwrap())
                .unwrap();
            let hash = sha256_hex(&tx);
            fake.txs.push(tx);
            let log = if fake.check_code == 0 {
                ""
            } else {
                "nonce 7 but the account's is 8"
            };
            serde_json::json!({"code": fake.check_code, "data": "", "log": log, "codespace": "", "hash": hash})
        }
        _ => {
            return Json(serde_json::json!({"jsonrpc": "2.0", "id": request["id"],
                "error": {"code": -32601, "message": "Method not found", "data": method}}))
        }
    };
    Json(serde_json::json!({"jsonrpc": "2.0", "id": request["id"], "result": result}))
}

/// Starts the fake node on a free port; returns its URL.
async fn start_fake(fake: Shared) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/", post(handle)).with_state(fake);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

async fn basalt(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_basalt"))
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn write_key(dir: &std::path::Path, key: &PrivateKey) -> String {
    let path = dir.join("key.json");
    let entry = AccountEntry {
        address: key.public_key().address().to_hex_upper(),
        seed: hex::encode(key.seed()),
    };
    std::fs::write(&path, serde_json::to_string(&entry).unwrap()).unwrap();
    path.to_str().unwrap().to_owned()
}

fn transfer_args(key_file: &str, url: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "tx",
        "transfer",
        "--key-file",
        key_file,
        "--node",
        url,
        "--to",
        "00112233445566778899aabbccddeeff00112233",
        "--amount",
        "42",
        "--fee",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[tokio::test]
async fn transfer_takes_chain_id_and_nonce_from_the_node_and_prints_the_hash() {
    let fake: Shared = Arc::default();
    let url = start_fake(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let key = PrivateKey::from_seed(&[5; 32]);
    let key_file = write_key(dir.path(), &key);

    let out = basalt(transfer_args(&key_file, &url, &[])).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();

    let fake = fake.lock().unwrap();
    assert_eq!(fake.calls, ["status", "abci_query", "broadcast_tx_sync"]);
    let tx = &fake.txs[0];
    assert_eq!(printed.trim(), sha256_hex(tx));
    let decoded = BankTx::decode(tx).unwrap();
    let transfer = decoded.transfer();
    transfer.verify().unwrap();
    let body = transfer.body();
    assert_eq!(body.chain_id.as_str(), "fake-chain");
    assert_eq!(body.nonce, 7);
    assert_eq!(body.amount, 42);
    assert_eq!(body.fee, 2);
    assert_eq!(body.from, key.public_key());
    assert_eq!(
        body.to.to_hex_upper(),
        "00112233445566778899AABBCCDDEEFF00112233"
    );
}

#[tokio::test]
async fn explicit_chain_id_and_nonce_skip_the_queries_and_json_output() {
    let fake: Shared = Arc::default();
    let url = start_fake(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = write_key(dir.path(), &PrivateKey::from_seed(&[6; 32]));

    let out = basalt(transfer_args(
        &key_file,
        &url,
        &["--chain-id", "given", "--nonce", "3", "--output", "json"],
    ))
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let fake = fake.lock().unwrap();
    assert_eq!(fake.calls, ["broadcast_tx_sync"]);
    assert_eq!(printed["code"], 0);
    assert_eq!(printed["log"], "");
    assert_eq!(printed["hash"], sha256_hex(&fake.txs[0]));
    let decoded = BankTx::decode(&fake.txs[0]).unwrap();
    assert_eq!(decoded.transfer().body().nonce, 3);
    assert_eq!(decoded.transfer().body().chain_id.as_str(), "given");
}

#[tokio::test]
async fn a_rejected_transfer_exits_non_zero_with_the_code() {
    let fake: Shared = Arc::new(Mutex::new(Fake {
        check_code: 4,
        ..Fake::default()
    }));
    let url = start_fake(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = write_key(dir.path(), &PrivateKey::from_seed(&[7; 32]));

    let out = basalt(transfer_args(&key_file, &url, &["--output", "json"])).await;
    assert!(!out.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["code"], 4);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("rejected with code 4"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1);
}

#[tokio::test]
async fn an_unreachable_node_is_a_one_line_error() {
    // Bind then drop a listener: the port is free and nothing answers on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let key_file = write_key(dir.path(), &PrivateKey::from_seed(&[8; 32]));
    let url = format!("http://127.0.0.1:{port}");
    let out = basalt(transfer_args(&key_file, &url, &["--timeout", "2s"])).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("rpc status"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}
