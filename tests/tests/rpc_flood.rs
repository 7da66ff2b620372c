//! RPC flood benchmark (issue 14, "RPC off the consensus path"): sixteen clients run `tx_search` over a
//! chain of 10,000 blocks without pause while the network commits; the queried validator's block interval
//! must stay within twice its idle value. On 9496b9c one such query held the node's async runtime for
//! minutes (the handler decoded whole blocks synchronously, so the request timeout could not fire).
//!
//! Minutes long, so `#[ignore]`d; a benchmark, recorded in BENCHMARKS.md with machine, load and commit:
//! `BASALT_BIN=<release basalt> cargo test -p basalt-tests --test rpc_flood -- --ignored --nocapture`
//! (`FLOOD_HEIGHT` and `FLOOD_SECS` change the chain length and the flood's duration).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use basalt_consensus::types::Address;
use basalt_tests::testnet::{transfer_tx, Testnet};
use base64::Engine as _;
use serde_json::json;

const CLIENTS: usize = 16;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Blocks node `i` commits per second over `window`.
async fn blocks_per_second(net: &Testnet, i: usize, window: Duration) -> f64 {
    let (h0, t0) = (net.height(i).await.unwrap(), Instant::now());
    tokio::time::sleep(window).await;
    let (h1, t1) = (net.height(i).await.unwrap(), Instant::now());
    (h1 - h0) as f64 / (t1 - t0).as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark of several minutes; see the module docs"]
async fn tx_search_flood_keeps_the_block_interval_within_twice_idle() {
    let target = env_u64("FLOOD_HEIGHT", 10_000);
    let flood = Duration::from_secs(env_u64("FLOOD_SECS", 30));
    let mut net = Testnet::generate(4, 0, 100).unwrap();
    for i in 0..4 {
        net.start(i, &[]).unwrap();
    }
    net.wait_height(0, 3, Duration::from_secs(60))
        .await
        .unwrap();
    let chain_id = net.chain_id().await.unwrap();

    // Transactions spread over the chain: ten transfers per account at the start, more as it grows.
    let accounts = net.accounts().unwrap();
    let sink = Address([0x77; 20]);
    let mut submitted = 0u64;
    let started = Instant::now();
    let build_deadline = Duration::from_secs(target / 5 + 120);
    for round in 0u64.. {
        let height = net.height(0).await.unwrap();
        if height >= target {
            break;
        }
        assert!(
            started.elapsed() < build_deadline,
            "only {height} of {target} blocks after {:?}",
            started.elapsed()
        );
        if round < 20 {
            for (_, seed) in &accounts {
                let tx = transfer_tx(&chain_id, seed, &sink, 1, round).unwrap();
                let b64 = base64::engine::general_purpose::STANDARD.encode(&tx);
                let r = net
                    .rpc(
                        (round % 4) as usize,
                        "broadcast_tx_sync",
                        json!({"tx": b64}),
                    )
                    .await
                    .unwrap();
                assert_eq!(r["code"], 0, "{r}");
                submitted += 1;
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let built = started.elapsed();
    eprintln!(
        "chain of {} blocks with {submitted} transfers built in {built:?}",
        net.height(0).await.unwrap()
    );

    let idle = blocks_per_second(&net, 0, flood).await;

    // Sixteen clients, each with its next query as soon as the last one answered (or failed).
    let url = net.rpc_url(0);
    let stop = Arc::new(AtomicBool::new(false));
    let (answered, failed, slowest_ms) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let sender = accounts[0].0.clone();
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let (url, stop) = (url.clone(), stop.clone());
        let (answered, failed, slowest_ms) = (answered.clone(), failed.clone(), slowest_ms.clone());
        let query = if c % 2 == 0 {
            "tx.height>=1".to_owned()
        } else {
            format!("transfer.sender='{sender}'")
        };
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let sent = Instant::now();
                let body = json!({"jsonrpc": "2.0", "id": c, "method": "tx_search",
                    "params": {"query": query, "per_page": "100", "order_by": "desc"}});
                let ok = match http.post(&url).json(&body).send().await {
                    Ok(resp) => resp
                        .json::<serde_json::Value>()
                        .await
                        .is_ok_and(|v| v.get("result").is_some()),
                    Err(_) => false,
                };
                let counter = if ok { &answered } else { &failed };
                counter.fetch_add(1, Ordering::Relaxed);
                let ms = sent.elapsed().as_millis() as u64;
                slowest_ms.fetch_max(ms, Ordering::Relaxed);
            }
        }));
    }
    let flooded = blocks_per_second(&net, 0, flood).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    let report = format!(
        "idle {idle:.1} blocks/s ({:.1} ms/block); under {CLIENTS} tx_search clients {flooded:.1} \
         blocks/s ({:.1} ms/block); queries answered {}, failed {}, slowest {} ms",
        1000.0 / idle,
        1000.0 / flooded.max(0.001),
        answered.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        slowest_ms.load(Ordering::Relaxed),
    );
    eprintln!("{report}");
    assert!(
        answered.load(Ordering::Relaxed) > 0,
        "no query answered: {report}"
    );
    assert!(
        flooded * 2.0 >= idle,
        "block interval more than twice idle: {report}"
    );
}
