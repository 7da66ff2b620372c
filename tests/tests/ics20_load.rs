//! ICS-20 load benchmark (issue 16): transfers from chain a to chain b over a live path, relayed and
//! acknowledged by `basalt relay start`, at a fixed offered rate. Two networks of two validators each
//! (fast-local), the relayer signing with each chain's first account, senders from the others, every
//! transfer presigned. Submission follows a schedule (transfer `i` is due at `i / rate` s) in JSON-RPC
//! batches of `broadcast_tx_sync` to both of a's nodes; a watcher reads each new block of a (`block` +
//! `block_results`): a `send_packet` ties a transaction (SHA-256 of its bytes) to its packet sequence,
//! an `acknowledge_packet` ends that packet. Latency is from the transfer's *scheduled* send time to the
//! moment the watcher saw its acknowledgement committed (so client-side queueing counts).
//!
//! A benchmark, not a check: minutes long, so `#[ignore]`d; recorded in BENCHMARKS.md with machine, load
//! and commit. Run with the release binary:
//!
//! ```sh
//! BASALT_BIN=<release basalt> cargo test --release -p basalt-tests --test ics20_load -- --ignored --nocapture
//! ```
//!
//! `ICS20_RATE` (transfers/s, default 1000), `ICS20_SECONDS` (sending time, default 60), `ICS20_DRAIN`
//! (seconds to wait for the rest to be acknowledged, default 120), `ICS20_SENDERS` (accounts, default 200).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use basalt_consensus::types::{ChainId, PrivateKey};
use basalt_node::cli::tx::ibc::{build_ibc_transfer, IbcTransferParams};
use basalt_tests::relayer;
use basalt_tests::testnet::Testnet;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const WAIT: Duration = Duration::from_secs(60);
/// Transfers per JSON-RPC batch request.
const BATCH: usize = 50;
/// Batches in flight at once.
const IN_FLIGHT: usize = 8;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn network(chain_id: &str, accounts: usize) -> Testnet {
    let mut net = Testnet::generate_chain(2, 0, accounts, Some(chain_id)).unwrap();
    net.start(0, &[]).unwrap();
    net.start(1, &[]).unwrap();
    net.wait_height(0, 3, WAIT).await.unwrap();
    net
}

/// One JSON-RPC call to `url` (a batch when `body` is an array); the parsed answer.
async fn post(http: &reqwest::Client, url: &str, body: &Value) -> Result<Value, String> {
    let response = http
        .post(url)
        .json(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    response.json().await.map_err(|e| e.to_string())
}

async fn call(http: &reqwest::Client, url: &str, method: &str, params: Value) -> Value {
    let answer = post(
        http,
        url,
        &json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}),
    )
    .await
    .unwrap_or_else(|e| panic!("{method}: {e}"));
    answer
        .get("result")
        .cloned()
        .unwrap_or_else(|| panic!("{method}: {answer}"))
}

/// The `attribute` of every event of `kind` in one transaction's result.
fn event_values(result: &Value, kind: &str, attribute: &str) -> Vec<String> {
    result["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["type"] == kind)
        .filter_map(|e| {
            e["attributes"]
                .as_array()?
                .iter()
                .find(|a| a["key"] == attribute)?["value"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark of several minutes; see the module docs"]
async fn ics20_transfers_relayed_and_acknowledged_under_load() {
    let rate = env_u64("ICS20_RATE", 1000).max(1);
    let seconds = env_u64("ICS20_SECONDS", 60).max(1);
    let drain = Duration::from_secs(env_u64("ICS20_DRAIN", 120));
    let senders = usize::try_from(env_u64("ICS20_SENDERS", 200).max(1)).unwrap();
    let total = usize::try_from(rate * seconds).unwrap();

    let a = network("basalt-a", senders + 1).await;
    let b = network("basalt-b", 2).await;
    let dir = tempfile::tempdir().unwrap();
    let config = relayer::write_config(&a, &b, 1, dir.path(), "").unwrap();
    relayer::create_path(&config).unwrap();
    let _relayer = relayer::start(&config, &dir.path().join("relay.log"), &[]).unwrap();

    // Every transfer signed up front: sender i % senders (accounts 1..), its nonces in order.
    let receiver = b.accounts().unwrap().remove(1).0;
    let keys: Vec<PrivateKey> = a.accounts().unwrap()[1..=senders]
        .iter()
        .map(|(_, seed)| PrivateKey::from_seed(&hex::decode(seed).unwrap().try_into().unwrap()))
        .collect();
    let chain_id = ChainId::new("basalt-a").unwrap();
    let timeout_ns = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        + Duration::from_secs(3600))
    .as_nanos() as u64;
    let signing = Instant::now();
    let txs: Vec<(String, String)> = (0..total)
        .map(|i| {
            let built = build_ibc_transfer(
                &keys[i % senders],
                &IbcTransferParams {
                    chain_id: chain_id.clone(),
                    port: "transfer".to_owned(),
                    channel: "channel-0".to_owned(),
                    receiver: receiver.clone(),
                    amount: 1,
                    denom: "basalt".to_owned(),
                    memo: String::new(),
                    timeout_height: None,
                    timeout_ns: Some(timeout_ns),
                    fee: 0,
                    gas_limit: 200_000,
                    nonce: (i / senders) as u64,
                },
            )
            .unwrap();
            (
                BASE64.encode(&built.bytes),
                hex::encode_upper(Sha256::digest(&built.bytes)),
            )
        })
        .collect();
    eprintln!("signed {total} transfers in {:?}", signing.elapsed());

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(IN_FLIGHT)
        .build()
        .unwrap();
    let urls = [a.rpc_url(0), a.rpc_url(1)];
    let start_height: u64 = a.height(0).await.unwrap();
    let t0 = Instant::now();
    let due = move |i: usize| t0 + Duration::from_secs_f64(i as f64 / rate as f64);
    let hash_index: HashMap<String, usize> = txs
        .iter()
        .enumerate()
        .map(|(i, (_, hash))| (hash.clone(), i))
        .collect();

    // The sender: batches as their transfers fall due, at most IN_FLIGHT requests at once.
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let refused = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sender = {
        let (http, urls, accepted, refused) = (
            http.clone(),
            urls.clone(),
            accepted.clone(),
            refused.clone(),
        );
        let txs: Vec<String> = txs.iter().map(|(b64, _)| b64.clone()).collect();
        tokio::spawn(async move {
            let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
            let mut tasks = Vec::new();
            for (n, chunk) in txs.chunks(BATCH).enumerate() {
                let last = n * BATCH + chunk.len() - 1;
                tokio::time::sleep_until(due(last).into()).await;
                let body: Vec<Value> = chunk
                    .iter()
                    .enumerate()
                    .map(|(k, tx)| {
                        json!({"jsonrpc": "2.0", "id": k, "method": "broadcast_tx_sync",
                               "params": {"tx": tx}})
                    })
                    .collect();
                let permit = slots.clone().acquire_owned().await.unwrap();
                let (http, url, accepted, refused) = (
                    http.clone(),
                    urls[n % urls.len()].clone(),
                    accepted.clone(),
                    refused.clone(),
                );
                tasks.push(tokio::spawn(async move {
                    let _permit = permit;
                    match post(&http, &url, &Value::Array(body)).await {
                        Ok(Value::Array(answers)) => {
                            for answer in answers {
                                if answer["result"]["code"] == 0 {
                                    accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                } else {
                                    refused.lock().unwrap().push(answer.to_string());
                                }
                            }
                        }
                        other => refused.lock().unwrap().push(format!("{other:?}")),
                    }
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
        })
    };

    // The watcher: every block of a from the start, until every accepted transfer is acknowledged or
    // the drain time is over.
    let mut sequence_of_tx: HashMap<u64, usize> = HashMap::new();
    let mut latencies = Vec::new();
    let mut acked_in_window = 0usize;
    let mut sent_packets = 0usize;
    let mut next = start_height + 1;
    let mut sending_done_at: Option<Instant> = None;
    let mut last_ack = t0;
    loop {
        if sending_done_at.is_none() && sender.is_finished() {
            sending_done_at = Some(Instant::now());
        }
        let accepted_now = accepted.load(std::sync::atomic::Ordering::Relaxed);
        if let Some(done) = sending_done_at {
            if latencies.len() >= accepted_now || done.elapsed() > drain {
                break;
            }
        }
        let latest = a.height(0).await.unwrap();
        if next > latest {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let block = call(
            &http,
            &urls[0],
            "block",
            json!({"height": next.to_string()}),
        )
        .await;
        let results = call(
            &http,
            &urls[0],
            "block_results",
            json!({"height": next.to_string()}),
        )
        .await;
        let seen = Instant::now();
        let block_txs = block["block"]["data"]["txs"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let tx_results = results["txs_results"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for (tx, result) in block_txs.iter().zip(&tx_results) {
            let bytes = BASE64.decode(tx.as_str().unwrap()).unwrap();
            let hash = hex::encode_upper(Sha256::digest(&bytes));
            if let Some(&i) = hash_index.get(&hash) {
                for seq in event_values(result, "send_packet", "packet_sequence") {
                    sequence_of_tx.insert(seq.parse().unwrap(), i);
                    sent_packets += 1;
                }
            }
            for seq in event_values(result, "acknowledge_packet", "packet_sequence") {
                if let Some(&i) = sequence_of_tx.get(&seq.parse().unwrap()) {
                    latencies.push(seen.saturating_duration_since(due(i)));
                    last_ack = seen;
                    if seen <= t0 + Duration::from_secs(seconds) {
                        acked_in_window += 1;
                    }
                }
            }
        }
        next += 1;
    }
    sender.await.unwrap();
    let accepted = accepted.load(std::sync::atomic::Ordering::Relaxed);
    let refused = refused.lock().unwrap().clone();
    latencies.sort();
    let acked = latencies.len();
    let span = last_ack
        .saturating_duration_since(t0)
        .as_secs_f64()
        .max(1e-9);
    eprintln!(
        "{}",
        json!({
            "offered": total,
            "offered_rate": rate,
            "seconds": seconds,
            "accepted": accepted,
            "refused": refused.len(),
            "first_refusal": refused.first(),
            "sent_packets_committed": sent_packets,
            "acked": acked,
            "acked_within_sending_time": acked_in_window,
            "acked_per_s_within_sending_time": acked_in_window as f64 / seconds as f64,
            "acked_per_s_first_send_to_last_ack": acked as f64 / span,
            "last_ack_after_s": span,
            "latency_p50_ms": percentile(&latencies, 50.0).as_millis(),
            "latency_p99_ms": percentile(&latencies, 99.0).as_millis(),
            "latency_max_ms": latencies.last().copied().unwrap_or_default().as_millis(),
            "heights": [start_height, next - 1],
        })
    );
    let log = std::fs::read_to_string(dir.path().join("relay.log")).unwrap_or_default();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| !l.starts_with("recv ") && !l.starts_with("ack "))
        .collect();
    eprintln!(
        "relayer log (packet lines left out), tail:\n{}",
        lines[lines.len().saturating_sub(20)..].join("\n")
    );
    assert!(acked > 0, "nothing was acknowledged");
}
